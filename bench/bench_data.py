"""Data preparation speed: prepare_data on a 1M-row x 100-feature parquet vs a bare read_parquet."""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import engine.data as engine_data  # noqa: E402
from engine.config import default_config  # noqa: E402

OUT = Path(os.environ.get("RUNCTL_BENCH_DIR", Path(__file__).resolve().parent / "out"))
STOCKS, DAYS, FEATURES, SEED = 1000, 1200, 100, 1  # ~1.0M rows after listings and delistings
REPEATS = 5  # read and prepare interleaved; best of each (the machines are noisy)
ROW_GROUP = 125_000


def _generate(path: Path) -> None:
    """A panel with the market's schema and shape (Code, Date, sector, ret_1d ..., 4 targets,
    ~2% nulls, stocks listing/delisting), from numpy directly: only shape and dtypes matter here."""
    rng = np.random.default_rng(SEED)
    first = rng.integers(0, DAYS // 3, STOCKS) * (rng.random(STOCKS) < 0.6)
    last = DAYS - rng.integers(0, DAYS // 3, STOCKS) * (rng.random(STOCKS) < 0.5)
    stock = np.concatenate([np.full(b - a, n) for n, (a, b) in enumerate(zip(first, last, strict=True))])
    day = np.concatenate([np.arange(a, b) for a, b in zip(first, last, strict=True)])
    rows = len(day)
    dates = np.busday_offset(np.datetime64("2016-01-04"), np.arange(DAYS), roll="forward")
    names = ["ret_1d", "ret_5d", "ret_20d", "vol_20d", "log_volume", "volume_ratio"]
    names += [f"feat_{i:02d}" for i in range(FEATURES - len(names))]
    cols: dict[str, object] = {"Code": (1301 + stock).astype(str), "Date": dates[day].astype("datetime64[D]")}
    for name in [*names, "target_1d", "target_5d", "target_10d", "target_20d"]:
        v = rng.standard_normal(rows, dtype=np.float32) * np.float32(0.02)
        cols[name] = pl.Series(name, v, nan_to_null=False).scatter(
            np.nonzero(rng.random(rows) < 0.02)[0], None)
    cols["sector"] = (stock % 33).astype(np.int32)
    tmp = path.with_suffix(".tmp")
    pl.DataFrame(cols).write_parquet(tmp, compression="zstd", row_group_size=ROW_GROUP)
    tmp.replace(path)


def run() -> dict:
    """Time read_parquet and prepare_data (load, filter, split, scale, index) on the same file."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"bench_np_{STOCKS}x{DAYS}x{FEATURES}.parquet"
    gen_s = None
    if not path.is_file():
        t = time.perf_counter()
        _generate(path)
        gen_s = round(time.perf_counter() - t, 1)
        print(f"generated {path} in {gen_s}s")
    rows = pl.scan_parquet(path).select(pl.len()).collect().item()
    cfg = default_config()
    cfg.data.path = str(path)
    cfg.data.min_date = str(dt.date(2016, 1, 1))
    reads, preps, stages = [], [], {}
    for _ in range(REPEATS):
        t = time.perf_counter()
        pl.read_parquet(path)
        reads.append(time.perf_counter() - t)
        t = time.perf_counter()
        engine_data.prepare_data(cfg, lambda m: None, lambda m: None)
        preps.append(time.perf_counter() - t)
        if preps[-1] == min(preps):
            stages = {k: round(v, 3) for k, v in engine_data.LAST_TIMINGS.items()}
    read_s, prep_s = min(reads), min(preps)
    result = {"rows": rows, "features": FEATURES, "read_parquet_s": round(read_s, 3),
              "prepare_data_s": round(prep_s, 3), "ratio": round(prep_s / read_s, 2),
              "breakdown_s": stages, "generate_s": gen_s}
    print(f"data prep: {rows} rows x {FEATURES} features: read_parquet {read_s:.3f}s, "
          f"prepare_data {prep_s:.3f}s, ratio {prep_s / read_s:.2f}x (aim <= 2x); stages {stages}")
    return result


if __name__ == "__main__":
    run()
