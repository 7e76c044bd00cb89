"""Pilot tests of the app: every key and screen, over recorded logs and a fake launcher."""

from __future__ import annotations

import builtins
from pathlib import Path

import pytest
from app_fixtures import CRASHED, DATA, SMOKE, TINY, make_app, sync, wait_for
from textual.message import Message
from textual.widgets import DataTable, Input, Log, OptionList

from tui.app.messages import LogChunk
from tui.app.screens.compare import CompareScreen
from tui.app.screens.confirm import KillScreen
from tui.app.screens.launch import LaunchScreen, parse_changes
from tui.app.screens.runs import RunsScreen
from tui.app.widgets.header import RunHeader
from tui.app.widgets.logpane import LogPane
from tui.app.widgets.phases import PhaseChecklist
from tui.app.widgets.recommendation import RecommendationBar
from tui.app.widgets.run_watch import RunWatch, default_follower
from tui.app.widgets.runtable import RunTable

pytestmark = pytest.mark.timeout(60)
SIZE = (120, 40)


def snapshot_ready(app) -> bool:  # noqa: ANN001
    """The follower has posted the run's state and its lines."""
    return app.view is not None and app.view.state.epochs and app.main.query_one(LogPane).total > 0


def texts(app) -> list[str]:  # noqa: ANN001
    """The messages of the toasts shown so far."""
    return [n.message for n in app._notifications]


@sync
async def test_main_screen_shows_a_recorded_run(tmp_path: Path) -> None:
    app, _, _ = make_app(tmp_path, run=SMOKE[1])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: snapshot_ready(app))
        # the widgets render the snapshot on the next refreshes: wait for them (a loaded box is slow)
        await wait_for(pilot, lambda: app.main.query_one("#timeline-table", DataTable).row_count == 4
                       and app.main.query_one(PhaseChecklist).region.height == 1
                       and "ETA" in str(app.main.query_one("#run-title").render()))
        st = app.view.state
        assert (st.state, st.epoch, st.max_epochs) == ("training", 4, 10)
        title = str(app.main.query_one("#run-title").render())
        assert SMOKE[1] in title and "smoke" in title and "pid 4242" in title and "ETA" in title
        assert app.main.query_one("#timeline-table", DataTable).row_count == 4
        assert app.main.query_one("#metrics-table", DataTable).row_count >= 3
        phases = str(app.main.query_one(PhaseChecklist).render())
        assert "all 7 phases done" in phases and app.main.query_one(PhaseChecklist).region.height == 1
        await pilot.press("i")  # the full list on demand
        await pilot.pause()
        assert str(app.main.query_one(PhaseChecklist).render()).count("✅") == 7
        assert "keep watching" in str(app.main.query_one(RecommendationBar).render())
        log = app.main.query_one(Log)
        assert len(log.lines) == len((DATA / SMOKE[0]).read_text().splitlines())
        assert "9.50 steps/s" in str(app.main.query_one("#epoch-detail").render())


@sync
async def test_regex_filter_and_quick_filters(tmp_path: Path) -> None:
    app, _, _ = make_app(tmp_path, run=SMOKE[1])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: snapshot_ready(app))
        pane = app.main.query_one(LogPane)
        await pilot.press("slash")
        assert app.focused is app.main.query_one("#log-filter", Input)
        await pilot.press(*"Sharpe:", "enter")
        assert len(pane.shown) == 3 and all("Sharpe: " in ln for ln in pane.shown)
        assert not app.main.query_one("#log-filter", Input).display
        await pilot.press("3")  # SCALE
        assert len(pane.shown) == 12 and all("SCALE(yhat/y)" in ln for ln in pane.shown)
        await pilot.press("1")  # the seed's `grep -E "Epoch [0-9]+/10"`
        assert [ln.split(" ", 1)[1] for ln in pane.shown] == [f"[main] Epoch {i}/10" for i in (1, 2, 3, 4)]
        await pilot.press("6")
        assert pane.shown and all("WARNING" in ln for ln in pane.shown)
        await pilot.press("0")
        assert len(pane.shown) == pane.total
        await pilot.press("slash", *"[", "enter")  # a bad regex keeps the old filter
        assert pane.pattern is None
        assert any("bad regex" in t for t in texts(app))


