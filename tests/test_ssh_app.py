"""The TUI over hosts (issue 19), against two real sshd servers (tests/sshd.py): the runs screen
lists this machine's and every host's runs with a Host column and filters by host; a host that
stops answering is one line there (its rows as last seen) and is asked again; runs of two hosts
are compared and killed together; a host's run is attached and followed live with the panels of
a local run, and its host dropping is said in the run's notice while keys go on working.
`make test-ssh` runs them; inside `make test` they skip."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from app_fixtures import wait_for
from textual.widgets import Static

from tests.sshd import ENABLED, ROOT, SSHD, Hosts
from tests.waiting import wait_until
from tui.app.app import RunctlApp
from tui.app.screens.compare import CompareScreen
from tui.app.screens.confirm import KillScreen
from tui.app.screens.runs import RunsScreen
from tui.app.widgets.runtable import RunTable
from tui.presets.registry import PresetRegistry
from tui.runs.launcher import Launcher
from tui.runs.remote import Remote
from tui.runs.ssh import DOWN_S
from tui.runs.store import RunStore

pytestmark = [pytest.mark.ssh,
              pytest.mark.skipif(not (ENABLED and SSHD), reason="no sshd servers (make test-ssh starts them)")]

LOCAL_STEP = """description = "stand-in trainer, here"
cwd = "{root}"
gpus = 0
command = ["{{python}}", "tests/scripts/stepped_train.py", "{{run_dir}}", "3"]
max_epochs = 3
"""


@pytest.fixture
def hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reaper) -> Iterator[Hosts]:  # noqa: ANN001
    h = Hosts(tmp_path)
    try:
        for s in h.servers.values():
            s.preset("step")
        h.start()
        for k, v in h.env().items():
            monkeypatch.setenv(k, v)
        yield h
    finally:
        h.close()


def _far_state(remote: Remote, host: str, run: str) -> str:
    return str(remote.status(host, run)["state"])


def test_runs_screen_attach_compare_and_kill_across_hosts(hosts: Hosts, tmp_path: Path) -> None:
    store = RunStore(tmp_path / "_logs")
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "here.toml").write_text(LOCAL_STEP.format(root=ROOT))
    registry = PresetRegistry(presets)
    here = Launcher(store, registry).launch("here")
    remote = Remote(store.logs_dir)
    r1, _ = remote.launch("h1", "step")
    r2, _ = remote.launch("h2", "step")
    run1, run2 = r1["run"], r2["run"]
    for host, run in (("h1", run1), ("h2", run2)):
        hosts[host].go(run, 1)
        assert wait_until(lambda h=host, r=run: remote.status(h, r)["epoch"] == 1, 30, 0.3)

    async def go() -> None:
        app = RunctlApp(store, Launcher(store, registry), registry, poll_interval=0.05,
                        remote=Remote(store.logs_dir))
        async with app.run_test(size=(140, 40)) as pilot:
            await pilot.pause(0.3)
            await pilot.press("R")
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), 10)
            screen = app.screen
            assert isinstance(screen, RunsScreen)
            k1, k2 = f"h1:{run1}", f"h2:{run2}"
            await wait_for(pilot, lambda: {k1, k2, here.run} <= set(screen.views), 20)
            cells = screen._cells
            assert (cells[k1]["host"], cells[k1]["run"], cells[k1]["preset"]) == ("h1", run1, "step")
            assert cells[here.run]["host"] == "local" and cells[k2]["host"] == "h2"
            assert "1/3" in cells[k2]["epoch"] and float(cells[k2]["sharpe"]) == 0.1
            table = screen.query_one(RunTable)
            assert "host" in [table.columns[i].key for i in table._shown]

            # filter by host: `host:NAME`, that host's runs only
            screen.filter_text = "host:h2"
            screen._show()
            assert table.keys == [k2]
            screen.filter_text = "host:local"
            screen._show()
            assert table.keys == [here.run]
            screen.filter_text = ""
            screen._show()

            # compare runs of two hosts: read whole from their hosts first
            screen.marked = [k1, k2]
            await pilot.press("c")
            await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), 30)
            cmp = app.screen
            assert isinstance(cmp, CompareScreen)
            assert [v.key for v in cmp.views] == [k1, k2]
            assert all(len(v.state.epochs) == 1 and v.state.epochs[0].sharpe == 0.1 for v in cmp.views)
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is screen)

            # a host that stops answering: one line, its rows as last seen; answering again: gone
            hosts["h2"].stop()
            screen.action_refresh()
            box = screen.query_one("#runs-hosts", Static)
            await wait_for(pilot, lambda: "h2: unreachable (ssh: " in str(box.render()), 20)
            assert k2 in screen.views and box.display
            hosts["h2"].start()
            await pilot.pause(DOWN_S + 0.5)  # a host that did not answer is asked again after DOWN_S
            screen.action_refresh()
            await wait_for(pilot, lambda: not screen.host_errors, 20)
            assert not box.display

            # kill marked across hosts: one confirmation, each host's runctl kills its run
            screen.marked = [k1, k2]
            screen._remark()
            await pilot.press("K")
            await wait_for(pilot, lambda: isinstance(app.screen, KillScreen), 10)
            await pilot.press("y")
            await wait_for(pilot, lambda: _far_state(remote, "h1", run1) == "killed"
                           and _far_state(remote, "h2", run2) == "killed", 40)

            # attach to a host's run: followed live, the panels of a local run
            remote.resume("h1", run1)
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
            screen.action_refresh()
            await wait_for(pilot, lambda: k1 in screen.views and screen.views[k1].active, 20)
            table.move_to(table.keys.index(k1))
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.view is not None and app.view.key == k1, 30)
            hosts["h1"].go(run1, 2)
            await wait_for(pilot, lambda: app.view is not None and app.view.state.epoch == 2, 30)
            v = app.view
            assert v is not None and v.host == "h1" and v.preset is not None and v.preset.name == "step"
            assert v.verdicts is not None  # judged with the host's preset, copied from there
            assert app.sub_title == k1
            mirror = remote.store("h1").log_path(run1)
            assert wait_until(lambda: mirror.read_bytes() == hosts["h1"].log(run1).read_bytes(), 10, 0.2)
            assert app.follower is not None and app.follower.feed is not None
            assert app.follower.feed.streams >= 1  # one streaming ssh process
            hosts["h1"].go(run1, 3)
            await wait_for(pilot, lambda: app.view is not None and app.view.state.state == "finished", 30)
        assert app.follower is not None and app.follower.feed._closed  # the stream stops with the app

    asyncio.run(asyncio.wait_for(go(), 240))


def test_readonly_reaches_no_host(hosts: Hosts, tmp_path: Path) -> None:
    store = RunStore(tmp_path / "_logs")
    remote = Remote(store.logs_dir)
    started, _ = remote.launch("h1", "step")
    ro = Remote(store.logs_dir, readonly=True)
    for call in (lambda: ro.kill("h1", started["run"]), lambda: ro.resume("h1", started["run"]),
                 lambda: ro.launch("h1", "step"), lambda: ro.launch_any("step")):
        with pytest.raises(Exception, match="read-only"):
            call()
    assert _far_state(remote, "h1", started["run"]) in ("launching", "training")
    registry = PresetRegistry(ROOT / "presets")

    async def go() -> None:
        app = RunctlApp(store, None, registry, poll_interval=0.05, readonly=True, remote=ro)
        async with app.run_test(size=(140, 40)) as pilot:
            await pilot.pause(0.3)
            await pilot.press("R")
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), 10)
            screen: Any = app.screen
            key = f"h1:{started['run']}"
            await wait_for(pilot, lambda: key in screen.views, 20)
            screen.marked = [key]
            await pilot.press("K")
            await pilot.pause(0.3)
            assert isinstance(app.screen, RunsScreen)  # no kill from a read-only app

    asyncio.run(asyncio.wait_for(go(), 60))
    assert _far_state(remote, "h1", started["run"]) in ("launching", "training")
    assert json.dumps(started)  # what the host answered is plain data


def test_an_attached_runs_host_that_drops_is_said_and_followed_again(hosts: Hosts, tmp_path: Path) -> None:
    """Attached to a run on h1, h1 stops answering (frozen: every ssh call to it waits its whole
    timeout): the app keeps handling keys at once, and the run's notice (the header's ⚠ line)
    says h1 is unreachable within seconds; then its connections dropped and its server gone
    (the log's stream fails at once): still said; h1 back, the follow goes on where it stopped
    (the next epoch appears, the copy is the far log) and the notice clears."""
    store = RunStore(tmp_path / "_logs")
    (tmp_path / "presets").mkdir()
    registry = PresetRegistry(tmp_path / "presets")
    remote = Remote(store.logs_dir)
    started, _ = remote.launch("h1", "step")
    run, key, h1 = started["run"], f"h1:{started['run']}", hosts["h1"]
    h1.go(run, 1)
    assert wait_until(lambda: remote.status("h1", run)["epoch"] == 1, 30, 0.3)

    async def go() -> None:
        app = RunctlApp(store, None, registry, run=key, poll_interval=0.05, remote=Remote(store.logs_dir))
        async with app.run_test(size=(140, 40)) as pilot:
            await wait_for(pilot, lambda: app.view is not None and app.view.key == key
                           and app.view.state.epoch == 1, 30)
            assert app.view is not None and app.view.notice is None
            title = app.main.query_one("#run-title", Static)

            def said() -> str:
                return str(title.render())

            async def prompt_key() -> float:
                """A key handled (the main screen zoomed or back), then 0.2 s of the app's loop:
                how long both took. This test runs on the app's own event loop, so anything that
                holds that loop (an ssh call to a frozen host waits its whole 4 s timeout) makes
                this take as long."""
                before, t0 = app.main.zoomed, time.monotonic()
                await pilot.press("z")
                assert app.main.zoomed is not before
                await pilot.pause(0.2)
                return time.monotonic() - t0

            # frozen: the stream hears nothing (ssh sees a dead connection only after its
            # ServerAlive probes, 15 s); the host's status, asked every 5 s, times out (4 s here)
            # and says so: `SSH: h1: unreachable (ssh: no answer within 4s)`, seen at ~7 s
            h1.freeze()
            t0, slowest = time.monotonic(), 0.0
            while not (app.view.notice and "h1: unreachable" in app.view.notice):
                assert time.monotonic() - t0 < 15, f"no notice after {time.monotonic() - t0:.1f}s"
                slowest = max(slowest, await prompt_key())  # keys all along, status asks in flight
            assert slowest < 1.5, slowest
            assert "h1: unreachable (ssh: " in said() and "⚠" in said()

            # gone: its connections dropped, no server (the stream fails at once, its retries too)
            h1.stop()
            await wait_for(pilot, lambda: app.follower is not None and app.follower.feed is not None
                           and app.follower.feed.error is not None
                           and "unreachable" in app.follower.feed.error, 10)
            await wait_for(pilot, lambda: app.view is not None and app.view.notice is not None
                           and "its log is followed again once it answers" in app.view.notice, 5)
            assert "h1: unreachable (ssh: " in said()
            assert await prompt_key() < 1.5

            # back: the follow resumes from the byte it had, the notice clears
            h1.start()
            h1.go(run, 2)
            await wait_for(pilot, lambda: app.view is not None and app.view.state.epoch == 2, 40)
            assert app.follower is not None and app.follower.feed is not None
            assert app.follower.feed.streams >= 2  # a stream started again
            mirror = remote.store("h1").log_path(run)
            assert wait_until(lambda: mirror.read_bytes() == h1.log(run).read_bytes(), 10, 0.2)
            await wait_for(pilot, lambda: app.view is not None and app.view.notice is None, 20)
            assert "unreachable" not in said()

    asyncio.run(asyncio.wait_for(go(), 180))
