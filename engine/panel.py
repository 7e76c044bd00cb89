"""Parquet panel -> one polars frame (projection, date filter, schema checks), day splits, beta,
and the scaled row-major feature matrix the day batches gather from."""

from __future__ import annotations

import datetime as dt
import difflib
import mmap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch

from engine.config import EngineConfig
from engine.scaler import OnlineRobustScaler

KEYS = ("Code", "Date", "sector")
SPLITS = ("train", "val", "test")
BETA_WINDOW, BETA_MIN_OBS = 60, 20
ACCEPTED = "a parquet file, or a folder with train/, val/, test/ subfolders of parquet files"
CHUNK_ROWS = 8192  # rows per block when scaling into the row-major matrix (~3 MB: stays in cache)


class DataError(ValueError):
    """Bad input data; the message is one line meant for the user."""


def _first_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return (text[:200] + "...") if len(text) > 200 else text


def find_sources(path: Path) -> dict[str, list[Path]]:
    """{'all': files} for one panel split by date, or {'train','val','test': files} for folders."""
    if not path.exists():
        raise DataError(f"data path not found: {path}; expected {ACCEPTED}")
    if path.is_file():
        return {"all": [path]}
    if (path / "train").is_dir():
        found = {s: sorted((path / s).glob("*.parquet")) for s in SPLITS}
        if not found["train"]:
            raise DataError(f"{path / 'train'} has no .parquet files; expected {ACCEPTED}")
        return found
    files = sorted(path.glob("*.parquet"))
    if not files:
        raise DataError(f"{path}: no parquet files found; expected {ACCEPTED}")
    return {"all": files}


def _schema(lf: pl.LazyFrame, where: Path) -> dict[str, pl.DataType]:
    try:
        return dict(lf.collect_schema())
    except Exception as e:  # polars raises several types for unreadable files
        raise DataError(f"cannot read parquet {where}: {_first_line(e)}; expected {ACCEPTED}") from None


def _columns(schema: dict[str, pl.DataType], cfg: EngineConfig, where: Path) -> tuple[list[str], list[str]]:
    """(features, targets) after checking the schema."""
    missing = [c for c in ("Code", "Date") if c not in schema]
    if missing:
        raise DataError(f"{where}: missing column(s) {', '.join(missing)}; the panel needs Code "
                        "(stock id) and Date columns, one row per stock and day")
    targets = [f"target_{h}d" for h in cfg.model.horizons]
    missing = [t for t in targets if t not in schema]
    if missing:
        raise DataError(f"{where}: missing target column(s) {', '.join(missing)}; need "
                        f"{', '.join(targets)} (one per model.horizons)")
    numeric = [c for c, t in schema.items()
               if t.is_numeric() and c not in KEYS and not c.startswith("target_")]
    if not cfg.data.features:
        if not numeric:
            raise DataError(f"{where}: no numeric feature columns besides keys and targets")
        return numeric, targets
    for name in cfg.data.features:
        if name in KEYS or name.startswith("target_"):
            raise DataError(f"data.features: {name!r} is a key or target column, not a feature")
        if name not in schema:
            near = difflib.get_close_matches(name, numeric, n=3, cutoff=0.6)
            hint = f"did you mean {', '.join(near)}?" if near else f"available: {', '.join(numeric[:12])}"
            raise DataError(f"data.features: {name!r} not found in {where}; {hint}")
        if name not in numeric:
            raise DataError(f"data.features: {name!r} is {schema[name]}, not a numeric column")
    return list(dict.fromkeys(cfg.data.features)), targets


def _date_expr(dtype: pl.DataType, where: Path) -> pl.Expr:
    if dtype == pl.Date:
        return pl.col("Date")
    if isinstance(dtype, pl.Datetime):
        return pl.col("Date").dt.date()
    if dtype == pl.String:
        return pl.col("Date").str.to_date(strict=False)
    raise DataError(f"{where}: Date column is {dtype}; expected a date, datetime or YYYY-MM-DD string")


