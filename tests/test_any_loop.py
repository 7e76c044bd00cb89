"""Any training loop as it is: recorded outputs of real runs (tests/data/any_loop, README there says
how each was made) read through a run's store into `status`, the report and the TUI, with the
preset naming each script's own metrics.

- nanoGPT's `train.py` (steps only: `step N: train loss X, val loss Y`, `iter N: loss X, ...`),
  resumed once (`--init_from=resume`, the same log);
- an HF Trainer script (printed dicts, quoted numbers, `trainer_state.json`);
- a plain Lightning script with its default logger (TensorBoard event file; rich prints nothing);
- a plain PyTorch loop (`Epoch N: train_loss=... val_loss=... val_acc=...`, tqdm, SummaryWriter).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from app_fixtures import sync, wait_for

from tui.cli.main import main
from tui.presets.registry import PresetRegistry
from tui.runs import procs
from tui.runs.store import Manifest, RunStore

DATA = Path(__file__).parent / "data" / "any_loop"
EXIT = "[2026-12-05 17:40:00,000][runctl][INFO] - [exit] reason=finished status=0\n"  # the shim's

PRESETS = {
    "nano": '''
description = "nanoGPT's train.py, unmodified"
command = ["{python}", "train.py", "config/train_shakespeare_char.py", "--out_dir={run_dir}",
           "--max_iters={max_steps}"]
override_format = "--{key}={value}"
resume_args = ["--init_from=resume"]
checkpoint_files = "{run_dir}/ckpt.pt"
max_steps = 200
[[criteria]]
metric = "val_loss"
op = "<"
value = 2.0
label = "val loss below 2.0"
[[criteria]]
metric = "loss"
op = "<"
value = 2.5
label = "train loss (per step) below 2.5"
[[checkpoints]]
step = 100
title = "Step 100 evaluation"
rules = [{ when = [{ metric = "val_loss", op = "<", value = 2.5 }], verdict = "learning", level = "good", say = "go on" },
         { verdict = "stuck", level = "bad", say = "stop" }]
''',
    "hf": '''
description = "an HF Trainer script"
command = ["{python}", "train.py", "--output-dir", "{run_dir}"]
max_epochs = 3
[[criteria]]
metric = "eval_loss"
op = "<"
value = 0.6
label = "eval loss below 0.6"
[[criteria]]
metric = "eval_accuracy"
op = ">="
value = 0.8
label = "eval accuracy at least 0.8"
[[checkpoints]]
epoch = 2
title = "Epoch 2 evaluation"
rules = [{ when = [{ metric = "eval_accuracy", op = ">", value = 0.8 }], verdict = "good", level = "good" },
         { verdict = "poor", level = "bad" }]
''',
    "lit": '''
description = "plain Lightning, its default logger"
command = ["{python}", "train.py", "--run-dir", "{run_dir}", "--max-epochs", "{max_epochs}"]
max_epochs = 4
[[criteria]]
metric = "val_loss"
op = "<"
value = 0.3
label = "val loss below 0.3 after {max_epochs} epochs"
[[checkpoints]]
epoch = 2
rules = [{ when = [{ metric = "val_acc", op = ">", value = 0.9 }], verdict = "good", level = "good" },
         { verdict = "poor", level = "bad" }]
''',
    "plain": '''
description = "a plain PyTorch loop"
command = ["{python}", "train.py", "--out", "{run_dir}", "--max-epochs", "{max_epochs}"]
override_format = ["--{key}", "{value}"]
max_epochs = 4
[[criteria]]
metric = "val_acc"
op = ">="
value = 0.9
label = "val accuracy at least 0.9"
[[criteria]]
metric = "val/acc"
op = ">="
value = 0.9
label = "val/acc (TensorBoard) at least 0.9"
''',
}


@pytest.fixture
def presets(tmp_path: Path) -> Path:
    d = tmp_path / "presets"
    d.mkdir()
    (d / "train.py").write_text("")
    for name, text in PRESETS.items():
        (d / f"{name}.toml").write_text(text)
    return d


def _dead() -> procs.Identity:
    p = subprocess.Popen(["true"])
    ident = procs.identify(p.pid) or procs.Identity(p.pid, time.time(), ("true",))
    p.wait()
    return ident


def put_run(logs: Path, presets: Path, name: str, logs_in_order: list[str],
            files: dict[str, str] | None = None, exit_line: bool = True) -> Manifest:
    """A run of preset `name` whose log is these recorded logs one after the other (a resume
    appends to the same log) and whose run folder holds `files` (recorded file -> path in it)."""
    store = RunStore(logs)
    store.training_dir.mkdir(parents=True, exist_ok=True)
    run = f"{name}_20261205_174000"
    run_dir = store.run_dir(run)
    for src, dest in (files or {}).items():
        (run_dir / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DATA / src, run_dir / dest)
    parts = [(DATA / f).read_bytes() for f in logs_in_order]
    text = b"".join(p if p.endswith(b"\n") else p + b"\n" for p in parts)
    store.log_path(run).write_bytes(text + (EXIT.encode() if exit_line else b""))
    preset = PresetRegistry(presets).get(name)
    ident = _dead()
    m = Manifest(run=run, name=name, preset=name, log=str(store.log_path(run)), run_dir=str(run_dir),
                 pid_file=str(store.pid_path(name)), created_at=1796492000.0, host="box", kind="command",
                 pid=ident.pid, create_time=ident.create_time, cmdline=ident.cmdline,
                 cwd=str(presets), argv=tuple(preset.command_argv(run_dir, run)),
                 sources=preset.source_config(run_dir, run).to_json())
    store.save(m)
    return m


def status(capsys: pytest.CaptureFixture[str], logs: Path, presets: Path, run: str) -> dict:
    assert main(["--logs", str(logs), "--presets", str(presets), "status", run, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_nanogpt_steps_criteria_and_a_step_checkpoint(capsys, tmp_path: Path, presets: Path) -> None:
    logs = tmp_path / "_logs"
    m = put_run(logs, presets, "nano", ["nanogpt_train.log"])
    data = status(capsys, logs, presets, m.run)
    assert data["state"] == "finished" and data["axis"] == "step" and data["max_steps"] == 200
    points = [(e["epoch"], e["step"], e["metrics"]["val_loss"]) for e in data["epochs"] if e["validated"]]
    assert [p[0] for p in points] == [0, 50, 100, 150, 200] and points[-1][2] == pytest.approx(1.897)
    assert data["latest"]["loss"]["step"] == 200  # the per-step train loss: its latest value
    crit = {c["label"]: c for c in data["criteria"]}
    assert crit["val loss below 2.0"]["status"] == "met"
    assert crit["val loss below 2.0"]["value"] == pytest.approx(1.897)
    assert crit["train loss (per step) below 2.5"]["status"] == "met"
    (cp,) = data["checkpoints"]
    assert (cp["axis"], cp["epoch"], cp["status"], cp["verdict"]) == ("step", 100, "decided", "learning")
    phases = data["phases"]
    assert set(phases) == {"started", "first_output", "first_step", "first_eval", "checkpoint"}
    assert phases["first_step"] and phases["first_eval"]
    # the text view says steps, not epochs
    assert main(["--logs", str(logs), "--presets", str(presets), "status", m.run]) == 0
    text = capsys.readouterr().out
    assert "step 200/200" in text and "\nSteps\n" in text and "Process started" in text
    assert "Device detected" not in text


def test_nanogpt_resumed_counts_each_evaluation_once(capsys, tmp_path: Path, presets: Path) -> None:
    """The resumed process evaluates step 100 again: one point, the later numbers."""
    logs = tmp_path / "_logs"
    m = put_run(logs, presets, "nano", ["nanogpt_first.log", "nanogpt_resume.log"])
    data = status(capsys, logs, presets, m.run)
    steps = [e["epoch"] for e in data["epochs"] if e["validated"]]
    assert steps == [0, 50, 100, 150, 200]
    at100 = next(e for e in data["epochs"] if e["epoch"] == 100)
    assert at100["metrics"]["val_loss"] == pytest.approx(2.239)  # the resumed evaluation's


def test_hf_trainer_dicts_and_its_state_file(capsys, tmp_path: Path, presets: Path) -> None:
    logs = tmp_path / "_logs"
    m = put_run(logs, presets, "hf", ["hf_trainer.log"],
                {"hf_trainer_state.json": "checkpoint-48/trainer_state.json"})
    data = status(capsys, logs, presets, m.run)
    assert data["state"] == "finished" and data["axis"] == "epoch"
    evals = [e for e in data["epochs"] if e["validated"]]
    assert [e["epoch"] for e in evals] == [1, 2, 3]
    assert [e["step"] for e in evals] == [16, 32, 48]  # trainer_state.json's steps
    assert evals[-1]["metrics"]["eval_loss"] == pytest.approx(0.4905, abs=1e-4)
    crit = {c["label"]: c["status"] for c in data["criteria"]}
    assert crit == {"eval loss below 0.6": "met", "eval accuracy at least 0.8": "met"}
    (cp,) = data["checkpoints"]
    assert cp["status"] == "decided" and cp["verdict"] == "good"
    assert data["progress"]["step"] == 48 and data["progress"]["steps"] == 48


def test_hf_trainer_killed_then_resumed(capsys, tmp_path: Path, presets: Path) -> None:
    logs = tmp_path / "_logs"
    m = put_run(logs, presets, "hf", ["hf_first.log", "hf_resume.log"])
    data = status(capsys, logs, presets, m.run)
    assert [e["epoch"] for e in data["epochs"] if e["validated"]] == [1, 2, 3]


def test_lightning_default_logger_event_file(capsys, tmp_path: Path, presets: Path) -> None:
    """rich prints nothing per epoch: the epochs and metrics come from the TensorBoard file."""
    logs = tmp_path / "_logs"
    m = put_run(logs, presets, "lit", ["lightning_default.log"],
                {"lightning_default.tfevents": "lightning_logs/version_0/events.out.tfevents.1.box.1.0"})
    data = status(capsys, logs, presets, m.run)
    assert data["state"] == "finished" and data["axis"] == "epoch" and data["max_epochs"] == 4
    evals = [e for e in data["epochs"] if e["validated"]]
    assert [e["epoch"] for e in evals] == [1, 2, 3, 4] and [e["step"] for e in evals] == [7, 15, 23, 31]
    assert set(evals[-1]["metrics"]) >= {"train_loss", "val_loss", "val_acc"}
    (crit,) = data["criteria"]
    assert crit["status"] == "met" and crit["label"] == "val loss below 0.3 after 4 epochs"
    assert data["checkpoints"][0]["verdict"] == "good"


def test_plain_loop_stdout_and_summary_writer(capsys, tmp_path: Path, presets: Path) -> None:
    logs = tmp_path / "_logs"
    m = put_run(logs, presets, "plain", ["plain_loop.log"],
                {"plain_loop.tfevents": "tb/events.out.tfevents.1.box.1.0"})
    data = status(capsys, logs, presets, m.run)
    assert [e["epoch"] for e in data["epochs"] if e["validated"]] == [1, 2, 3, 4]
    last = data["epochs"][-1]["metrics"]
    assert last["val_acc"] == pytest.approx(1.0, abs=0.1) and "val_loss" in last
    assert "val/acc" in data["latest"]  # the SummaryWriter's names, by step: the latest value
    assert all(c["status"] == "met" for c in data["criteria"]), data["criteria"]
    assert data["progress"]["postfix"]  # the tqdm bar's loss=...


def test_report_of_a_step_run(capsys, tmp_path: Path, presets: Path) -> None:
    logs = tmp_path / "_logs"
    m = put_run(logs, presets, "nano", ["nanogpt_train.log"])
    assert main(["--logs", str(logs), "--presets", str(presets), "report", m.run]) == 0
    md = capsys.readouterr().out
    assert "val loss below 2.0" in md and "Step 100 evaluation (step 100)" in md
    assert "learning" in md


@sync
async def test_tui_shows_a_step_run(tmp_path: Path, presets: Path) -> None:
    from textual.widgets import DataTable

    from tui.app.app import RunctlApp
    from tui.app.widgets.phases import PhaseChecklist

    logs = tmp_path / "_logs"
    m = put_run(logs, presets, "nano", ["nanogpt_train.log"])
    store = RunStore(logs)
    app = RunctlApp(store, None, PresetRegistry(presets), run=m.run, poll_interval=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.view is not None and app.view.state.epochs
                       and "step 200/200" in str(app.main.query_one("#epoch-label").render()))
        await wait_for(pilot, lambda: app.main.query_one("#timeline-table", DataTable).row_count >= 5)
        await wait_for(pilot, lambda: "learning" in str(app.main.query_one("#checkpoints").render()))
        assert "(step 100)" in str(app.main.query_one("#checkpoints").render())
        checklist = str(app.main.query_one(PhaseChecklist).render())
        assert "Device" not in checklist and "device" not in checklist
        table = app.main.query_one("#metrics-table", DataTable)
        rows = [" ".join(str(c) for c in table.get_row_at(i)) for i in range(table.row_count)]
        assert any("val/loss < 2" in r and "✅" in r and "1.897" in r for r in rows), rows


@pytest.mark.parametrize(("fmt", "expected"), [
    ('', ["max_iters=100", "lr=0.001"]),  # Hydra's, the default
    ('override_format = "--{key}={value}"\n', ["--max_iters=100", "--lr=0.001"]),  # nanoGPT's
    ('override_format = ["--{key}", "{value}"]\n', ["--max_iters", "100", "--lr", "0.001"]),  # argparse
])
def test_overrides_reach_the_script_in_its_own_syntax(tmp_path: Path, fmt: str, expected: list[str]) -> None:
    from tui.presets.registry import resolve

    d = tmp_path / "p"
    d.mkdir()
    (d / "train.py").write_text("")
    (d / "s.toml").write_text('command = ["{python}", "train.py"]\nmax_steps = 50\n' + fmt
                              + '[overrides]\nmax_iters = 100\n')
    preset = resolve(PresetRegistry(d).get("s"), ["lr=0.001", "max_steps=80"])
    argv = preset.command_argv(tmp_path / "run", "s_1")
    assert argv[2:] == expected
    assert preset.max_steps == 80  # the preset's own key, not passed on


def test_max_epochs_set_on_the_command_line_relabels_the_criteria(tmp_path: Path, presets: Path) -> None:
    from tui.presets.registry import resolve

    preset = resolve(PresetRegistry(presets).get("lit"), ["max_epochs=7"])
    assert preset.max_epochs == 7
    assert preset.criteria[0].label == "val loss below 0.3 after 7 epochs"
    assert "7" in preset.command_argv(tmp_path, "lit_1")


def test_metrics_test_tries_a_preset_on_a_recorded_log(capsys, tmp_path: Path, presets: Path) -> None:
    """`runctl metrics test PRESET LOG`: each line's source and values, then where the names the
    preset judges on come from; explicit patterns as the run would use them; stdin by default."""
    (presets / "pat.toml").write_text(PRESETS["nano"].replace(
        'max_steps = 200', 'max_steps = 200\n[metrics]\npatterns = ["mfu (?P<mfu_pct>[-0-9.]+)%"]'))
    log = DATA / "nanogpt_train.log"
    assert main(["--presets", str(presets), "metrics", "test", "pat", str(log), "--limit", "0"]) == 0
    out = capsys.readouterr().out
    assert "stdout      step=250" not in out  # no such step in this run
    assert "stdout      step=50 train_loss=3.4558 val_loss=3.3464" in out
    assert "patterns    mfu_pct=" in out  # the pattern reads the iter lines first (its rank)
    assert "timeline: 5 point(s) by step (0..200)" in out
    assert "✅ val_loss: criterion 'val loss below 2.0'" in out
    # stdin, and a name the log does not carry
    import io
    import sys

    from tui.cli.textview import say  # noqa: F401 - the command prints through it

    real = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(b"loss: 0.5\nnothing here\n"))
    try:
        assert main(["--presets", str(presets), "metrics", "test", "hf", "--all"]) == 0
    finally:
        sys.stdin = real
    out = capsys.readouterr().out
    assert "stdout      loss=0.5000" in out and "nothing here" in out
    assert "❌ eval_loss" in out and "not in this log" in out
    assert main(["--presets", str(presets), "metrics", "test", "nope", str(log)]) == 2
    assert main(["--presets", str(presets), "metrics", "test", "hf", str(tmp_path / "missing.log")]) == 2
    err = capsys.readouterr().err
    assert "unknown preset 'nope'" in err and "missing.log" in err
