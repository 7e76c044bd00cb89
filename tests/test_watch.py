"""`runctl status --watch` and `launch --follow` follow a log incrementally (tui.runs.tail.RunTail).

The log is written by the test, a part per watch interval (the watch's sleep is replaced by "append
the next part"), so each frame shows what the log held at that moment; no engine is run.
"""

from __future__ import annotations

import json
import os
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tui.cli import commands, follow
from tui.cli.main import main
from tui.runs import procs, tail
from tui.runs.store import Manifest, RunStore
from tui.state.follow import LogFollower

DATA = Path(__file__).resolve().parent / "data"
LINES = (DATA / "app_tiny_finished.log").read_text().splitlines(keepends=True)
# Setup and epoch 1 training, cut inside the `train/total_loss` line (a partial last line waits);
# the rest of epoch 1 (validated); epoch 2 and the final `[exit]` line.
PART_A = "".join(LINES[:24]) + LINES[24][:30]
PART_B = LINES[24][30:] + "".join(LINES[25:38])
PART_C = "".join(LINES[38:])
RUN = "tiny_20261124_031005"


class CountingFollower(LogFollower):
    """A LogFollower that records how many bytes each poll read."""

    made: list[CountingFollower] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reads: list[int] = []
        CountingFollower.made.append(self)

    def poll(self) -> list[Any]:
        before = self.offset
        out = super().poll()
        self.reads.append(self.offset - before)
        return out


@pytest.fixture
def frames(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What `runctl status` prints, one entry per frame; the follower counts its reads."""
    out: list[str] = []
    monkeypatch.setattr(commands, "say", out.append)
    CountingFollower.made = []
    monkeypatch.setattr(tail, "LogFollower", CountingFollower)
    return out


def on_sleep(monkeypatch: pytest.MonkeyPatch, module: Any, steps: list[Callable[[], None]]) -> list[float]:
    """Replace `module.time` so each sleep runs the next step (none left: the watch overran)."""
    slept: list[float] = []

    def sleep(s: float) -> None:
        assert steps, "still watching after the run ended"
        slept.append(s)
        steps.pop(0)()

    monkeypatch.setattr(module, "time", types.SimpleNamespace(sleep=sleep))
    return slept


def append(path: Path, text: str) -> Callable[[], None]:
    def step() -> None:
        with path.open("a", encoding="utf-8") as f:
            f.write(text)
    return step


def val_losses(data: dict[str, Any]) -> list[float | None]:
    """Each epoch's validation loss (None: not validated yet)."""
    return [e["val_loss"] for e in data["epochs"]]


def status(logs: Path, *args: str) -> int:
    return main(["--logs", str(logs), "--presets", str(DATA.parent.parent / "presets"), "status", *args])


def test_watch_json_updates_as_lines_are_appended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  frames: list[str]) -> None:
    log = tmp_path / "run.log"
    log.write_text(PART_A, encoding="utf-8")
    slept = on_sleep(monkeypatch, commands, [append(log, PART_B), append(log, PART_C)])
    assert status(tmp_path / "_logs", "--log", str(log), "--watch", "--json") == 0
    data = [json.loads(f) for f in frames]
    assert [(d["state"], val_losses(d)) for d in data] == [
        ("training", [None]), ("validating", [0.934]), ("finished", [0.934, 0.901])]
    assert data[0]["progress"]["step"] == 20 and data[0]["epochs"][0]["train_loss"] is None
    assert data[1]["epochs"][0]["train_loss"] == pytest.approx(0.912)  # the line cut in part A
    assert data[2]["exit_reason"] == "finished" and data[2]["manifest"] is None
    assert slept == [commands.WATCH_EVERY_S] * 2  # stopped as soon as the run ended
    (follower,) = CountingFollower.made  # one follower for the whole watch...
    assert follower.reads == [len(p.encode()) for p in (PART_A, PART_B, PART_C)]  # ...reading each byte once
    assert follower._fh is None  # closed at the end


def test_status_without_watch_prints_once(tmp_path: Path, frames: list[str]) -> None:
    log = tmp_path / "run.log"
    log.write_text(PART_A, encoding="utf-8")
    assert status(tmp_path / "_logs", "--log", str(log), "--json") == 0
    assert len(frames) == 1 and json.loads(frames[0])["state"] == "training"


