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
import os
import pickle
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
from app_fixtures import sync, wait_for

from tui.app.view import RunView
from tui.cli.main import main
from tui.presets.registry import PresetRegistry
from tui.runs import procs
from tui.runs.store import Manifest, RunStore
from tui.state.run import RunState

DATA = Path(__file__).parent / "data" / "any_loop"
EXIT = "[2026-12-05 17:40:00,000][runctl][INFO] - [exit] reason=finished status=0\n"  # the shim's
KILLED = "[2026-12-05 17:40:00,000][runctl][INFO] - [exit] reason=terminated status=143\n"  # after a kill

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
resume_args = ["--resume"]
checkpoint_files = "{run_dir}/checkpoint-*"
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
    "plainr": '''
description = "the plain loop, resumable from its own ckpt.pt"
command = ["{python}", "train.py", "--out", "{run_dir}", "--max-epochs", "{max_epochs}"]
override_format = ["--{key}", "{value}"]
resume_args = ["--resume"]
checkpoint_files = "{run_dir}/ckpt.pt"
max_epochs = 4
[[criteria]]
metric = "val_acc"
op = ">="
value = 0.9
label = "val accuracy at least 0.9 within {max_epochs} epochs"
''',
}


def write_presets(tmp_path: Path) -> Path:
    """PRESETS as files of a presets folder (with the `train.py` their commands name)."""
    d = tmp_path / "presets"
    d.mkdir()
    (d / "train.py").write_text("")
    for name, text in PRESETS.items():
        (d / f"{name}.toml").write_text(text)
    return d


@pytest.fixture
def presets(tmp_path: Path) -> Path:
    return write_presets(tmp_path)


def _dead() -> procs.Identity:
    p = subprocess.Popen(["true"])
    ident = procs.identify(p.pid) or procs.Identity(p.pid, time.time(), ("true",))
    p.wait()
    return ident


def put_run(logs: Path, presets: Path, name: str, logs_in_order: list[str],
            files: dict[str, str] | None = None, exit_line: bool = True, sets: tuple[str, ...] = (),
            between: str = "", end: str = EXIT) -> Manifest:
    """A run of preset `name` (launched with `--set` `sets`) whose log is these recorded logs one
    after the other (a resume appends to the same log; `between`: what the shim wrote between
    them, e.g. KILLED), then `end` (the shim's last line, unless not `exit_line`), and whose run
    folder holds `files` (recorded file -> path in it). Its manifest is as the launcher writes it."""
    from tui.presets.preset import expand
    from tui.presets.registry import resolve

    store = RunStore(logs)
    store.training_dir.mkdir(parents=True, exist_ok=True)
    run = f"{name}_20261205_174000"
    run_dir = store.run_dir(run)
    run_dir.mkdir(parents=True, exist_ok=True)
    for src, dest in (files or {}).items():
        (run_dir / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DATA / src, run_dir / dest)
    parts = [(DATA / f).read_bytes() for f in logs_in_order]
    text = between.encode().join(p if p.endswith(b"\n") else p + b"\n" for p in parts)
    store.log_path(run).write_bytes(text + (end.encode() if exit_line else b""))
    preset = PresetRegistry(presets).get(name)
    if sets:
        preset = resolve(preset, list(sets))
    values = preset.placeholder_values(run_dir, run)
    ident = _dead()
    m = Manifest(run=run, name=name, preset=name, log=str(store.log_path(run)), run_dir=str(run_dir),
                 pid_file=str(store.pid_path(name)), created_at=1796492000.0, host="box", kind="command",
                 pid=ident.pid, create_time=ident.create_time, cmdline=ident.cmdline,
                 cwd=str(presets), argv=tuple(preset.command_argv(run_dir, run)), sets=tuple(sets),
                 resume_args=preset.resume_args, placeholders=values,
                 checkpoint_files=expand(preset.checkpoint_files, values) if preset.checkpoint_files else None,
                 sources=preset.source_config(run_dir, run).to_json())
    store.save(m)
    return m


