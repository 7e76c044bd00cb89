"""Model quality on the default synthetic market after 10 epochs: IC per horizon vs ridge and oracle.

The model's IC is its validation IC (the figure the aims use), so the ridge and the oracle it is judged against are scored on
the same validation days (ridge fitted on the engine's training days). The JSON beside the data
holds the market's own figures (ridge scored on the last 30% of days, oracle over all days); they
are reported too, but a 20-day IC over ~150 days has only ~7 independent periods, so comparing
different periods compares mostly noise. The final weights are also scored on the held-out test
split against ridge and oracle on the test days, as a check that nothing was tuned to validation.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def run(epochs: int = 10) -> dict:
    """Train the default config for `epochs` epochs; compare its last epoch's IC with ridge and oracle on the same days."""
    from engine.config import default_config
    from engine.panel import split_days
    from engine.synth import (
        DEFAULT_DAYS,
        default_market_path,
        ensure_default_market,
        oracle_path,
        scores_on_split,
    )

    ensure_default_market(lambda _m: None)
    ref = json.loads(oracle_path(default_market_path()).read_text())
    split = split_days(DEFAULT_DAYS, default_config(), default_config().data.embargo_days)
    train_days, val_days, test_days = (np.nonzero(split == k)[0] for k in (0, 1, 2))
    fit = slice(train_days[0], train_days[-1] + 1)
    (oracle_val, ridge_val), (oracle_test, ridge_test) = scores_on_split(
        fit, [slice(val_days[0], val_days[-1] + 1), slice(test_days[0], test_days[-1] + 1)])
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
        test_ic = _test_ic(Path(tmp) / "checkpoints" / "last.ckpt")
    last = rows[-1]
    out: dict[str, object] = {"epochs": epochs, "wall_s": round(wall, 1), "sharpe": round(float(last["sharpe"]), 4)}
    verdict = {}
    for h in ("1", "5", "10", "20"):
        ic = float(last[f"ic_h{h}"])
        out[f"h{h}"] = {"ic": round(ic, 4), "ridge_val": ridge_val[h], "oracle_val": oracle_val[h],
                        "ic_over_oracle_val": round(ic / oracle_val[h], 2),
                        "ridge_json": ref["ridge_ic"][h], "oracle_json": ref["oracle_ic"][h],
                        "scale": round(float(last[f"scale_h{h}"]), 3),
                        "test_ic": round(test_ic[int(h)], 4), "ridge_test": ridge_test[h],
                        "oracle_test": oracle_test[h]}
        verdict[h] = ic > ridge_val[h]
    out["above_ridge_every_horizon"] = all(verdict.values())
    out["h1_ge_0.8_oracle"] = float(last["ic_h1"]) >= 0.8 * oracle_val["1"]
    out["test_above_ridge_every_horizon"] = all(test_ic[int(h)] > ridge_test[h] for h in ("1", "5", "10", "20"))
    out["scale_ge_0.2_every_horizon"] = all(float(last[f"scale_h{h}"]) >= 0.2 for h in ("1", "5", "10", "20"))
    return out


def _test_ic(ckpt: Path) -> dict[int, float]:
    """IC per horizon of the final weights on the held-out test split (never used for choices)."""
    import torch

    from engine.config import default_config
    from engine.data import make_loader, prepare_data
    from engine.lit_module import EngineModule
    from engine.metrics import evaluate

    cfg = default_config()
    data = prepare_data(cfg, lambda _m: None, lambda _m: None)
    module = EngineModule(cfg, data.n_features, data.return_channel, data.n_stocks)
    state = torch.load(str(ckpt), map_location="cpu", weights_only=False)["state_dict"]
    module.on_load_checkpoint({"state_dict": state})
    module.load_state_dict(state)
    model = (module.ema_model or module.model).eval()
    preds, ys, days, seen = [], [], [], 0
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for batch in make_loader(data.test, shuffle=False):
            preds.append(model(batch["x"], batch["day"])["pred"].float().numpy())
            ys.append(batch["y"].numpy())
            days.append(batch["day"].numpy() + seen)
            seen += int(batch["day"].max()) + 1
    result = evaluate(np.concatenate(preds), np.concatenate(ys), np.concatenate(days), data.horizons)
    return {h: float(m["ic"]) for h, m in result.per_horizon.items()}
