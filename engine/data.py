"""Parquet panel -> dense day x stock arrays -> datasets whose items are batches of whole days."""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch
from torch.utils.data import DataLoader, Dataset

from engine.config import EngineConfig
from engine.scaler import OnlineRobustScaler
from engine.synth import ensure_default_market

KEYS = ("Code", "Date", "sector")
SPLITS = ("train", "val", "test")
BETA_WINDOW, BETA_MIN_OBS = 60, 20
ACCEPTED = "a parquet file, or a folder with train/, val/, test/ subfolders of parquet files"


class DataError(ValueError):
    """Bad input data; the message is one line meant for the user."""


@dataclass
class Panel:
    """Dense arrays over all days x stocks; absent rows are zeros in x and NaN in y."""

    x: torch.Tensor  # [D*N, F] float32, scaled
    y: torch.Tensor  # [D*N, H] float32, raw targets
    n_days: int
    n_stocks: int
    sector: torch.Tensor | None  # [D*N] int64, -1 where unknown
    n_sectors: int
    beta: torch.Tensor | None  # [D*N] float32 market beta from past returns

    @property
    def n_exposures(self) -> int:
        """Columns of the exposures matrix."""
        return (self.n_sectors if self.sector is not None else 0) + (self.beta is not None)


class DayBatchDataset(Dataset):
    """Map-style dataset: item i is batch i, a dict of whole trading days (see docs/design.md)."""

    def __init__(self, panel: Panel, day: np.ndarray, stock: np.ndarray, day_starts: np.ndarray,
                 seq_len: int, name: str) -> None:
        """Samples (day, stock) sorted by day; batch b holds the days day_starts[b]:day_starts[b+1]."""
        self.panel, self.seq_len, self.name = panel, seq_len, name
        days, counts = np.unique(day, return_counts=True)
        self.days = days  # global day indices in this split
        offsets = np.concatenate([[0], np.cumsum(counts)])
        self.bounds = offsets[day_starts].astype(np.int64)  # sample offsets of the batches
        day_pos = np.repeat(np.arange(len(days)), counts)
        batch_of_day = np.repeat(np.arange(len(day_starts) - 1), np.diff(day_starts))
        local = day_pos - day_starts[:-1][batch_of_day[day_pos]] if len(day_pos) else day_pos
        self.day = torch.from_numpy(day.astype(np.int64))
        self.stock = torch.from_numpy(stock.astype(np.int64))
        self.local_day = torch.from_numpy(local.astype(np.int64))
        self._lag = torch.arange(seq_len - 1, -1, -1, dtype=torch.int64) * panel.n_stocks

    @property
    def n_days(self) -> int:
        """Trading days in this split (after dropping small days)."""
        return len(self.days)

    def __len__(self) -> int:
        """Number of batches."""
        return len(self.bounds) - 1

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        """Batch i: x [B, L, F], y [B, H], day [B], stock [B], exposures [B, E] (if any)."""
        if not 0 <= i < len(self):
            raise IndexError(i)
        s, e = int(self.bounds[i]), int(self.bounds[i + 1])
        p, n = self.panel, self.stock[s:e]
        row = self.day[s:e] * p.n_stocks + n
        idx = (row[:, None] - self._lag[None, :]).reshape(-1)  # oldest day first
        x = p.x.index_select(0, idx).view(e - s, self.seq_len, -1)
        out = {"x": x, "y": p.y.index_select(0, row), "day": self.local_day[s:e], "stock": n}
        parts = []
        if p.sector is not None:
            sec = p.sector.index_select(0, row)
            onehot = torch.nn.functional.one_hot(sec.clamp(min=0), p.n_sectors)
            parts.append((onehot * (sec >= 0)[:, None]).float())
        if p.beta is not None:
            parts.append(p.beta.index_select(0, row)[:, None])
        if parts:
            out["exposures"] = torch.cat(parts, dim=1)
        return out


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


