"""The dashboard's entry point: `streamlit run app/main.py` with MARGINWATCH_CONFIG set.

Access first (app.access.gate): an anonymous visitor of a gated deployment gets only the
login page, whatever URL they open. Then the pages, the sidebar's timezone, and the footer.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts app/ on sys.path, not the project root that holds the packages.
ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import streamlit as st  # noqa: E402

from app.access import gate  # noqa: E402
from app.components import tz  # noqa: E402

st.set_page_config(page_title="marginwatch", page_icon="📈", layout="wide")

# Each page is a package in views/ (its page script, its sections and its data side by
# side), never under pages/: with a pages/ folder beside this file, Streamlit runs a URL's
# page script directly (skipping this file and its login) until some session has called
# st.navigation, i.e. on the first request after a restart.
# Emoji, not Material icons: the open page's icon becomes the browser tab's icon, and a
# Material one is fetched from fonts.gstatic.com (a request that says who looks, and when).
PAGES = {  # url path: (script, title, icon)
    "": ("views/overview/page.py", "Overview", "📊"),
    "account": ("views/account/page.py", "Account", "💼"),
    "risk": ("views/risk/page.py", "Risk", "🚨"),
    "alerts": ("views/alerts/page.py", "Alerts", "🔔"),
    "keys": ("views/keys/page.py", "Accounts & keys", "🔑"),
}

mode = gate.access_mode()
if not gate.allowed(mode):
    # every URL is the login (a deep link keeps its address, so it opens after login)
    st.navigation(gate.login_pages(list(PAGES)), position="hidden").run()
    gate.footer(mode)
    st.stop()

page = st.navigation(
    [
        st.Page(script, title=title, icon=icon, default=not path, url_path=path or None)
        for path, (script, title, icon) in PAGES.items()
    ]
)
with st.sidebar:
    tz.selector()
    gate.account_box(mode)
page.run()
st.divider()
gate.footer(mode)
