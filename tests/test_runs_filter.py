"""The runs screen's filter by host (issue 19): `host:NAME` keeps the runs of that host only, by
its exact name, where a free word (`h2`) is also found in run ids and presets that contain it."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_fixtures import SMOKE, TINY, make_app, sync, wait_for
from textual.widgets import Input, Static

from tui.app.actions import host_view
from tui.app.messages import RunsLoaded
from tui.app.screens.runs import RunsScreen, matches
from tui.app.widgets.runtable import RunTable

pytestmark = pytest.mark.timeout(60)
SIZE = (140, 40)

# each host's `runs --json` rows: h1's run and preset have "h2" in them; h12 starts with "h1"
ROWS = {
    "h1": [{"run": "h2sweep_20261124_050000", "preset": "h2net", "state": "training", "epoch": 1}],
    "h2": [{"run": "tiny_20261124_060000", "preset": "tiny", "state": "finished", "epoch": 3}],
    "h12": [{"run": "other_20261124_070000", "preset": "other", "state": "killed", "epoch": 2}],
}
H1, H2, H12 = "h1:h2sweep_20261124_050000", "h2:tiny_20261124_060000", "h12:other_20261124_070000"


def _cells(host: str, run: str = "r_20261124_050000", preset: str = "p") -> dict[str, str]:
    return {"host": host, "run": run, "preset": preset, "state": "● training", "sweep": ""}


def test_a_host_token_matches_the_host_exactly() -> None:
    h1 = _cells("h1", "h2sweep_20261124_050000", "h2net")
    h2, h12, here, alone = _cells("h2"), _cells("h12"), _cells("local"), _cells("")
    assert matches(h1, ["h2"]) and matches(h2, ["h2"])  # a free word: anywhere in the row
    assert not matches(h1, ["host:h2"]) and matches(h2, ["host:h2"])
    assert matches(h1, ["host:h1"]) and not matches(h12, ["host:h1"])  # not a prefix
    assert matches(here, ["host:local"]) and matches(alone, ["host:local"])  # no hosts file: local
    assert not matches(h1, ["host:local"])
    assert matches(h1, ["host:h1", "host:h2"]) and matches(h2, ["host:h1", "host:h2"])  # any of them
    assert not matches(h12, ["host:h1", "host:h2"])
    assert matches(h1, ["host:h1", "h2net"]) and not matches(h1, ["host:h1", "tiny"])  # with words
    assert matches(h12, ["host:"]) and matches(h12, ["host:", "training"])  # still being typed: left out


@sync
async def test_the_runs_screen_filters_by_host(tmp_path: Path) -> None:
    app, _, _ = make_app(tmp_path, runs=(SMOKE, TINY), alive=())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        for host, rows in ROWS.items():  # each host's listing, as the app's hosts thread posts it
            screen.post_message(RunsLoaded([host_view(host, r) for r in rows], done=False, listing=True,
                                           host=host))
        table = screen.query_one(RunTable)
        await wait_for(pilot, lambda: {H1, H2, H12} <= set(table.keys))
        box = screen.query_one("#runs-filter", Input)

        async def shown(text: str) -> set[str]:
            box.value = ""
            await pilot.pause()
            await pilot.press(*text)  # typed into the filter, as a user does
            await pilot.pause()
            return set(table.keys)

        await pilot.press("slash")
        assert app.focused is box
        assert await shown("h2") == {H1, H2}  # the free word finds h1's run too (its id, its preset)
        assert await shown("host:h2") == {H2}
        assert await shown("host:h1") == {H1}  # h12 is another host
        assert await shown("host:local") == {SMOKE[1], TINY[1]}  # this machine's
        assert await shown("host:h2 tiny") == {H2}  # and words: this machine's tiny run is not h2's
        assert await shown("HOST:H1 host:h12") == {H1, H12}  # several: any of them
        assert await shown("host:") == {SMOKE[1], TINY[1], H1, H2, H12}  # being typed: all still
        assert await shown("host:h9") == set()
        assert "No run matches 'host:h9'" in str(screen.query_one("#runs-empty", Static).render())
        assert "filter host:h9" in str(screen.query_one("#runs-title", Static).render())
