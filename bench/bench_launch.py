"""Launch to the first training step as the data grows: the default market vs 1M x 100, 4M x 100
and 1M x 395 panels (bench/bench_data.py's, cached in bench/out/).

`python -m engine train --max-epochs 1 ... train.trainer.progress_every=1` from spawn to its first
`[progress]` line, median of REPEATS, the sizes interleaved; the phases are the seconds at which the
engine's start-up lines appeared (first line, data loaded, loaders built, fit started), so a reader
sees which part grows with the data. `python bench/bench_launch.py`.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_data import panel  # noqa: E402

REPEATS = 3
SIZES = (None, (1.0, 100), (4.0, 100), (1.0, 395))  # None: the default synthetic market
MARKS = {"runctl engine": "first_line", "Fitting OnlineRobustScaler": "keys_indexed",
         "OnlineRobustScaler fitted": "features_scaled", "Data loaders created": "loaders",
         "Starting training": "fit_start"}


def first_step(run_dir: str, data: Path | None) -> tuple[float, dict[str, float]]:
    """Seconds from spawn to the first [progress] line, and when each start-up line appeared."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "engine", "train", "--max-epochs", "1", "--run-dir", run_dir,
           "train.trainer.progress_every=1"]
    if data is not None:
        cmd[4:4] = ["--data-path", str(data)]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    phases: dict[str, float] = {}
    tail: list[str] = []
    assert p.stdout is not None
    try:
        for line in p.stdout:
            tail = [*tail[-20:], line]
            for key, name in MARKS.items():
                if key in line and name not in phases:
                    phases[name] = round(time.monotonic() - t0, 2)
            if "[progress]" in line:
                return time.monotonic() - t0, phases
        raise RuntimeError("engine ended before its first training step:\n" + "".join(tail))
    finally:
        p.kill()
        p.wait()


def run(sizes: tuple[tuple[float, int] | None, ...] = SIZES) -> dict:
    """Median of REPEATS per size, interleaved (after one warm-up launch that caches the market)."""
    paths = {s: (panel(*s) if s is not None else None) for s in sizes}
    label = {s: "default market" if s is None else f"{s[0]:g}M x {s[1]}" for s in sizes}
    times: dict[object, list[tuple[float, dict[str, float]]]] = {s: [] for s in sizes}
    with tempfile.TemporaryDirectory() as tmp:
        first_step(os.path.join(tmp, "warm"), None)
        for r in range(REPEATS):
            for i, s in enumerate(sizes):
                times[s].append(first_step(os.path.join(tmp, f"r{r}_{i}"), paths[s]))
    out = {}
    for s in sizes:
        med = statistics.median(t for t, _ in times[s])
        phases = min(times[s], key=lambda tp: abs(tp[0] - med))[1]
        out[label[s]] = {"launch_to_first_step_s": round(med, 2), "all_s": [round(t, 2) for t, _ in times[s]],
                         "phases_s": phases}
        print(f"launch -> first step, {label[s]}: {med:.2f}s (phases {phases})", flush=True)
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
