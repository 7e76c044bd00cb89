"""`RunStore.log_state`: a log read once, then only what was appended; the same state as a whole
read; truncation and replacement read again; handed-out states never change afterwards."""

from __future__ import annotations

import os
from pathlib import Path

from tui.runs.store import Manifest, RunStore
from tui.state.follow import read_state
from tui.state.serialize import state_json

DATA = Path(__file__).parent / "data"


def _manifest(store: RunStore, run: str) -> Manifest:
    return Manifest(run=run, name="r", preset="smoke", log=str(store.log_path(run)),
                    run_dir=str(store.run_dir(run)), pid_file=str(store.pid_path("r")),
                    created_at=0.0, host="test")


def test_incremental_reads_give_the_whole_read_state(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    store = RunStore(tmp_path / "_logs")
    store.training_dir.mkdir(parents=True)
    m = _manifest(store, "r_1")
    lines = (DATA / "app_smoke_running.log").read_text().splitlines(keepends=True)
    log = store.log_path(m.run)
    log.write_text("".join(lines[:30]))
    first = store.log_state(m)
    assert state_json(first) == state_json(read_state(log))
    epochs = len(first.epochs)

    reads: list[int] = []
    import tui.state.follow as follow

    real = follow.LogFollower.catch_up
    monkeypatch.setattr(follow.LogFollower, "catch_up", lambda self: (reads.append(1), real(self))[1])
    store.log_state(m)
    assert reads == []  # unchanged: not read at all
    with log.open("a") as f:
        f.writelines(lines[30:])
    grown = store.log_state(m)
    assert reads == [1]
    assert state_json(grown) == state_json(read_state(log))
    assert len(first.epochs) == epochs  # the state handed out before did not change

    log.write_text("".join(lines[:10]))  # truncated: read again from the start
    assert state_json(store.log_state(m)) == state_json(read_state(log))
    other = tmp_path / "other.log"
    other.write_text((DATA / "app_tiny_finished.log").read_text())
    os.replace(other, log)  # replaced (a new inode)
    assert store.log_state(m).state == "finished"
    log.unlink()
    assert store.log_state(m).epochs == []
