"""GPU slots on one box (RUNCTL_GPUS) and the queue: reservations by process identity, a runner
that survives its own death, the queue file written atomically."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.waiting import wait_until
from tui.presets.preset import PresetError
from tui.presets.registry import PresetRegistry, resolve
from tui.runs import procs
from tui.runs.gpus import GpuError, box_gpus
from tui.runs.queue import RunQueue
from tui.runs.store import RunStore

JOB = """import os, pathlib, sys, time
print("CVD=" + os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"), flush=True)
stop = pathlib.Path(sys.argv[1])
while not stop.exists():
    time.sleep(0.05)
"""


def test_declared_gpus() -> None:
    assert box_gpus({"RUNCTL_GPUS": "0,1, 3"}) == [0, 1, 3]
    assert box_gpus({"RUNCTL_GPUS": ""}) == []
    with pytest.raises(GpuError, match="RUNCTL_GPUS='0,x': expected GPU indices"):
        box_gpus({"RUNCTL_GPUS": "0,x"})
    with pytest.raises(GpuError, match="listed twice"):
        box_gpus({"RUNCTL_GPUS": "1,1"})


def test_gpus_key(tmp_path: Path) -> None:
    (tmp_path / "g.toml").write_text('gpus = 2\ncommand = ["{python}", "x.py"]\n')
    reg = PresetRegistry(tmp_path)
    assert reg.get("g").gpus == 2 and resolve(reg.get("g"), ["gpus=0"]).gpus == 0
    (tmp_path / "bad.toml").write_text("gpus = -1\n")
    with pytest.raises(PresetError, match=r"bad\.toml: gpus: -1 must be >= 0"):
        reg.get("bad")
    with pytest.raises(PresetError, match="gpus must be a number"):
        resolve(reg.get("g"), ["gpus=two"])


@pytest.fixture
def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runctl):  # noqa: ANN001, ANN201
    """Two declared GPUs and a `job` preset (gpus = 1) whose runs end when their stop file appears."""
    monkeypatch.setenv("RUNCTL_GPUS", "0,1")
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "job.py").write_text(JOB)
    (presets / "job.toml").write_text('description = "holds a GPU until told"\ngpus = 1\n'
                                      'command = ["{python}", "job.py", "{run_dir}/stop"]\n')
    (presets / "big.toml").write_text('extends = "job"\ngpus = 3\n')

    def run(*args: str):  # noqa: ANN202
        return runctl("--presets", str(presets), *args, env={"RUNCTL_GPUS": "0,1"})

    return run


def _cvd(store: RunStore, run: str) -> str | None:
    log = store.log_path(run)
    for line in log.read_text().splitlines() if log.exists() else ():
        if line.startswith("CVD="):
            return line[4:]
    return None


def _wait(cond, timeout: float = 60.0) -> bool:  # noqa: ANN001
    return wait_until(cond, timeout, 0.1)


def test_three_runs_on_two_gpus(box, logs_dir: Path) -> None:  # noqa: ANN001
    store = RunStore(logs_dir)
    a = json.loads(box("launch", "job", "--name", "a", "--json").stdout)["run"]
    b = json.loads(box("launch", "job", "--name", "b", "--json").stdout)["run"]
    assert _wait(lambda: _cvd(store, a) is not None and _cvd(store, b) is not None)
    assert {_cvd(store, a), _cvd(store, b)} == {"0", "1"}  # two at once, distinct GPUs
    assert store.get(a).gpus + store.get(b).gpus in ((0, 1), (1, 0))
    busy = box("launch", "job", "--name", "c")
    assert busy.returncode == 2 and "1 GPU(s) needed, 0 of 2 free" in busy.stderr and "--queue" in busy.stderr
    assert len(list((logs_dir / "training").glob("c_*"))) == 0  # nothing written
    too_big = box("queue", "add", "big")
    assert too_big.returncode == 2 and "gpus = 3, but this box has 2 GPU(s)" in too_big.stderr
    queued = box("launch", "job", "--name", "c", "--queue", "--json")
    assert queued.returncode == 0, queued.stderr
    item = json.loads(queued.stdout)["queued"]
    listing = json.loads(box("queue", "--json").stdout)
    assert [i["id"] for i in listing["waiting"]] == [item] and listing["waiting"][0]["gpus"] == 1
    assert listing["free"] == [] and listing["runner"] is True

    # the runner dies: the queue file is intact and the next runctl command restarts the runner
    queue = RunQueue(store)
    ident = queue.runner_identity()
    assert ident is not None and procs.is_running(ident)
    os.kill(ident.pid, signal.SIGKILL)
    assert _wait(lambda: not procs.is_running(ident), 10)
    assert [i.id for i in queue.load().waiting] == [item]
    text = box("queue").stdout
    assert f"1 {item}" in text.replace("  ", " ") or item in text
    assert queue.runner_alive() and queue.runner_identity() != ident

    # a ends: its GPU goes to c
    (Path(store.get(a).run_dir) / "stop").touch()
    assert _wait(lambda: bool(queue.load().started), 60), queue.load()
    c = queue.load().started[-1].run
    assert c is not None and _wait(lambda: _cvd(store, c) is not None)
    assert _cvd(store, c) == _cvd(store, a) and store.get(c).gpus == store.get(a).gpus
    assert _wait(lambda: not queue.runner_alive(), 15)  # the queue is empty: the runner ended
    for run in (b, c):
        (Path(store.get(run).run_dir) / "stop").touch()
    assert _wait(lambda: store.state(store.get(b)).state == "finished" and
                 store.state(store.get(c)).state == "finished")


def test_queue_add_validates_like_launch_and_rm(box, logs_dir: Path) -> None:  # noqa: ANN001
    bad = box("queue", "add", "nope")
    assert bad.returncode == 2 and "unknown preset 'nope'" in bad.stderr
    bad = box("queue", "add", "job", "--name", "bad name")
    assert bad.returncode == 2 and "--name 'bad name'" in bad.stderr
    queue = RunQueue(RunStore(logs_dir))
    assert not queue.path.exists() or not queue.load().waiting
    # two GPUs held by this test's own stand-in runs, so the item waits
    a = json.loads(box("launch", "job", "--name", "a", "--json").stdout)["run"]
    b = json.loads(box("launch", "job", "--name", "b", "--json").stdout)["run"]
    item = json.loads(box("queue", "add", "job", "--name", "w", "--json").stdout)
    assert item["position"] == 1 and item["gpus"] == 1
    gone = box("queue", "rm", "q9")
    assert gone.returncode == 2 and f"no waiting queue item 'q9'; waiting: {item['id']}" in gone.stderr
    assert box("queue", "rm", item["id"]).returncode == 0
    assert queue.load().waiting == []
    store = RunStore(logs_dir)
    for run in (a, b):
        (Path(store.get(run).run_dir) / "stop").touch()


def test_runs_screen_shows_the_queue_and_its_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  reaper) -> None:  # noqa: ANN001
    """The runs screen lists the queue; Q queues a preset (validated like launch), x removes one."""
    import asyncio

    from app_fixtures import PRESETS, wait_for
    from textual.widgets import Input, OptionList, Static

    from tui.app.app import RunctlApp
    from tui.app.screens.runs import RunsScreen
    from tui.runs.launcher import Launcher
    from tui.runs.store import Manifest

    monkeypatch.setenv("RUNCTL_GPUS", "0")
    store = RunStore(tmp_path / "_logs")
    me = procs.identify(os.getpid())
    assert me is not None
    store.save(Manifest(run="holder_1", name="holder", preset="tiny", log=str(store.log_path("holder_1")),
                        run_dir=str(store.run_dir("holder_1")), pid_file=str(store.pid_path("holder")),
                        created_at=time.time(), host="h", pid=me.pid, create_time=me.create_time,
                        cmdline=me.cmdline, gpus=(0,)))  # this test process holds the only GPU
    registry = PresetRegistry(PRESETS)
    queue = RunQueue(store)
    queue.add("tiny", PRESETS, name="first", gpus=1)

    async def go() -> None:
        app = RunctlApp(store, Launcher(store, registry), registry, poll_interval=0.05, probe=None)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            await pilot.press("R")  # the holder run is attached first (it is alive): the runs screen
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
            box = app.screen.query_one("#runs-queue", Static)
            await wait_for(pilot, lambda: "q1 tiny (first)" in str(box.render()))
            assert "GPUs free 0 of 1" in str(box.render())
            await pilot.press("Q")
            await wait_for(pilot, lambda: app.screen.id == "launch")
            app.screen.query_one("#preset-filter", Input).value = "smoke"
            await pilot.pause(0.1)
            await pilot.press("enter")
            await wait_for(pilot, lambda: [i.preset for i in queue.load().waiting] == ["tiny", "smoke"], 10)
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
            await pilot.press("x")
            await wait_for(pilot, lambda: app.screen.id == "queue-rm")
            app.screen.query_one(OptionList).highlighted = 0
            await pilot.press("enter")
            await wait_for(pilot, lambda: [i.id for i in queue.load().waiting] == ["q2"], 10)
        app2 = RunctlApp(store, None, registry, poll_interval=0.05, probe=None, readonly=True)
        async with app2.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            await pilot.press("R")
            await wait_for(pilot, lambda: isinstance(app2.screen, RunsScreen))
            await pilot.press("Q", "x")
            await pilot.pause(0.2)
            assert isinstance(app2.screen, RunsScreen) and [i.id for i in queue.load().waiting] == ["q2"]

    asyncio.run(asyncio.wait_for(go(), 60))


def test_a_machine_lock_held_elsewhere_keeps_the_item_waiting(box, logs_dir: Path,  # noqa: ANN001
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # another logs folder's runctl holds the machine-wide GPU lock longer than the wait: the queue
    # item waits (and says why), it does not fail
    import fcntl
    from functools import partial

    from tui.runs import gpus, launcher, queue_runner
    from tui.runs.launcher import Launcher

    presets = logs_dir.parent / "presets"
    store = RunStore(logs_dir)
    queue = RunQueue(store)
    item = queue.add("job", presets, [], [], name="w", gpus=1)
    monkeypatch.setattr(launcher, "machine_lock", partial(gpus.machine_lock, 0.3))
    fd = os.open(gpus._ensure_dir() / ".lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        got = queue_runner.start_head(queue, lambda _: Launcher(store, PresetRegistry(presets)),
                                      say=lambda _: None)
    finally:
        os.close(fd)
    q = queue.load()
    assert got == "waiting" and not q.failed, q
    assert [w.id for w in q.waiting] == [item.id] and "holds" in (q.waiting[0].waiting_for or "")
