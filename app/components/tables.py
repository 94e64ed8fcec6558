"""Every table goes through `show`: a dataframe, and a CSV download of the same rows at
full precision (the screen rounds; a spreadsheet should not)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo
from typing import Any

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler


def localise(frame: pd.DataFrame, columns: list[str], zone: tzinfo) -> pd.DataFrame:
    """Aware UTC datetime columns converted to the viewer's zone (a copy)."""
    frame = frame.copy()
    for column in columns:
        frame[column] = pd.to_datetime(frame[column], utc=True).dt.tz_convert(zone)
    return frame


def time_column(label: str) -> Any:
    return st.column_config.DatetimeColumn(label, format="YYYY-MM-DD HH:mm:ss")


def show(
    frame: pd.DataFrame,
    name: str,
    *,
    styler: Styler | None = None,
    column_config: Mapping[str, Any] | None = None,
    hide: list[str] | None = None,
    key: str | None = None,
    **kwargs: Any,
) -> Any:
    """Render `frame` (or its styled version), then its CSV download; returns what
    st.dataframe returns (the selection, with on_select)."""
    hidden = dict.fromkeys(hide or [])  # None in column_config hides a column
    config = {**hidden, **(column_config or {})}
    result = st.dataframe(
        styler if styler is not None else frame, column_config=config, hide_index=True, key=key, **kwargs
    )
    st.download_button(
        f"CSV: {name}",
        frame.to_csv(index=False).encode(),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=f"csv_{key or name}",
        on_click="ignore",
        icon=":material/download:",
    )
    return result