@dataclass
class Loaded:
    """The filtered panel as a lazy plan, plus its key columns read eagerly."""

    keys: pl.DataFrame  # Code, Date, [sector], targets, key_extra features, _split
    plan: pl.LazyFrame  # every column; collect a projection of it with read_columns
    features: list[str]
    targets: list[str]
    has_sector: bool
    where: Path


def load(sources: dict[str, list[Path]], cfg: EngineConfig, where: Path) -> Loaded:
    """Scan with projection and the date filter; reads only the key columns (and the return
    feature, for beta) now: the features are read in column blocks with read_columns."""
    min_date = dt.date.fromisoformat(cfg.data.min_date)
    parts: list[pl.LazyFrame] = []
    features: list[str] = []
    targets: list[str] = []
    has_sector = True
    for k, (split, files) in enumerate(sources.items()):
        if not files:
            continue
        lf = pl.scan_parquet(files)
        schema = _schema(lf, files[0] if len(files) == 1 else where / split)
        if not parts:
            features, targets = _columns(schema, cfg, where)
            has_sector = "sector" in schema and schema["sector"].is_integer()
        cols = [pl.col("Code").cast(pl.String), _date_expr(schema.get("Date", pl.Date()), where)]
        cols += [pl.col("sector").cast(pl.Int64)] if has_sector else []
        # nulls stay null here (filling them copies every column); to_numpy() turns them into NaN
        cols += [pl.col(c).cast(pl.Float32) for c in features + targets]
        cols += [pl.lit(k if split != "all" else 0, dtype=pl.Int8).alias("_split")]
        parts.append(lf.select(cols))
    keys = ["Code", "Date"] + (["sector"] if has_sector else []) + targets
    keys += [cfg.data.return_feature] if cfg.data.return_feature in features else []
    try:
        lf = pl.concat(parts)
        lo = lf.select(pl.col("Date").min()).collect().item()
        # filtering copies every column: skip it when nothing is before min_date (Date is cheap)
        lf = lf if lo is not None and lo >= min_date else lf.filter(pl.col("Date") >= min_date)
        nan = pl.lit(float("nan"), dtype=pl.Float32)  # float nulls -> NaN: to_numpy is zero-copy
        df = lf.select([pl.col(c).fill_null(nan) if i >= 2 + has_sector else pl.col(c)
                        for i, c in enumerate([*keys, "_split"][:-1])] + [pl.col("_split")]).collect()
    except Exception as e:
        raise DataError(f"cannot read parquet data in {where}: {_first_line(e)}; expected {ACCEPTED} "
                        "with the same columns") from None
    if df.height == 0:
        span = pl.concat([pl.scan_parquet(f).select(_date_expr(pl.Date(), where)) for f in sources.values() if f])
        lo, hi = span.select(pl.col("Date").min().alias("lo"), pl.col("Date").max().alias("hi")).collect().row(0)
        raise DataError(f"no rows with Date >= {min_date} in {where} (data spans {lo}..{hi}); "
                        "lower data.min_date (env MIN_TRAINING_DATE)")
    return Loaded(df, lf, features, targets, has_sector, where)


def read_columns(loaded: Loaded, columns: list[str]) -> pl.DataFrame:
    """Collect these (float32) columns of the plan, nulls as NaN (same rows and order as
    loaded.keys): filling is cheap in the reader and makes every chunk's to_numpy zero-copy."""
    nan = pl.lit(float("nan"), dtype=pl.Float32)
    try:
        return loaded.plan.select([pl.col(c).fill_null(nan) for c in columns]).collect()
    except Exception as e:
        raise DataError(f"cannot read parquet data in {loaded.where}: {_first_line(e)}; expected "
                        f"{ACCEPTED} with the same columns") from None


