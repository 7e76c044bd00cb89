"""Parquet panel -> scaled row-major features + a (day, stock) row map -> datasets of whole days.

The pieces live in engine.panel (loading, splits, beta, the scaled matrix) and engine.day_batches
(the indexed panel and the datasets); this module wires them together in prepare_data.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch

from engine.config import EngineConfig
from engine.day_batches import DayBatchDataset, Panel, interleave_days, make_loader, pack_days
from engine.panel import (
    SPLITS,
    Columns,
    DataError,
    Loaded,
    describe,
    empty_f32,
    find_sources,
    float_rows,
    load,
    market_beta,
    read_columns,
    scale_into,
    split_days,
)
from engine.scaler import OnlineRobustScaler
from engine.synth import ensure_default_market

__all__ = ["DataError", "DayBatchDataset", "Panel", "PreparedData", "make_loader", "prepare_data"]

BLOCK_COLUMNS = 64  # features per column block read from parquet, at most
MIN_BLOCK_COLUMNS = 8
BLOCK_SHARE = 0.15  # of the feature matrix's bytes per block, within BLOCK_BYTES
BLOCK_BYTES = (192 << 20, 512 << 20)
# seconds per stage of the last prepare_data call (bench/bench_data.py reports them)
LAST_TIMINGS: dict[str, float] = {}


class _Clock:
    """Stage stopwatch: lap(name) adds the time since the previous lap to LAST_TIMINGS[name]."""

    def __init__(self) -> None:
        LAST_TIMINGS.clear()
        self.t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        LAST_TIMINGS[name] = LAST_TIMINGS.get(name, 0.0) + now - self.t
        self.t = now


@dataclass(frozen=True)
class PreparedData:
    """What prepare_data hands to the trainer."""

    train: DayBatchDataset
    val: DayBatchDataset
    test: DayBatchDataset
    feature_names: list[str]
    n_features: int
    return_channel: int | None
    n_stocks: int
    n_exposures: int
    horizons: list[int]
    scaler: OnlineRobustScaler
    dates: list[dt.date]  # every trading day of the panel, in order
    codes: list[str]  # stock index -> Code


def _day_index(df: pl.DataFrame) -> tuple[np.ndarray, list[dt.date]]:
    """(day index per row = rank of its Date, every date in order) via a lookup table."""
    uniq = df["Date"].unique().sort()
    phys = df["Date"].to_physical().to_numpy().astype(np.int64)
    days = uniq.to_physical().to_numpy().astype(np.int64)
    table = np.full(int(days[-1] - days[0]) + 1, -1, dtype=np.int64)
    table[days - days[0]] = np.arange(len(days))
    return table[phys - days[0]], uniq.to_list()


def _column_blocks(n: int, rows: int) -> list[slice]:
    """Feature column blocks of about equal width: each is read while the previous one is scaled.

    Two blocks are alive at a time (and polars' allocator keeps freed pages for a while), so a
    block gets BLOCK_SHARE of the feature matrix's bytes (within BLOCK_BYTES): the peak RSS stays
    under 2x the matrix (1.8-1.9x at 1M x 395 and 4M x 100). At most BLOCK_COLUMNS wide (polars
    decodes a wider selection on fewer threads: 128 columns took 4x the time of 64), and as wide as
    that allows: narrow blocks make the row-major writes partial-line (11 columns cost ~2x the time
    per value of 50)."""
    budget = min(max(BLOCK_SHARE * 4 * rows * n, BLOCK_BYTES[0]), BLOCK_BYTES[1])
    width = int(max(MIN_BLOCK_COLUMNS, min(BLOCK_COLUMNS, budget // max(4 * rows, 1))))
    k = -(-n // width)
    bounds = [round(i * n / k) for i in range(k + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def _scaled_features(cfg: EngineConfig, loaded: Loaded, train_rows: np.ndarray, n_rows: int,
                     pool: ThreadPoolExecutor, helper: ThreadPoolExecutor, clock: _Clock,
                     blocks: list[slice], first_read: Future[pl.DataFrame]
                     ) -> tuple[OnlineRobustScaler, torch.Tensor]:
    """Fit the scaler on a reservoir sample of the train rows and fill the scaled row-major matrix
    (+ a zero row), one column block at a time while the pool reads the next block."""
    d, features = cfg.data, loaded.features
    scaler = OnlineRobustScaler(d.scaler_max_samples, d.scaler_clip, seed=cfg.train.seed)
    slots, src = scaler.sample_rows(train_rows, len(features))
    x = empty_f32(n_rows + 1, len(features))
    x[n_rows] = 0.0
    dead: list[str] = []
    job: Future[pl.DataFrame] | None = first_read
    try:
        for k, cols in enumerate(blocks):
            assert job is not None
            frame = job.result()
            # the next block is read while this one is scaled; no other block is held (memory)
            job = pool.submit(read_columns, loaded, features[blocks[k + 1]]) if k + 1 < len(blocks) else None
            clock.lap("read_wait")
            columns = Columns(frame)
            mid = (cols.stop - cols.start) // 2

            def fit(part: slice, columns: Columns = columns, c0: int = cols.start) -> None:
                scaler.fill(slots, columns.gather(src, part), slice(c0 + part.start, c0 + part.stop))
                scaler.finalise(slice(c0 + part.start, c0 + part.stop))

            half = helper.submit(fit, slice(mid, cols.stop - cols.start))
            fit(slice(0, mid))
            half.result()
            unseen = np.nonzero(scaler.finite_counts(cols) == 0)[0]  # none sampled: check every train row
            dead += [frame.columns[i] for i in unseen
                     if not np.isfinite(frame[:, int(i)].to_numpy()[train_rows]).any()]
            clock.lap("scaler_fit")
            if not dead:
                scale_into(x, columns, cols.start, scaler, helper)
            del frame, columns, fit
            clock.lap("scale_rows")
    finally:
        if job is not None:
            job.cancel()
    if dead:
        raise DataError(f"feature(s) with no finite value in the training period: {', '.join(dead)}; "
                        "drop them via data.features or fix the data")
    return scaler, x


def _take(a: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    """a[keep], or a itself when every row is kept."""
    return a if keep is None else a[keep]


def _dense_rank(s: pl.Series) -> np.ndarray:
    """0-based dense rank of an integer column, -1 where null: `rank("dense") - 1`, by a lookup
    table over the values' range when it is small (sector ids: O(rows), not a sort)."""
    lo, hi = s.min(), s.max()
    if lo is None or hi is None:
        return np.full(len(s), -1, dtype=np.int64)
    lo, hi = int(lo), int(hi)  # type: ignore[arg-type]
    if hi - lo >= 1 << 20:
        return _polars_dense_rank(s)
    null = s.is_null().to_numpy()
    v = s.fill_null(lo).to_numpy().astype(np.int64) - lo
    present = np.zeros(hi - lo + 1, dtype=bool)
    present[v[~null]] = True
    out = (np.cumsum(present) - 1)[v]
    out[null] = -1
    return out


def _polars_dense_rank(s: pl.Series) -> np.ndarray:
    """`rank("dense") - 1`, -1 where null, by polars (any range of values)."""
    return s.to_frame("v").select((pl.col("v").rank("dense") - 1).fill_null(-1))["v"].to_numpy().astype(np.int64)


def _exposures(df: pl.DataFrame, has_sector: bool, ret_name: str | None, flat_k: np.ndarray,
               keep: np.ndarray | None, shape: tuple[int, int]
               ) -> tuple[torch.Tensor | None, int, torch.Tensor | None]:
    """(sector id per row or None, number of sectors, market beta per (day, stock) cell or None)."""
    sector, n_sectors = None, 0
    if has_sector:
        sec = _dense_rank(df["sector"])
        n_sectors = int(sec.max()) + 1
        if n_sectors > 0:
            sector = torch.from_numpy(sec.astype(np.int64))
    beta = None
    if ret_name is not None:
        ret = np.full(shape[0] * shape[1], np.nan, dtype=np.float32)
        ret[flat_k] = _take(df[ret_name].to_numpy(), keep)
        beta = torch.from_numpy(market_beta(ret.reshape(shape)).reshape(-1))
    return sector, n_sectors, beta


def prepare_data(cfg: EngineConfig, log: Callable[[str], None], warn: Callable[[str], None]) -> PreparedData:
    """Load, filter, split, scale and index the panel; emits log lines #8-#15."""
    d, clock = cfg.data, _Clock()
    if d.path is None:
        path = ensure_default_market(log)
        log(f"[data] Using default synthetic market: {path}")
    else:
        path = Path(d.path).expanduser()
        log(f"[data] Loading {path}")
    sources = find_sources(path)
    single = "all" in sources
    counts = [len(sources["all"])] * 3 if single else [len(sources[s]) for s in SPLITS]
    log(f"📂 Found {counts[0]} train, {counts[1]} val, {counts[2]} test files")
    log(f"[data-filter] Global minimum date filter: {d.min_date}")
    loaded = load(sources, cfg, path)
    clock.lap("load")
    blocks = _column_blocks(len(loaded.features), loaded.keys.height)
    with ThreadPoolExecutor(1, thread_name_prefix="read") as pool, \
            ThreadPoolExecutor(1, thread_name_prefix="scale") as helper:
        first_read = pool.submit(read_columns, loaded, loaded.features[blocks[0]])  # while the keys are indexed
        try:
            return _index_and_scale(cfg, loaded, log, warn, clock, single, pool, helper, blocks, first_read)
        finally:
            first_read.cancel()


def _index_and_scale(cfg: EngineConfig, loaded: Loaded, log: Callable[[str], None], warn: Callable[[str], None],
                     clock: _Clock, single: bool, pool: ThreadPoolExecutor, helper: ThreadPoolExecutor,
                     blocks: list[slice], first_read: Future[pl.DataFrame]) -> PreparedData:
    """The key columns -> day/stock index, splits, targets, exposures, samples (while the pool
    reads the first feature block); then the scaler and the scaled matrix; then the datasets."""
    d = cfg.data
    df, features, targets, has_sector = loaded.keys, loaded.features, loaded.targets, loaded.has_sector
    # day = rank of Date, stock = rank of Code; a cell is flat = day * N + stock
    day, dates = _day_index(df)
    code_set = df["Code"].unique().sort()
    codes: list[str] = code_set.to_list()
    stock = df["Code"].cast(pl.Enum(code_set)).to_physical().to_numpy().astype(np.int64)
    df = df.drop("Code")  # the largest key column: gone before the feature blocks need memory
    R, D, N, L = df.height, len(dates), len(codes), d.seq_len
    flat = day * N
    flat += stock
    keep: np.ndarray | None = None  # the rows the cells point at (file order); None: every row
    if np.bincount(flat, minlength=D * N).max() > 1:
        _, keep = np.unique(flat, return_index=True)  # first occurrence wins (train before val)
        warn(f"[data] {R - len(keep)} duplicate (Code, Date) rows dropped (kept the first)")
    flat_k = _take(flat, keep)
    row_of = np.full(D * N, R, dtype=np.int64)  # R = the zero row of x
    row_of[flat_k] = np.arange(R) if keep is None else keep
    clock.lap("index")

    embargo = d.embargo_days
    if single:
        if embargo < max(cfg.model.horizons):
            warn(f"[data] data.embargo_days={embargo} is shorter than the longest horizon; "
                 f"using {max(cfg.model.horizons)}")
            embargo = max(cfg.model.horizons)
        row_split = split_days(D, cfg, embargo)[_take(day, keep)]
    else:
        embargo = 0
        row_split = _take(df["_split"].to_numpy(), keep)
    flat_split = np.full(D * N, -1, dtype=np.int8)
    flat_split[flat_k] = row_split
    split = flat_split.reshape(D, N)
    split_days_ = [np.nonzero((split == k).any(axis=1))[0] for k in range(3)]
    if len(split_days_[0]) < L:
        raise DataError(f"too few training days: {len(split_days_[0])}, need more than seq_len={L}")
    log("[data] split " + " ".join(describe(s, x, dates) for s, x in zip(SPLITS, split_days_, strict=True))
        + f" embargo={embargo} days")

    # targets, exposures and the sample index come from the key columns, while the pool reads the
    # first feature block; then the feature blocks are sampled, scaled and laid out row-major
    train_rows = np.nonzero(row_split == 0)[0] if keep is None else keep[row_split == 0]
    log(f"Fitting OnlineRobustScaler on training data (max_samples={d.scaler_max_samples}, "
        f"rows={len(train_rows)})...")
    clock.lap("split")
    y = float_rows(df.select(targets))
    ret_ch = features.index(d.return_feature) if d.return_feature in features else None
    sector, n_sectors, beta = _exposures(df, has_sector, None if ret_ch is None else d.return_feature,
                                         flat_k, keep, (D, N))
    clock.lap("targets_exposures")
    first = int(np.argmin(cfg.model.horizons))
    exists_ok = np.zeros(D * N, dtype=bool)
    exists_ok[flat_k] = np.isfinite(y[:, first] if keep is None else y[keep, first])
    ok = exists_ok.reshape(D, N) & (np.arange(D)[:, None] >= L - 1)
    samples, dropped = [], []
    sizes = (cfg.train.batch.train_batch_size, cfg.train.batch.val_batch_size,
             cfg.train.batch.val_batch_size)
    for k in range(3):
        sd, sn = np.nonzero(ok & (split == k))
        per_day = np.bincount(sd, minlength=D)
        dropped.append(int(((per_day > 0) & (per_day < d.min_nodes_per_day)).sum()))
        big = per_day[sd] >= d.min_nodes_per_day
        day_rows = per_day[per_day >= d.min_nodes_per_day]
        order = None
        if k == 0 and cfg.train.batch.day_order == "interleaved":
            order, starts = interleave_days(day_rows, sizes[k])
        else:
            starts = pack_days(day_rows, sizes[k])
        samples.append((sd[big], sn[big], starts, order))
    # what the batches don't need goes before the matrix is built (the peak RSS is during it)
    del day, stock, flat, keep, flat_k, row_split, flat_split, split, exists_ok, ok
    del df
    loaded.keys = loaded.keys.clear()
    clock.lap("samples")
    scaler, x = _scaled_features(cfg, loaded, train_rows, R, pool, helper, clock, blocks, first_read)
    log(f"OnlineRobustScaler fitted on {scaler.n_samples} samples ({len(features)} features)")
    log("Creating data loaders...")
    panel = Panel(x, torch.from_numpy(row_of), torch.from_numpy(y), D, N, sector, n_sectors, beta)
    sets = [DayBatchDataset(panel, sd, sn, starts, L, name, order)
            for (sd, sn, starts, order), name in zip(samples, SPLITS, strict=True)]
    clock.lap("datasets")
    if sum(dropped):
        warn(f"[data] {sum(dropped)} days dropped: fewer than {d.min_nodes_per_day} stocks "
             f"(train={dropped[0]}, val={dropped[1]}, test={dropped[2]})")
    if len(sets[0]) == 0:
        raise DataError(f"no training day has at least {d.min_nodes_per_day} stocks with a target "
                        "(data.min_nodes_per_day); lower it or supply more stocks")
    tr, va = sets[0], sets[1]
    log(f"Data loaders created: train={tr.n_days} days ({len(tr)} batches), val={va.n_days} days "
        f"({len(va)} batches), seq_len={L}, features={len(features)}")
    return PreparedData(train=tr, val=va, test=sets[2], feature_names=features, n_features=len(features),
                        return_channel=ret_ch, n_stocks=N, n_exposures=panel.n_exposures,
                        horizons=list(cfg.model.horizons), scaler=scaler, dates=dates, codes=codes)
