"""The main screen on a run of thousands of epochs: a poll costs what is shown, not the history.

The timeline builds cells only for the epochs that fit (and says how many earlier ones there
are); an epoch chart draws a long series as its envelope (each run of epochs' lowest and highest,
the latest always), never more points than a terminal has columns for.
"""

from __future__ import annotations

from pathlib import Path

from app_fixtures import SMOKE, add_run, make_app, sync, wait_for

from tests.test_attach_fast import _engine_log
from tui.app.widgets.charts import MAX_POINTS, envelope
from tui.app.widgets.timeline import EpochTimeline
from tui.state.run import RunState

EPOCHS = 3000


def test_envelope_keeps_short_series_and_the_shape_of_long_ones() -> None:
    short = [(float(i), float(i % 7)) for i in range(MAX_POINTS)]
    assert envelope(short) == short
    long = [(float(i), float((i * 7919) % 1000) / 1000) for i in range(50_000)]
    long[12_345] = (12_345.0, -5.0)  # a spike the chart must keep
    out = envelope(long)
    assert len(out) <= MAX_POINTS + 1
    assert out == sorted(out)  # in epoch order
    assert (12_345.0, -5.0) in out and out[-1] == long[-1]
    assert {p[1] for p in out} <= {p[1] for p in long}  # points of the series, none made up


@sync
async def test_a_run_of_thousands_of_epochs(tmp_path: Path) -> None:
    app, store, _ = make_app(tmp_path, runs=(), alive=(SMOKE[1],), run=SMOKE[1])
    add_run(store, SMOKE, _engine_log(EPOCHS))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.view is not None and len(app.view.state.epochs) == EPOCHS,
                       timeout=30)
        timeline = app.main.query_one(EpochTimeline)
        await wait_for(pilot, lambda: timeline.hidden_epochs > 0)
        table = timeline.query_one("#timeline-table")
        assert 0 < table.row_count <= 40 and table.row_count + timeline.hidden_epochs == EPOCHS
        assert str(EPOCHS) in str(table.get_row_at(table.row_count - 1)[0])  # the latest epoch
        assert f"{timeline.hidden_epochs} earlier" in str(timeline.query_one("#timeline-summary").render())
        from tui.app.widgets.charts import chart_specs

        for spec in chart_specs(app.view, False):
            for s in spec.series:
                assert len(s.x) <= MAX_POINTS + 1
    assert isinstance(app.view.state, RunState)