def _rolling_sum_(c: np.ndarray) -> np.ndarray:
    """In place over days (axis 0): c[d] = the sum of days d-BETA_WINDOW+1..d, as a cumulative sum
    minus its lag (a loop over days: numpy's cumsum along axis 0 of a C-ordered array is ~10x slower)."""
    for d in range(1, len(c)):
        np.add(c[d - 1], c[d], out=c[d])
    np.subtract(c[BETA_WINDOW:], c[:-BETA_WINDOW].copy(), out=c[BETA_WINDOW:])
    return c


def market_beta(ret: np.ndarray) -> np.ndarray:
    """Rolling beta [D, N] of each stock's returns on the equal-weight market, past window only.

    cov = sum(r m) - sum(r) sum(m) / n and var = sum(m m) - sum(m)^2 / n over the window's days where
    the stock has a return (in float64, computed in place: each [D, N] temporary is a fresh mapping
    whose page faults cost about as much as the arithmetic)."""
    ok = np.isfinite(ret)
    r = np.where(ok, ret, np.float32(0.0)).astype(np.float64)
    cnt = ok.sum(axis=1)
    m = np.where(cnt > 0, r.sum(axis=1) / np.maximum(cnt, 1), 0.0)[:, None]
    mm = m * ok
    cov = _rolling_sum_(r * m)  # sum(r m), then cov
    var = _rolling_sum_(np.multiply(mm, m))  # sum(m m), then var
    n = _rolling_sum_(ok.astype(np.float64))
    sr, sm = _rolling_sum_(r), _rolling_sum_(mm)
    del ok
    nn = np.maximum(n, 1)
    np.subtract(cov, np.divide(np.multiply(sr, sm, out=sr), nn, out=sr), out=cov)
    np.subtract(var, np.divide(np.multiply(sm, sm, out=sm), nn, out=sm), out=var)
    del sr, sm, nn
    use = (n >= BETA_MIN_OBS) & (var > 1e-12)
    with np.errstate(invalid="ignore", divide="ignore"):
        beta = np.divide(cov, var, out=cov)
    beta[~use] = 1.0
    np.nan_to_num(beta, copy=False, nan=1.0)
    return np.clip(beta, -3.0, 3.0, out=beta).astype(np.float32)


def split_days(n_days: int, cfg: EngineConfig, embargo: int) -> np.ndarray:
    """Split id per day for a single panel: [train][embargo][val][embargo][test], -1 = embargo."""
    d = cfg.data
    n_val = max(1, round(n_days * d.val_fraction)) if d.val_fraction > 0 else 0
    n_test = max(1, round(n_days * d.test_fraction)) if d.test_fraction > 0 else 0
    gaps = embargo * ((n_val > 0) + (n_test > 0))
    n_train = n_days - n_val - n_test - gaps
    if n_train < d.seq_len + 1:
        need = d.seq_len + 1 + gaps + (n_val > 0) + (n_test > 0)
        raise DataError(f"too few trading days: {n_days} after {d.min_date}, need at least ~{need} "
                        f"(seq_len {d.seq_len} + {gaps} embargo days + val/test days); lower "
                        "data.min_date, data.seq_len, data.embargo_days or the val/test fractions")
    split = np.full(n_days, -1, dtype=np.int8)
    split[:n_train] = 0
    v0 = n_train + embargo
    split[v0 : v0 + n_val] = 1
    if n_test:
        split[n_days - n_test :] = 2
    return split


def describe(name: str, days: np.ndarray, dates: list[dt.date]) -> str:
    if not len(days):
        return f"{name}=none (0 days)"
    return f"{name}={dates[days[0]]}..{dates[days[-1]]} ({len(days)} days)"


def empty_f32(rows: int, cols: int) -> torch.Tensor:
    """An uninitialised float32 [rows, cols] tensor whose pages are all mapped at once
    (MAP_POPULATE): one pass of the kernel instead of a fault per 4 KiB page on first touch (~0.6x
    the cost), and no transparent huge pages, whose first touch compacted memory at ~0.5 GB/s on a
    busy machine (6x the 4 KiB faults)."""
    nbytes = rows * cols * 4
    if nbytes < (64 << 20) or not hasattr(mmap, "MAP_POPULATE"):
        return torch.empty(rows, cols)
    buf = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | mmap.MAP_POPULATE)
    return torch.from_numpy(np.frombuffer(buf, dtype=np.float32).reshape(rows, cols))


