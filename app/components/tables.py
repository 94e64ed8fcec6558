"""Every table goes through `show`: a dataframe, and a CSV download of the same rows at
full precision (the screen rounds; a spreadsheet should not). On screen every column has a
human header (never a snake_case name) and an absent value reads "—" (never None or nan):
a number column holding a gap is shown as text, formatted as its column config says."""

from __future__ import annotations

import re
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


DASH = "—"
_PRINTF = re.compile(r"^%([,.\d]*[dfge])(.*)$")


def human(name: str) -> str:
    """A column name as a header: "last_error" -> "Last error"."""
    text = str(name).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def number_text(value: object, spec: str | None = None) -> str:
    """One number as its column config would show it ("%,.2f", "percent", "%gx"), "—" when absent."""
    if value is None or (isinstance(value, float) and value != value) or pd.isna(value):
        return DASH
    number = float(value)  # type: ignore[arg-type]
    if spec == "percent":
        return f"{number * 100:.2f} %"
    match = _PRINTF.match(spec or "")
    if match:
        return format(number, match.group(1)) + match.group(2)
    if number.is_integer() and abs(number) < 1e15:
        return f"{int(number):,}"
    return f"{number:,.2f}" if abs(number) >= 100 else f"{number:.4g}"


def _display(frame: pd.DataFrame, config: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The frame as shown: gaps as "—" (text columns, and number columns that have one,
    formatted as text), every column labelled."""
    shown = frame.copy()
    config = dict(config)
    for column in shown.columns:
        conf = config.get(column, {}) if column in config else {}
        if column in config and config[column] is None:  # hidden
            continue
        series = shown[column]
        label = (conf or {}).get("label") or human(column)
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            if series.isna().any():
                spec = ((conf or {}).get("type_config") or {}).get("format")
                shown[column] = [number_text(v, spec) for v in series]
                config[column] = st.column_config.TextColumn(label, help=(conf or {}).get("help"))
                continue
        elif _is_text(series):
            shown[column] = series.astype(object).map(_text_or_dash)
        config[column] = {**(conf or {}), "label": label} if conf else st.column_config.Column(label)
    return shown, config


def _is_text(series: pd.Series) -> bool:
    return series.dtype == object or pd.api.types.is_string_dtype(series)


def _text_or_dash(value: object) -> object:
    return DASH if value is None or value is pd.NA or (isinstance(value, float) and value != value) else value


def _styled_gaps(styler: Styler, config: dict[str, Any]) -> Styler:
    """A styled table's gaps as "—" in the columns its caller left unformatted (a caller's
    own formatter says what a gap is): text cells replaced, number cells formatted as
    their column config says."""
    formatted = {int(c) for _, c in getattr(styler, "_display_funcs", {})}
    data = styler.data
    for i, column in enumerate(data.columns):
        if i in formatted or not data[column].isna().any() or config.get(column, {}) is None:
            continue
        series = data[column]
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            spec = ((config.get(column) or {}).get("type_config") or {}).get("format")
            styler = styler.format(lambda v, spec=spec: number_text(v, spec), subset=[column], na_rep=DASH)
        elif _is_text(series):
            styler = styler.format(_text_or_dash, subset=[column], na_rep=DASH)
    return styler


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
    if styler is None:
        shown, config = _display(frame, config)
    else:
        shown = _styled_gaps(styler, config)
        config = {c: config.get(c) if c in config else st.column_config.Column(human(c)) for c in frame.columns}
        config = {c: ({**v, "label": v.get("label") or human(c)} if v else v) for c, v in config.items()}
    result = st.dataframe(shown, column_config=config, hide_index=True, key=key, **kwargs)
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