@sync
async def test_log_pane_is_bounded_and_gets_chunks(tmp_path: Path) -> None:
    app, _, _ = make_app(tmp_path, run=SMOKE[1])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: snapshot_ready(app))
        pane = app.main.query_one(LogPane)
        with open(app.view.log_path, "a") as f:
            f.writelines(f"[2026-11-24 04:23:35,000][engine][INFO] - filler {i}\n" for i in range(6000))
        await wait_for(pilot, lambda: pane.total >= 6083)
        assert len(app.main.query_one(Log).lines) == 5000
        assert pane.shown[-1].endswith("filler 5999")


def test_one_reader_feeds_state_and_log_pane(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RunWatch posts one LogChunk per poll, from the follower's own read (the log opened once)."""
    log = tmp_path / "run.log"
    log.write_text((DATA / SMOKE[0]).read_text())
    opened: list[str] = []
    real_open = builtins.open

    def spy(file, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    posted: list[Message] = []
    watch = RunWatch(posted.append, log, default_follower(log), run="r")

    def chunks() -> list[LogChunk]:
        out = [m for m in posted if isinstance(m, LogChunk)]
        posted.clear()
        return out

    watch.step()
    (first,) = chunks()
    assert first.reset and first.lines == (DATA / SMOKE[0]).read_text().splitlines()
    with log.open("a") as f:
        f.writelines(f"[2026-11-24 04:23:35,000][engine][INFO] - filler {i}\n" for i in range(6000))
    assert watch.step()
    (big,) = chunks()  # 6000 lines: one message, the pane's worth of them
    assert (len(big.lines), big.skipped, big.reset) == (5000, 1000, False)
    assert big.lines[-1].endswith("filler 5999")
    assert not watch.step() and chunks() == []  # nothing new: no message
    epochs = [r.epoch for r in watch.view.state.epochs] if watch.view is not None else []
    log.write_text("[2026-11-24 05:00:00,000][engine][INFO] - Random seed: 7\n")  # truncated
    watch.step()
    (again,) = chunks()  # the pane goes on (what it showed stays), as the state does
    assert not again.reset and again.lines == ["[2026-11-24 05:00:00,000][engine][INFO] - Random seed: 7"]
    assert watch.view is not None and [r.epoch for r in watch.view.state.epochs] == epochs != []
    assert watch.view.state.log_event == "truncated"
    assert opened.count(str(log)) == 1  # one handle, kept open across polls (truncation included)


@sync
async def test_launch_picker_filters_edits_and_launches(tmp_path: Path) -> None:
    app, _, launcher = make_app(tmp_path, run=SMOKE[1])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: snapshot_ready(app))
        await pilot.press("l")
        assert isinstance(app.screen, LaunchScreen)
        await pilot.press(*"tin")
        ol = app.screen.query_one(OptionList)
        assert ol.option_count == 1 and app.screen.selected == "tiny"
        details = str(app.screen.query_one("#preset-details").render())
        assert "Tiny: 2 epochs" in details and "model.hidden_size=16" in details
        app.screen.query_one("#changes", Input).value = "model.hidden_size=32 SHARPE_WEIGHT=0.3"
        await pilot.pause()
        assert "model.hidden_size=32" in str(app.screen.query_one("#preset-details").render())
        app.screen.query_one("#changes", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: launcher.calls)
        assert launcher.calls == [("launch", "tiny", ["model.hidden_size=32"], ["SHARPE_WEIGHT=0.3"], None)]
        await wait_for(pilot, lambda: app.view is not None and app.view.run == "tiny_20261124_050000")
        assert app.screen is app.main


@sync
async def test_launch_picker_rejects_bad_values_and_saves_a_preset(tmp_path: Path) -> None:
    app, _, launcher = make_app(tmp_path, run=SMOKE[1])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: snapshot_ready(app))
        await pilot.press("l", *"tiny")
        app.screen.query_one("#changes", Input).value = "model.hidden_size=abc"
        await pilot.press("enter")
        assert isinstance(app.screen, LaunchScreen) and not launcher.calls
        assert "hidden_size" in str(app.screen.query_one("#launch-error").render())
        app.screen.query_one("#changes", Input).value = "model.hidden_size=24"
        app.screen.query_one("#run-name", Input).value = "tiny24"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: (tmp_path / "presets" / "tiny24.toml").exists())
        assert "extends" in (tmp_path / "presets" / "tiny24.toml").read_text()
        assert not launcher.calls


