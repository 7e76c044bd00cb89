"""Model quality on the default synthetic market after 10 epochs: IC per horizon vs ridge and oracle."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(epochs: int = 10) -> dict:
    """Train the default config for `epochs` epochs; compare the last epoch's IC with the JSON beside the data."""
    from engine.synth import default_market_path, ensure_default_market, oracle_path

    ensure_default_market(lambda _m: None)
    ref = json.loads(oracle_path(default_market_path()).read_text())
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        r = subprocess.run(
            [sys.executable, "-m", "engine", "train", "--max-epochs", str(epochs), "--run-dir", tmp],
            capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        wall = time.monotonic() - t0
        if r.returncode != 0:
            raise RuntimeError(r.stdout[-2000:] + r.stderr[-2000:])
        rows = list(csv.DictReader((Path(tmp) / "metrics.csv").open()))
    last = rows[-1]
    out: dict[str, object] = {"epochs": epochs, "wall_s": round(wall, 1), "sharpe": round(float(last["sharpe"]), 4)}
    verdict = {}
    for h in ("1", "5", "10", "20"):
        ic = float(last[f"ic_h{h}"])
        oracle, ridge = float(ref["oracle_ic"][h]), float(ref["ridge_ic"][h])
        out[f"h{h}"] = {"ic": round(ic, 4), "ridge": round(ridge, 4), "oracle": round(oracle, 4),
                        "ic_over_oracle": round(ic / oracle, 2), "scale": round(float(last[f"scale_h{h}"]), 3)}
        verdict[h] = ic > ridge
    out["above_ridge_every_horizon"] = all(verdict.values())
    out["h1_ge_0.8_oracle"] = float(last["ic_h1"]) >= 0.8 * float(ref["oracle_ic"]["1"])
    out["scale_ge_0.2_every_horizon"] = all(float(last[f"scale_h{h}"]) >= 0.2 for h in ("1", "5", "10", "20"))
    return out
