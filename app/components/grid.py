"""The position grid as an HTML table: every column a trader needs, fitted to a 1440 px
screen (two-line cells instead of extra columns), the rest behind a toggle. Not
st.dataframe: a canvas grid hides the columns that do not fit. Every cell is escaped
here (symbols and names come from an exchange or a config), and the CSV below holds the
same rows at full precision."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime, tzinfo

import pandas as pd
import streamlit as st

from app.components import fmt
from app.components.levels import COLORS
from app.components.safe import plain
from readmodels.positions import GridRow

Cell = Callable[[GridRow, datetime, tzinfo], str]  # -> HTML, escaped


def esc(value: object) -> str:
    return html.escape(plain(value), quote=True)


def _lines(*parts: str) -> str:
    return "<br>".join(esc(p) for p in parts if p)


def _signed_money(value: float | None, currency: str) -> str:
    if value is None or pd.isna(value):
        return fmt.DASH
    return f"{'+' if value > 0 else ''}{fmt.money(value, currency)}"


def _size(r: GridRow, *_: object) -> str:
    return _lines(f"{fmt.contracts(r.contracts, r.amount_step)} ct", f"{r.base_size:,.6g} {r.base}")


def _liq(r: GridRow, *_: object) -> str:
    ours = fmt.price(r.liquidation_price, r.price_tick)
    venue = fmt.price(r.exchange_liquidation_price, r.price_tick)
    flag = ' <span title="ours and the exchange\'s differ by more than 0.5 %">⚠</span>' if r.disagrees else ""
    return f"{esc(ours)}{flag}<br><small>{esc(venue)}</small>"


def _distance(r: GridRow, *_: object) -> str:
    if r.distance is None:
        return fmt.DASH
    arrow = {"down": "↓", "up": "↑"}.get(r.liquidation_side or "", "")
    sigma = fmt.DASH if r.distance_sigma is None else f"{r.distance_sigma:.1f} σ"
    return _lines(f"{arrow} {fmt.percent(abs(r.distance), 2)}".strip(), sigma)


def _funding(r: GridRow, now: datetime, zone: tzinfo) -> str:
    if r.funding_rate is None:
        return fmt.DASH
    when = fmt.DASH
    if r.next_funding_at is not None:
        left = max(0.0, (r.next_funding_at - now).total_seconds())
        when = f"in {int(left // 3600)} h {int(left % 3600 // 60):02d} m"
    return _lines(f"{r.funding_rate * 100:+.4f} % {when}", _signed_money(r.funding_received, r.currency))


def _side(r: GridRow, *_: object) -> str:
    color = COLORS["ok"] if r.side == "long" else COLORS["critical"]
    return f'<span style="color:{color};font-weight:600">{esc(r.side)}</span>'


def _account(r: GridRow, *_: object) -> str:
    return f'<span style="border-left:4px solid {COLORS[r.level]};padding-left:4px">{esc(r.label)}</span>' + (
        ' <small style="color:#9e9e9e">stale</small>' if r.stale else ""
    )


def _pnl(r: GridRow, *_: object) -> str:
    color = COLORS["ok"] if r.unrealized_pnl >= 0 else COLORS["critical"]
    return f'<span style="color:{color}">{esc(_signed_money(r.unrealized_pnl, r.currency))}</span>'


# (header, help, cell): the main columns, always shown
MAIN: list[tuple[str, str, Cell]] = [
    ("Symbol", "As the venue spells it.", lambda r, *_: _lines(r.symbol, r.pool)),
    ("Side", "", _side),
    ("Size", "Contracts, then the base coin.", _size),
    ("Notional", "Size × mark, in the quote currency.", lambda r, *_: esc(fmt.money(r.notional, r.currency))),
    (
        "Lev.",
        "Leverage as the venue reports it.",
        lambda r, *_: esc(fmt.DASH if not r.leverage else f"{r.leverage:g}×"),
    ),
    ("Entry", "", lambda r, *_: esc(fmt.price(r.entry_price, r.price_tick))),
    ("Mark", "", lambda r, *_: esc(fmt.price(r.mark_price, r.price_tick))),
    ("Liq. ours / exch.", "Our liquidation price (nearest side), the exchange's below it.", _liq),
    ("Distance", "To our liquidation price: % of mark (↓ below, ↑ above), then daily σ.", _distance),
    (
        "Margin ratio",
        "Its pool's maintenance margin / equity; liquidation at 100 %.",
        lambda r, *_: esc(fmt.percent(r.margin_ratio, 2)),
    ),
    ("Unrealised PnL", "", _pnl),
    ("Next funding", "Rate per interval (longs pay a positive one), when, and what the position receives.", _funding),
]
MORE: list[tuple[str, str, Cell]] = [
    (
        "Liq. chance 24 h",
        "Chance the mark touches the liquidation price within 24 h.",
        lambda r, *_: esc(fmt.chance(r.touch_probability)),
    ),
    ("Maintenance", "", lambda r, *_: esc(fmt.money(r.maintenance_margin, r.currency))),
    ("Isolated margin", "", lambda r, *_: esc(fmt.money(r.isolated_margin, r.currency))),
    ("Pool health", "Equity / maintenance of its pool; liquidation at 1.", lambda r, *_: esc(fmt.ratio(r.health))),
    ("σ daily", "EWMA realized volatility of daily log returns.", lambda r, *_: esc(fmt.percent(r.volatility))),
]

STYLE = """<style>
.mw-grid-wrap{overflow-x:auto;width:100%}
table.mw-grid{border-collapse:collapse;width:100%;font-size:0.78rem;line-height:1.25;font-variant-numeric:tabular-nums}
table.mw-grid th{text-align:right;font-weight:600;padding:4px 6px;border-bottom:2px solid #ccc;vertical-align:bottom}
table.mw-grid td{text-align:right;padding:3px 6px;border-bottom:1px solid #eee;white-space:nowrap;vertical-align:top}
table.mw-grid th:nth-child(-n+2),table.mw-grid td:nth-child(-n+2){text-align:left}
table.mw-grid tr.mw-acct td{text-align:left;background:#f6f6f6;padding-top:6px}
table.mw-grid small{color:#777}
</style>"""


def grid_html(rows: Sequence[GridRow], now: datetime, zone: tzinfo, more: bool = False) -> str:
    """The table's HTML (every cell escaped): one heading row per account (its level's
    colour, stale when its data is old), then its positions."""
    columns = MAIN + (MORE if more else [])
    head = "".join(f'<th title="{esc(help_)}">{esc(name)}</th>' for name, help_, _ in columns)
    body = []
    account = None
    for r in rows:
        if r.account != account:
            account = r.account
            body.append(f'<tr class="mw-acct"><td colspan="{len(columns)}">{_account(r)}</td></tr>')
        body.append("<tr>" + "".join(f"<td>{cell(r, now, zone)}</td>" for _, _, cell in columns) + "</tr>")
    table = f'<table class="mw-grid" data-testid="mw-position-grid"><thead><tr>{head}</tr></thead>'
    return f'{STYLE}<div class="mw-grid-wrap">{table}<tbody>{"".join(body)}</tbody></table></div>'


def grid_frame(rows: Sequence[GridRow]) -> pd.DataFrame:
    return pd.DataFrame([asdict(r) for r in rows])


def show_grid(rows: Sequence[GridRow], now: datetime, zone: tzinfo, key: str) -> None:
    """The grid, its "more columns" toggle and its CSV download."""
    if not rows:
        st.caption("No open position.")
        return
    more = st.toggle("More columns (chance, maintenance, isolated margin, pool health, σ)", key=f"mw_grid_more_{key}")
    st.html(grid_html(rows, now, zone, more))
    st.download_button(
        "CSV: positions",
        grid_frame(rows).to_csv(index=False).encode(),
        file_name=f"positions-{key}.csv",
        mime="text/csv",
        key=f"csv_grid_{key}",
        on_click="ignore",
        icon=":material/download:",
    )