@pytest.mark.parametrize("how", ["truncate", "rotate"])
def test_watch_survives_truncation_and_rotation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                frames: list[str], how: str) -> None:
    log = tmp_path / "run.log"
    log.write_text(PART_A + PART_B, encoding="utf-8")

    def truncate() -> None:  # read again from its start (the re-read epoch 1 replaces its record)
        log.write_text(PART_A, encoding="utf-8")

    def rotate() -> None:  # the old file's new lines are drained, the new file followed
        append(log, "".join(LINES[38:42]))()
        log.rename(tmp_path / "run.log.1")
        log.write_text("".join(LINES[42:]), encoding="utf-8")

    steps = [truncate, append(log, PART_B + PART_C)] if how == "truncate" else [rotate]
    on_sleep(monkeypatch, commands, steps)
    assert status(tmp_path / "_logs", "--log", str(log), "--watch", "--json") == 0
    seen = [(d["state"], val_losses(d)) for d in map(json.loads, frames)]
    if how == "truncate":
        assert seen == [("validating", [0.934]), ("training", [None]), ("finished", [0.934, 0.901])]
    else:
        assert seen == [("validating", [0.934]), ("finished", [0.934, 0.901])]
    assert json.loads(frames[-1])["epochs"][1]["sharpe"] == pytest.approx(0.021)


def manifest(store: RunStore, log: Path, identity: procs.Identity | None) -> Manifest:
    """Write the run's manifest; identity None: a process that is long gone."""
    ident = identity or procs.Identity(999_999, 1.0, ("python",))
    m = Manifest(run=RUN, name="tiny", preset="tiny", log=str(log), run_dir=str(store.run_dir(RUN)),
                 pid_file=str(store.pid_path("tiny")), created_at=1.7e9, host="test", pid=ident.pid,
                 create_time=ident.create_time, cmdline=ident.cmdline)
    store.save(m)
    return m


def test_watch_text_of_a_live_run_until_it_finishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    frames: list[str]) -> None:
    store = RunStore(tmp_path / "_logs")
    store.training_dir.mkdir(parents=True)
    log = store.log_path(RUN)
    log.write_text(PART_A, encoding="utf-8")
    manifest(store, log, procs.identify(os.getpid()))  # "the engine" is this live process
    on_sleep(monkeypatch, commands, [append(log, PART_B), append(log, PART_C)])
    assert status(store.logs_dir, RUN, "--watch") == 0
    assert len(frames) == 3
    assert "state TRAINING" in frames[0] and "Epoch 1 Validation (epoch 1): pending" in frames[0]
    assert f"pid      {os.getpid()} alive" in frames[0]
    assert "state VALIDATING" in frames[1] and "0.912000" in frames[1] and "0.887000" not in frames[1]
    assert "state FINISHED" in frames[2] and "exit     finished (status 0)" in frames[2]


def test_watch_of_a_dead_run_without_final_line_stops_at_once(tmp_path: Path, frames: list[str]) -> None:
    store = RunStore(tmp_path / "_logs")
    store.training_dir.mkdir(parents=True)
    log = store.log_path(RUN)
    log.write_text(PART_A, encoding="utf-8")
    manifest(store, log, None)
    assert status(store.logs_dir, "--watch", "--json") == 0
    (data,) = map(json.loads, frames)
    assert (data["run"], data["state"], data["error"]) == (RUN, "crashed",
                                                           "process exited without a final line")


def test_follow_prints_progress_until_the_process_ends(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    store = RunStore(tmp_path / "_logs")
    store.training_dir.mkdir(parents=True)
    log = store.log_path(RUN)
    log.write_text(PART_A, encoding="utf-8")
    m = manifest(store, log, procs.identify(os.getpid()))

    def exit_() -> None:
        append(log, PART_C)()
        manifest(store, log, None)  # the process is gone

    CountingFollower.made = []
    monkeypatch.setattr(tail, "LogFollower", CountingFollower)
    lines: list[str] = []
    steps = [append(log, PART_B), exit_]
    rc = follow.follow_run(store, m, lambda st: None, lines.append, sleep=lambda s: steps.pop(0)())
    assert rc == 0 and not steps
    text = "\n".join(lines)
    assert "Epoch 1/2: train_loss=0.9120" in text and "Epoch 2/2: train_loss=0.8870" in text
    (follower,) = CountingFollower.made
    assert sum(follower.reads) == log.stat().st_size
