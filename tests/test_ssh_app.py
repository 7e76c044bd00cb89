"""The TUI over hosts (issue 19), against two real sshd servers (tests/sshd.py): the runs screen
lists this machine's and every host's runs with a Host column and filters by host; a host that
stops answering is one line there (its rows as last seen) and is asked again; runs of two hosts
are compared and killed together; a host's run is attached and followed live with the panels of
a local run. `make test-ssh` runs them; inside `make test` they skip."""

from __future__ import annotations

import asyncio
import json
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

            # filter by host
            screen.filter_text = "h2"
            screen._show()
            assert table.keys == [k2]
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
