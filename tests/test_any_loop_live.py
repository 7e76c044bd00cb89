"""Any training loop, live: two scripts nobody instrumented, launched from presets with `command`.

- tests/scripts/plain_loop.py: a plain PyTorch loop (tqdm, `Epoch N: train_loss=.. val_loss=..
  val_acc=..`, a SummaryWriter, its own `ckpt.pt`, `--resume` without a checkpoint path);
- tests/scripts/lightning_default.py: plain Lightning with its default logger (TensorBoardLogger:
  the tests' environment has tensorboard installed, a dev dependency) and its default
  ModelCheckpoint (`lightning_logs/version_N/checkpoints/epoch=E-step=S.ckpt`), resumed with
  `--ckpt {ckpt}`. Lightning's rich progress bar prints nothing while the output is not a
  terminal: its epochs and metrics come from the event files alone.

Each: launch, live epochs and metrics by the script's own names, a criterion on such a name met,
kill mid-run, resume from the script's own checkpoint continuing where it stopped, every epoch
counted once.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

PLAIN = f"""description = "a plain PyTorch loop"
command = ["{{python}}", "{ROOT}/tests/scripts/plain_loop.py", "--out", "{{run_dir}}", "--max-epochs", "{{max_epochs}}"]
override_format = ["--{{key}}", "{{value}}"]
resume_args = ["--resume"]
checkpoint_files = "{{run_dir}}/ckpt.pt"
max_epochs = 4

[overrides]
sleep = 0.12

[[criteria]]
metric = "val_acc"
op = ">="
value = 0.6
label = "val_acc at least 0.6"

[[criteria]]
metric = "val/loss"
op = "<"
value = 5.0
label = "the SummaryWriter's val/loss below 5"
"""

LIGHTNING = f"""description = "plain Lightning, its default logger and checkpoints"
command = ["{{python}}", "{ROOT}/tests/scripts/lightning_default.py", "--run-dir", "{{run_dir}}",
           "--max-epochs", "{{max_epochs}}", "--sleep", "0.12"]
resume_args = ["--ckpt", "{{ckpt}}"]
checkpoint_files = "{{run_dir}}/lightning_logs/version_*/checkpoints/*.ckpt"
max_epochs = 4

[[criteria]]
metric = "val_loss"
op = "<"
value = 5.0
label = "val_loss below 5"
"""


def _presets(tmp_path: Path) -> Path:
    d = tmp_path / "presets"
    d.mkdir(exist_ok=True)
    (d / "plain.toml").write_text(PLAIN)
    (d / "lit.toml").write_text(LIGHTNING)
    return d


def _status(runctl, presets: Path, run: str) -> dict:  # noqa: ANN001
    r = runctl("--presets", str(presets), "status", run, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _validated(data: dict) -> list[int]:
    return [e["epoch"] for e in data["epochs"] if e["validated"]]


@pytest.mark.parametrize("preset", ["plain", "lit"])
def test_launch_follow_kill_resume_a_script_as_it_is(runctl, tmp_path: Path, preset: str) -> None:
    presets = _presets(tmp_path)
    r = runctl("--presets", str(presets), "launch", preset, "--json")
    assert r.returncode == 0, r.stderr
    run = json.loads(r.stdout.splitlines()[0])["run"]

    # live: the first epoch with the script's own metric names, while it trains
    seen: dict = {}

    def first_epoch() -> bool:
        seen.update(_status(runctl, presets, run))
        return bool(_validated(seen)) and seen["state"] in ("training", "validating")

    assert wait_until(first_epoch, 90, 0.3), seen
    assert seen["phases"]["first_eval"] and not seen["phases"].get("device", False)
    metrics = next(e for e in seen["epochs"] if e["validated"])["metrics"]
    assert {"val_loss", "val_acc"} <= set(metrics), metrics
    assert seen["process"] is not None and seen["process"]["alive"]

    # kill mid-run: its own checkpoint of the last finished epoch stays
    k = runctl("--presets", str(presets), "kill", run, "--grace", "20")
    assert k.returncode == 0, k.stderr
    killed = _status(runctl, presets, run)
    assert killed["state"] == "killed", killed["state"]
    done_before = _validated(killed)
    assert 1 <= len(done_before) < 4
    assert killed["recommendation"]["action"] == "resume", killed["recommendation"]

    # resume from the script's own checkpoint: training again at once, then to the end
    r = runctl("--presets", str(presets), "resume", run, "--json")
    assert r.returncode == 0, r.stderr
    now = _status(runctl, presets, run)
    assert now["state"] in ("launching", "initializing", "training", "validating"), now["state"]
    assert now["recommendation"]["action"] != "resume"
    end: dict = {}

    def finished() -> bool:
        end.update(_status(runctl, presets, run))
        return end["state"] in ("finished", "crashed", "killed")

    assert wait_until(finished, 150, 0.5), end
    assert end["state"] == "finished", (end["state"], end["error"])
    assert _validated(end) == [1, 2, 3, 4]
    assert all(c["status"] == "met" for c in end["criteria"]), end["criteria"]
    # it went on where it stopped: no finished epoch trained twice
    log = Path(end["log"]).read_text()
    run_dir = Path(end["manifest"]["run_dir"])
    if preset == "plain":
        assert f"Resuming from {run_dir}/ckpt.pt at epoch {len(done_before) + 1}" in log
        for e in range(1, 5):
            assert log.count(f"Epoch {e}: train_loss=") == 1, e
    else:
        from tui.log.events import Scalars
        from tui.log.sources.tensorboard import TensorBoardReader

        assert "Restoring states from the checkpoint path" in log
        resumed = TensorBoardReader(str(run_dir / "lightning_logs/version_1/events.out.tfevents.*")).poll()
        epochs = [ev.epoch for ev in resumed if isinstance(ev, Scalars) and ev.epoch is not None]
        assert epochs and min(epochs) > len(done_before) - 1 and max(epochs) == 4, epochs
