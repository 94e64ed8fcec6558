"""The vectorised engine: the same numbers as margin.pools / margin.liquidation, for many
positions of many accounts at once (numpy arrays), used by the poller and the benchmark.

Layout: n positions, m pools, k accounts, g hedge groups (positions of one symbol in one
pool, which share a liquidation price), and the distinct tier tables (one per market,
shared by every position in it) padded to T columns with floors of +inf.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from margin.pools import fee_to_close, pools, taker_fee
from margin.rules import venue_rule
from margin.snapshot import Snapshot

FloatArray = np.ndarray
IntArray = np.ndarray


@dataclass(frozen=True)
class Batch:
    """Inputs of the vectorised engine.

    Per position (n): pool, group, account and index in its snapshot, sign (+1/-1), size
    (base units), entry and mark (quote), rule flags, fee rate, the fee to close in the
    requirement (quote; 0 where the venue does not count it), tier table.
    Per tier table: floor, rate, amount (tables x T). Per pool (m): balance, account,
    is_cross. `n_accounts` accounts."""

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
    fee_to_close: FloatArray
    table: IntArray
    table_floor: FloatArray
    table_rate: FloatArray
    table_amount: FloatArray
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


def _columns(batch: Batch, price: FloatArray) -> tuple[IntArray, IntArray]:
    """Tier column of every position at `price` (margin.pools.tier_column), and the column
    just below it (the segment a downward walk from exactly a tier floor enters)."""
    entry_basis = batch.basis_entry
    notional = batch.size * np.where(entry_basis, batch.entry, np.maximum(price, 0.0))
    count = np.zeros(notional.shape[0], dtype=np.int64)
    for column in range(batch.table_floor.shape[1]):  # T passes over n beat one n x T array
        count += batch.table_floor[batch.table, column] <= notional
    at_or_below = np.maximum(count - 1, 0)
    # floors are distinct: only a notional exactly on its tier's floor has a lower segment
    on_floor = (batch.table_floor[batch.table, at_or_below] == notional) & ~entry_basis
    return at_or_below, np.maximum(at_or_below - on_floor, 0)


def _requirement_line(batch: Batch, rows: IntArray | slice, column: IntArray) -> tuple[FloatArray, FloatArray]:
    """Requirement of the positions `rows` in tiers `column`: slope x price + intercept
    (margin.pools.requirement_line)."""
    table = batch.table[rows]
    rate = batch.table_rate[table, column]
    amount = batch.table_amount[table, column]
    size = batch.size[rows]
    entry_basis = batch.basis_entry[rows]
    slope = np.where(entry_basis, 0.0, size * rate)
    intercept = np.where(entry_basis, size * batch.entry[rows] * rate, 0.0)
    intercept -= np.where(batch.uses_amount[rows], amount, 0.0)
    slope += np.where(batch.fee_in_requirement[rows], size * batch.fee[rows], 0.0)
    intercept += batch.fee_to_close[rows]
    return slope, intercept


def evaluate(batch: Batch) -> BatchResult:
    """Health, requirement and liquidation price of every position, pool and account."""
    n_pools = batch.pool_balance.shape[0]
    everything = slice(None)
    notional = batch.size * batch.mark
    upnl = batch.sign * batch.size * (batch.mark - batch.entry)
    columns, columns_below = _columns(batch, batch.mark)
    slope, intercept = _requirement_line(batch, everything, columns)
    requirement = slope * batch.mark + intercept

    pool_equity = batch.pool_balance + np.bincount(batch.pool, upnl, n_pools)
    pool_req = np.bincount(batch.pool, requirement, n_pools)
    pool_count = np.bincount(batch.pool, minlength=n_pools)
    with np.errstate(divide="ignore", invalid="ignore"):
        pool_health = np.where((pool_count > 0) & (pool_req > 0), pool_equity / pool_req, np.nan)

    liq = _liquidation_prices(batch, upnl, (slope, intercept), (columns, columns_below), pool_equity, pool_req)
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
        notional,
        upnl,
        requirement,
        liq,
        distance,
        pool_equity,
        pool_req,
        pool_health,
        account_health,
        worst,
    )


def _leg_borders(batch: Batch, rows: IntArray, column: IntArray, up: np.ndarray) -> FloatArray:
    """Price at which each position leaves its tier (margin.liquidation.leg_border): the
    next floor going up (+inf if none), this tier's floor going down (-inf if none)."""
    n_columns = batch.table_floor.shape[1]
    target = np.where(up, column + 1, column)
    exists = np.where(up, target < n_columns, column > 0) & ~batch.basis_entry[rows]
    floor = batch.table_floor[batch.table[rows], np.minimum(target, n_columns - 1)]
    return np.where(exists, floor / batch.size[rows], np.where(up, np.inf, -np.inf))


