"""Each venue's margin rules, as data.

Every venue liquidates a margin pool (the cross pool, or one isolated position) when its
equity falls to its maintenance requirement. The venues differ only in what the
requirement is made of, so one solver (margin.liquidation) serves all of them:

- ``maintenance_basis``: the notional the maintenance rate applies to: "mark" (the
  position valued at the price being tested) or "entry" (fixed at entry value).
- ``fee_in_requirement``: the venue adds the taker fee of closing the position at the
  tested price to the requirement.
- ``uses_maintenance_amount``: the venue subtracts the tier's maintenance amount.

Sources, per rule:

- Binance USD-M, cross and isolated, one-way and hedge: "How to Calculate Liquidation Price
  of USDⓈ-M Contracts" (binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93):
  LP = (WB - TMM1 + UPNL1 + cum - side x size x EP) / (size x MMR - side x size), i.e.
  equity(P) = maintenance(P) with other positions held at mark; the tier is re-selected at
  the notional at the liquidation price.
- Bybit isolated (USDT contracts): "Liquidation Price (USDT Contract)" (bybit.com help
  centre): LP = entry -/+ (IM - MM)/size -/+ extra margin/size, maintenance on entry value.
  Bybit cross (unified account) follows the general rule.
- OKX: isolated LP = (entry -/+ margin/size) / (1 -/+ (mmr + taker fee)) (OKX "Isolated
  margin liquidation price", as implemented in freqtrade's okx liquidation price);
  OKX's account margin ratio is adjusted equity / (maintenance margin + liquidation fee)
  in both modes, so the fee is part of the requirement for cross too. OKX tiers have no
  maintenance amount.
- Gate isolated: the same formula as OKX (freqtrade's gate liquidation price). Gate cross
  follows the general rule.
- Hyperliquid: maintenance rate = 1 / (2 x max leverage) of the tier, with the tier
  deduction (Hyperliquid docs, "Liquidations" and "Margin tiers");
  liq = price - side x margin_available / size / (1 - rate x side), which is the general rule.
- Any other ccxt exchange: the general rule (equity(P) = maintenance(P)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ModeRule:
    """How one margin mode of one venue builds its maintenance requirement."""

    maintenance_basis: Literal["mark", "entry"] = "mark"
    fee_in_requirement: bool = False
    uses_maintenance_amount: bool = True


@dataclass(frozen=True)
class VenueRule:
    """A venue's margin rules. `default_taker_fee` (base VIP tier) applies when the
    snapshot gives none. `native_ratio` names the ratio the venue shows and how it is
    built from our numbers: "maintenance/equity" or "equity/maintenance"."""

    name: str
    cross: ModeRule = ModeRule()
    isolated: ModeRule = ModeRule()
    default_taker_fee: float = 0.0
    rate_from_max_leverage: bool = False
    native_ratio_name: str | None = None
    native_ratio_kind: Literal["maintenance/equity", "equity/maintenance"] = "maintenance/equity"
    isolated_reduction_moves_liquidation: bool = False

    def mode(self, margin_mode: str) -> ModeRule:
        return self.isolated if margin_mode == "isolated" else self.cross


GENERIC = VenueRule(name="generic")

_OKX_MODE = ModeRule(fee_in_requirement=True, uses_maintenance_amount=False)

VENUES: dict[str, VenueRule] = {
    "binanceusdm": VenueRule(name="binanceusdm", default_taker_fee=0.0005, native_ratio_name="marginRatio"),
    "bybit": VenueRule(
        name="bybit",
        isolated=ModeRule(maintenance_basis="entry"),
        default_taker_fee=0.00055,
        native_ratio_name="accountMMRate",
    ),
    "okx": VenueRule(
        name="okx",
        cross=_OKX_MODE,
        isolated=_OKX_MODE,
        default_taker_fee=0.0005,
        native_ratio_name="mgnRatio",
        native_ratio_kind="equity/maintenance",
    ),
    "gate": VenueRule(name="gate", isolated=_OKX_MODE, default_taker_fee=0.0005),
    "hyperliquid": VenueRule(name="hyperliquid", default_taker_fee=0.00045, rate_from_max_leverage=True),
}
_ALIASES = {"binance": "binanceusdm", "gateio": "gate", "okx5": "okx"}


def venue_rule(exchange: str) -> VenueRule:
    """The rules for a ccxt exchange id; the general rule for any venue not listed."""
    key = exchange.lower()
    return VENUES.get(_ALIASES.get(key, key), GENERIC)
