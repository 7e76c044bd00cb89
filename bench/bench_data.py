"""Data preparation: prepare_data vs a bare read_parquet of the same file, at several sizes.

Each size is a numpy-generated panel with the market's schema (Code, Date, sector, features,
4 targets, ~2% nulls, stocks listing and delisting), cached in bench/out/. read_parquet and
prepare_data run interleaved in one child process per size (best of REPEATS each, so the ratio is
measured in one run); prepare_data's peak RSS is measured in a child of its own (a fresh process:
ru_maxrss is the high-water mark) against the float32 feature matrix it builds.

`python -m bench data` runs the sizes of the issue (1M x 100, 1M x 395, 4M x 100) and the rest of
the cost curve (0.25M / 2M rows x 100, 1M rows x 24 / 200 features);
`python bench/bench_data.py ROWS_M FEATURES [...]` others, e.g. `4.6 395` (the original's full
size: ~7.3 GB of features, a ~7 GB file; run it alone).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("RUNCTL_BENCH_DIR", ROOT / "bench" / "out"))
SEED = 1
DAYS = 1200  # trading days from 2016-01-04; stocks = rows / (0.817 * days)
REPEATS = 3
ROW_GROUP = 125_000
SIZES = ((1.0, 100), (1.0, 395), (4.0, 100))  # (million rows, features): the issue's
CURVE = ((0.25, 100), (2.0, 100), (1.0, 24), (1.0, 200))  # with SIZES: rows at 100 features, features at 1M rows
LISTED = 0.817  # mean share of the days a stock is listed (see _listing)


def _listing(rng: np.random.Generator, stocks: int, days: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last+1 day of each stock: 60% list later, 50% delist earlier (by up to days/3)."""
    first = rng.integers(0, days // 3, stocks) * (rng.random(stocks) < 0.6)
    last = days - rng.integers(0, days // 3, stocks) * (rng.random(stocks) < 0.5)
    return first, last


def _names(features: int) -> list[str]:
    names = ["ret_1d", "ret_5d", "ret_20d", "vol_20d", "log_volume", "volume_ratio"]
    return names + [f"feat_{i:03d}" for i in range(features - len(names))]


def generate(path: Path, stocks: int, days: int, features: int, seed: int = SEED) -> int:
    """Write the panel one row group of stocks at a time (memory: one row group); returns rows."""
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    first, last = _listing(rng, stocks, days)
    dates = np.busday_offset(np.datetime64("2016-01-04"), np.arange(days), roll="forward").astype("datetime64[D]")
    cols = [*_names(features), "target_1d", "target_5d", "target_10d", "target_20d"]
    tmp = path.with_suffix(".tmp")
    writer = None
    rows = s0 = 0
    while s0 < stocks:
        s1, n = s0, 0
        while s1 < stocks and (n == 0 or n + last[s1] - first[s1] <= ROW_GROUP):
            n += last[s1] - first[s1]
            s1 += 1
        stock = np.concatenate([np.full(last[k] - first[k], k) for k in range(s0, s1)])
        day = np.concatenate([np.arange(first[k], last[k]) for k in range(s0, s1)])
        frame: dict[str, object] = {"Code": (1301 + stock).astype(str), "Date": dates[day]}
        for name in cols:
            v = rng.standard_normal(n, dtype=np.float32) * np.float32(0.02)
            frame[name] = pl.Series(name, v, nan_to_null=False).scatter(np.nonzero(rng.random(n) < 0.02)[0], None)
        frame["sector"] = (stock % 33).astype(np.int32)
        table = pl.DataFrame(frame).to_arrow()
        if writer is None:
            writer = pq.ParquetWriter(tmp, table.schema, compression="zstd", use_dictionary=["Code"])
        writer.write_table(table, row_group_size=ROW_GROUP)
        rows += n
        s0 = s1
    assert writer is not None
    writer.close()
    tmp.replace(path)
    return rows


def panel(rows_m: float, features: int) -> Path:
    """The cached panel of about rows_m million rows (generated on first use)."""
    stocks = max(40, round(rows_m * 1e6 / (LISTED * DAYS)))
    path = OUT / f"bench_panel_{stocks}x{DAYS}x{features}.parquet"
    if not path.is_file():
        OUT.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        rows = generate(path, stocks, DAYS, features)
        print(f"generated {path.name}: {rows} rows x {features} features in {time.perf_counter() - t:.0f}s", flush=True)
    return path


_TIMED = """
import json, sys, time
sys.path.insert(0, {root!r})
import polars as pl
import engine.data as engine_data
from engine.config import default_config
cfg = default_config()
cfg.data.path = {path!r}
reads, preps, stages = [], [], {{}}
for _ in range({repeats}):
    t = time.perf_counter(); df = pl.read_parquet(cfg.data.path); reads.append(time.perf_counter() - t)
    rows, width = df.height, df.width
    del df
    t = time.perf_counter(); data = engine_data.prepare_data(cfg, lambda m: None, lambda m: None)
    preps.append(time.perf_counter() - t)
    if preps[-1] == min(preps):
        stages = {{k: round(v, 3) for k, v in engine_data.LAST_TIMINGS.items()}}
    del data
print(json.dumps({{"rows": rows, "columns": width, "reads": reads, "preps": preps, "stages": stages}}))
"""

_PEAK = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
import engine.data as engine_data
from engine.config import default_config
cfg = default_config()
cfg.data.path = {path!r}
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter(); data = engine_data.prepare_data(cfg, lambda m: None, lambda m: None)
s = time.perf_counter() - t
x = data.train.panel.x
print(json.dumps({{"s": s, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "base_mb": base / 1024, "matrix_mb": x.numel() * 4 / 2**20, "shape": list(x.shape),
                  "stages": {{k: round(v, 2) for k, v in engine_data.LAST_TIMINGS.items()}}}}))
"""


def _child(code: str, **kw: object) -> dict:
    out = subprocess.run([sys.executable, "-c", code.format(root=str(ROOT), **kw)], capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


_READ = """
import json, resource, time
import polars as pl
t = time.perf_counter(); df = pl.read_parquet({path!r}); s = time.perf_counter() - t
print(json.dumps({{"s": s, "rows": df.height, "columns": df.width,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""
HUGE_MB = 4096  # a matrix this big is read and prepared once each, in processes of their own


def measure(rows_m: float, features: int, repeats: int = REPEATS, peak: bool = True) -> dict:
    """Ratio prepare_data / read_parquet (best of repeats, interleaved) and the peak RSS.

    A huge panel (the original's full size) is read once and prepared once, each in a process of
    its own (both in one process would hold ~2x the memory)."""
    path = panel(rows_m, features)
    if rows_m * 1e6 * features * 4 / 2**20 > HUGE_MB:
        rd = _child(_READ, path=str(path))
        p = _child(_PEAK, path=str(path))
        res = {"rows": rd["rows"], "features": features, "file_mb": round(path.stat().st_size / 1e6),
               "read_parquet_s": round(rd["s"], 2), "read_parquet_peak_rss_mb": round(rd["peak_mb"]),
               "prepare_data_s": round(p["s"], 2), "ratio": round(p["s"] / rd["s"], 2),
               "peak_rss_mb": round(p["peak_mb"]), "matrix_mb": round(p["matrix_mb"]),
               "peak_over_matrix": round(p["peak_mb"] / p["matrix_mb"], 2), "breakdown_s": p["stages"]}
        print(f"data prep {res['rows']} rows x {features} (once each): read_parquet {rd['s']:.1f}s "
              f"(peak {res['read_parquet_peak_rss_mb']} MB), prepare_data {p['s']:.1f}s, ratio {res['ratio']}x; "
              f"peak RSS {res['peak_rss_mb']} MB = {res['peak_over_matrix']}x the matrix; stages {p['stages']}", flush=True)
        return res
    r = _child(_TIMED, path=str(path), repeats=repeats)
    read_s, prep_s = min(r["reads"]), min(r["preps"])
    res = {"rows": r["rows"], "features": features, "file_mb": round(path.stat().st_size / 1e6),
           "read_parquet_s": round(read_s, 3), "prepare_data_s": round(prep_s, 3),
           "ratio": round(prep_s / read_s, 2), "all_read_s": [round(x, 3) for x in r["reads"]],
           "all_prepare_s": [round(x, 3) for x in r["preps"]], "breakdown_s": r["stages"]}
    if peak:
        p = _child(_PEAK, path=str(path))
        res |= {"peak_rss_mb": round(p["peak_mb"]), "start_rss_mb": round(p["base_mb"]),
                "matrix_mb": round(p["matrix_mb"]), "peak_over_matrix": round(p["peak_mb"] / p["matrix_mb"], 2)}
    print(f"data prep {res['rows']} rows x {features}: read_parquet {read_s:.3f}s, prepare_data {prep_s:.3f}s, "
          f"ratio {res['ratio']}x (aim <= 2x); peak RSS {res.get('peak_rss_mb')} MB = "
          f"{res.get('peak_over_matrix')}x the matrix (aim <= 2x); stages {r['stages']}", flush=True)
    return res


def run(sizes: tuple[tuple[float, int], ...] = SIZES + CURVE) -> dict:
    """Every size in turn (the issue's, then the rest of the cost curve)."""
    return {f"{rows_m:g}M x {features}": measure(rows_m, features) for rows_m, features in sizes}


if __name__ == "__main__":
    args = sys.argv[1:]
    todo = tuple((float(a), int(b)) for a, b in zip(args[::2], args[1::2], strict=True)) or SIZES + CURVE
    print(json.dumps(run(todo), indent=2))