def make_loader(dataset: DayBatchDataset, shuffle: bool, num_workers: int = 0) -> DataLoader:
    """A DataLoader over whole-day batches (batch_size=None: the dataset already batches)."""
    return DataLoader(dataset, batch_size=None, shuffle=shuffle, num_workers=num_workers,
                      persistent_workers=num_workers > 0)


def _first_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return (text[:200] + "...") if len(text) > 200 else text


def _sources(path: Path) -> dict[str, list[Path]]:
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


def _load(sources: dict[str, list[Path]], cfg: EngineConfig, where: Path
          ) -> tuple[pl.DataFrame, list[str], list[str], bool]:
    """Scan with projection and the date filter; returns (frame, features, targets, has_sector)."""
    min_date = dt.date.fromisoformat(cfg.data.min_date)
    parts, features, targets, has_sector = [], [], [], True
    for k, (split, files) in enumerate(sources.items()):
        if not files:
            continue
        lf = pl.scan_parquet(files)
        schema = _schema(lf, files[0] if len(files) == 1 else where / split)
        if not parts:
            features, targets = _columns(schema, cfg, where)
            has_sector = "sector" in schema and schema["sector"].is_integer()
        cols = [pl.col("Code").cast(pl.String), _date_expr(schema.get("Date", pl.Date), where)]
        cols += [pl.col("sector").cast(pl.Int64)] if has_sector else []
        cols += [pl.col(c).cast(pl.Float32).fill_null(np.nan) for c in features + targets]
        cols += [pl.lit(k if split != "all" else 0, dtype=pl.Int8).alias("_split")]
        parts.append(lf.select(cols))
    try:
        lf = pl.concat(parts)
        lo = lf.select(pl.col("Date").min()).collect().item()
        # filtering copies every column: skip it when nothing is before min_date (Date is cheap)
        df = (lf if lo is not None and lo >= min_date else lf.filter(pl.col("Date") >= min_date)).collect()
    except Exception as e:
        raise DataError(f"cannot read parquet data in {where}: {_first_line(e)}; expected {ACCEPTED} "
                        "with the same columns") from None
    if df.height == 0:
        span = pl.concat([pl.scan_parquet(f).select(_date_expr(pl.Date, where)) for f in sources.values() if f])
        lo, hi = span.select(pl.col("Date").min().alias("lo"), pl.col("Date").max().alias("hi")).collect().row(0)
        raise DataError(f"no rows with Date >= {min_date} in {where} (data spans {lo}..{hi}); "
                        "lower data.min_date (env MIN_TRAINING_DATE)")
    return df, features, targets, has_sector


def _numpy(df: pl.DataFrame, cols: list[str]) -> np.ndarray:
    """A writable C-ordered float32 [rows, len(cols)] copy (nulls -> NaN)."""
    a = df.select(cols).to_numpy(order="c")
    return a if a.flags.writeable and a.dtype == np.float32 else np.array(a, dtype=np.float32)


def _market_beta(ret: np.ndarray) -> np.ndarray:
    """Rolling beta [D, N] of each stock's returns on the equal-weight market, past window only."""
    ok = np.isfinite(ret)
    r = np.where(ok, ret, 0.0).astype(np.float64)
    cnt = ok.sum(axis=1)
    m = np.where(cnt > 0, r.sum(axis=1) / np.maximum(cnt, 1), 0.0)[:, None]
    mm = m * ok

    def win(a: np.ndarray) -> np.ndarray:
        c = np.cumsum(a, axis=0)
        c[BETA_WINDOW:] = c[BETA_WINDOW:] - c[:-BETA_WINDOW]
        return c

    n, sr, sm = win(ok.astype(np.float64)), win(r), win(mm)
    srm, smm = win(r * m), win(mm * m)
    nn = np.maximum(n, 1)
    cov, var = srm - sr * sm / nn, smm - sm * sm / nn
    with np.errstate(invalid="ignore", divide="ignore"):
        beta = np.where((n >= BETA_MIN_OBS) & (var > 1e-12), cov / var, 1.0)
    return np.clip(np.nan_to_num(beta, nan=1.0), -3.0, 3.0).astype(np.float32)


