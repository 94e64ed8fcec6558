"""The overview's account table as HTML: every column visible at 1440 px (a canvas grid
hides what does not fit), human headers, money with its currency, margin ratio in %,
"—" for what is absent. Each account's name links to its page. Every cell is escaped."""

from __future__ import annotations

from urllib.parse import quote

import pandas as pd

from app.components import fmt
from app.components.grid import esc
from app.components.levels import BACKGROUNDS, COLORS, CRITICAL, NOT_WATCHED, STALE, WARNING

STYLE = """<style>
table.mw-accounts{border-collapse:collapse;width:100%;font-size:0.8rem;line-height:1.25;font-variant-numeric:tabular-nums}
table.mw-accounts th{text-align:right;font-weight:600;padding:4px 5px;
border-bottom:2px solid #ccc;vertical-align:bottom}
table.mw-accounts td{text-align:right;padding:4px 5px;border-bottom:1px solid #eee;
white-space:nowrap;vertical-align:top}
table.mw-accounts th:nth-child(-n+2),table.mw-accounts td:nth-child(-n+2){text-align:left}
table.mw-accounts th:last-child{text-align:left}
table.mw-accounts td.mw-wrap{white-space:normal;min-width:9em;max-width:16em;text-align:left}
table.mw-accounts a{color:inherit;font-weight:600}
</style>"""
HEADERS = [
    ("Account", "Opens the account's page."),
    ("Level", "The worst of the health bands and the chance of touching a liquidation price within 24 h."),
    ("Liq. chance 24 h", "Highest chance among the positions that the liquidation price is touched within 24 h."),
    ("Nearest liq.", "Distance of the nearest liquidation price (↓ below, ↑ above the mark), then in daily σ."),
    ("Health", "Weakest pool: equity / maintenance margin; liquidation at 1."),
    ("Equity / maint.", "Equity, then the maintenance margin."),
    ("Margin ratio", "Maintenance margin / equity of the cross pool; liquidation at 100 %."),
    ("Top-up to target", "Collateral that brings the account to its target health."),
    ("Funding", "⚠ when funding alone, prices unchanged, takes health below the warning level."),
    ("Data age", ""),
    ("Alert / key", "The highest alert firing, then what the API key may do."),
    ("Problem", "What needs a person."),
]


def _num(value: object) -> float | None:
    return None if value is None or pd.isna(value) else float(value)  # type: ignore[arg-type]


def _nearest(row: pd.Series) -> str:
    distance = _num(row["nearest_distance"])
    if distance is None:
        return fmt.DASH
    arrow = {"down": "↓ ", "up": "↑ "}.get(row["nearest_side"] or "", "")
    sigma = _num(row["nearest_sigma"])
    sigma_text = fmt.DASH if sigma is None else f"{sigma:.1f} σ"
    return esc(f"{arrow}{fmt.percent(abs(distance), 2)}") + "<br>" + esc(sigma_text)


def _cell(text: str, style: str = "", cls: str = "") -> str:
    attrs = (f' style="{style}"' if style else "") + (f' class="{cls}"' if cls else "")
    return f"<td{attrs}>{text}</td>"


