"""The vectorised engine: the same numbers as margin.pools / margin.liquidation, for many
positions of many accounts at once (numpy arrays), used by the poller and the benchmark.

Layout: n positions, m pools, k accounts, g hedge groups (positions of one symbol in one
pool, which share a liquidation price), and the distinct tier tables (one per market,
shared by every position in it) padded to T columns with floors of +inf.

Inverse (coin-margined) rows keep their real entry and mark in the Batch (callers shock and
read them in quote currency); each function works on their linear twins in u = 1/P
(margin.inverse: side flipped, entry 1/E, mark 1/P) and maps prices back, as the scalar
path does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from margin import walk
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
    inverse: np.ndarray | None = None  # per position: coin-margined (None: none is)

    @property
    def n_groups(self) -> int:
        return int(self.group.max()) + 1 if self.group.size else 0


@dataclass(frozen=True)
class BatchResult:
    """Outputs. Per position: notional, unrealized_pnl, maintenance_margin, the liquidation
    prices below and above the mark (nan = none on that side), the nearest of them
    (liquidation_price) with its side (-1 down, +1 up, 0 none), and the signed distance to
    it (nan = none; negative once the pool is past). Per pool: equity, maintenance_margin,
    health (nan = no position). Per account: health of the cross pool and worst health of
    any pool (nan = none)."""

    notional: FloatArray
    unrealized_pnl: FloatArray
    maintenance_margin: FloatArray
    liquidation_price_down: FloatArray
    liquidation_price_up: FloatArray
    liquidation_price: FloatArray
    liquidation_side: IntArray
    distance: FloatArray
    pool_equity: FloatArray
    pool_maintenance: FloatArray
    pool_health: FloatArray
    account_health: FloatArray
    account_worst_health: FloatArray


def _columns(batch: Batch, price: FloatArray) -> tuple[IntArray, IntArray]:
    """Tier column of every position at `price` (margin.pools.tier_column), and the column
    just below it (the segment a downward walk from exactly a tier floor enters)."""
    entry_basis = batch.basis_entry
    notional = batch.size * np.where(entry_basis, batch.entry, np.maximum(price, 0.0))
    n_columns = batch.table_floor.shape[1]
    count: IntArray = np.zeros(notional.shape[0], dtype=np.uint8 if n_columns < 256 else np.int64)
    for column in range(n_columns):  # T passes over n, each a gather from T floors, beat n x T
        np.add(count, np.take(np.ascontiguousarray(batch.table_floor[:, column]), batch.table) <= notional, out=count)
    at_or_below = np.maximum(count.astype(np.int64) - 1, 0)
    # floors are distinct: only a notional exactly on its tier's floor has a lower segment
    on_floor = (batch.table_floor.ravel()[batch.table * n_columns + at_or_below] == notional) & ~entry_basis
    return at_or_below, np.maximum(at_or_below - on_floor, 0)


def requirement_lines(batch: Batch, rows: IntArray | slice, column: IntArray) -> tuple[FloatArray, FloatArray]:
    """Requirement of the positions `rows` in tiers `column`: slope x price + intercept
    (margin.pools.requirement_line)."""
    at = batch.table[rows] * batch.table_rate.shape[1] + column  # into the flattened tables
    rate = batch.table_rate.ravel()[at]
    amount = batch.table_amount.ravel()[at]
    size = batch.size[rows]
    entry_basis = batch.basis_entry[rows]
    slope = np.where(entry_basis, 0.0, size * rate)
    intercept = np.where(entry_basis, size * batch.entry[rows] * rate, 0.0)
    intercept -= np.where(batch.uses_amount[rows], amount, 0.0)
    slope += np.where(batch.fee_in_requirement[rows], size * batch.fee[rows], 0.0)
    intercept += batch.fee_to_close[rows]
    return slope, intercept


def _twin(batch: Batch) -> Batch:
    """The batch with its inverse rows as their linear twins (margin.inverse.linear_twin)."""
    inv = batch.inverse
    if inv is None or not inv.any():
        return batch
    return replace(
        batch,
        sign=np.where(inv, -batch.sign, batch.sign),
        entry=np.where(inv, 1.0 / batch.entry, batch.entry),
        mark=np.where(inv, 1.0 / batch.mark, batch.mark),
    )


def _twin_prices(batch: Batch, prices: FloatArray) -> FloatArray:
    if batch.inverse is None or not batch.inverse.any():
        return prices
    with np.errstate(divide="ignore"):
        return np.where(batch.inverse, 1.0 / prices, prices)


def _from_twin(batch: Batch, twin_mark: FloatArray, down: FloatArray, up: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Both sides back in quote currency: an inverse row's side below its mark is its twin's
    above (margin.inverse.from_twin_price: the twin's mark maps to the mark exactly)."""
    inv = batch.inverse
    if inv is None or not inv.any():
        return down, up
    rows = np.flatnonzero(inv)

    def back(u: FloatArray) -> FloatArray:
        u = u[rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(u == twin_mark[rows], batch.mark[rows], 1.0 / u)

    real_down, real_up = down.copy(), up.copy()
    real_down[rows], real_up[rows] = back(up), back(down)
    return real_down, real_up


def pool_totals(batch: Batch, marks: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Every pool's equity and maintenance requirement with the positions at `marks` (quote
    currency; no liquidation prices: what a stress scenario needs)."""
    return _pool_totals(_twin(batch), _twin_prices(batch, marks))


def _pool_totals(batch: Batch, marks: FloatArray) -> tuple[FloatArray, FloatArray]:
    n_pools = batch.pool_balance.shape[0]
    columns, _ = _columns(batch, marks)
    slope, intercept = requirement_lines(batch, slice(None), columns)
    equity = batch.pool_balance + np.bincount(batch.pool, batch.sign * batch.size * (marks - batch.entry), n_pools)
    return equity, np.bincount(batch.pool, slope * marks + intercept, n_pools)


def health_prices(batch: Batch, health: float) -> tuple[FloatArray, FloatArray]:
    """Per position, the prices of its symbol (the rest of its pool at mark) where its pool's
    health is `health`, below and above the mark (nan: none): margin.liquidation.
    all_liquidations(snapshot, health) for every position at once."""
    twin = _twin(batch)
    down, up = _health_prices(twin, health)
    return _from_twin(batch, twin.mark, down, up)


def _health_prices(batch: Batch, health: float) -> tuple[FloatArray, FloatArray]:
    n_pools = batch.pool_balance.shape[0]
    upnl = batch.sign * batch.size * (batch.mark - batch.entry)
    columns, columns_below = _columns(batch, batch.mark)
    slope, intercept = requirement_lines(batch, slice(None), columns)
    pool_equity = batch.pool_balance + np.bincount(batch.pool, upnl, n_pools)
    pool_req = np.bincount(batch.pool, slope * batch.mark + intercept, n_pools)
    return _liquidation_prices(batch, upnl, (slope, intercept), (columns, columns_below), pool_equity, pool_req, health)


def evaluate(batch: Batch) -> BatchResult:
    """Health, requirement and liquidation price of every position, pool and account."""
    real = batch
    batch = _twin(batch)
    n_pools = batch.pool_balance.shape[0]
    everything = slice(None)
    notional = batch.size * batch.mark
    upnl = batch.sign * batch.size * (batch.mark - batch.entry)
    columns, columns_below = _columns(batch, batch.mark)
    slope, intercept = requirement_lines(batch, everything, columns)
    requirement = slope * batch.mark + intercept

    pool_equity = batch.pool_balance + np.bincount(batch.pool, upnl, n_pools)
    pool_req = np.bincount(batch.pool, requirement, n_pools)
    pool_count = np.bincount(batch.pool, minlength=n_pools)
    with np.errstate(divide="ignore", invalid="ignore"):
        pool_health = np.where((pool_count > 0) & (pool_req > 0), pool_equity / pool_req, np.nan)

    down, up = _liquidation_prices(batch, upnl, (slope, intercept), (columns, columns_below), pool_equity, pool_req)
    down, up = _from_twin(real, batch.mark, down, up)
    if real.inverse is not None:  # the other rows' prices are finite and positive or nan
        for prices in (down, up):
            inverse = prices[real.inverse]
            prices[real.inverse] = np.where(np.isfinite(inverse) & (inverse > 0.0), inverse, np.nan)
    liq, side, distance = nearest_side(real.mark, down, up, (pool_equity >= pool_req)[batch.pool])

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
        down,
        up,
        liq,
        side,
        distance,
        pool_equity,
        pool_req,
        pool_health,
        account_health,
        worst,
    )


def nearest_side(
    mark: FloatArray, down: FloatArray, up: FloatArray, healthy: np.ndarray
) -> tuple[FloatArray, IntArray, FloatArray]:
    """Per position, the liquidation price nearest the mark (nan: none), its side (-1 down,
    +1 up, 0 none; a tie goes down, as margin.liquidation.Liquidation.side) and the signed
    distance to it (fraction of the mark, negative where the pool is not `healthy`)."""
    to_down = mark - down
    to_down[np.isnan(down)] = np.inf
    to_up = up - mark
    to_up[np.isnan(up)] = np.inf
    nearer_down = to_down <= to_up
    neither = np.isinf(to_down) & np.isinf(to_up)
    side = np.where(nearer_down, np.int8(-1), np.int8(1))
    side[neither] = 0
    liq = np.where(nearer_down, down, up)
    liq[neither] = np.nan
    gap = np.abs(mark - liq) / mark
    return liq, side, np.where(healthy, gap, -gap)


def _liquidation_prices(
    batch: Batch,
    upnl: FloatArray,
    line_at_mark: tuple[FloatArray, FloatArray],
    columns_at_mark: tuple[IntArray, IntArray],
    pool_equity: FloatArray,
    pool_req: FloatArray,
    health: float = 1.0,
) -> tuple[FloatArray, FloatArray]:
    """margin.liquidation.all_liquidations for every position: per hedge group (one symbol
    in one pool), with the rest of the pool at mark, the first root below the mark and the
    first above it, of equity = health x requirement (1: liquidation). Returns (down, up)
    per position, nan where a side has none."""
    n_groups = batch.n_groups
    group = batch.group
    slope, intercept = line_at_mark[0] * health, line_at_mark[1] * health
    requirement = line_at_mark[0] * batch.mark + line_at_mark[1]
    group_pool = np.zeros(n_groups, dtype=np.int64)
    group_pool[group] = batch.pool
    # balance + the other positions' PnL - health x their requirement, + the legs' -side x
    # size x entry; equity and requirement less the group's apart, then scaled (as margin.
    # liquidation: where the group is the whole pool they cancel exactly)
    fixed = (
        (pool_equity[group_pool] - np.bincount(group, upnl, n_groups))
        - health * (pool_req[group_pool] - np.bincount(group, requirement, n_groups))
        + np.bincount(group, -batch.sign * batch.size * batch.entry, n_groups)
    )
    side_term = np.bincount(group, batch.sign * batch.size, n_groups)
    mark = np.zeros(n_groups)
    mark[group] = batch.mark
    constant = fixed - np.bincount(group, intercept, n_groups)
    coefficient = side_term - np.bincount(group, slope, n_groups)
    # the pool's gap at mark from its totals is the sign every walk keeps (margin.liquidation.
    # _solve: near 0, a line's own value at the mark can round to the other side)
    gap_at_mark = (pool_equity - health * pool_req)[group_pool]
    # size x fee where the venue counts the fee in the requirement (quote per unit of price)
    fee_slope = np.where(batch.fee_in_requirement, batch.size * batch.fee, 0.0)
    lines = (slope, intercept)
    skip_down, skip_up = _sides_without_root(batch, fixed, side_term, mark, gap_at_mark, lines, fee_slope, health)
    legs = _legs(batch, fee_slope)
    groups = walk.Groups(fixed, side_term, mark, gap_at_mark, health)
    begin = walk.start(legs, columns_at_mark[0], lines, (constant, coefficient), True)
    up = walk.run(legs, groups, begin, 1, skip_up)
    # a downward walk starts in the tier below for a leg exactly on a tier floor (rare)
    on_floor = np.flatnonzero(columns_at_mark[1] != columns_at_mark[0])
    if on_floor.size:
        slope, intercept = slope.copy(), intercept.copy()
        below_slope, below_intercept = requirement_lines(batch, on_floor, columns_at_mark[1][on_floor])
        slope[on_floor], intercept[on_floor] = below_slope * health, below_intercept * health
        lines = (slope, intercept)
        constant = fixed - np.bincount(group, intercept, n_groups)
        coefficient = side_term - np.bincount(group, slope, n_groups)
    begin = walk.start(legs, columns_at_mark[1], lines, (constant, coefficient), False)
    down = walk.run(legs, groups, begin, -1, skip_down)
    at_mark = gap_at_mark == 0.0
    down[at_mark] = mark[at_mark]
    up[at_mark] = mark[at_mark]
    down[~np.isfinite(down) | (down <= 0.0)] = np.nan
    up[~np.isfinite(up) | (up <= 0.0)] = np.nan
    return down[group], up[group]


def _legs(batch: Batch, fee_slope: FloatArray) -> walk.Legs:
    """The walks' view of the batch: flattened tier tables, rows laid out by hedge group."""
    return walk.legs(
        batch.table,
        batch.uses_amount,
        batch.size,
        batch.basis_entry,
        fee_slope,
        batch.fee_to_close,
        (batch.table_floor, batch.table_rate, batch.table_amount),
        batch.group,
        batch.n_groups,
    )


def _table_shapes(batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    """margin.tiers.tier_shape of every tier table: (rising, continuous)."""
    floor, rate, amount = batch.table_floor, batch.table_rate, batch.table_amount
    rising = np.ones(floor.shape[0], dtype=bool)
    continuous = np.ones(floor.shape[0], dtype=bool)
    for c in range(1, floor.shape[1]):
        present = np.isfinite(floor[:, c])
        at = np.where(present, floor[:, c], 0.0)
        expected = amount[:, c - 1] + at * (rate[:, c] - rate[:, c - 1])
        scale = np.maximum(np.maximum(1.0, np.abs(expected)), at)
        rising &= ~present | (rate[:, c] >= rate[:, c - 1])
        continuous &= ~present | (np.abs(amount[:, c] - expected) <= 1e-9 * scale)
    return rising, continuous


def _sides_without_root(
    batch: Batch,
    fixed: FloatArray,
    side_term: FloatArray,
    mark: FloatArray,
    gap_at_mark: FloatArray,
    line_at_mark: tuple[FloatArray, FloatArray],
    fee_slope: FloatArray,
    health: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Per group, the sides ruled out without a walk: margin.liquidation._sides_without_root
    for every group at once. A tier on entry value does not move with the price; on mark
    value the tier at 0 is the first and far up the last, so the lines there are gathers."""
    group, n_groups, table = batch.group, gap_at_mark.shape[0], batch.table
    rising, continuous = _table_shapes(batch)
    row_bad = np.take(~rising, table) | (np.take(~continuous, table) & batch.uses_amount)
    eligible = (np.bincount(group, row_bad, n_groups) == 0) & (gap_at_mark > 0)
    slope_at_mark, intercept_at_mark = line_at_mark
    entry, amount_used = batch.basis_entry, batch.uses_amount
    # the fee to close (Bybit's, on the bankruptcy price) is a constant of every line
    close = batch.fee_to_close
    at_zero = np.take(-batch.table_amount[:, 0], table)
    intercept_at_zero = np.where(entry, intercept_at_mark, health * (np.where(amount_used, at_zero, 0.0) + close))
    gap_at_zero = fixed - np.bincount(group, intercept_at_zero, n_groups)
    tables = np.arange(batch.table_floor.shape[0])
    last = np.isfinite(batch.table_floor).sum(axis=1) - 1
    rate_far_up = np.take(batch.table_rate[tables, last], table)
    amount_far_up = np.take(-batch.table_amount[tables, last], table)
    slope_far_up = np.where(entry, slope_at_mark, health * (batch.size * rate_far_up + fee_slope))
    intercept_far_up = np.where(entry, intercept_at_mark, health * (np.where(amount_used, amount_far_up, 0.0) + close))
    coefficient = side_term - np.bincount(group, slope_far_up, n_groups)
    constant = fixed - np.bincount(group, intercept_far_up, n_groups)
    without_amount = np.bincount(group, amount_used, n_groups) == 0
    above = (coefficient >= 0) & (~without_amount | (constant + coefficient * mark >= 0))
    return eligible & (gap_at_zero >= 0), eligible & above


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
        "inverse",
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
                rows["inverse"].append(pos.inverse)
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
        inverse=flags("inverse") if any(rows["inverse"]) else None,
    )
