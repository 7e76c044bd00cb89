"""Manifests and the RunStore: round trip, layout, lookup, and state = log + process liveness."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tui.runs import procs
from tui.runs.store import NO_FINAL_LINE, Manifest, RunStore, UnknownRun

DATA = Path(__file__).resolve().parent / "data"


def manifest(store: RunStore, run: str, created_at: float = 1.7e9, **kw) -> Manifest:
    """A manifest as the launcher writes it (no live process unless given)."""
    name = kw.pop("name", run.rsplit("_", 2)[0])
    return Manifest(
        run=run, name=name, preset="tiny", log=str(store.log_path(run)),
        run_dir=str(store.run_dir(run)), pid_file=str(store.pid_path(name)), created_at=created_at,
        host="box", **kw,
    )


def dead_identity() -> procs.Identity:
    """The identity of a process that has exited (and been reaped)."""
    p = subprocess.Popen(["true"])
    ident = procs.identify(p.pid) or procs.Identity(p.pid, time.time(), ("true",))
    p.wait()
    return ident


def test_manifest_round_trip(logs_dir: Path) -> None:
    store = RunStore(logs_dir)
    m = manifest(store, "tiny_20261124_042151", argv=("python", "-m", "engine", "train"),
                 sets=("model.hidden_size=8",), envs=("SHARPE_WEIGHT=0.5",),
                 env={"SHARPE_WEIGHT": "0.5"}, overrides={"model.horizons": [1, 5], "x.y": True},
                 pid=123, create_time=1.7e9 + 0.25, cmdline=("python", "-m", "engine"),
                 parent="smoke_20261124_000000", children=("a", "b"),
                 autopilot={"steps": 2, "decisions": []})
    m = m.with_event("launch", pid=123)
    store.save(m)
    assert store.get(m.run) == m
    data = json.loads(store.manifest_path(m.run).read_text())
    assert data["run"] == m.run and data["history"][0]["event"] == "launch"
    assert list(store.training_dir.iterdir()) == [store.manifest_path(m.run)]  # no temp files left
    data["a_future_key"] = 1  # newer writers may add keys
    store.manifest_path(m.run).write_text(json.dumps(data))
    assert store.get(m.run) == m


def test_run_ids_follow_the_seed_layout(logs_dir: Path) -> None:
    store = RunStore(logs_dir)
    when = time.mktime((2025, 10, 31, 4, 21, 51, 0, 0, -1))
    run = store.new_run_id("smoke_test_v2", when)
    assert run == "smoke_test_v2_20251031_042151"
    assert store.log_path(run) == logs_dir / "training" / "smoke_test_v2_20251031_042151.log"
    assert store.pid_path("smoke_test_v2") == logs_dir / "training" / "smoke_test_v2.pid"
    assert store.run_dir(run) == logs_dir / "runs" / run
    store.save(manifest(store, run))
    assert store.new_run_id("smoke_test_v2", when) == run + "_2"  # same second: never overwrite


def test_get_by_id_or_name_and_unknown_lists_recent(logs_dir: Path) -> None:
    store = RunStore(logs_dir)
    old = manifest(store, "tiny_20261124_010000", created_at=1.0)
    new = manifest(store, "tiny_20261124_020000", created_at=2.0)
    other = manifest(store, "smoke_20261124_030000", created_at=3.0)
    for m in (old, new, other):
        store.save(m)
    (store.training_dir / "garbage.json").write_text("{not json")
    assert [m.run for m in store.runs()] == [other.run, new.run, old.run]
    assert store.get("tiny").run == new.run  # a name means its newest run
    assert store.get(old.run) == old
    with pytest.raises(UnknownRun, match=r"unknown run 'nope'.*recent runs: smoke_20261124_030000, "
                                         r"tiny_20261124_020000"):
        store.get("nope")
    with pytest.raises(UnknownRun, match=r"recent runs: \(none\)"):
        RunStore(logs_dir / "empty").get("x")


def copy_log(store: RunStore, run: str, source: str | None, text: str = "") -> None:
    store.training_dir.mkdir(parents=True, exist_ok=True)
    if source:
        shutil.copy(DATA / source, store.log_path(run))
    else:
        store.log_path(run).write_text(text)


def test_process_gone_without_final_line_is_crashed(logs_dir: Path) -> None:
    store = RunStore(logs_dir)
    ident = dead_identity()
    m = manifest(store, "smoke_20261124_042151", pid=ident.pid, create_time=ident.create_time,
                 cmdline=ident.cmdline)
    copy_log(store, m.run, "app_smoke_running.log")  # stops mid-epoch: no [exit] line
    st = store.state(m)
    assert st.state == "crashed" and st.error == NO_FINAL_LINE
    assert st.run == m.run and st.pid == ident.pid
    killed = replace(m, state="killed")
    assert store.state(killed).state == "killed"  # unless the manifest says it was killed


def test_finished_log_stays_finished_and_live_process_keeps_log_state(logs_dir: Path, reaper) -> None:
    store = RunStore(logs_dir)
    ident = dead_identity()
    m = manifest(store, "tiny_20261124_042151", pid=ident.pid, create_time=ident.create_time)
    copy_log(store, m.run, "app_tiny_finished.log")
    assert store.state(m).state == "finished"
    sleeper = subprocess.Popen(["sleep", "30"], start_new_session=True)
    reaper.add(sleeper.pid)
    live = procs.identify(sleeper.pid)
    assert live is not None
    run2 = "smoke_20261124_050000"
    copy_log(store, run2, "app_smoke_running.log")
    m2 = manifest(store, run2, pid=live.pid, create_time=live.create_time, cmdline=live.cmdline)
    assert store.is_running(m2)
    assert store.state(m2).state == "training"
    # the same pid with another start time is not our process: the run is gone
    assert store.state(replace(m2, create_time=live.create_time - 100)).state == "crashed"
    copy_log(store, "empty_20261124_000000", None)
    m3 = manifest(store, "empty_20261124_000000", pid=live.pid, create_time=live.create_time,
                  cmdline=live.cmdline)
    assert store.state(m3).state == "launching"


def test_atomic_pid_file(logs_dir: Path) -> None:
    store = RunStore(logs_dir)
    store.training_dir.mkdir(parents=True)
    m = manifest(store, "tiny_20261124_042151", pid=4242)
    store.write_pid(m)
    assert store.pid_path("tiny").read_text() == "4242\n"
    assert [p.name for p in store.training_dir.iterdir()] == ["tiny.pid"]
    assert re.fullmatch(r"tiny_\d{8}_\d{6}", store.new_run_id("tiny"))