def _liquidation_prices(
    batch: Batch,
    upnl: FloatArray,
    line_at_mark: tuple[FloatArray, FloatArray],
    columns_at_mark: tuple[IntArray, IntArray],
    pool_equity: FloatArray,
    pool_req: FloatArray,
) -> FloatArray:
    """margin.liquidation.liquidation_price for every position: per hedge group, walk from
    the mark toward the root one tier segment at a time, with the rest of the pool at mark.
    Most groups stop on their first segment; each later step works only on the groups
    (and their positions) still walking."""
    n_groups = batch.n_groups
    group = batch.group
    slope, intercept = line_at_mark
    requirement = slope * batch.mark + intercept
    group_pool = np.zeros(n_groups, dtype=np.int64)
    group_pool[group] = batch.pool
    # balance + the other positions' PnL - their requirement, + the legs' -side x size x entry
    fixed = (
        pool_equity[group_pool]
        - np.bincount(group, upnl, n_groups)
        - (pool_req[group_pool] - np.bincount(group, requirement, n_groups))
        + np.bincount(group, -batch.sign * batch.size * batch.entry, n_groups)
    )
    side_term = np.bincount(group, batch.sign * batch.size, n_groups)

    def line(groups: IntArray, rows: IntArray, local: IntArray) -> tuple[FloatArray, FloatArray]:
        """gap = constant + coefficient x P for `groups`, from their positions `rows`
        (`local`: each row's index into `groups`)."""
        slope, intercept = _requirement_line(batch, rows, columns[rows])
        count = groups.shape[0]
        constant = fixed[groups] - np.bincount(local, intercept, count)
        return constant, side_term[groups] - np.bincount(local, slope, count)

    mark = np.zeros(n_groups)
    mark[group] = batch.mark
    constant = fixed - np.bincount(group, intercept, n_groups)
    coefficient = side_term - np.bincount(group, slope, n_groups)
    gap_at_mark = constant + coefficient * mark
    result = np.where(gap_at_mark == 0.0, mark, np.nan)
    direction = np.where(coefficient > 0, -1.0, 1.0) * np.where(gap_at_mark > 0, 1.0, -1.0)
    columns = np.where(direction[group] < 0, columns_at_mark[1], columns_at_mark[0])

    walking = np.flatnonzero((gap_at_mark != 0.0) & (coefficient != 0.0))
    rows = np.flatnonzero(np.isin(group, walking)) if walking.size < n_groups else np.arange(group.shape[0])
    local_of = np.full(n_groups, -1, dtype=np.int64)
    price = mark
    most_legs = int(np.bincount(group).max()) if group.size else 0
    if walking.size < n_groups or not (columns == columns_at_mark[0]).all():
        local_of[walking] = np.arange(walking.size)
        constant, coefficient = line(walking, rows, local_of[group[rows]])
    else:  # every group walks from its tier at mark: the line is the mark's
        constant, coefficient = constant[walking], coefficient[walking]
    for _ in range(batch.table_floor.shape[1] * most_legs + 2):  # as many borders as there are
        if walking.size == 0:
            break
        local_of[walking] = np.arange(walking.size)
        local = local_of[group[rows]]
        step = direction[walking]
        up = step[local] > 0
        leg = _leg_borders(batch, rows, columns[rows], up)
        nearest_up = np.full(walking.size, np.inf)
        nearest_down = np.full(walking.size, -np.inf)
        np.minimum.at(nearest_up, local, np.where(up, leg, np.inf))
        np.maximum.at(nearest_down, local, np.where(up, -np.inf, leg))
        border = np.where(step > 0, nearest_up, np.maximum(nearest_down, 0.0))  # +inf: none
        here = price[walking]
        with np.errstate(divide="ignore", invalid="ignore"):
            root = -constant / coefficient
        inside = (coefficient != 0.0) & ((root - here) * step >= 0) & (np.isinf(border) | ((border - root) * step >= 0))
        result[walking[inside]] = np.where(root[inside] > 0.0, root[inside], np.nan)
        going_on = ~inside & np.isfinite(border) & (border > 0.0)
        crossing = going_on[local] & (leg == border[local])
        columns[rows[crossing]] += np.where(up[crossing], 1, -1)

        # Step across the border; where the requirement jumps, the gap may cross 0 there.
        # The line of the new segment is also where the next step starts.
        walking, border, kept = walking[going_on], border[going_on], going_on[local]
        rows = rows[kept]
        local_of[walking] = np.arange(walking.size)
        constant, coefficient = line(walking, rows, local_of[group[rows]])
        jump = (constant + coefficient * border) * gap_at_mark[walking] <= 0
        result[walking[jump]] = border[jump]
        price[walking] = border
        rows = rows[~jump[local_of[group[rows]]]]
        walking, constant, coefficient = walking[~jump], constant[~jump], coefficient[~jump]
    per_position = result[group]
    per_position[~np.isfinite(per_position) | (per_position <= 0.0)] = np.nan
    return per_position


