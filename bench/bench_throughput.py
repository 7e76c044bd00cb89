"""Training throughput (samples/s) with bf16-mixed vs 32-true on this machine's accelerator."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

PROGRESS = re.compile(r"\[progress\] epoch=\d+/\d+ step=(\d+)/(\d+) .* steps/s=([\d.]+)")
ROWS_PER_BATCH = 2000  # default train_batch_size=2048 rows, filled with whole days (~2000 on the default market)


def _steps_per_s(precision: str, extra: list[str]) -> float:
    """steps/s at the end of a 40-batch epoch."""
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run(
            [sys.executable, "-m", "engine", "train", "--max-epochs", "1", "--run-dir", tmp,
             f"train.trainer.precision={precision}", "train.trainer.limit_train_batches=40",
             "train.trainer.limit_val_batches=1", "train.trainer.progress_every=40", *extra],
            capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}, check=True,
        )
    return float(PROGRESS.findall(r.stdout)[-1][2])


def run() -> dict:
    """bf16-mixed and 32-true on the default data (CUDA too when present)."""
    import torch

    out: dict[str, object] = {"device": "cuda" if torch.cuda.is_available() else "cpu"}
    rates: dict[str, list[float]] = {}
    for precision in ("32-true", "bf16-mixed", "32-true", "bf16-mixed"):
        rates.setdefault(precision, []).append(_steps_per_s(precision, []) * ROWS_PER_BATCH)
    for k, v in rates.items():
        out[f"samples_per_s_{k}"] = round(max(v))
    out["bf16_over_fp32"] = round(max(rates["bf16-mixed"]) / max(rates["32-true"]), 2)
    out["note"] = "samples/s = steps/s x train_batch_size (rows per whole-day batch, approximately)"
    return out