@sync
async def test_escape_closes_the_picker(tmp_path: Path) -> None:
    app, _, launcher = make_app(tmp_path, run=SMOKE[1])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("l")
        assert isinstance(app.screen, LaunchScreen)
        await pilot.press("escape")
        assert app.screen is app.main and not launcher.calls


def test_parse_changes() -> None:
    assert parse_changes("--set a.b=1 --env X=2 c.d=3 Y_Z=4") == (["a.b=1", "c.d=3"], ["X=2", "Y_Z=4"])


@sync
async def test_next_applies_the_recommendation(tmp_path: Path) -> None:
    app, _, launcher = make_app(tmp_path, runs=(TINY,), alive=(), run=TINY[1])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: snapshot_ready(app))
        rec = app.view.verdicts.recommendation
        assert (rec.action, rec.preset) == ("launch", "smoke")
        assert "n" in str(app.main.query_one(RecommendationBar).render())
        await pilot.press("n")
        await wait_for(pilot, lambda: launcher.calls)
        assert launcher.calls == [("launch", "smoke", [], [], None)]


@sync
async def test_next_while_waiting_only_explains(tmp_path: Path) -> None:
    app, _, launcher = make_app(tmp_path, run=SMOKE[1])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: snapshot_ready(app))
        await pilot.press("n")
        await pilot.pause()
        assert not launcher.calls and any("keep watching" in t for t in texts(app))


@sync
async def test_kill_asks_then_escalates(tmp_path: Path) -> None:
    app, _, launcher = make_app(tmp_path, run=SMOKE[1], kill_grace=12.0)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: snapshot_ready(app))
        await pilot.press("k")
        assert isinstance(app.screen, KillScreen)
        text = str(app.screen.query_one("Static").render())
        assert "SIGTERM" in text and "SIGKILL after 12 s" in text
        await pilot.press("n")
        assert app.screen is app.main and not launcher.calls
        await pilot.press("k", "y")
        await wait_for(pilot, lambda: any("exited after SIGTERM" in t for t in texts(app)))
        assert launcher.calls == [("kill", SMOKE[1], 12.0)]
        assert any("waiting up to 12s" in t for t in texts(app))


@sync
async def test_kill_refuses_a_finished_run(tmp_path: Path) -> None:
    app, _, launcher = make_app(tmp_path, runs=(TINY,), alive=(), run=TINY[1])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: snapshot_ready(app))
        await pilot.press("k")
        assert app.screen is app.main and not launcher.calls


@sync
async def test_resume(tmp_path: Path) -> None:
    app, _, launcher = make_app(tmp_path, runs=(CRASHED,), alive=(), run=CRASHED[1])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: snapshot_ready(app))
        assert app.view.state.state == "crashed"
        await pilot.press("r")
        await wait_for(pilot, lambda: launcher.calls)
        assert launcher.calls == [("resume", CRASHED[1])]


@sync
async def test_runs_screen_opens_and_compares(tmp_path: Path) -> None:
    app, _, _ = make_app(tmp_path, runs=(SMOKE, TINY, CRASHED), run=SMOKE[1])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: snapshot_ready(app))
        await pilot.press("R")
        assert isinstance(app.screen, RunsScreen)
        table = app.screen.query_one(RunTable)
        await wait_for(pilot, lambda: app.screen.loaded and table.row_count == 3)
        states = [table.row(i)[3] for i in range(3)]
        assert states == ["● training", "✔ finished", "✖ crashed"]
        await pilot.press("space", "space", "space", "c")  # three marked: all compared
        assert isinstance(app.screen, CompareScreen) and len(app.screen.views) == 3
        diff = app.screen.query_one("#config-diff", DataTable)
        keys = [str(diff.get_row_at(i)[0]) for i in range(diff.row_count)]
        assert keys[:2] == ["preset", "max_epochs"]  # only what differs
        deltas = app.screen.query_one("#metric-deltas", DataTable)
        assert deltas.row_count > 3 and len(deltas.columns) == 4  # metric + one column per run
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("home", "down", "enter")  # the tiny run
        await wait_for(pilot, lambda: app.view is not None and app.view.run == TINY[1])
        assert app.screen is app.main


