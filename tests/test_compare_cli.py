"""`runctl compare RUN RUN [RUN...] [--json]`: recorded runs side by side (state, progress, the
config that differs, the latest metrics) as the TUI's compare screen shows them; a sweep's runs
differ in their swept values; a host's run (`HOST:RUN`, or a run id only a host has) read through
its host's runctl (here: runctl on a second logs folder, started where ssh would have been); bad
input one line."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tests.test_cli import one_line_error, put_run
from tui.cli.main import main
from tui.runs import ssh
from tui.runs.hosts import Host

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ROOT / "presets"
TINY, SMOKE = "tiny_20261124_010101", "smoke_20261123_220000"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _compare(capsys: pytest.CaptureFixture[str], logs_dir: Path, *args: str) -> str:
    assert main(["--logs", str(logs_dir), "--presets", str(PRESETS), "compare", *args]) == 0
    out = capsys.readouterr().out
    assert not _CONTROL.search(out.replace("\n", "")), repr(out)
    return out


@pytest.fixture
def two_runs(logs_dir: Path) -> Path:
    """A finished tiny run and a crashed smoke run, from recorded logs."""
    put_run(logs_dir, "app_tiny_finished.log", TINY)
    put_run(logs_dir, "app_smoke_crashed.log", SMOKE, preset="smoke")
    return logs_dir


def test_two_runs_side_by_side(two_runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _compare(capsys, two_runs, TINY, "smoke")  # an id and a name
    lines = out.splitlines()
    assert lines[0].split() == ["run", TINY, SMOKE]
    assert lines[1].split() == ["state", "finished", "crashed"]
    assert lines[2].split() == ["epoch", "2/2", "2/10"]
    assert "host" not in out.split("config")[0]  # no hosts: no host row
    assert lines[3] == "config (only what differs)"
    assert lines[4].split() == ["preset", "tiny", "smoke"] and lines[5].split() == ["max_epochs", "2", "10"]
    at = lines.index("metrics (latest validated epoch)")
    rows = {ln.split()[0]: ln.split()[1:] for ln in lines[at + 1:]}
    assert rows["val_loss"] == ["0.9010", "0.3590"] and rows["sharpe"] == ["0.0210", "0.0310"]

    data = json.loads(_compare(capsys, two_runs, TINY, SMOKE, "--json"))
    assert set(data) == {"runs", "config", "metrics"}
    tiny, smoke = data["runs"]
    assert tiny == {"run": TINY, "host": "local", "preset": "tiny", "state": "finished", "axis": "epoch",
                    "at": 2, "of": 2, "error": None, "sweep": None}
    assert smoke["state"] == "crashed" and smoke["of"] == 10 and "non-finite loss" in smoke["error"]
    assert data["config"][:2] == [{"key": "preset", "values": ["tiny", "smoke"]},
                                  {"key": "max_epochs", "values": ["2", "10"]}]
    assert {"key": "model.hidden_size", "values": ["16", None]} in data["config"]  # smoke has no such key
    metrics = {m["metric"]: m["values"] for m in data["metrics"]}
    assert metrics["val_loss"] == [0.901, 0.359] and metrics["sharpe"] == [0.021, 0.031]

    # three runs: one column each (the same run twice is allowed: the same column twice)
    lines = _compare(capsys, two_runs, TINY, SMOKE, TINY).splitlines()
    assert lines[0].split() == ["run", TINY, SMOKE, TINY]


def test_a_sweeps_runs_differ_in_their_swept_values(logs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = []
    for i, lr in enumerate(("0.001", "0.01")):
        run = f"lr-{i}_20261124_0{3 + i}1005"
        put_run(logs_dir, "app_tiny_finished.log", run)
        path = logs_dir / "training" / f"{run}.json"
        m = json.loads(path.read_text())
        m.update(name=f"lr-{i}", sets=[f"train.optimizer.lr={lr}"], overrides={"train.optimizer.lr": float(lr)},
                 sweep={"id": "lr_20261124_030000", "index": i, "values": {"train.optimizer.lr": lr}})
        path.write_text(json.dumps(m))
        runs.append(run)
    data = json.loads(_compare(capsys, logs_dir, *runs, "--json"))
    assert data["config"] == [{"key": "train.optimizer.lr", "values": ["0.001", "0.01"]}]
    assert [r["sweep"] for r in data["runs"]] == [{"id": "lr_20261124_030000", "index": 0},
                                                  {"id": "lr_20261124_030000", "index": 1}]
    lines = _compare(capsys, logs_dir, *runs).splitlines()
    assert lines[3].split() == ["sweep", "lr_20261124_030000", "#0", "lr_20261124_030000", "#1"]
    assert lines[4] == "config (only what differs)"
    assert lines[5].split() == ["train.optimizer.lr", "0.001", "0.01"]


@pytest.mark.parametrize(("args", "needles"), [
    ([TINY], ["compare needs two runs or more (got 1)"]),
    ([], ["the following arguments are required: RUN"]),
    ([TINY, "nope"], ["unknown run 'nope'", "recent runs:"]),
    ([TINY, "gpu9:x_1"], ["unknown host 'gpu9'"]),
])
def test_bad_input_is_one_line(runctl, two_runs: Path, args: list[str], needles: list[str]) -> None:  # noqa: ANN001
    one_line_error(runctl("compare", *args), *needles)


# --------------------------------------------------------------------------- a host's run
@pytest.fixture
def far_host(tmp_path: Path, two_runs: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Host `gpu2` of hosts.toml, whose runctl is this one on `far/_logs` (started directly where
    ssh would have been started: what runctl asks it and what it answers are unchanged); its
    runs: the smoke run's log under another id, and a run only it has. Host `offline` does not answer
    (ssh's own failure, exit 255)."""
    far = tmp_path / "far" / "_logs"
    put_run(far, "app_smoke_crashed.log", "smoke_20261123_230000", preset="smoke")
    put_run(far, "app_tiny_finished.log", "faronly_20261124_010101")
    (tmp_path / "hosts.toml").write_text('[hosts.gpu2]\nssh = "gpu2.invalid"\n[hosts.offline]\nssh = "offline.invalid"\n')

    def ssh_argv(host: Host, args: list[str], timeout: float, stream: bool = False) -> list[str]:
        if host.name == "offline":
            return [sys.executable, "-c", "import sys; sys.stderr.write('ssh: connect to host offline.invalid "
                    "port 22: Connection refused\\n'); sys.exit(255)"]
        return [sys.executable, "-m", "tui.cli", "--logs", str(far), "--presets", str(PRESETS), *args]

    monkeypatch.setattr(ssh, "ssh_argv", ssh_argv)
    return far