def batch_from_snapshots(snapshots: Sequence[Snapshot]) -> Batch:
    """Arrays for the vectorised engine from parsed snapshots (one account each)."""
    columns = (
        "pool",
        "group",
        "account",
        "index",
        "sign",
        "size",
        "entry",
        "mark",
        "basis_entry",
        "fee_in",
        "uses_amount",
        "fee",
        "fee_to_close",
        "table",
    )
    rows: dict[str, list] = {k: [] for k in columns}
    pool_balance: list[float] = []
    pool_account: list[int] = []
    pool_is_cross: list[bool] = []
    groups: dict[tuple[int, str], int] = {}
    tables: dict[tuple, int] = {}
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
                rows["pool"].append(pool_id)
                rows["group"].append(groups.setdefault((pool_id, pos.symbol), len(groups)))
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
                rows["fee_to_close"].append(fee_to_close(pos, fee) if mode.fee_to_close else 0.0)
                rows["table"].append(tables.setdefault(pos.tiers, len(tables)))
    width = max((len(t) for t in tables), default=1)
    floor = np.full((max(len(tables), 1), width), np.inf)
    rate = np.zeros_like(floor)
    amount = np.zeros_like(floor)
    for tiers, t in tables.items():
        for c, tier in enumerate(tiers):
            floor[t, c] = tier.min_notional
            rate[t, c] = tier.maintenance_margin_rate
            amount[t, c] = tier.maintenance_amount

    def ints(key: str) -> IntArray:
        return np.asarray(rows[key], dtype=np.int64)

    def floats(key: str) -> FloatArray:
        return np.asarray(rows[key], dtype=float)

    def flags(key: str) -> np.ndarray:
        return np.asarray(rows[key], dtype=bool)

    return Batch(
        pool=ints("pool"),
        group=ints("group"),
        account=ints("account"),
        index=ints("index"),
        sign=floats("sign"),
        size=floats("size"),
        entry=floats("entry"),
        mark=floats("mark"),
        basis_entry=flags("basis_entry"),
        fee_in_requirement=flags("fee_in"),
        uses_amount=flags("uses_amount"),
        fee=floats("fee"),
        fee_to_close=floats("fee_to_close"),
        table=ints("table"),
        table_floor=floor,
        table_rate=rate,
        table_amount=amount,
        pool_balance=np.asarray(pool_balance, dtype=float),
        pool_account=np.asarray(pool_account, dtype=np.int64),
        pool_is_cross=np.asarray(pool_is_cross, dtype=bool),
        n_accounts=len(snapshots),
    )
