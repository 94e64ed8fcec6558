"""The dashboard's entry point: `streamlit run app/main.py` with MARGINWATCH_CONFIG set.

Access first (app.gate): an anonymous visitor of a gated deployment gets only the login
page, whatever URL they open. Then the pages, the sidebar's timezone, and the footer.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts app/ on sys.path, not the project root that holds the packages.
ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import streamlit as st  # noqa: E402

from app import gate, tz  # noqa: E402

st.set_page_config(page_title="marginwatch", page_icon=":material/monitor_heart:", layout="wide")

# The page scripts live in views/, never pages/: with a pages/ folder beside this file,
# Streamlit runs a URL's page script directly (skipping this file and its login) until
# some session has called st.navigation, i.e. on the first request after a restart.
PAGES = {  # url path: (script, title, icon)
    "": ("views/overview.py", "Overview", ":material/dashboard:"),
    "account": ("views/account.py", "Account", ":material/account_balance_wallet:"),
    "risk": ("views/risk.py", "Risk", ":material/crisis_alert:"),
    "alerts": ("views/alerts.py", "Alerts", ":material/notifications:"),
    "keys": ("views/accounts_keys.py", "Accounts & keys", ":material/key:"),
}

mode = gate.access_mode()
if not gate.allowed(mode):
    # every URL is the login (a deep link keeps its address, so it opens after login)
    st.navigation(gate.login_pages(list(PAGES)), position="hidden").run()
    gate.footer(mode)
    st.stop()

page = st.navigation([
    st.Page(script, title=title, icon=icon, default=not path, **({"url_path": path} if path else {}))
    for path, (script, title, icon) in PAGES.items()
])
with st.sidebar:
    tz.selector()
    gate.account_box(mode)
page.run()
st.divider()
gate.footer(mode)