def test_a_hosts_run_compared_as_its_host_reads_it(far_host: Path, two_runs: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(_compare(capsys, two_runs, TINY, SMOKE, "gpu2:smoke_20261123_230000", "--json"))
    assert [r["run"] for r in data["runs"]] == [TINY, SMOKE, "gpu2:smoke_20261123_230000"]
    assert [r["host"] for r in data["runs"]] == ["local", "local", "gpu2"]
    far = data["runs"][2]
    assert far["state"] == "crashed" and far["preset"] == "smoke" and (far["at"], far["of"]) == (2, 10)
    for m in data["metrics"]:  # the same log there as here: the same latest metrics
        assert m["values"][2] == m["values"][1], m
    assert [c["values"][2] for c in data["config"]] == [c["values"][1] for c in data["config"]]
    mirror = two_runs / "hosts" / "gpu2"  # read through its mirror: the log copied, its preset too
    assert (mirror / "training" / "smoke_20261123_230000.log").read_bytes() == \
        (far_host / "training" / "smoke_20261123_230000.log").read_bytes()
    assert (mirror / "presets" / "smoke.toml").is_file()

    lines = _compare(capsys, two_runs, "faronly_20261124_010101", TINY).splitlines()  # only gpu2 has it
    assert lines[0].split() == ["run", "gpu2:faronly_20261124_010101", TINY]
    assert lines[1].split() == ["host", "gpu2", "local"]
    assert "config: the same" in lines  # the same preset, the same log
    assert lines[2].split() == ["state", "finished", "finished"]


def test_a_host_that_does_not_answer_is_one_line(far_host: Path, two_runs: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--logs", str(two_runs), "--presets", str(PRESETS), "compare", TINY, "offline:r_20260101_000000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["runctl: offline: unreachable (ssh: connect to host offline.invalid port 22: Connection refused)"]
