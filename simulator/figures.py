"""What the exchange would report for an account at the current marks, computed by the
margin engine so that the simulator and the engine agree by construction.

Every account becomes a snapshot (docs/snapshot-format.md) and goes through
`margin.snapshot.parse_snapshot`; maintenance margins, pool equities and liquidation
prices come from `margin.pools` and `margin.liquidation`. The venue modules only format
these numbers into each exchange's payload.

OKX selects a position's tier by its size in contracts, so the tier cannot change while
the price moves: its position enters the engine with the flat rate of its contract tier.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from margin.collateral import AssetFigures
from margin.collateral import account_figures as collateral_figures
from margin.inverse import notional as position_notional
from margin.liquidation import liquidation_price
from margin.pools import (
    maintenance_requirement,
    pool_figures,
    pool_of,
    pools,
    rule_for,
    taker_fee,
    tier_column,
    unrealized_pnl,
)
from margin.snapshot import parse_snapshot
from margin.tiers import Tier, normalise_tiers, tier_for
from simulator.scenario import AccountSpec, CollateralAssetSpec, MarketSpec, PositionSpec

DEFAULT_LEVERAGE = 20.0  # what Binance, Bybit and OKX preset for a new symbol


@dataclass(frozen=True)
class ContractTier:
    """An OKX position tier: [min_sz, max_sz) contracts (max_sz None: unbounded)."""

    tier: int
    min_sz: float
    max_sz: float | None
    mmr: float
    max_lever: float


@dataclass(frozen=True)
class PositionFigures:
    """One position at the current mark. Money in the collateral currency."""

    index: int
    spec: PositionSpec
    market: MarketSpec
    mark: float
    size: float  # base units: contracts x contract_size (inverse: quote currency)
    notional: float  # size x mark (inverse: size / mark, in the coin)
    entry_value: float  # size x entry (inverse: size / entry)
    unrealized_pnl: float
    maintenance_margin: float  # the engine's requirement (OKX: with the closing fee; Bybit: with the fee to close)
    closing_fee: float  # the part of maintenance_margin that is the closing fee
    maintenance_rate: float
    maintenance_amount: float
    tier_index: int
    leverage: float
    initial_margin: float  # notional / leverage
    liquidation_price: float | None
    bankruptcy_price: float | None
    pool_equity: float  # equity of the position's pool
    pool_maintenance: float

    @property
    def sign(self) -> int:
        return 1 if self.spec.side == "long" else -1

    @property
    def margin_ratio(self) -> float | None:
        """Pool maintenance / pool equity (liquidation at 1)."""
        return self.pool_maintenance / self.pool_equity if self.pool_equity > 0 else None


@dataclass(frozen=True)
class AccountFigures:
    """An account at the current marks. The cross pool is the wallet plus cross positions;
    each isolated position is its own pool."""

    spec: AccountSpec
    positions: tuple[PositionFigures, ...]
    taker_fee: float
    cross_equity: float
    cross_maintenance: float
    cross_initial: float
    cross_upl: float
    isolated_margin: float  # sum of isolated positions' margins
    isolated_upl: float
    hedge_mode: bool  # some symbol is held both long and short
    # issue 13, multi-collateral accounts: each asset's figures (margin.collateral) and the
    # venue's maintenance before its liquidation level; cross_equity is the adjusted equity
    collateral: tuple[AssetFigures, ...] = ()
    venue_maintenance: float | None = None

    @property
    def wallet_balance(self) -> float:
        return self.spec.wallet_balance

    @property
    def total_upl(self) -> float:
        return self.cross_upl + self.isolated_upl

    @property
    def cross_health(self) -> float | None:
        """Cross equity / cross maintenance (liquidation at 1); None without positions."""
        return self.cross_equity / self.cross_maintenance if self.cross_maintenance > 0 else None


def market_tiers(market: MarketSpec) -> tuple[Tier, ...]:
    """The market's tiers with each maintenance amount (Binance cum, Bybit mmDeduction)."""
    return normalise_tiers(_tier_rows(market))


