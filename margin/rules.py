"""Each venue's margin rules, as data.

Every venue liquidates a margin pool (the cross pool, or one isolated position) when its
equity falls to its maintenance requirement. The venues differ only in what the
requirement is made of, so one solver (margin.liquidation) serves all of them:

- ``maintenance_basis``: the notional the maintenance rate applies to: "mark" (the
  position valued at the price being tested) or "entry" (fixed at entry value).
- ``fee_in_requirement``: the venue adds the taker fee of closing the position at the
  tested price to the requirement.
- ``uses_maintenance_amount``: the venue subtracts the tier's maintenance amount.
- ``fee_to_close``: the venue adds its *estimated fee to close* (EFC): the taker fee on
  closing the position at its bankruptcy price, size x entry x (1 - side / leverage) x
  taker fee (side +1 long, -1 short). It is fixed at entry, so it does not move with the
  tested price (margin.pools.fee_to_close).

Sources, per rule:

- Binance USD-M, cross and isolated, one-way and hedge: "How to Calculate Liquidation Price
  of USDⓈ-M Contracts" (binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93):
  LP = (WB - TMM1 + UPNL1 + cum - side x size x EP) / (size x MMR - side x size), i.e.
  equity(P) = maintenance(P) with other positions held at mark; the tier is re-selected at
  the notional at the liquidation price.
- Bybit, linear contracts (USDT and USDC), classic and unified accounts, cross and
  isolated: MM = size x mark x MMR - MM deduction + estimated fee to close, with
  EFC = size x entry x (1 -/+ 1 / leverage) x taker fee (- for a long, + for a short).
  Sources: "Maintenance Margin Calculation (USDC Contract)" (help.bybit.com/hc/en-us/
  articles/4431367679641; example: 1 BTC @ 51,000, 10x, MMR 0.5 %, taker 0.06 % ->
  255 + 27.54 = 282.54; the page says "initial margin" for that total, a slip in its
  wording); "The New Margin Calculation: Adjustments and Implications" (bybit.com
  help-center/article/Understanding-the-Adjustment-and-Impact-of-the-New-Margin-Calculation,
  revision 2025-09-18, effective 2 Sep 2025), USDT/USDC isolated Position MM in both its
  "current" and "new" columns; the API's `positionBalance` for classic accounts is
  "initial margin plus position closing fee" (bybit-exchange/docs, v5/position,
  2024-08-29); the unified account's key terms ("Glossary-Unified-Trading-Account",
  asset-based MM "... + Estimated Fee to Close Position", read through a 2026-08-06
  transcription). For cross mode no Bybit page we could read says otherwise: the USDC
  page's "Regular Margin Formula" names no mode, the glossary's MM has the fee, and the
  cross rows of the new-margin page were cut off in the copy we read; so cross includes
  it too. Without a leverage in the snapshot: an isolated position's leverage is taken
  from its margin (entry value / isolated margin, i.e. the fee at its bankruptcy price);
  a cross position's fee is taken at entry (1 / leverage = 0), see docs/snapshot-format.md.
  Revision followed for isolated mode: the one Bybit publishes since 2 Sep 2025 (the
  page above, and "Liquidation Price Calculation under Isolated Mode (Unified Trading
  Account)", revision 2026-05-27): "MM will be calculated using the Mark Price, while IM
  will continue to be based on the Entry Price", so isolated maintenance is on the notional
  at mark like cross. It supersedes "Liquidation Price (USDT Contract)" (LP = entry -/+
  (IM - MM)/size, MM on entry value, no fee), whose 19,700 example the engine no longer
  reproduces (tests/fixtures/README.md). Bybit's current isolated LP,
  [entry x size - entry x size / leverage - extra / (1 -/+ taker) - deduction] /
  [size x (1 -/+ MMR)], is this rule with the position margin = IM + EFC + extra, except
  that Bybit credits extra margin at 1 / (1 -/+ taker): on 3,000 of extra margin at 0.055 %
  that is 1.65 of margin, so our LP is about 1.7 (0.005 %) nearer the mark than Bybit's.
- OKX: isolated LP = (entry -/+ margin/size) / (1 -/+ (mmr + taker fee)) (OKX "Isolated
  margin liquidation price", as implemented in freqtrade's okx liquidation price);
  OKX's account margin ratio is adjusted equity / (maintenance margin + liquidation fee)
  in both modes, so the fee is part of the requirement for cross too. OKX tiers have no
  maintenance amount.
- Gate, isolated and cross: LP = (entry -/+ margin / contract multiplier / size) /
  [1 -/+ (MMR + taker fee)], so the taker fee is part of the requirement and there is no
  maintenance amount. Isolated: Gate help "Liquidation price / bankruptcy price"
  (gate.io/help/futures/futures/27724, as transcribed in freqtrade's
  exchange.dry_run_liquidation_price) and Gate's support reply on Gate Square
  (gatenode.pro/post/status/3870211, 2023-07-02: "... / [1 ± (maintenance margin ratio +
  Taker fee Rate)] ..."). Cross: Gate's blog "Gate Metal Contracts Liquidation Price
  Calculation" (gate.tv/blog/101350, updated 2026-04-09), "Cross Margin - Long Position:
  Estimated liquidation price = (Entry price - Margin / Contract multiplier / Position
  size) / [1 - (Maintenance margin rate + Taker fee rate)]", margin being the cross margin
  balance. Since July 2024 Gate triggers cross liquidation at the account level
  (maintenance margin level <= 100 %, announcement 37783, 2024-07-10), which is this
  pool rule.
- Hyperliquid: maintenance rate = 1 / (2 x max leverage) of the tier, with the tier
  deduction (Hyperliquid docs, "Liquidations" and "Margin tiers");
  liq = price - side x margin_available / size / (1 - rate x side), which is the general rule.
- Any other ccxt exchange: the general rule (equity(P) = maintenance(P)).
- Multi-collateral accounts (Bybit UTA, Binance Multi-Assets and Portfolio Margin with its
  uniMMR 1.05 liquidation level, OKX multi-currency): margin.collateral, sources there.

Inverse (coin-margined) contracts follow the same rules in the coin, on the linear twin in
u = 1/P (margin.inverse): notional = contracts x contract size / P (coin), PnL = side x
contracts x contract size x (1/entry - 1/P), tiers and maintenance amounts in the coin.

- Binance COIN-M (ccxt ``binancecoinm``), cross and isolated, one-way and hedge: "How to
  Calculate Liquidation Price of COIN-M Futures Contracts" (binance.com/en/support/faq/
  ceccfcfb4e3a45e3b48b0b1bb1a8ae46, 2021-02-05, as revised): LP = [N_B x MMR_B + N_L x
  MMR_L + N_S x MMR_S + side_B x N_B + N_L - N_S] / [WB - TMM1 + UPNL1 + cum_B + cum_L +
  cum_S + side_B x N_B / EP_B + N_L / EP_L - N_S / EP_S], N = contracts x contract size
  (USD), i.e. equity(u) = maintenance(u) in the coin with other contracts at mark;
  maintenance = notional (coin) x MMR - maintenance amount (coin), the bracket at the
  notional at the liquidation price ("if the position notional at the liquidation price
  and the assumed level differ, recalculate with that level's MMR and amount"). Worked
  figures: the FAQ's "100 contracts at mark 25,000: notional 0.4 BTC, MM = 0.0016 BTC", and
  Binance's calculator on dev.binance.vision thread 6292 (WB 101 BTC, long 100,000
  contracts at 45,000, bracket 12.5 % / 11.605 BTC -> 33,599.40).
- Bybit inverse (BTCUSD perpetual and expiry), isolated: "Liquidation Price Calculation
  under Isolated Mode (Unified Trading Account)" (bybit.com help centre, revision
  2026-05-27): LP(long) = [Size x (MMR + 1)] / [Size / Entry + Size / Entry / Leverage +
  Extra / (1 + taker) + MM deduction], LP(short) = [Size x (1 - MMR)] / [Size / Entry -
  Size / Entry / Leverage - Extra / (1 - taker) - MM deduction], with Position Value =
  Size / Mark, IM = Position Value / Leverage + EFC, MM = Position Value x MMR - deduction +
  EFC: the Bybit rule above in the coin (EFC = Size / bankruptcy price x taker fee, the
  twin's fee to close), with the same 1 / (1 -/+ taker) credit of extra margin left out.
  Cross: the same requirement, pooled ("How to calculate Liquidation Price (Inverse
  Contract)", help.bybit.com 360039261334, cross formula with MM and the fee at the
  bankruptcy price).
- OKX coin-margined swaps (BTC-USD-SWAP, contract value 100 USD): margin and PnL in the
  coin, maintenance = notional (coin) x MMR from the coin-margined position tiers, and the
  liquidation fee in the requirement as for OKX linear swaps; margin ratio = adjusted
  equity / (maintenance + liquidation fee) (OKX help "Margin ratio", coin-margined).
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
    fee_to_close: bool = False


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
_BYBIT_MODE = ModeRule(fee_to_close=True)

VENUES: dict[str, VenueRule] = {
    "binanceusdm": VenueRule(name="binanceusdm", default_taker_fee=0.0005, native_ratio_name="marginRatio"),
    "binancecoinm": VenueRule(name="binancecoinm", default_taker_fee=0.0005, native_ratio_name="marginRatio"),
    "bybit": VenueRule(
        name="bybit",
        cross=_BYBIT_MODE,
        isolated=_BYBIT_MODE,
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
    "gate": VenueRule(name="gate", cross=_OKX_MODE, isolated=_OKX_MODE, default_taker_fee=0.0005),
    "hyperliquid": VenueRule(name="hyperliquid", default_taker_fee=0.00045, rate_from_max_leverage=True),
}
_ALIASES = {"binance": "binanceusdm", "gateio": "gate", "okx5": "okx"}


def venue_rule(exchange: str) -> VenueRule:
    """The rules for a ccxt exchange id; the general rule for any venue not listed."""
    key = exchange.lower()
    return VENUES.get(_ALIASES.get(key, key), GENERIC)
