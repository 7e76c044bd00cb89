"""`runctl`: bad input, fast paths (no torch/textual import), status/runs/report/presets output."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tui.cli.main import main

DATA = Path(__file__).resolve().parent / "data"
ROOT = Path(__file__).resolve().parent.parent


def one_line_error(r: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 2, one `runctl: ...` line on stderr, no traceback."""
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("runctl: "), r.stderr
    for n in needles:
        assert n in lines[0]


@pytest.mark.parametrize(("args", "needles"), [
    (["launch", "nope"], ["unknown preset 'nope'", "tiny", "smoke_v2"]),
    (["launch", "tiny", "--set", "model.nope=1"], ["--set model.nope=1", "unknown config key"]),
    (["launch", "tiny", "--set", "novalue"], ["--set novalue"]),
    (["launch", "tiny", "--env", "SHARPE_WEIGHT=x"], ["--env SHARPE_WEIGHT=x"]),
    (["launch", "tiny", "--env", "NOEQUALS"], ["--env NOEQUALS", "NAME=VALUE"]),
    (["launch", "tiny", "--autopilot", "many"], ["--autopilot"]),
    (["kill", "nope"], ["unknown run 'nope'", "recent runs: (none)"]),
    (["resume", "nope"], ["unknown run 'nope'"]),
    (["status", "nope"], ["unknown run 'nope'"]),
    (["status", "--log", "missing.log"], ["log file not found: missing.log"]),
    (["report", "--log", "missing.log"], ["log file not found"]),
    (["status"], ["no runs in"]),
    (["presets", "show", "nope"], ["unknown preset 'nope'"]),
    (["frobnicate"], ["invalid choice"]),
    (["kill", "x", "--grace", "-1"], ["--grace -1: must be >= 0"]),
])
def test_bad_input_is_one_line_and_writes_nothing(runctl, logs_dir, args, needles) -> None:
    r = runctl(*args)
    one_line_error(r, *needles)
    assert not logs_dir.exists()  # nothing launched, nothing written


def test_unknown_run_lists_recent_runs(runctl, logs_dir) -> None:
    put_run(logs_dir, "app_tiny_finished.log", "tiny_20261124_010101")
    one_line_error(runctl("kill", "nope"), "recent runs: tiny_20261124_010101")


def put_run(logs_dir: Path, log: str, run: str, preset: str = "tiny") -> Path:
    """A recorded log plus a manifest whose process is long gone."""
    training = logs_dir / "training"
    training.mkdir(parents=True, exist_ok=True)
    shutil.copy(DATA / log, training / f"{run}.log")
    manifest = {"run": run, "name": run.rsplit("_", 2)[0], "preset": preset,
                "log": str(training / f"{run}.log"), "run_dir": str(logs_dir / "runs" / run),
                "pid_file": str(training / "tiny.pid"), "created_at": 1.7e9, "host": "box",
                "pid": 999999, "create_time": 1.0, "cmdline": ["python"], "state": "running"}
    (training / f"{run}.json").write_text(json.dumps(manifest))
    return training / f"{run}.log"


FAST = ("import sys\nfrom tui.cli.main import main\nrc = main(sys.argv[1:])\n"
        "heavy = [m for m in ('torch', 'lightning', 'textual') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr); sys.exit(rc)")