def _header(table: RunTable) -> str:
    return "".join(seg.text for seg in table.render_line(0)._segments)


@sync
async def test_runs_screen_fits_80_columns_by_leaving_out_the_least_needed(tmp_path: Path) -> None:
    """At 80 columns the decision's columns (state, epoch, Sharpe, IC h1, SCALE, val loss) are
    all on screen with no sideways scroll; wider, the left-out ones come back, the empty
    Own metric column only when a run has one."""
    app, _, _ = make_app(tmp_path, runs=(SMOKE, TINY, CRASHED), run=SMOKE[1])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: snapshot_ready(app))
        await pilot.press("R")
        table = app.screen.query_one(RunTable)
        await wait_for(pilot, lambda: app.screen.loaded and table.row_count == 3)
        assert table.virtual_size.width <= table.scrollable_content_region.width
        head = _header(table)
        for label in ("Run", "State", "Epoch", "Sharpe", "IC h1", "SCALE", "Val loss"):
            assert label in head
        for label in ("Preset", "IC h20", "Started", "Own metric"):
            assert label not in head
        assert "smoke_20261124_042151" in "".join(s.text for s in table.render_line(1)._segments)
        await pilot.click(RunTable, offset=(head.index("Val loss") + 1, 0))  # clicks skip left-out columns
        await wait_for(pilot, lambda: table.sort is not None and table.sort[0] == "val")
        await pilot.resize_terminal(130, 30)
        await wait_for(pilot, lambda: "Started" in _header(table))
        head = _header(table)
        assert all(label in head for label in ("Preset", "IC h20", "Val loss")) and "Own metric" not in head


@sync
async def test_runs_screen_filters_sorts_and_marks(tmp_path: Path) -> None:
    app, _, _ = make_app(tmp_path, runs=(SMOKE, TINY, CRASHED), alive=())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
        screen = app.screen
        table = screen.query_one(RunTable)
        await pilot.press("slash", *"smo")  # filter as you type: name, preset or state
        assert table.keys == [SMOKE[1], CRASHED[1]]
        await pilot.press(*" cra")  # every word must match
        assert table.keys == [CRASHED[1], SMOKE[1]] or table.keys == [SMOKE[1], CRASHED[1]]
        assert all("crashed" in table.row(i)[3] for i in range(table.row_count))
        await pilot.press("enter")
        assert app.focused is table
        screen.query_one("#runs-filter", Input).value = ""
        await pilot.pause()
        assert table.row_count == 3
        screen.action_sort("sharpe")  # numbers sort high to low first
        await pilot.pause()
        assert table.keys == [SMOKE[1], CRASHED[1], TINY[1]]
        await pilot.press("S")
        assert table.keys == [TINY[1], CRASHED[1], SMOKE[1]]
        await pilot.press("s")  # the next column: IC h1, high to low
        assert screen.sort_column == "ic1" and table.keys[0] == SMOKE[1]
        await pilot.click(RunTable, offset=(3, 0))  # a header click sorts by that column: Run
        await pilot.pause()
        assert screen.sort_column == "run" and table.keys == sorted(table.keys)
        await pilot.press("a")  # mark every run shown
        assert len(screen.marked) == 3 and all(table.row(i)[0] == "◆" for i in range(3))
        await pilot.press("a")
        assert screen.marked == []


@sync
async def test_runs_screen_kills_the_marked_running_runs(tmp_path: Path) -> None:
    other = ("app_smoke_running.log", "smoke_20261124_050505", "smoke", 4343)
    app, store, launcher = make_app(tmp_path, runs=(SMOKE, other, TINY), alive=(SMOKE[1], other[1]))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.view is not None)
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
        await pilot.press("a", "K")  # all marked; the finished one is left out
        assert isinstance(app.screen, KillScreen)
        text = str(app.screen.query_one("Static").render())
        assert "Kill 2 runs" in text and TINY[1] not in text
        await pilot.press("y")
        await wait_for(pilot, lambda: len(launcher.calls) == 2)
        assert sorted(c[1] for c in launcher.calls) == sorted([SMOKE[1], other[1]])