def okx_contract_tiers(market: MarketSpec) -> tuple[ContractTier, ...]:
    """The market's tiers in contracts, as OKX publishes them: each notional bound is
    turned into contracts once, at the scenario's initial mark, rounded to whole contracts
    (or lots, when a lot is larger) as OKX's tables are."""
    # a contract's notional at the initial mark: base units x price, or (inverse) USD / price
    per_contract = (
        market.contract_size / market.mark_price if market.inverse else market.contract_size * market.mark_price
    )
    unit = max(1.0, market.amount_step)
    tiers: list[ContractTier] = []
    floor = 0.0
    for i, tier in enumerate(market.tiers):
        cap: float | None = None
        if tier.max_notional is not None:
            cap = max(unit, round(tier.max_notional / per_contract / unit) * unit, floor + unit)
        tiers.append(ContractTier(i + 1, floor, cap, tier.maintenance_margin_rate, tier.max_leverage))
        floor = cap if cap is not None else math.inf
    return tuple(tiers)


def okx_tier_for(tiers: tuple[ContractTier, ...], contracts: float) -> ContractTier:
    """The contract tier that holds a position of `contracts`."""
    for tier in tiers:
        if tier.max_sz is None or contracts < tier.max_sz:
            return tier
    return tiers[-1]


def account_figures(
    spec: AccountSpec,
    markets: dict[str, MarketSpec],
    marks: dict[str, float],
    okx_tiers: dict[str, tuple[ContractTier, ...]] | None = None,
) -> AccountFigures:
    """Run the engine on `spec` at `marks` (symbol -> price)."""
    snapshot = parse_snapshot(_snapshot_doc(spec, markets, marks, okx_tiers or {}))
    fee = taker_fee(snapshot)
    rule = rule_for(snapshot)
    positions: list[PositionFigures] = []
    cross_initial = cross_upl = iso_margin = iso_upl = 0.0
    for i, (pos, pspec) in enumerate(zip(snapshot.positions, spec.positions, strict=True)):
        mode_rule = rule.mode(pos.margin_mode)
        column = tier_column(pos, mode_rule, pos.mark_price)
        tier = pos.tiers[column]
        pool = pool_figures(snapshot, pool_of(snapshot, i))
        notional = position_notional(pos)
        upl = unrealized_pnl(pos, pos.mark_price)
        leverage = pos.leverage or served_leverage(pspec, tier)
        balance = pool.pool.balance
        equity = pool.equity if pos.margin_mode == "cross" else balance + upl
        if pos.inverse:  # equity(P) = equity + side x size x (1/mark - 1/P) = 0
            inverse_bust = 1.0 / pos.mark_price + pos.sign * equity / pos.size
            bust = 1.0 / inverse_bust if inverse_bust > 0 else -1.0
        else:
            bust = pos.mark_price - pos.sign * equity / pos.size
        positions.append(
            PositionFigures(
                index=i,
                spec=pspec,
                market=markets[pos.symbol],
                mark=pos.mark_price,
                size=pos.size,
                notional=notional,
                entry_value=position_notional(pos, pos.entry_price),
                unrealized_pnl=upl,
                maintenance_margin=maintenance_requirement(pos, mode_rule, fee, pos.mark_price),
                closing_fee=notional * fee if mode_rule.fee_in_requirement else 0.0,
                maintenance_rate=tier.maintenance_margin_rate,
                maintenance_amount=tier.maintenance_amount if mode_rule.uses_maintenance_amount else 0.0,
                tier_index=column if spec.venue != "okx" else _okx_index(okx_tiers, pspec),
                leverage=leverage,
                initial_margin=notional / leverage,
                liquidation_price=liquidation_price(snapshot, i),
                bankruptcy_price=bust if bust > 0 else None,
                pool_equity=pool.equity,
                pool_maintenance=pool.maintenance_margin,
            )
        )
        if pos.margin_mode == "cross":
            cross_initial += notional / leverage
            cross_upl += upl
        else:
            iso_margin += pos.isolated_margin or 0.0
            iso_upl += upl
    cross = pool_figures(snapshot, pools(snapshot)[0])
    collateral: tuple[AssetFigures, ...] = ()
    venue_maintenance = None
    if snapshot.multi_collateral:
        account = collateral_figures(snapshot, pools(snapshot)[0])
        collateral, venue_maintenance = account.assets, account.venue_maintenance
    sides: dict[str, set[str]] = {}
    for p in spec.positions:
        sides.setdefault(p.symbol, set()).add(p.side)
    return AccountFigures(
        spec=spec,
        positions=tuple(positions),
        taker_fee=fee,
        cross_equity=cross.equity,
        cross_maintenance=cross.maintenance_margin,
        cross_initial=cross_initial,
        cross_upl=cross_upl,
        isolated_margin=iso_margin,
        isolated_upl=iso_upl,
        hedge_mode=any(len(s) == 2 for s in sides.values()),
        collateral=collateral,
        venue_maintenance=venue_maintenance,
    )


