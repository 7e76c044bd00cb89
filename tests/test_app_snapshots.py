"""Snapshot tests of the main screens in known states (recorded logs, frozen clock, no blink)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from app_fixtures import CRASHED, SMOKE, TINY, make_app, wait_for
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from tui.app.widgets.logpane import LogPane

pytestmark = pytest.mark.timeout(120)


async def settle(pilot: Pilot[Any]) -> None:
    """Wait for the follower's first snapshot and lines; stop cursors blinking."""
    app = pilot.app
    await wait_for(pilot, lambda: app.view is not None and app.main.query_one(LogPane).total > 0)
    for box in app.query(Input):
        box.cursor_blink = False
    await pilot.pause(0.2)


def test_main_running_wide(snap_compare: Any, tmp_path: Path) -> None:
    app, _, _ = make_app(tmp_path, runs=(SMOKE,), run=SMOKE[1])
    assert snap_compare(app, terminal_size=(140, 45), run_before=settle)


def test_main_running_80x24(snap_compare: Any, tmp_path: Path) -> None:
    app, _, _ = make_app(tmp_path, runs=(SMOKE,), run=SMOKE[1])
    assert snap_compare(app, terminal_size=(80, 24), run_before=settle)


def test_main_finished_with_recommendation(snap_compare: Any, tmp_path: Path) -> None:
    app, _, _ = make_app(tmp_path, runs=(TINY,), alive=(), run=TINY[1])
    assert snap_compare(app, terminal_size=(120, 40), run_before=settle)


def test_runs_screen(snap_compare: Any, tmp_path: Path) -> None:
    app, _, _ = make_app(tmp_path, runs=(SMOKE, TINY, CRASHED), run=SMOKE[1])

    async def before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("R")
        await wait_for(pilot, lambda: pilot.app.screen.query_one(DataTable).row_count == 3)
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(120, 30), run_before=before)
