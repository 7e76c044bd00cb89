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


def test_a_step_run_of_an_uninstrumented_script_120x40(snap_compare: Any, tmp_path: Path) -> None:
    """nanoGPT's recorded output (tests/data/any_loop): a timeline of evaluations by step, the
    script's own checklist, criteria and a step checkpoint on its own metric names."""
    import shutil

    from app_fixtures import FROZEN, PRESETS, RecordedStore, make_app  # noqa: F811

    from tui.runs.store import Manifest

    presets = tmp_path / "presets"
    shutil.copytree(PRESETS, presets)
    (presets / "train.py").write_text("")
    (presets / "nano.toml").write_text(
        'description = "nanoGPT train.py"\ncommand = ["{python}", "train.py", "--max_iters={max_steps}"]\n'
        'override_format = "--{key}={value}"\nmax_steps = 200\n'
        '[[criteria]]\nmetric = "val_loss"\nop = "<"\nvalue = 2.0\nlabel = "val loss below 2.0"\n'
        '[[criteria]]\nmetric = "loss"\nop = "<"\nvalue = 2.5\nlabel = "train loss below 2.5"\n'
        '[[checkpoints]]\nstep = 100\ntitle = "Step 100"\nrules = [{ when = [{ metric = "val_loss", '
        'op = "<", value = 2.5 }], verdict = "learning", level = "good", say = "go on" }, '
        '{ verdict = "stuck", level = "bad" }]\n')
    app, store, _ = make_app(tmp_path, runs=(), alive=())
    assert isinstance(store, RecordedStore)
    run = "nano_20261205_174000"
    store.training_dir.mkdir(parents=True, exist_ok=True)
    log = store.log_path(run)
    text = (Path(__file__).parent / "data" / "any_loop" / "nanogpt_train.log").read_text()
    log.write_text(text + "[2026-11-24 04:23:11,000][runctl][INFO] - [exit] reason=finished status=0\n")
    store.save(Manifest(run=run, name="nano", preset="nano", log=str(log), run_dir=str(store.run_dir(run)),
                        pid_file=str(store.pid_path("nano")), created_at=FROZEN - 300, host="test",
                        kind="command", pid=4343, create_time=FROZEN - 300,
                        sources={"log_format": "auto", "stdout": True, "patterns": [], "files": {}}))
    app, _, _ = make_app(tmp_path, runs=(), alive=(), run=run)
    assert snap_compare(app, terminal_size=(120, 40), run_before=settle)