def served_leverage(pspec: PositionSpec, tier: Tier) -> float:
    """The leverage the venue reports for a position: its own, or the preset capped by the
    tier's maximum. The engine gets the same number (Bybit's fee to close depends on it)."""
    return pspec.leverage or min(DEFAULT_LEVERAGE, tier.max_leverage or DEFAULT_LEVERAGE)


def _okx_index(okx_tiers: dict[str, tuple[ContractTier, ...]] | None, pspec: PositionSpec) -> int:
    tiers = (okx_tiers or {}).get(pspec.symbol)
    return okx_tier_for(tiers, pspec.contracts).tier - 1 if tiers else 0


def _tier_rows(market: MarketSpec) -> list[dict[str, float | None]]:
    return [
        {
            "min_notional": t.min_notional,
            "max_notional": t.max_notional,
            "maintenance_margin_rate": t.maintenance_margin_rate,
            "maintenance_amount": None,
            "max_leverage": t.max_leverage,
        }
        for t in market.tiers
    ]


def _snapshot_doc(
    spec: AccountSpec,
    markets: dict[str, MarketSpec],
    marks: dict[str, float],
    okx_tiers: dict[str, tuple[ContractTier, ...]],
) -> dict:
    positions = []
    for p in spec.positions:
        market = markets[p.symbol]
        doc: dict = {
            "symbol": p.symbol,
            "side": p.side,
            "contracts": p.contracts,
            "contract_size": market.contract_size,
            "entry_price": p.entry_price,
            "mark_price": marks[p.symbol],
            "margin_mode": p.margin_mode,
            "isolated_margin": p.isolated_margin,
            "leverage": p.leverage,
        }
        if market.inverse:
            doc["contract_type"] = "inverse"
            doc["settle"] = market.base
        if spec.venue == "okx":
            tier = okx_tier_for(okx_tiers[p.symbol], p.contracts)
            doc["maintenance_margin_rate"] = tier.mmr
        else:
            doc["tiers"] = [{k: v for k, v in row.items() if v is not None} for row in _tier_rows(market)]
            size = p.contracts * market.contract_size
            notional = size / marks[p.symbol] if market.inverse else size * marks[p.symbol]
            doc["leverage"] = served_leverage(p, tier_for(market_tiers(market), notional))
        positions.append(doc)
    doc = {
        "exchange": spec.venue,
        "account": spec.name,
        "collateral": spec.collateral,
        "wallet_balance": spec.wallet_balance,
        "taker_fee": spec.taker_fee,
        "positions": positions,
    }
    if spec.account_mode != "single_asset":
        doc["account_mode"] = spec.account_mode
        doc["assets"] = [_asset_doc(a, marks) for a in spec.collateral_assets]
    return doc


def _asset_doc(asset: CollateralAssetSpec, marks: dict[str, float]) -> dict:
    """A scenario asset in the snapshot format, priced at its market's mark when it has one."""
    price = marks[asset.price_symbol] if asset.price_symbol else asset.price
    return {
        "asset": asset.asset,
        "amount": asset.amount,
        "price": price,
        "price_symbol": asset.price_symbol,
        "collateral_tiers": [{"min_amount": lo, "max_amount": hi, "ratio": r} for lo, hi, r in asset.tiers],
    }
