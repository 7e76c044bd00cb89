"""The original pipeline through the shipped `atft_pipeline` preset, followed live.

The preset's `cwd` is a stand-in of the seed's `scripts/integrated_ml_training_pipeline.py` that
takes the seed's command line and environment and writes the pipeline's real smoke log (the
original's two prefixes, tqdm fragments) line by line over a few seconds. `runctl status` and the
TUI follow it while it runs, to the right epoch, metrics and end state.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from app_fixtures import sync, wait_for

from tui.app.app import RunctlApp
from tui.presets.registry import PresetRegistry
from tui.runs.launcher import Launcher
from tui.runs.store import RunStore

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ROOT / "presets"
pytestmark = pytest.mark.slow
REPLAY = "ATFT_REPLAY_SECONDS=6"


def _final_checks(data: dict) -> None:
    assert data["state"] == "finished" and data["epoch"] == 1 and data["max_epochs"] == 1
    (rec,) = data["epochs"]
    assert rec["train_loss"] == pytest.approx(0.35075)
    assert rec["horizons"]["1"]["ic"] == pytest.approx(0.0061)
    assert rec["horizons"]["20"]["ic"] == pytest.approx(-0.0131)
    assert {h["scale"] for h in rec["horizons"].values()} == {0.0}  # the seed's variance collapse
    assert data["variance_collapse"]["detected"]
    assert data["exit_reason"] == "finished" and data["exit_status"] == 0


def test_status_follows_the_original_pipeline_live(runctl, logs_dir) -> None:
    r = runctl("--presets", str(PRESETS), "launch", "atft_pipeline", "--env", REPLAY, "--json")
    assert r.returncode == 0, r.stderr
    run = json.loads(r.stdout)["run"]
    manifest = json.loads((logs_dir / "training" / f"{run}.json").read_text())
    assert manifest["argv"][1:4] == ["scripts/integrated_ml_training_pipeline.py", "--data-path",
                                     "output/datasets/ml_dataset_latest_full.parquet"]
    assert "train.batch.train_batch_size=2048" in manifest["argv"] and manifest["log_format"] == "atft"
    assert manifest["env"]["SHARPE_WEIGHT"] == "0.5" and manifest["env"]["GRAD_MONITOR_EVERY"] == "200"
    seen: list[tuple[str, int | None, bool]] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        data = json.loads(runctl("--presets", str(PRESETS), "status", run, "--json").stdout)
        seen.append((data["state"], data["epoch"], bool(data["process"])))
        if data["state"] in ("finished", "crashed", "killed") and data["exit_status"] is not None:
            break  # the end, and the shim's exit line after it
        time.sleep(0.2)
    live = [s for s in seen if s[2]]  # polls while the pipeline's process was alive
    assert any(state in ("launching", "initializing", "training", "validating") for state, _, _ in live), seen
    assert any(state in ("training", "validating") and epoch == 1 for state, epoch, _ in live), seen
    _final_checks(data)
    assert data["source_format"] == "atft"
    assert [c["status"] for c in data["criteria"]] == ["met", "unmet", "pending"]  # Sharpe: nan in this log
    assert data["checkpoints"][0]["verdict"] == "variance_collapsed"
    text = runctl("--presets", str(PRESETS), "status", run).stdout
    assert "finished" in text and "variance" in text.lower()


@sync
async def test_the_tui_follows_the_original_pipeline_live(logs_dir) -> None:
    store = RunStore(logs_dir)
    registry = PresetRegistry(PRESETS)
    m = Launcher(store, registry).launch("atft_pipeline", envs=[REPLAY])
    app = RunctlApp(store, Launcher(store, registry), registry, run=m.run, poll_interval=0.05)
    states: list[str] = []
    async with app.run_test(size=(120, 40)) as pilot:
        def now() -> str:
            if app.view is not None:
                states.append(app.view.state.state)
                return app.view.state.state
            return ""

        await wait_for(pilot, lambda: now() == "finished" and app.view.state.exit_status is not None,
                       timeout=90)
        st = app.view.state
        _final_checks({**st.to_json(), "variance_collapse": {"detected": True},
                       "exit_reason": st.exit_reason, "exit_status": st.exit_status})
        assert app.view.verdicts.checkpoints[0].verdict == "variance_collapsed"
    assert "training" in states or "validating" in states, states  # seen live, before the end
