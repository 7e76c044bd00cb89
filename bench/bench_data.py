"""Data preparation speed: prepare_data on a 1M-row x 100-feature parquet vs a bare read_parquet."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.config import default_config  # noqa: E402
from engine.data import prepare_data  # noqa: E402
from engine.synth import generate_market  # noqa: E402

OUT = Path(os.environ.get("RUNCTL_BENCH_DIR", Path(__file__).resolve().parent / "out"))
STOCKS, DAYS, FEATURES, SEED = 1000, 1200, 100, 1  # ~1.0M rows after listings and delistings
REPEATS = 3


def _best(fn: object) -> float:
    times = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return min(times)


def run() -> dict:
    """Time read_parquet and prepare_data (load, filter, split, scale, index) on the same file."""
    path = OUT / f"bench_{STOCKS}x{DAYS}x{FEATURES}.parquet"
    if not path.is_file():
        t = time.perf_counter()
        generate_market(path, STOCKS, DAYS, FEATURES, SEED)
        print(f"generated {path} in {time.perf_counter() - t:.1f}s")
    rows = pl.scan_parquet(path).select(pl.len()).collect().item()
    cfg = default_config()
    cfg.data.path = str(path)
    read_s = _best(lambda: pl.read_parquet(path))
    prep_s = _best(lambda: prepare_data(cfg, lambda m: None, lambda m: None))
    result = {"rows": rows, "features": FEATURES, "read_parquet_s": round(read_s, 3),
              "prepare_data_s": round(prep_s, 3), "ratio": round(prep_s / read_s, 2)}
    print(f"data prep: {rows} rows x {FEATURES} features: read_parquet {read_s:.3f}s, "
          f"prepare_data {prep_s:.3f}s, ratio {prep_s / read_s:.2f}x (aim <= 2x)")
    return result


if __name__ == "__main__":
    run()
