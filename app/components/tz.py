"""The viewer's timezone: chosen in the sidebar, first guess the browser's, else UTC; kept in
st.session_state so every page shows times alike."""

from __future__ import annotations

from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import streamlit as st

KEY = "mw_timezone"


@cache
def zones() -> list[str]:
    return ["UTC", *sorted(z for z in available_timezones() if z != "UTC")]


def _browser_zone() -> str:
    try:
        name = st.context.timezone
    except Exception:  # no browser context (bare script run): nothing to guess from
        name = None
    return name if name and name in set(zones()) else "UTC"


def selector() -> None:
    """The sidebar's timezone box."""
    if KEY not in st.session_state:
        st.session_state[KEY] = _browser_zone()
    st.selectbox("Timezone", zones(), key=KEY, help="Every time on every page is shown in this zone.")


def current() -> ZoneInfo:
    try:
        return ZoneInfo(st.session_state.get(KEY) or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
