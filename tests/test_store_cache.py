"""`RunStore.log_state`: a log read once, then only what was appended; the same state as a whole
read; truncation and replacement read again; handed-out states never change afterwards."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

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

    log.write_text("".join(lines[:10]))  # truncated: read again from the start, keeping what was read
    again = store.log_state(m)
    assert again.log_event == "truncated" and state_json(again)["epochs"] == state_json(grown)["epochs"]
    assert again.lines == grown.lines + 10
    other = tmp_path / "other.log"
    other.write_text((DATA / "app_tiny_finished.log").read_text())
    os.replace(other, log)  # replaced (a new inode): read from its start, on top
    assert store.log_state(m).state == "finished" and store.log_state(m).log_event == "rotated"
    log.unlink()
    assert store.log_state(m).state == "finished"  # deleted: nothing read is dropped


def _row(store: RunStore, m: Manifest) -> tuple:
    st, n = store.listing(m)
    return (st.state, st.epoch, st.max_epochs, st.error, n["sharpe"], n["val_loss"], n["ic_h1"], n["ic_h20"],
            n["scale_min"])


def _whole(store: RunStore, m: Manifest) -> tuple:
    st = store.state(m)
    sharpe = next((r.sharpe for r in reversed(st.epochs) if r.sharpe is not None), None)
    val = next((r.val_loss for r in reversed(st.epochs) if r.val_loss is not None), None)
    last = [r for r in st.epochs if r.validated][-1] if any(r.validated for r in st.epochs) else None
    hs = last.horizons if last is not None else {}
    scales = [h.scale for h in hs.values() if h.scale is not None]
    return (st.state, st.epoch, st.max_epochs, st.error, sharpe, val, hs[1].ic if 1 in hs else None,
            hs[20].ic if 20 in hs else None, min(scales) if scales else None)


def test_listing_of_ended_runs_is_cached_by_the_logs_identity(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """`runctl runs` reads an ended run's log once; later listings (fresh stores, as fresh
    processes are) take the cached row while the log's size and mtime hold, and give the row a
    whole read gives."""
    logs = tmp_path / "_logs"
    RunStore(logs).training_dir.mkdir(parents=True)
    runs = {}
    for i, name in enumerate(("app_tiny_finished.log", "app_smoke_crashed.log", "app_smoke_running.log",
                              "engine_smoke.log", "iterable_cpu_smoke.log")):
        store = RunStore(logs)
        m = _manifest(store, f"r_{i}")  # no pid: not running, so every one is ended
        store.log_path(m.run).write_bytes((DATA / name).read_bytes())
        runs[name] = m
    expected = {name: _whole(RunStore(logs), m) for name, m in runs.items()}
    assert {name: _row(RunStore(logs), m) for name, m in runs.items()} == expected  # and cached
    assert all(x is not None for x in expected["engine_smoke.log"][4:]), expected  # every headline number
    assert len(list((logs / "training" / ".cache").glob("*.json"))) == len(runs)
    assert len(RunStore(logs).runs()) == 0  # the cache is no manifest (these runs have none on disk)

    import tui.state.follow as follow

    monkeypatch.setattr(follow.LogFollower, "catch_up", lambda self: pytest.fail("log read"))
    assert {name: _row(RunStore(logs), m) for name, m in runs.items()} == expected
    monkeypatch.undo()

    m = runs["app_smoke_running.log"]
    log = RunStore(logs).log_path(m.run)
    with log.open("a") as f:  # the log changed: read again
        f.write((DATA / "app_tiny_finished.log").read_text())
    assert _row(RunStore(logs), m) == _whole(RunStore(logs), m)
    assert _row(RunStore(logs), m)[0] == "finished"

    cache = logs / "training" / ".cache" / f"{m.run}.json"
    cache.write_text("{not json")  # a broken cache is a miss, then written again
    assert _row(RunStore(logs), m) == _whole(RunStore(logs), m)
    assert json.loads(cache.read_text())["row"]["state"] == "finished"


def test_a_live_runs_listing_is_not_cached(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "_logs")
    store.training_dir.mkdir(parents=True)
    me = psutil.Process()
    m = replace(_manifest(store, "r_live"), pid=me.pid, create_time=me.create_time(),
                cmdline=tuple(me.cmdline()))
    store.log_path(m.run).write_bytes((DATA / "app_smoke_running.log").read_bytes())
    assert store.is_running(m)
    assert _row(store, m) == _whole(store, m)
    assert _row(store, m)[0] != "crashed"
    assert not (store.training_dir / ".cache" / f"{m.run}.json").exists()
