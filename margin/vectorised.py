"""The vectorised engine: the same numbers as margin.pools / margin.liquidation, for many
positions of many accounts at once (numpy arrays), used by the poller and the benchmark.

Layout: n positions, m pools, k accounts. Every position has its pool index, and its hedge
group index (positions of one symbol in one pool, which share a liquidation price). Tier
tables are padded to T columns with floors of +inf, so a tier lookup is a row-wise count
of floors <= notional.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from margin.pools import pools, taker_fee
from margin.rules import venue_rule
from margin.snapshot import Snapshot

FloatArray = np.ndarray
IntArray = np.ndarray


@dataclass(frozen=True)
class Batch:
    """Inputs of the vectorised engine. Per position (n): pool, group, account and index
    in its snapshot, sign (+1/-1), size
    (base units), entry and mark (quote), rule flags, fee rate, padded tiers (n x T).
    Per pool (m): balance, account, is_cross. `n_accounts` accounts."""

    pool: IntArray
    group: IntArray
    account: IntArray
    index: IntArray
    sign: FloatArray
    size: FloatArray
    entry: FloatArray
    mark: FloatArray
    basis_entry: np.ndarray
    fee_in_requirement: np.ndarray
    uses_amount: np.ndarray
    fee: FloatArray
    tier_floor: FloatArray
    tier_rate: FloatArray
    tier_amount: FloatArray
    pool_balance: FloatArray
    pool_account: IntArray
    pool_is_cross: np.ndarray
    n_accounts: int

    @property
    def n_groups(self) -> int:
        return int(self.group.max()) + 1 if self.group.size else 0


@dataclass(frozen=True)
class BatchResult:
    """Outputs. Per position: notional, unrealized_pnl, maintenance_margin,
    liquidation_price (nan = none), distance (nan = none). Per pool: equity,
    maintenance_margin, health (nan = no position). Per account: health of the cross pool
    and worst health of any pool (nan = none)."""

    notional: FloatArray
    unrealized_pnl: FloatArray
    maintenance_margin: FloatArray
    liquidation_price: FloatArray
    distance: FloatArray
    pool_equity: FloatArray
    pool_maintenance: FloatArray
    pool_health: FloatArray
    account_health: FloatArray
    account_worst_health: FloatArray

    def pool_topup(self, target_health: float) -> FloatArray:
        """Collateral to add to each pool to reach `target_health`."""
        return np.maximum(0.0, target_health * self.pool_maintenance - self.pool_equity)


def _tier_columns(batch: Batch, price: FloatArray, below: np.ndarray | bool = False) -> IntArray:
    """Tier column of every position at `price` (the tier just below it where `below`);
    floors compared as prices, as margin.pools.tier_at_price does."""
    basis = np.where(batch.basis_entry, batch.entry, price)
    floors = batch.tier_floor / batch.size[:, None]
    at_or_below = (floors <= basis[:, None]).sum(axis=1)
    strictly_below = (floors < basis[:, None]).sum(axis=1)
    chosen = np.where(np.asarray(below) & ~batch.basis_entry, strictly_below, at_or_below)
    return np.maximum(chosen - 1, 0)


def _requirement_line(batch: Batch, column: IntArray) -> tuple[FloatArray, FloatArray]:
    """Requirement of every position as slope x price + intercept, tiers at `column`."""
    rows = np.arange(batch.size.shape[0])
    rate = batch.tier_rate[rows, column]
    amount = batch.tier_amount[rows, column]
    slope = np.where(batch.basis_entry, 0.0, batch.size * rate)
    intercept = np.where(batch.basis_entry, batch.size * batch.entry * rate, 0.0)
    intercept = intercept - np.where(batch.uses_amount, amount, 0.0)
    slope = slope + np.where(batch.fee_in_requirement, batch.size * batch.fee, 0.0)
    return slope, intercept


def evaluate(batch: Batch) -> BatchResult:
    """Health, requirement and liquidation price of every position, pool and account."""
    n_pools = batch.pool_balance.shape[0]
    notional = batch.size * batch.mark
    upnl = batch.sign * batch.size * (batch.mark - batch.entry)
    slope, intercept = _requirement_line(batch, _tier_columns(batch, batch.mark))
    requirement = slope * batch.mark + intercept

    pool_equity = batch.pool_balance + np.bincount(batch.pool, upnl, n_pools)
    pool_req = np.bincount(batch.pool, requirement, n_pools)
    pool_count = np.bincount(batch.pool, minlength=n_pools)
    with np.errstate(divide="ignore", invalid="ignore"):
        pool_health = np.where((pool_count > 0) & (pool_req > 0), pool_equity / pool_req, np.nan)

    liq = _liquidation_prices(batch, upnl, requirement, pool_equity, pool_req)
    healthy = (pool_equity >= pool_req)[batch.pool]
    gap = np.abs(batch.mark - liq) / batch.mark
    distance = np.where(healthy, gap, -gap)

    account_health = np.full(batch.n_accounts, np.nan)
    cross = batch.pool_is_cross
    account_health[batch.pool_account[cross]] = pool_health[cross]
    worst = np.full(batch.n_accounts, np.inf)
    np.minimum.at(worst, batch.pool_account, np.where(np.isnan(pool_health), np.inf, pool_health))
    worst[np.isinf(worst)] = np.nan
    return BatchResult(
        notional, upnl, requirement, liq, distance, pool_equity, pool_req, pool_health,
        account_health, worst,
    )


def _liquidation_prices(
    batch: Batch,
    upnl: FloatArray,
    requirement: FloatArray,
    pool_equity: FloatArray,
    pool_req: FloatArray,
) -> FloatArray:
    """margin.liquidation.liquidation_price for every position: per hedge group, walk from
    the mark toward the root one tier segment at a time, with the rest of the pool at mark."""
    n_groups = batch.n_groups
    group = batch.group
    group_pool = np.zeros(n_groups, dtype=np.int64)
    group_pool[group] = batch.pool
    # balance + the other positions' PnL - their requirement
    fixed = (
        pool_equity[group_pool]
        - np.bincount(group, upnl, n_groups)
        - (pool_req[group_pool] - np.bincount(group, requirement, n_groups))
    )
    fixed = fixed + np.bincount(group, -batch.sign * batch.size * batch.entry, n_groups)
    side_term = np.bincount(group, batch.sign * batch.size, n_groups)
    has_border = (batch.tier_floor > 0) & np.isfinite(batch.tier_floor) & ~batch.basis_entry[:, None]
    borders = np.where(has_border, batch.tier_floor / batch.size[:, None], np.nan)

    def line(price: FloatArray, below: np.ndarray) -> tuple[FloatArray, FloatArray]:
        slope, intercept = _requirement_line(batch, _tier_columns(batch, price[group], below[group]))
        constant = fixed - np.bincount(group, intercept, n_groups)
        return constant, side_term - np.bincount(group, slope, n_groups)

    def next_border(price: FloatArray, up: np.ndarray) -> FloatArray:
        at = price[group][:, None]
        above = np.where(borders > at, borders, np.inf).min(axis=1)
        under = np.where(borders < at, borders, -np.inf).max(axis=1)
        lowest_above = np.full(n_groups, np.inf)
        highest_under = np.full(n_groups, -np.inf)
        np.minimum.at(lowest_above, group, above)
        np.maximum.at(highest_under, group, under)
        return np.where(up, np.where(np.isinf(lowest_above), np.nan, lowest_above),
                        np.maximum(highest_under, 0.0))

    mark = np.zeros(n_groups)
    mark[group] = batch.mark
    constant, coefficient = line(mark, np.zeros(n_groups, dtype=bool))
    gap_at_mark = constant + coefficient * mark
    result = np.where(gap_at_mark == 0.0, mark, np.nan)
    active = (gap_at_mark != 0.0) & (coefficient != 0.0)
    direction = np.where(coefficient > 0, -1.0, 1.0) * np.where(gap_at_mark > 0, 1.0, -1.0)
    down = direction < 0
    price = mark.copy()
    most_legs = int(np.bincount(group).max()) if group.size else 0
    for _ in range(batch.tier_floor.shape[1] * most_legs + 2):  # as many borders as there are
        if not active.any():
            break
        constant, coefficient = line(price, down)
        border = next_border(price, ~down)
        with np.errstate(divide="ignore", invalid="ignore"):
            root = -constant / coefficient
        inside = (
            active
            & (coefficient != 0.0)
            & ((root - price) * direction >= 0)
            & (np.isnan(border) | ((border - root) * direction >= 0))
        )
        result = np.where(inside, np.where(root > 0.0, root, np.nan), result)
        active &= ~inside & ~np.isnan(border) & (np.nan_to_num(border) > 0.0)
        border = np.where(active, border, price)
        constant, coefficient = line(border, down)
        jump = active & ((constant + coefficient * border) * gap_at_mark <= 0)
        result = np.where(jump, border, result)
        active &= ~jump
        price = np.where(active, border, price)
    per_position = result[group]
    per_position[~np.isfinite(per_position) | (per_position <= 0.0)] = np.nan
    return per_position


def batch_from_snapshots(snapshots: Sequence[Snapshot]) -> Batch:
    """Arrays for the vectorised engine from parsed snapshots (one account each)."""
    columns = ("pool", "group", "account", "index", "sign", "size", "entry", "mark",
               "basis_entry", "fee_in", "uses_amount", "fee", "tiers")
    rows: dict[str, list] = {k: [] for k in columns}
    pool_balance: list[float] = []
    pool_account: list[int] = []
    pool_is_cross: list[bool] = []
    groups: dict[tuple[int, str], int] = {}
    for account, snap in enumerate(snapshots):
        rule = venue_rule(snap.exchange)
        fee = taker_fee(snap)
        for pool in pools(snap):
            pool_id = len(pool_balance)
            pool_balance.append(pool.balance)
            pool_account.append(account)
            pool_is_cross.append(pool.margin_mode == "cross")
            mode = rule.mode(pool.margin_mode)
            for i in pool.indices:
                pos = snap.positions[i]
                group = groups.setdefault((pool_id, pos.symbol), len(groups))
                rows["pool"].append(pool_id)
                rows["group"].append(group)
                rows["account"].append(account)
                rows["index"].append(i)
                rows["sign"].append(pos.sign)
                rows["size"].append(pos.size)
                rows["entry"].append(pos.entry_price)
                rows["mark"].append(pos.mark_price)
                rows["basis_entry"].append(mode.maintenance_basis == "entry")
                rows["fee_in"].append(mode.fee_in_requirement)
                rows["uses_amount"].append(mode.uses_maintenance_amount)
                rows["fee"].append(fee)
                rows["tiers"].append(pos.tiers)
    width = max((len(t) for t in rows["tiers"]), default=1)
    n = len(rows["tiers"])
    floor = np.full((n, width), np.inf)
    rate = np.zeros((n, width))
    amount = np.zeros((n, width))
    for r, tiers in enumerate(rows["tiers"]):
        for c, tier in enumerate(tiers):
            floor[r, c] = tier.min_notional
            rate[r, c] = tier.maintenance_margin_rate
            amount[r, c] = tier.maintenance_amount
    return Batch(
        pool=np.asarray(rows["pool"], dtype=np.int64),
        group=np.asarray(rows["group"], dtype=np.int64),
        account=np.asarray(rows["account"], dtype=np.int64),
        index=np.asarray(rows["index"], dtype=np.int64),
        sign=np.asarray(rows["sign"], dtype=float),
        size=np.asarray(rows["size"], dtype=float),
        entry=np.asarray(rows["entry"], dtype=float),
        mark=np.asarray(rows["mark"], dtype=float),
        basis_entry=np.asarray(rows["basis_entry"], dtype=bool),
        fee_in_requirement=np.asarray(rows["fee_in"], dtype=bool),
        uses_amount=np.asarray(rows["uses_amount"], dtype=bool),
        fee=np.asarray(rows["fee"], dtype=float),
        tier_floor=floor,
        tier_rate=rate,
        tier_amount=amount,
        pool_balance=np.asarray(pool_balance, dtype=float),
        pool_account=np.asarray(pool_account, dtype=np.int64),
        pool_is_cross=np.asarray(pool_is_cross, dtype=bool),
        n_accounts=len(snapshots),
    )