def status(capsys: pytest.CaptureFixture[str], logs: Path, presets: Path, run: str) -> dict:
    assert main(["--logs", str(logs), "--presets", str(presets), "status", run, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def status_text(capsys: pytest.CaptureFixture[str], logs: Path, presets: Path, run: str) -> str:
    assert main(["--logs", str(logs), "--presets", str(presets), "status", run]) == 0
    return capsys.readouterr().out


def torch_file(path: Path, **state: int) -> Path:
    """A stand-in for a `torch.save`d checkpoint, as runctl checks one: a zip with a data.pkl."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{path.stem}/data.pkl", pickle.dumps(state))
    return path


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


def test_checkpoint_phase_from_the_scripts_own_files(capsys, tmp_path: Path, presets: Path) -> None:
    """nanoGPT prints no runctl `Checkpoint saved:` line: its checklist's "Checkpoint saved" is its
    own `ckpt.pt` (the preset's checkpoint_files), once that is a complete checkpoint."""
    logs = tmp_path / "_logs"
    m = put_run(logs, presets, "nano", ["nanogpt_train.log"])
    assert status(capsys, logs, presets, m.run)["phases"]["checkpoint"] is False  # nothing written
    ckpt = Path(m.run_dir) / "ckpt.pt"
    ckpt.write_bytes(b"")  # being written (or damaged): not a checkpoint yet
    assert status(capsys, logs, presets, m.run)["phases"]["checkpoint"] is False
    torch_file(ckpt, iter_num=200)
    assert status(capsys, logs, presets, m.run)["phases"]["checkpoint"] is True
    assert f"[x] Checkpoint saved: {ckpt}" in status_text(capsys, logs, presets, m.run)


def test_hf_checkpoint_folders_tick_the_checkpoint_phase(capsys, tmp_path: Path, presets: Path) -> None:
    """The HF Trainer's `checkpoint-N/` folders: the newest complete one, after a kill too (where
    it is also what a resume continues from); an empty newer folder is passed over."""
    logs = tmp_path / "_logs"
    m = put_run(logs, presets, "hf", ["hf_first.log"], end=KILLED,
                files={"hf_trainer_state.json": "checkpoint-16/trainer_state.json"})
    run_dir = Path(m.run_dir)
    shutil.copytree(run_dir / "checkpoint-16", run_dir / "checkpoint-32")
    (run_dir / "checkpoint-48").mkdir()  # begun when it was killed: empty
    for age, name in ((30, "checkpoint-16"), (20, "checkpoint-32"), (10, "checkpoint-48")):
        t = time.time() - age
        os.utime(run_dir / name, (t, t))
    data = status(capsys, logs, presets, m.run)
    assert data["state"] == "killed" and data["phases"]["checkpoint"] is True
    assert data["resume"]["from"] == str(run_dir / "checkpoint-32")
    assert data["recommendation"]["action"] == "resume"
    assert f"[x] Checkpoint saved: {run_dir / 'checkpoint-32'}" in status_text(capsys, logs, presets, m.run)


def test_started_is_when_runctl_started_the_run(capsys, tmp_path: Path, presets: Path) -> None:
    """A plain-print script's log has no timestamp but the shim's closing `[exit]` line: `started_at`
    is the manifest's launch time, in the JSON as in the text and the TUI's header, not the end."""
    from tui.app.view import elapsed_seconds, start_time
    from tui.cli.textview import clock

    logs = tmp_path / "_logs"
    m = put_run(logs, presets, "nano", ["nanogpt_train.log"])
    data = status(capsys, logs, presets, m.run)
    assert data["started_at"] == m.created_at == 1796492000.0
    assert data["last_time"] is not None and data["last_time"] > data["started_at"]  # the [exit] line
    assert f"started  {clock(m.created_at)}" in status_text(capsys, logs, presets, m.run)
    st = RunStore(logs).state(m)
    view = RunView(run=m.run, state=st, launched_at=m.created_at)
    assert start_time(view) == data["started_at"]
    assert elapsed_seconds(view, time.time()) == pytest.approx(data["last_time"] - m.created_at)
    # a log alone (no manifest): its first timestamp, as before
    assert main(["--presets", str(presets), "status", "--log", str(DATA / "nanogpt_train.log"),
                 "--preset", "nano", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["started_at"] is None


def test_step_run_eta_from_its_pace() -> None:
    """A run counted in steps: ETA = steps left / its step rate, not epoch time x steps left."""
    from tui.app.view import eta_seconds
    from tui.state.records import EpochRecord

    st = RunState(state="training", axis="step", max_steps=200, epoch=150)
    st.epochs = [EpochRecord(epoch=s, step=s, validated=True, started_at=1000.0 + s / 10, ended_at=1001.0 + s / 10)
                 for s in (0, 50, 100, 150)]
    assert eta_seconds(RunView(run="r", state=st), 2000.0) is None  # no pace known yet
    st.step_times = [(1000.0, 100), (1010.0, 150)]  # 5 steps/s
    assert eta_seconds(RunView(run="r", state=st), 2000.0) == pytest.approx(10.0)
    st.state = "finished"
    assert eta_seconds(RunView(run="r", state=st), 2000.0) is None


def test_step_pace_is_one_sources_count() -> None:
    """The steps folded with their times make the pace; a second source that lags behind (a
    SummaryWriter flushed later) is not a restart, a step lower on the same source is (a resume)."""
    from tui.log.events import Scalars

    st = RunState()
    for t, step, src in ((100.0, 100, "stdout"), (110.0, 90, "tensorboard"), (110.0, 150, "stdout")):
        st.apply(Scalars((("loss", 1.0),), step=step, source=src, t=t))
    assert st.step_times == [(100.0, 100), (110.0, 150)] and st.step_rate() == pytest.approx(5.0)
    st.apply(Scalars((("loss", 1.0),), step=100, source="stdout", t=120.0))
    assert st.step_rate() is None and st.step_times == [(120.0, 100)]


def test_step_run_eta_as_a_follower_reads_nanogpt(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """nanoGPT's lines carry no time: its pace is the steps read over the time they were read (what
    a live follower, the TUI or `status --watch`, sees). A backlog read at once has no pace; a
    resumed process that counts again from its checkpoint's step starts the pace again."""
    import types

    import tui.state.follow as follow
    from tui.app.view import eta_seconds
    from tui.log.sources import SourceConfig

    lines = (DATA / "nanogpt_train.log").read_bytes().splitlines(keepends=True)
    cut = [next(i for i, ln in enumerate(lines) if ln.startswith(f"iter {n}:".encode())) + 1 for n in (100, 150)]
    log = tmp_path / "run.log"
    now = [5000.0]
    monkeypatch.setattr(follow, "time", types.SimpleNamespace(time=lambda: now[0], monotonic=time.monotonic))
    f = follow.LogFollower(log, sources=SourceConfig())
    log.write_bytes(b"".join(lines[:cut[0]]))
    f.catch_up()
    assert (f.state.axis, f.state.epoch) == ("step", 100) and f.state.step_rate() is None
    assert eta_seconds(live(f.state), now[0]) is None
    now[0] += 10.0
    with log.open("ab") as fh:
        fh.write(b"".join(lines[cut[0]:cut[1]]))
    f.catch_up()
    assert f.state.epoch == 150 and f.state.step_rate() == pytest.approx(5.0)  # 50 steps in 10 s
    assert eta_seconds(live(f.state), now[0]) == pytest.approx(10.0)  # 50 steps left
    now[0] += 10.0
    resumed = (DATA / "nanogpt_resume.log").read_bytes().splitlines(keepends=True)
    upto = next(i for i, ln in enumerate(resumed) if ln.startswith(b"iter 100:")) + 1
    with log.open("ab") as fh:  # the resumed process: from its checkpoint's step 100 again
        fh.write(b"".join(resumed[:upto]))
    f.catch_up()
    assert f.state.epoch == 100
    assert f.state.step_rate() is None  # one sample since the step went back
    f.close()


def live(st: RunState) -> RunView:
    """A follower's state as the TUI shows it while the run is alive (its preset's max_steps)."""
    out = st.snapshot()
    out.state, out.max_steps = "training", 200
    return RunView(run="r", state=out)


def test_max_epochs_set_at_launch_reaches_status(capsys, tmp_path: Path, presets: Path) -> None:
    """`--set max_epochs=7` at launch (the manifest's `sets`): `status` says the run's 7, in the
    JSON, the criterion label and the text header, not the preset's 4."""
    logs = tmp_path / "_logs"
    m = put_run(logs, presets, "plainr", ["plain_loop_killed.log"], end=KILLED, sets=("max_epochs=7",))
    assert m.argv[-2:] == ("--max-epochs", "7")
    data = status(capsys, logs, presets, m.run)
    assert data["max_epochs"] == 7
    assert [c["label"] for c in data["criteria"]] == ["val accuracy at least 0.9 within 7 epochs"]
    assert "/7" in status_text(capsys, logs, presets, m.run).splitlines()[0]
