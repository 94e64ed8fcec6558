"""The alert prices of an account's latest snapshot, for the Account page: per position,
the prices of its symbol (the rest of its pool at mark) where its pool enters warning,
critical and liquidation, below and above the mark (margin.alert_prices, stored by the
poller with each position). The streams watch the same prices (docs/streaming.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from store import repo

Band = tuple[float | None, float | None]  # (below the mark, above it); None: none on that side


@dataclass(frozen=True)
class AlertPriceRow:
    symbol: str
    side: str
    margin_mode: str
    mark: float
    warning: Band
    critical: Band
    liquidation: Band


def alert_price_rows(session: Session, snapshot_id: int | None) -> list[AlertPriceRow]:
    """One row per position of the snapshot (hedge legs share their prices)."""
    if snapshot_id is None:
        return []
    return [
        AlertPriceRow(
            symbol=p.symbol,
            side=p.side,
            margin_mode=p.margin_mode,
            mark=p.mark_price,
            warning=(p.warning_price_down, p.warning_price_up),
            critical=(p.critical_price_down, p.critical_price_up),
            liquidation=(p.liquidation_price_down, p.liquidation_price_up),
        )
        for p in repo.latest_positions(session, snapshot_id)
    ]


def band_text(band: Band, price: Callable[[float | None], str]) -> str:
    """ "3,081.2 / 3,402.0": below / above the mark, "—" for a side with none."""
    return f"{price(band[0])} / {price(band[1])}"