@sync
async def test_no_arguments_attach_newest_active_else_runs(tmp_path: Path) -> None:
    app, _, _ = make_app(tmp_path / "a", runs=(SMOKE, TINY), alive=(SMOKE[1],))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.view is not None)
        assert app.view.run == SMOKE[1]
    app, _, _ = make_app(tmp_path / "b", runs=(SMOKE, TINY), alive=())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("escape")  # nothing attached: the runs screen stays
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)


@sync
async def test_launch_at_start(tmp_path: Path) -> None:
    app, _, launcher = make_app(tmp_path, runs=(), alive=(), launch="tiny")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.view is not None)
        assert launcher.calls == [("launch", "tiny", [], [], None)]
        assert app.view.run == "tiny_20261124_050000" and app.view.preset.name == "tiny"


@sync
async def test_export_writes_the_report(tmp_path: Path) -> None:
    app, _, _ = make_app(tmp_path, run=SMOKE[1])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: snapshot_ready(app))
        await pilot.press("e")
        path = tmp_path / "_logs" / "reports" / f"{SMOKE[1]}_status.md"
        assert path.exists() and "Epoch 5 Validation" in path.read_text()
        assert str(path) in texts(app)


@sync
async def test_quit_leaves_the_run_alone(tmp_path: Path) -> None:
    app, _, launcher = make_app(tmp_path, run=SMOKE[1])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: snapshot_ready(app))
        await pilot.press("q")
    assert app.return_code == 0 and not launcher.calls


@sync
async def test_checkpoint_and_end_notify_with_bell(tmp_path: Path) -> None:
    lines = (DATA / SMOKE[0]).read_text().splitlines(keepends=True)
    cut = next(i for i, ln in enumerate(lines) if "Val metrics (z) h=1:" in ln)
    app, store, _ = make_app(tmp_path, run=SMOKE[1])
    store.log_path(SMOKE[1]).write_text("".join(lines[:cut]))  # epoch 1 not validated yet
    bells: list[int] = []
    app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.view is not None and app.view.state.epoch == 1)
        assert not bells
        with open(store.log_path(SMOKE[1]), "a") as f:
            f.writelines(lines[cut:cut + 12])  # epoch 1's validation: checkpoint decided
        await wait_for(pilot, lambda: any("healthy" in t for t in texts(app)))
        assert bells
        with open(store.log_path(SMOKE[1]), "a") as f:
            f.write("[2026-11-24 04:24:00,000][engine][ERROR] - [error] non-finite loss: x\n"
                    "[2026-11-24 04:24:00,001][engine][ERROR] - [exit] reason=error status=3 epochs_completed=1\n")
        await wait_for(pilot, lambda: app.view.state.state == "crashed")
        await wait_for(pilot, lambda: any("non-finite" in t for t in texts(app)))
        assert len(bells) >= 2


@sync
async def test_small_terminal(tmp_path: Path) -> None:
    app, _, _ = make_app(tmp_path, run=SMOKE[1])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: snapshot_ready(app))
        assert app.main.has_class("-narrow")
        assert app.main.query_one(RunHeader).region.height == 2  # the run bar folded in
        assert "run 3/10" in str(app.main.query_one("#epoch-detail").render())
        assert app.main.query_one(Log).region.height >= 3


def test_key_actions_live_in_app_actions() -> None:
    """The split of the app: the key actions are RunActions' (tui.app.actions), the app's base."""
    import tui.app.actions
    import tui.app.app

    assert issubclass(tui.app.app.RunctlApp, tui.app.actions.RunActions)
    for b in tui.app.app.RunctlApp.BINDINGS:
        action = getattr(b, "action", None)
        if action and action != "quit":
            method = getattr(tui.app.app.RunctlApp, f"action_{action}")
            assert method is getattr(tui.app.actions.RunActions, f"action_{action}"), action
    for name in ("preset_for", "load_runs", "do_launch", "view"):
        assert name in vars(tui.app.actions.RunActions), name