def _pack_days(counts: np.ndarray, batch_rows: int) -> np.ndarray:
    """Greedy packing of consecutive days into batches of ~batch_rows; returns day start indices."""
    starts, acc = [0], 0
    for i, c in enumerate(counts.tolist()):
        if acc and acc + c > batch_rows:
            starts.append(i)
            acc = 0
        acc += c
    starts.append(len(counts))
    return np.asarray(starts if len(counts) else [0], dtype=np.int64)


def _split_days(n_days: int, cfg: EngineConfig, embargo: int) -> np.ndarray:
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


def _describe(name: str, days: np.ndarray, dates: list[dt.date]) -> str:
    if not len(days):
        return f"{name}=none (0 days)"
    return f"{name}={dates[days[0]]}..{dates[days[-1]]} ({len(days)} days)"


def prepare_data(cfg: EngineConfig, log: Callable[[str], None], warn: Callable[[str], None]) -> PreparedData:
    """Load, filter, split, scale and index the panel; emits log lines #8-#15."""
    d = cfg.data
    if d.path is None:
        path = ensure_default_market(log)
        log(f"[data] Using default synthetic market: {path}")
    else:
        path = Path(d.path).expanduser()
        log(f"[data] Loading {path}")
    sources = _sources(path)
    single = "all" in sources
    counts = [len(sources["all"])] * 3 if single else [len(sources[s]) for s in SPLITS]
    log(f"📂 Found {counts[0]} train, {counts[1]} val, {counts[2]} test files")
    log(f"[data-filter] Global minimum date filter: {d.min_date}")
    df, features, targets, has_sector = _load(sources, cfg, path)

    # dense indices: day = rank of Date, stock = rank of Code
    idx = df.select((pl.col("Date").to_physical().rank("dense") - 1).cast(pl.Int64).alias("d"),
                    (pl.col("Code").rank("dense") - 1).cast(pl.Int64).alias("n"))
    day, stock = idx["d"].to_numpy(), idx["n"].to_numpy()
    dates: list[dt.date] = df["Date"].unique().sort().to_list()
    codes: list[str] = df["Code"].unique().sort().to_list()
    D, N, L = len(dates), len(codes), d.seq_len
    flat = day * N + stock
    keep: np.ndarray | None = None
    if np.bincount(flat, minlength=D * N).max() > 1:
        _, keep = np.unique(flat, return_index=True)  # first occurrence wins (train before val)
        warn(f"[data] {len(flat) - len(keep)} duplicate (Code, Date) rows dropped (kept the first)")
        flat = flat[keep]

    def col(a: np.ndarray) -> np.ndarray:
        return a if keep is None else a[keep]

    embargo = d.embargo_days
    if single:
        if embargo < max(cfg.model.horizons):
            warn(f"[data] data.embargo_days={embargo} is shorter than the longest horizon; "
                 f"using {max(cfg.model.horizons)}")
            embargo = max(cfg.model.horizons)
        day_split = _split_days(D, cfg, embargo)
        row_split = day_split[col(day)]
    else:
        embargo = 0
        row_split = col(df["_split"].to_numpy())
    split = np.full(D * N, -1, dtype=np.int8)
    split[flat] = row_split
    split_days = [np.nonzero((split.reshape(D, N) == k).any(axis=1))[0] for k in range(3)]
    if len(split_days[0]) < L:
        raise DataError(f"too few training days: {len(split_days[0])}, need more than seq_len={L}")
    log("[data] split " + " ".join(_describe(s, x, dates) for s, x in zip(SPLITS, split_days, strict=True))
        + f" embargo={embargo} days")

    # scaler on train rows only, then one dense [D*N, F] array (absent rows stay 0 = NaN scaled)
    a = _numpy(df, features)
    a = a if keep is None else a[keep]
    train_rows = np.nonzero(row_split == 0)[0]
    log(f"Fitting OnlineRobustScaler on training data (max_samples={d.scaler_max_samples}, "
        f"rows={len(train_rows)})...")
    scaler = OnlineRobustScaler(d.scaler_max_samples, d.scaler_clip, seed=cfg.train.seed)
    scaler.fit(a, train_rows)
    unseen = np.nonzero(scaler.n_finite == 0)[0]  # none in the sample: check every train row
    dead = [features[i] for i in unseen if not np.isfinite(a[train_rows, i]).any()]
    if dead:
        raise DataError(f"feature(s) with no finite value in the training period: {', '.join(dead)}; "
                        "drop them via data.features or fix the data")
    log(f"OnlineRobustScaler fitted on {scaler.n_samples} samples ({len(features)} features)")
    flat_t = torch.from_numpy(flat)
    x = torch.zeros(D * N, len(features))
    x[flat_t] = scaler.transform_(torch.from_numpy(a))
    del a
    y = torch.full((D * N, len(targets)), float("nan"))
    y[flat_t] = torch.from_numpy(col(_numpy(df, targets)))

    log("Creating data loaders...")
    sector, n_sectors = None, 0
    if has_sector:
        sec = df.select((pl.col("sector").rank("dense") - 1).fill_null(-1))["sector"].to_numpy()
        n_sectors = int(sec.max()) + 1
        if n_sectors > 0:
            sector = torch.full((D * N,), -1, dtype=torch.int64)
            sector[flat_t] = torch.from_numpy(col(sec).astype(np.int64))
    beta = None
    if d.return_feature in df.columns and d.return_feature in features:
        ret = np.full(D * N, np.nan, dtype=np.float32)
        ret[flat] = col(df[d.return_feature].to_numpy())
        beta = torch.from_numpy(_market_beta(ret.reshape(D, N)).reshape(-1))
    panel = Panel(x, y, D, N, sector, n_sectors, beta)

    first = targets[int(np.argmin(cfg.model.horizons))]
    exists_ok = np.zeros(D * N, dtype=bool)
    exists_ok[flat] = np.isfinite(col(df[first].to_numpy()))
    ok = (exists_ok.reshape(D, N)) & (np.arange(D)[:, None] >= L - 1)
    sets, dropped = [], []
    sizes = (cfg.train.batch.train_batch_size, cfg.train.batch.val_batch_size, cfg.train.batch.val_batch_size)
    for k, name in enumerate(SPLITS):
        sd, sn = np.nonzero(ok & (split.reshape(D, N) == k))
        per_day = np.bincount(sd, minlength=D)
        small = (per_day > 0) & (per_day < d.min_nodes_per_day)
        dropped.append(int(small.sum()))
        big = per_day[sd] >= d.min_nodes_per_day
        sd, sn = sd[big], sn[big]
        starts = _pack_days(per_day[per_day >= d.min_nodes_per_day], sizes[k])
        sets.append(DayBatchDataset(panel, sd, sn, starts, L, name))
    if sum(dropped):
        warn(f"[data] {sum(dropped)} days dropped: fewer than {d.min_nodes_per_day} stocks "
             f"(train={dropped[0]}, val={dropped[1]}, test={dropped[2]})")
    if len(sets[0]) == 0:
        raise DataError(f"no training day has at least {d.min_nodes_per_day} stocks with a target "
                        "(data.min_nodes_per_day); lower it or supply more stocks")
    tr, va = sets[0], sets[1]
    log(f"Data loaders created: train={tr.n_days} days ({len(tr)} batches), val={va.n_days} days "
        f"({len(va)} batches), seq_len={L}, features={len(features)}")
    ret_ch = features.index(d.return_feature) if d.return_feature in features else None
    return PreparedData(train=tr, val=va, test=sets[2], feature_names=features, n_features=len(features),
                        return_channel=ret_ch, n_stocks=N, n_exposures=panel.n_exposures,
                        horizons=list(cfg.model.horizons), scaler=scaler, dates=dates, codes=codes)