def float_rows(frame: pl.DataFrame) -> np.ndarray:
    """A writable C-ordered float32 [rows, cols] copy (nulls -> NaN); for narrow frames."""
    a = frame.to_numpy(order="c")
    return a if a.flags.writeable and a.dtype == np.float32 else np.array(a, dtype=np.float32)


class Columns:
    """A frame's float32 columns as zero-copy numpy pieces: parts[k][j] is column j's rows
    bounds[k]:bounds[k+1] (the frame is rechunked first if its columns are chunked differently)."""

    def __init__(self, frame: pl.DataFrame) -> None:
        """Split the frame's columns into aligned chunks (no nulls: see read_columns)."""
        lengths = [tuple(len(c) for c in s.get_chunks()) for s in frame.get_columns()]
        if len(set(lengths)) > 1:
            frame = frame.rechunk()
            lengths = [(frame.height,)]
        self.bounds = np.concatenate([[0], np.cumsum(lengths[0] if lengths else [0])]).astype(np.int64)
        self.parts = [list(p) for p in zip(*[[c.to_numpy() for c in s.get_chunks()]
                                             for s in frame.get_columns()], strict=True)]
        self.width = frame.width

    def gather(self, rows: np.ndarray, cols: slice) -> np.ndarray:
        """Values [len(rows), n] of these rows (sorted ascending) in these columns."""
        js = range(self.width)[cols]
        out = np.empty((len(js), len(rows)), dtype=np.float32)
        cuts = np.searchsorted(rows, self.bounds)
        for k, pieces in enumerate(self.parts):
            a, b = cuts[k], cuts[k + 1]
            if a < b:
                local = rows[a:b] - self.bounds[k]
                for i, j in enumerate(js):
                    np.take(pieces[j], local, out=out[i, a:b])
        return out.T

    def blocks(self) -> list[tuple[int, list[np.ndarray]]]:
        """(first row, column pieces) for blocks of at most CHUNK_ROWS rows."""
        out = []
        for k, cols in enumerate(self.parts):
            n = int(self.bounds[k + 1] - self.bounds[k])
            out += [(int(self.bounds[k]) + r0, [c[r0 : r0 + CHUNK_ROWS] for c in cols])
                    for r0 in range(0, n, CHUNK_ROWS)]
        return out


def scale_into(out: torch.Tensor, cols: Columns, c0: int, scaler: OnlineRobustScaler,
               pool: ThreadPoolExecutor | None = None) -> None:
    """Scale the feature columns c0:c0+width of the row-major matrix out [rows(+1), F] from their
    columns. Per block of rows: the pieces are stacked [width, rows] (in cache), the scaler works
    on it in place and a transposing copy lands it. Half the blocks go to the pool if given."""
    sl = slice(c0, c0 + cols.width)
    blocks = cols.blocks()

    def work(mine: list[tuple[int, list[np.ndarray]]]) -> None:
        buf = np.empty((cols.width, CHUNK_ROWS), dtype=np.float32)
        for r0, pieces in mine:
            n = len(pieces[0])
            blk = buf if n == CHUNK_ROWS else np.empty((cols.width, n), dtype=np.float32)
            np.stack(pieces, out=blk)
            t = scaler.transform_columns_(torch.from_numpy(blk).T, sl)
            out[r0 : r0 + n, sl].copy_(t)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # blocks are small; OpenMP workers would spin against the other thread
    try:
        helper = pool.submit(work, blocks[1::2]) if pool is not None else None
        work(blocks[::2] if helper is not None else blocks)
        if helper is not None:
            helper.result()
    finally:
        torch.set_num_threads(threads)