@sync
async def test_a_live_run_whose_manifest_turns_damaged_is_still_killed_by_k_and_K(tmp_path: Path) -> None:
    """Issue 18.3: `kill` works on a damaged run, in the TUI too (its process found from its log's
    pid line and pid file, verified); a damaged run that no longer runs is not offered."""
    other = ("app_smoke_running.log", "smoke_20261124_050505", "smoke", 4343)
    app, store, launcher = make_app(tmp_path, runs=(SMOKE, other), alive=(SMOKE[1],), run=SMOKE[1])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: snapshot_ready(app))
        store.manifest_path(SMOKE[1]).write_text("garbage")
        store.manifest_path(other[1]).write_text("{")
        await wait_for(pilot, lambda: app.view.state.state == "damaged", timeout=10)
        await pilot.press("k")
        assert isinstance(app.screen, KillScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: launcher.calls)
        assert launcher.calls[0][:2] == ("kill", SMOKE[1])
        launcher.calls.clear()
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
        await pilot.press("a", "K")  # both damaged, one alive: that one only
        assert isinstance(app.screen, KillScreen)
        text = str(app.screen.query_one("Static").render())
        assert SMOKE[1] in text and other[1] not in text, text
        await pilot.press("y")
        await wait_for(pilot, lambda: launcher.calls)
        assert [c[1] for c in launcher.calls] == [SMOKE[1]]


@sync
async def test_the_header_and_a_toast_say_when_the_log_goes(tmp_path: Path) -> None:
    """The followed run's log deleted under the app: one ⚠ line in the header and a toast, and the
    epochs already read stay on screen (issue 18)."""
    app, store, _ = make_app(tmp_path, run=SMOKE[1])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: snapshot_ready(app))
        epochs = len(app.view.state.epochs)
        store.log_path(SMOKE[1]).unlink()
        await wait_for(pilot, lambda: "⚠" in str(app.main.query_one("#run-title").render()), timeout=10)
        title = str(app.main.query_one("#run-title").render())
        assert "deleted" in title or "gone" in title, title
        assert any("deleted" in t or "gone" in t for t in texts(app)), texts(app)
        assert len(app.view.state.epochs) == epochs


@sync
async def test_runs_screen_groups_a_sweeps_runs_and_compare_shows_its_values(tmp_path: Path) -> None:
    """A sweep's runs: a Sweep column, kept together (at the sweep's start, in point order) between
    other runs, filtered by the sweep's name; compared, only the swept values differ."""
    from dataclasses import replace as dc_replace

    from app_fixtures import add_run

    app, store, _ = make_app(tmp_path, runs=(SMOKE, TINY), alive=(), run=TINY[1])
    for i, lr in enumerate(("0.001", "0.01")):
        m = add_run(store, (TINY[0], f"lr-{i}_20261124_0{3 + i}1005", "tiny", 5200 + i))
        store.save(dc_replace(m, sets=(f"train.optimizer.lr={lr}",), overrides={"train.optimizer.lr": float(lr)},
                              sweep={"id": "lr_20261124_030000", "index": i, "values": {"train.optimizer.lr": lr}}))
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.press("R")
        assert isinstance(app.screen, RunsScreen)
        table = app.screen.query_one(RunTable)
        await wait_for(pilot, lambda: app.screen.loaded and table.row_count == 4)
        assert "Sweep" in _header(table)
        runs = [str(table.row(i)[1]) for i in range(4)]
        pos = [runs.index(f"lr-{i}_20261124_0{3 + i}1005") for i in range(2)]
        assert pos[1] == pos[0] + 1, runs  # together, point 0 first, though launched an hour apart
        await pilot.press("slash", *"lr_2026", "enter")
        await wait_for(pilot, lambda: table.row_count == 2)
        await pilot.press("a", "c")
        assert isinstance(app.screen, CompareScreen)
        diff = app.screen.query_one("#config-diff", DataTable)
        keys = [str(diff.get_row_at(i)[0]) for i in range(diff.row_count)]
        assert keys == ["train.optimizer.lr"], keys