@pytest.mark.parametrize("args", [
    ["status", "--log", str(DATA / "app_smoke_running.log"), "--preset", "smoke"],
    ["status", "--log", str(DATA / "app_smoke_running.log"), "--json"],
    ["runs"], ["runs", "--json"], ["status", "--json"], ["presets", "list"],
    ["presets", "show", "smoke_v2"], ["compare", "tiny_20261124_010101", "tiny_20261124_010101", "--json"],
])
def test_fast_paths_do_not_import_torch_or_textual(logs_dir, presets_dir, args) -> None:
    put_run(logs_dir, "app_tiny_finished.log", "tiny_20261124_010101")
    r = subprocess.run([sys.executable, "-c", FAST, "--logs", str(logs_dir), "--presets",
                        str(presets_dir), *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stderr


def test_status_json_has_stable_keys(capsys, logs_dir, presets_dir) -> None:
    log = put_run(logs_dir, "app_smoke_running.log", "smoke_20261124_042151", preset="smoke")
    assert main(["--logs", str(logs_dir), "--presets", str(presets_dir), "status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("run", "state", "epoch", "max_epochs", "phases", "epochs", "progress", "preset", "log",
                "baseline", "criteria", "checkpoints", "recommendation", "table", "process",
                "manifest", "variance_collapse"):
        assert key in data
    assert data["run"] == "smoke_20261124_042151" and data["preset"] == "smoke"
    assert data["log"] == str(logs_dir / "training" / log.name)
    assert data["state"] == "crashed"  # the recorded pid is gone and the log has no final line
    assert data["error"] == "process exited without a final line"
    assert data["process"] is None and data["epochs"][0]["epoch"] == 1
    assert data["checkpoints"][0]["status"] == "decided"
    # its run folder holds no checkpoint: not resume (it would have nothing to continue from)
    assert data["recommendation"]["action"] in ("launch", "investigate")
    assert data["resume"]["blocked"] == "no checkpoint to resume from"


def test_status_text_over_ssh(capsys, presets_dir, logs_dir) -> None:
    log = DATA / "app_smoke_running.log"
    assert main(["--logs", str(logs_dir), "--presets", str(presets_dir), "status", "--log", str(log),
                 "--preset", "smoke"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out  # plain text
    for needle in ("state TRAINING", "Phases", "[x] Data loaders created", "Epochs",
                   "Metrics vs baseline", "Checkpoints", "Epoch 1 Validation", "Recommendation:"):
        assert needle in out


def test_runs_json(capsys, logs_dir, presets_dir) -> None:
    put_run(logs_dir, "app_tiny_finished.log", "tiny_20261124_010101")
    assert main(["--logs", str(logs_dir), "--presets", str(presets_dir), "runs", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1
    row = rows[0]
    for key in ("run", "state", "pid", "log", "preset", "epoch", "max_epochs", "sharpe", "started_at"):
        assert key in row
    assert row["state"] == "finished" and row["epoch"] == row["max_epochs"]
    assert isinstance(row["sharpe"], float)


def test_report_markdown(tmp_path, logs_dir, presets_dir) -> None:
    put_run(logs_dir, "app_tiny_finished.log", "tiny_20261124_010101")
    out = tmp_path / "report.md"
    assert main(["--logs", str(logs_dir), "--presets", str(presets_dir), "report", "tiny",
                 "-o", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# tiny_20261124_010101 - Monitoring Status")


def test_presets_check_and_derive(tmp_path, capsys) -> None:
    presets = tmp_path / "presets"
    shutil.copytree(ROOT / "presets", presets)
    base = ["--presets", str(presets), "presets"]
    assert main([*base, "check", str(presets / "tiny.toml")]) == 0
    assert "tiny.toml: ok" in capsys.readouterr().out
    assert main([*base, "derive", "tiny", "--set", "model.hidden_size=8", "--env",
                 "SHARPE_WEIGHT=0.5", "--as", "tiny8"]) == 0
    assert (presets / "tiny8.toml").is_file()
    capsys.readouterr()
    assert main([*base, "show", "tiny8"]) == 0
    shown = capsys.readouterr().out
    assert "model.hidden_size=8" in shown and "SHARPE_WEIGHT=0.5" in shown
    (presets / "broken.toml").write_text("max_epochs = 'ten'\n")
    assert main([*base, "check", str(presets / "broken.toml")]) == 2
    assert "max_epochs" in capsys.readouterr().out


def test_tui_missing_module_says_so(monkeypatch, capsys, logs_dir) -> None:
    monkeypatch.setitem(sys.modules, "tui.app.app", None)  # import fails as if the module were absent
    assert main(["--logs", str(logs_dir), "tui"]) == 2
    assert "runctl: the TUI is not available" in capsys.readouterr().err


def test_baseline_adds_a_finished_run_once(tmp_path, capsys, logs_dir) -> None:
    from tui.presets.baselines import load_baselines

    presets = tmp_path / "presets"
    shutil.copytree(ROOT / "presets", presets)
    put_run(logs_dir, "app_tiny_finished.log", "tiny_20261124_010101")
    base = ["--logs", str(logs_dir), "--presets", str(presets), "baseline"]
    assert main([*base, "tiny_20261124_010101", "--as", "Tiny (2ep)", "--status", "ok"]) == 0
    row = load_baselines(presets / "baselines.toml").get("Tiny (2ep)")
    assert row is not None and row.preset == "tiny" and "sharpe" in row.metrics
    before = (presets / "baselines.toml").read_text()
    assert main([*base, "tiny_20261124_010101", "--as", "Tiny (2ep)"]) == 2
    assert "already exists" in capsys.readouterr().err
    put_run(logs_dir, "app_smoke_running.log", "smoke_20261124_042151", preset="smoke")
    assert main([*base, "smoke_20261124_042151"]) == 2
    assert "only a finished run" in capsys.readouterr().err
    assert (presets / "baselines.toml").read_text() == before


def test_follow_never_prints_the_same_progress_twice() -> None:
    from tui.cli.textview import ProgressPrinter
    from tui.state.run import RunState

    lines: list[str] = []
    printer = ProgressPrinter(lines.append, progress_every_s=0.0)
    st = RunState(state="training", epoch=7, max_epochs=10)
    st.progress.epoch, st.progress.step, st.progress.steps = 7, 20, 84
    printer.update(st)
    printer.update(st)  # nothing new in the log since
    st.progress.step = 40
    printer.update(st)
    steps = [x for x in lines if x.lstrip().startswith("step ")]
    assert [x.split()[1] for x in steps] == ["20/84", "40/84"]


def test_follow_reports_each_epoch_once_looking_only_at_the_new_ones(tmp_path) -> None:
    """Folded an event at a time (as --follow sees a run), every epoch is announced once and reported
    once, in order; epochs already reported are not looked at again (the printer keeps a
    settled mark, so a poll costs the new epochs, not the whole timeline)."""
    from tests.test_attach_fast import _engine_log
    from tui.cli.textview import ProgressPrinter
    from tui.log.tail import LogTail
    from tui.state.run import RunState

    log = tmp_path / "run.log"
    log.write_text(_engine_log(40))
    tail = LogTail(log)
    events = tail.poll()
    tail.close()
    lines: list[str] = []
    printer = ProgressPrinter(lines.append, progress_every_s=1e9)
    st = RunState()
    for ev in events:
        st.apply(ev)
        printer.update(st.snapshot())
    started = [x for x in lines if x.startswith("Epoch ") and " started" in x]
    reported = [x for x in lines if x.startswith("Epoch ") and ": train_loss=" in x]
    assert [int(x.split()[1].split("/")[0]) for x in started] == list(range(1, 41))
    assert [int(x.split()[1].split("/")[0]) for x in reported] == list(range(1, 41))
    assert printer._settled == 40


def test_status_text_shows_the_latest_epochs(capsys, logs_dir, tmp_path) -> None:
    from tests.test_attach_fast import _engine_log

    log = tmp_path / "run.log"
    log.write_text(_engine_log(40))
    assert main(["--logs", str(logs_dir), "status", "--log", str(log)]) == 0
    out = capsys.readouterr().out
    assert "... 10 earlier epochs" in out
    rows = [x for x in out.splitlines() if x[:7].strip().isdigit()]
    assert [int(x.split()[0]) for x in rows][:1] == [11] and int(rows[-1].split()[0]) == 40
    assert main(["--logs", str(logs_dir), "status", "--log", str(log), "--epochs", "0"]) == 0
    assert "earlier epochs" not in capsys.readouterr().out
