"""Launch to first training step on the default data, as a ratio to bare `import torch, lightning, polars`."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time


def _bare_import_s() -> float:
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-c", "import torch, lightning, polars"], check=True)
    return time.monotonic() - t0


def _first_step_s(run_dir: str) -> tuple[float, dict[str, float]]:
    """Seconds from spawn to the first [progress] line (progress_every=1), plus phase times."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    t0 = time.monotonic()
    p = subprocess.Popen(
        [sys.executable, "-m", "engine", "train", "--max-epochs", "1", "--run-dir", run_dir,
         "train.trainer.progress_every=1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    phases: dict[str, float] = {}
    marks = {"runctl engine": "first_line", "Fitting OnlineRobustScaler": "data_loaded",
             "Data loaders created": "loaders", "Starting training": "fit_start"}
    assert p.stdout is not None
    try:
        for line in p.stdout:
            for key, name in marks.items():
                if key in line and name not in phases:
                    phases[name] = round(time.monotonic() - t0, 2)
            if "[progress]" in line:
                return time.monotonic() - t0, phases
        raise RuntimeError("engine ended before its first training step")
    finally:
        p.kill()
        p.wait()


def run() -> dict:
    """Median of 3 of each, interleaved."""
    with tempfile.TemporaryDirectory() as tmp:
        _first_step_s(os.path.join(tmp, "warm"))  # generates/caches the default market once
        bare: list[float] = []
        first: list[float] = []
        phases: dict[str, float] = {}
        for i in range(3):
            bare.append(_bare_import_s())
            s, phases = _first_step_s(os.path.join(tmp, f"r{i}"))
            first.append(s)
    bare.sort()
    first.sort()
    return {
        "bare_import_s": round(bare[1], 2),
        "launch_to_first_step_s": round(first[1], 2),
        "ratio": round(first[1] / bare[1], 2),
        "phases_s": phases,
        "original_pipeline_first_epoch_s": "120-210 (docs: 2-3.5 minutes)",
    }
