"""The TUI in real terminal sizes (issue 11): the layout by priority from 80x24 to 250x70, numbers
with 4 significant digits aligned, the charts, the log pane's keys, and `--readonly`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from app_fixtures import CRASHED, SMOKE, TINY, make_app, sync, wait_for
from textual.widgets import DataTable, Log

from tui.app.screens.confirm import KillScreen
from tui.app.screens.launch import LaunchScreen
from tui.app.screens.runs import RunsScreen
from tui.app.view import Want, align, allocate, fit, num
from tui.app.widgets.charts import Chart, Charts
from tui.app.widgets.logpane import LogPane
from tui.app.widgets.metrics import MetricPanel
from tui.app.widgets.phases import PhaseChecklist
from tui.cli.main import main

pytestmark = pytest.mark.timeout(120)
SIZES = ((80, 24), (90, 28), (100, 30), (120, 40), (150, 40), (160, 45), (200, 55), (250, 70))
PANELS = ("#header", "#recommendation", "#phases", "#metrics", "#timeline", "#charts-side",
          "#secondary", "Footer")


def ready(app: Any) -> bool:
    return app.view is not None and app.main.query_one(LogPane).total > 0


def test_numbers_have_four_significant_digits_aligned() -> None:
    assert [num(x) for x in (0.6312, 0.021, -0.0603, 0.0, None, 1234.5)] == [
        "0.6312", "0.02100", "-0.06030", "0.000", "—", "1234"]
    col = align([num(0.6), num(0.631), num(None), num(12.5)])
    assert len({len(c) for c in col}) == 1  # one width: the `0.6` beside `0.631` bug
    assert len({c.index(".") for c in col if "." in c}) == 1  # decimal points in one column
    assert fit("abcdef", 4) == "abc…" and fit("abc", 4) == "abc"


def test_allocate_by_priority() -> None:
    wants = [Want("a", 5, 5), Want("b", 2, 6, whole=True), Want("c", 1, 4), Want("d", 3, 99)]
    assert allocate(11, wants) == {"a": 5, "b": 2, "c": 1, "d": 3}  # least each, in order
    assert allocate(9, wants) == {"a": 5, "b": 2, "c": 1, "d": 1}  # the last one shrinks first
    assert allocate(20, wants) == {"a": 5, "b": 6, "c": 4, "d": 5}  # `whole`: all of it or none


@pytest.mark.parametrize("spec", [SMOKE, TINY, CRASHED], ids=["training", "finished", "crashed"])
@sync
async def test_layout_by_priority_at_every_size(tmp_path: Path, spec: tuple[str, str, str, int]) -> None:
    alive = (SMOKE[1],) if spec is SMOKE else ()
    app, _, _ = make_app(tmp_path, runs=(spec,), alive=alive, run=spec[1])
    async with app.run_test(size=SIZES[0]) as pilot:
        await wait_for(pilot, lambda: ready(app))
        for w, h in SIZES:
            await pilot.resize_terminal(w, h)
            await pilot.pause(0.1)
            screen = app.main
            shown = [(sel, screen.query_one(sel).region) for sel in PANELS
                     if screen.query_one(sel).display and screen.query_one(sel).region.area]
            for i, (a, ra) in enumerate(shown):
                assert ra.right <= w and ra.bottom <= h, f"{a} outside {w}x{h}: {ra}"
                for b, rb in shown[i + 1:]:
                    assert not ra.overlaps(rb), f"{a} {ra} overlaps {b} {rb} at {w}x{h}"
            names = [s for s, _ in shown]
            assert "#header" in names and "#recommendation" in names, (w, h)
            metrics = screen.query_one(MetricPanel)
            table = screen.query_one("#metrics-table", DataTable)
            assert table.region.height >= table.row_count + 1, f"metric rows cut at {w}x{h}"
            assert metrics.region.height >= metrics.table_lines() + metrics.decision_lines()[0]
            assert screen.query_one("#timeline-table", DataTable).region.height >= 2, (w, h)
            if w >= 150 and h >= 55:
                assert screen.query_one("#charts-side").display, f"charts beside at {w}x{h}"


@sync
async def test_checklist_is_one_line_once_done_and_full_when_a_phase_failed(tmp_path: Path) -> None:
    app, store, _ = make_app(tmp_path, runs=(SMOKE,), alive=(), run=SMOKE[1])
    lines = (Path(__file__).parent / "data" / SMOKE[0]).read_text().splitlines(keepends=True)
    cut = next(i for i, ln in enumerate(lines) if "OnlineRobustScaler fitted" in ln)
    store.log_path(SMOKE[1]).write_text("".join(lines[:cut]))  # start-up not over; the process is gone
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: ready(app) and app.view.state.state == "crashed")
        await pilot.pause(0.2)
        phases = app.main.query_one(PhaseChecklist)
        assert phases.region.height == 8 and "❌" in str(phases.render())  # back in full
    app, _, _ = make_app(tmp_path / "b", runs=(TINY,), alive=(), run=TINY[1])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: ready(app))
        await pilot.pause(0.1)
        assert app.main.query_one(PhaseChecklist).region.height == 1


@sync
async def test_timeline_columns_keep_their_precision(tmp_path: Path) -> None:
    app, _, _ = make_app(tmp_path, runs=(TINY,), alive=(), run=TINY[1])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: ready(app))
        table = app.main.query_one("#timeline-table", DataTable)
        val = [str(table.get_cell(str(e), "val_loss")) for e in (1, 2)]
        assert val == ["0.9340", "0.9010"]
        sharpe = [str(table.get_cell(str(e), "sharpe")) for e in (1, 2)]
        assert sharpe == ["-0.01200", " 0.02100"]
        cols = {c.key.value: c for c in table.columns.values()}
        assert cols["val_loss"].get_render_width(table) >= len("0.9340") + 2


@sync
async def test_charts_tab_axes_baseline_log_scale_and_no_idle_redraw(tmp_path: Path) -> None:
    app, _, _ = make_app(tmp_path, runs=(SMOKE,), run=SMOKE[1])
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_for(pilot, lambda: ready(app))
        await pilot.press("t")
        assert app.main.tab == "charts"
        charts = app.main.query_one("#charts", Charts)
        await pilot.pause(0.3)
        assert [c.display for c in charts.query(Chart)] == [True, False, False]  # one fits: c cycles
        await pilot.press("c")
        assert [c.display for c in charts.query(Chart)] == [False, True, False]
        await pilot.press("z")  # zoomed, all three fit
        await pilot.pause(0.3)
        assert all(c.display for c in charts.query(Chart))
        loss, scores, steps = (c.spec for c in charts.query(Chart))
        assert loss is not None and [s.label for s in loss.series] == ["train", "val"]
        assert loss.series[1].y == (0.359, 0.3551, 0.3529)
        assert scores is not None and any(s.reference and s.label == "base Sharpe" for s in scores.series)
        assert steps is not None and len(steps.series[0].x) == 18  # every progress line, per step
        builds = sum(c.builds for c in charts.query(Chart))
        assert builds >= 3
        await pilot.pause(1.5)  # nothing new in the log: nothing is drawn again
        assert sum(c.builds for c in charts.query(Chart)) == builds
        await pilot.press("s")
        await pilot.pause(1.2)
        assert all(c.spec.log_y for c in list(charts.query(Chart))[::2])  # the loss charts
        await pilot.press("z", "t")
        assert app.main.tab == "process"


@sync
async def test_log_end_follows_again_and_g_jumps_to_the_latest_epoch(tmp_path: Path) -> None:
    app, store, _ = make_app(tmp_path, runs=(SMOKE,), run=SMOKE[1])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: ready(app))
        pane = app.main.query_one(LogPane)
        log = app.main.query_one(Log)
        status = str(app.main.query_one("#log-status").render())
        assert all(f"{k} " in status for k in "1234560")  # every quick filter fits in 80 columns
        await pilot.press("z")  # room to scroll
        await pilot.pause(0.1)
        log.scroll_home(animate=False, immediate=True)
        await pilot.pause(0.1)
        assert not pane.following and "paused" in str(app.main.query_one("#log-status").render())
        with open(store.log_path(SMOKE[1]), "a") as f:
            f.write("[2026-11-24 04:23:36,000][engine][INFO] - while scrolled up\n")
        await wait_for(pilot, lambda: pane.total == 84)
        assert log.scroll_y == 0  # scrolled up: the new line does not pull the view
        await pilot.press("end")
        assert pane.following and log.scroll_y == log.max_scroll_y
        with open(store.log_path(SMOKE[1]), "a") as f:
            f.write("[2026-11-24 04:23:37,000][engine][INFO] - followed again\n")
        await wait_for(pilot, lambda: pane.total == 85)
        await pilot.pause(0.1)
        assert pane.following and log.lines[-1].endswith("followed again")
        assert "paused" not in str(app.main.query_one("#log-status").render())
        with open(store.log_path(SMOKE[1]), "a") as f:
            f.writelines(f"[2026-11-24 04:23:38,000][engine][INFO] - line {i}\n" for i in range(40))
        await wait_for(pilot, lambda: pane.total == 125)
        await pilot.press("g")
        top = log.lines[round(log.scroll_y)]
        assert top.endswith("[main] Epoch 4/10") and not pane.following


@sync
async def test_readonly_keys_do_nothing_and_the_footer_says_so(tmp_path: Path) -> None:
    app, _, launcher = make_app(tmp_path, runs=(TINY, SMOKE), alive=(SMOKE[1],), run=TINY[1],
                                readonly=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: ready(app))
        assert app.view.verdicts.recommendation.action == "launch"  # something to apply...
        for key in ("l", "n", "r"):
            await pilot.press(key)
            await pilot.pause(0.1)
            assert app.screen is app.main, key
        assert "apply" not in str(app.main.query_one("#recommendation").render())
        footer = "".join(s.text for s in app.screen._compositor.render_strips()[-1:])
        assert "READ-ONLY" in footer and "Launch" not in footer and "Kill" not in footer
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert not [t for t in titles if t.split(" (")[0] in ("Launch", "Next step", "Kill", "Resume")]
        assert any(t.startswith("Runs") for t in titles)
        app.attach(app.store.get(SMOKE[1]))  # a running run: kill does nothing either
        await wait_for(pilot, lambda: app.view is not None and app.view.run == SMOKE[1] and app.view.active)
        await pilot.press("k")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, KillScreen)
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
        await pilot.press("a", "K")
        await pilot.pause(0.1)
        assert isinstance(app.screen, RunsScreen) and "READ-ONLY" in str(app.screen.query_one("#runs-title").render())
        await pilot.press("l")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, LaunchScreen)
    assert launcher.calls == []


def test_readonly_on_the_command_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    def fake(*args: Any, **kw: Any) -> int:
        seen.append(kw)
        return 0

    monkeypatch.setattr("tui.app.app.run_app", fake)
    logs = ["--logs", str(tmp_path / "_logs")]
    assert main([*logs, "--readonly"]) == 0
    assert main([*logs, "tui", "--readonly"]) == 0
    assert main([*logs, "tui"]) == 0
    assert [kw["readonly"] for kw in seen] == [True, True, False]
    assert main([*logs, "--readonly", "launch", "tiny"]) == 2
    assert "--readonly is for the TUI" in capsys.readouterr().err
    assert main([*logs, "tui", "--readonly", "--launch", "tiny"]) == 2
    assert "exclude each other" in capsys.readouterr().err
