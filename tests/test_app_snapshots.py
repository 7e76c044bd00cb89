"""Snapshot tests of the screens in known states (recorded logs, frozen clock, no blink): the main
screen at four sizes from 80x24 to 200x55 for a run training, one finished with a recommendation
and one crashed; the charts zoomed; the runs screen; the compare screen; read-only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from app_fixtures import CRASHED, SMOKE, TINY, make_app, wait_for
from textual.pilot import Pilot
from textual.widgets import Input

from tui.app.screens.runs import RunsScreen
from tui.app.widgets.logpane import LogPane

pytestmark = pytest.mark.timeout(120)

SIZES = {"80x24": (80, 24), "100x30": (100, 30), "120x40": (120, 40), "200x55": (200, 55)}
RUNS = {"training": (SMOKE, (SMOKE[1],)), "finished": (TINY, ()), "crashed": (CRASHED, ())}


async def settle(pilot: Pilot[Any]) -> None:
    """Wait for the follower's first snapshot and lines; stop cursors blinking."""
    app = pilot.app
    await wait_for(pilot, lambda: app.view is not None and app.main.query_one(LogPane).total > 0)
    for box in app.query(Input):
        box.cursor_blink = False
    await pilot.pause(0.2)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("state", RUNS)
def test_main(snap_compare: Any, tmp_path: Path, state: str, size: str) -> None:
    spec, alive = RUNS[state]
    app, _, _ = make_app(tmp_path, runs=(spec,), alive=alive, run=spec[1])
    assert snap_compare(app, terminal_size=SIZES[size], run_before=settle)


def test_charts_zoomed_100x30(snap_compare: Any, tmp_path: Path) -> None:
    app, _, _ = make_app(tmp_path, runs=(SMOKE,), run=SMOKE[1])

    async def before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("t", "z")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=(100, 30), run_before=before)


def test_readonly_80x24(snap_compare: Any, tmp_path: Path) -> None:
    app, _, _ = make_app(tmp_path, runs=(TINY,), alive=(), run=TINY[1], readonly=True)
    assert snap_compare(app, terminal_size=(80, 24), run_before=settle)


def test_runs_screen(snap_compare: Any, tmp_path: Path) -> None:
    app, _, _ = make_app(tmp_path, runs=(SMOKE, TINY, CRASHED), run=SMOKE[1])

    async def before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, RunsScreen)
                       and pilot.app.screen.loaded)
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(120, 30), run_before=before)