def accounts_html(frame: pd.DataFrame) -> str:
    """One row per account (the overview's frame), worst first."""
    head = "".join(f'<th title="{esc(h)}">{esc(name)}</th>' for name, h in HEADERS)
    rows = []
    for _, r in frame.iterrows():
        level = r["level"]
        old = level in (STALE, NOT_WATCHED)  # old figures are history: greyed, never green
        grey = f"color:{COLORS[STALE]}" if old else ""
        currency = r["collateral"]
        alert = str(r["alert"])
        flagged = str(r["funding"]).startswith("⚠")
        key_style = f"color:{COLORS[CRITICAL]}" if r["key"] in ("trade", "refused") else "color:#777"
        alert_style = (
            f"color:{COLORS[CRITICAL]};font-weight:bold"
            if alert.startswith("CRITICAL")
            else (f"color:{COLORS[WARNING]};font-weight:bold" if alert.startswith("WARNING") else "")
        )
        link = (
            f'<a href="account?account={quote(str(r["name"]))}" target="_self">{esc(r["name"])}</a>'
            f'<br><small style="color:#777">{esc(r["exchange"])}</small>'
        )
        cells = [
            _cell(link),
            _cell(esc(level), f"color:{COLORS[level]};background:{BACKGROUNDS[level]};font-weight:bold"),
            _cell(esc(fmt.chance(_num(r["touch_probability"]))), grey),
            _cell(_nearest(r), grey),
            _cell(esc(fmt.ratio(_num(r["health"]))), grey),
            _cell(
                esc(fmt.money(_num(r["equity"]), currency))
                + "<br><small>"
                + esc(fmt.money(_num(r["maintenance_margin"]), currency))
                + "</small>"
            ),
            _cell(esc(fmt.percent(_num(r["margin_ratio"]), 2))),
            _cell(esc(fmt.money(_num(r["topup_to_target"]), currency))),
            _cell(esc(r["funding"]), f"color:{COLORS[WARNING]};font-weight:bold" if flagged else ""),
            _cell(esc(r["data"]), f"color:{COLORS[CRITICAL]};font-weight:bold" if old else ""),
            _cell(
                f'<span style="{alert_style}">{esc(alert)}</span><br>'
                f'<small style="{key_style}">key: {esc(r["key"])}</small>'
            ),
            _cell(esc(r["problem"] or fmt.DASH), cls="mw-wrap"),
        ]
        rows.append(f'<tr data-account="{esc(r["name"])}" data-level="{esc(level)}">{"".join(cells)}</tr>')
    table = f'<table class="mw-accounts" data-testid="mw-accounts"><thead><tr>{head}</tr></thead>'
    return f'{STYLE}<div style="overflow-x:auto">{table}<tbody>{"".join(rows)}</tbody></table></div>'


PHONE_STYLE = """<style>
.mw-phone{display:none}
@media (max-width: 640px){
  .mw-phone{display:block}
  [class*="st-key-mw_action_overview"]{display:none}
}
.mw-card{border:1px solid #ddd;border-left-width:6px;border-radius:6px;padding:6px 10px;
margin:0 0 8px 0;font-size:0.9rem}
.mw-card b{font-size:1rem}
.mw-card .mw-act{margin-top:4px;font-weight:600}
</style>"""


def compact_html(frame: pd.DataFrame, actions: dict[str, str]) -> str:
    """The phone's first screen: a compact card per account (level, nearest liquidation,
    chance, and the action when it is in danger), shown only on narrow screens."""
    cards = []
    for _, r in frame.iterrows():
        level = r["level"]
        distance = _num(r["nearest_distance"])
        sigma = _num(r["nearest_sigma"])
        where = fmt.DASH
        if distance is not None:
            arrow = {"down": "↓ ", "up": "↑ "}.get(r["nearest_side"] or "", "")
            where = f"{arrow}{fmt.percent(abs(distance), 2)}" + ("" if sigma is None else f" ({sigma:.1f} σ)")
        facts = f"liq. {where} · chance 24 h {fmt.chance(_num(r['touch_probability']))} · data {r['data']}"
        action = actions.get(str(r["name"]))
        cards.append(
            f'<div class="mw-card" style="border-left-color:{COLORS[level]}">'
            f'<a href="account?account={quote(str(r["name"]))}" target="_self"><b>{esc(r["name"])}</b></a> '
            f'<small>{esc(r["exchange"])}</small> · <span style="color:{COLORS[level]};font-weight:700">'
            f"{esc(level.upper())}</span><br>{esc(facts)}"
            + (f'<div class="mw-act">{esc(action)}</div>' if action else "")
            + "</div>"
        )
    return f'{PHONE_STYLE}<div class="mw-phone" data-testid="mw-phone-cards">{"".join(cards)}</div>'
