"""A user's own Lightning script through a preset's `command`, controlled like the engine.

tests/scripts/user_train.py is its own LightningModule on random data (nothing of the engine's
model): with engine.stream.RunctlCallback it writes the documented stream; with `--no-callback` it
is plain Lightning (CSVLogger metrics.csv, a ModelCheckpoint), followed through the CSV.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.waiting import wait_until
from tui.presets.registry import PresetRegistry
from tui.runs.launcher import Launcher
from tui.runs.store import RunStore
from tui.state.follow import read_state

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

PRESET = """description = "a user script ({variant})"
max_epochs = {epochs}
cwd = "{root}"
command = ["{{python}}", "tests/scripts/user_train.py", "--run-dir", "{{run_dir}}", "--max-epochs", "{{max_epochs}}",
           "--sleep", "{sleep}"{extra}]
resume_args = ["--ckpt", "{{ckpt}}"]

[[criteria]]
metric = "completed"
label = "completes"

[[criteria]]
metric = "val_acc"
op = ">"
value = 0.6
label = "val_acc above 0.6"

[[checkpoints]]
epoch = 2
title = "Epoch 2"
rules = [
  {{ when = [{{ metric = "val_acc", op = ">", value = 0.5 }}], verdict = "learning", level = "good", say = "it learns" }},
  {{ verdict = "stuck", level = "bad", say = "no" }},
]

[next.learning]
why = "fine"
"""


def _presets(tmp_path: Path, epochs: int = 3, sleep: float = 0.0, plain: bool = False) -> Path:
    d = tmp_path / "presets"
    d.mkdir(exist_ok=True)
    extra = ', "--no-callback"' if plain else ""
    name = "plain" if plain else "user"
    (d / f"{name}.toml").write_text(PRESET.format(variant=name, epochs=epochs, root=ROOT, sleep=sleep,
                                                  extra=extra))
    return d


def _wait(cond, timeout: float = 120.0, step: float = 0.2) -> bool:  # noqa: ANN001
    return wait_until(cond, timeout, step)


def _status(runctl, run: str, presets: Path) -> dict:
    r = runctl("--presets", str(presets), "status", run, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_user_script_launched_followed_and_judged(logs_dir, runctl, tmp_path) -> None:
    presets = _presets(tmp_path)
    r = runctl("--presets", str(presets), "launch", "user", "--follow")
    assert r.returncode == 0, r.stdout + r.stderr
    run = r.stdout.split()[1]
    data = _status(runctl, run, presets)
    assert data["state"] == "finished" and data["exit_reason"] == "finished" and data["epoch"] == 3
    assert [e["epoch"] for e in data["epochs"]] == [1, 2, 3]
    assert all(e["metrics"]["val_acc"] is not None for e in data["epochs"])
    assert [c["status"] for c in data["criteria"]] == ["met", "met"]
    assert data["checkpoints"][0]["verdict"] == "learning"
    assert any(row["key"] == "val_acc" for row in data["table"])
    assert data["manifest"]["kind"] == "command"
    ckpts = Path(data["manifest"]["run_dir"]) / "checkpoints"
    assert {"epoch=001.ckpt", "epoch=003.ckpt", "last.ckpt"} <= {p.name for p in ckpts.iterdir()}
    report = runctl("--presets", str(presets), "report", run)
    assert report.returncode == 0 and "val_acc" in report.stdout and "tests/scripts/user_train.py" in report.stdout


def test_kill_then_resume_continues_at_the_right_epoch(logs_dir, runctl, tmp_path) -> None:
    presets = _presets(tmp_path, epochs=4, sleep=0.08)
    store = RunStore(logs_dir)
    launcher = Launcher(store, PresetRegistry(presets))
    m = launcher.launch("user")
    log = store.log_path(m.run)
    assert _wait(lambda: read_state(log).epoch == 2 and "[progress] epoch=2/4" in log.read_text())
    launcher.kill(m.run, grace=30)
    ckpts = Path(m.run_dir) / "checkpoints"
    st = store.state(store.get(m.run))
    assert st.state == "killed" and st.exit_status == 143 and (ckpts / "interrupted.ckpt").is_file()
    launcher.resume(m.run)
    assert _wait(lambda: store.state(store.get(m.run)).state == "finished", timeout=180)
    text = log.read_text()
    assert f"--ckpt {ckpts / 'interrupted.ckpt'}" in " ".join(store.get(m.run).cmdline)
    # every epoch validated exactly once over both attempts; the resumed one goes on at epoch 2
    assert [line.split("epoch=")[1].split()[0] for line in text.splitlines() if "[metrics] epoch=" in line] \
        == ["1", "2", "3", "4"]
    resumed = text.split("[exit] reason=terminated", 1)[1]
    assert "[main] Epoch 2/4" in resumed and "[main] Epoch 1/4" not in resumed
    data = _status(runctl, m.run, presets)
    assert data["state"] == "finished" and [e["epoch"] for e in data["epochs"]] == [1, 2, 3, 4]


def test_plain_lightning_script_without_the_callback(logs_dir, runctl, tmp_path) -> None:
    """CSVLogger only: epochs and metrics from metrics.csv, the end from the supervise shim."""
    presets = _presets(tmp_path, epochs=3, sleep=0.02, plain=True)
    store = RunStore(logs_dir)
    launcher = Launcher(store, PresetRegistry(presets))
    m = launcher.launch("plain")
    assert _wait(lambda: store.state(store.get(m.run)).state in ("finished", "crashed"))
    data = _status(runctl, m.run, presets)
    assert data["state"] == "finished" and data["exit_status"] == 0, data
    assert [e["epoch"] for e in data["epochs"]] == [1, 2, 3] and data["epoch"] == 3
    assert all(e["metrics"].get("val_acc") is not None for e in data["epochs"])
    assert data["criteria"][1]["status"] == "met"
    # kill and resume work as for any command: from the script's own last.ckpt
    m2 = Launcher(store, PresetRegistry(_presets(tmp_path, epochs=4, sleep=0.15, plain=True))).launch("plain")
    assert _wait(lambda: any(Path(m2.run_dir).glob("version_*/metrics.csv"))
                 and (Path(m2.run_dir) / "checkpoints" / "last.ckpt").is_file())
    launcher.kill(m2.run, grace=30)
    st = store.state(store.get(m2.run))
    assert st.state == "killed" and st.exit_reason == "terminated"  # plain Lightning exits 0 on SIGTERM
    launcher.resume(m2.run)
    assert _wait(lambda: store.state(store.get(m2.run)).state == "finished", timeout=180)
    assert "--ckpt" in store.get(m2.run).cmdline
    st = store.state(store.get(m2.run))
    assert [r.epoch for r in st.epochs] == [1, 2, 3, 4] and st.epochs[-1].metrics.get("val_acc") is not None
