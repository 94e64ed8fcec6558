"""The dashboard's server: `streamlit run app/server.py` (cli.dashboard starts it so).

Streamlit's own server running app/main.py, with marginwatch's edge in front of it
(app.access.web): the password login outside Streamlit, its cookie required for
everything else when a password is configured, the metrics endpoint closed and cache
clearing dropped. Running app/main.py directly works for the open and OpenID Connect
modes, but a password-gated dashboard then stays locked (it says how to start it).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

# `streamlit run` puts app/ on sys.path, not the project root that holds the packages.
ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import streamlit as st  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from app.access import web  # noqa: E402
from config import redaction  # noqa: E402

redaction.install()  # whatever Streamlit, uvicorn or a page logs: no credential


def _log_logins() -> None:
    """Logins, failures and refusals on stderr with their time (the server log)."""
    logger = logging.getLogger("marginwatch.login")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


_log_logins()


def _warn_exposed_files() -> None:
    """The secrets files (a password hash, an OIDC client secret) and a config holding a
    database password should be readable by their owner only: say so in the server log."""
    from config.reading import readable_by_others
    from config.settings import ConfigError, config_path, exposure_warnings, load_config

    warnings = [readable_by_others(Path(p)) for p in st.get_option("secrets.files") or []]
    try:
        path = config_path(None)
        warnings += exposure_warnings(path, load_config(path))
    except ConfigError:
        pass  # the page says what is wrong with the config
    for warning in filter(None, warnings):
        logging.getLogger("marginwatch.login").warning("%s", warning)


_warn_exposed_files()
app = st.App("main.py", routes=web.routes(), middleware=[Middleware(web.AccessGuard)])
