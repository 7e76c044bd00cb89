"""The epoch timeline: per epoch time, losses, Sharpe, IC, SCALE; expected vs actual; ETA."""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from tui.app.view import (
    RunView,
    clock,
    duration,
    epoch_seconds,
    eta_seconds,
    expected_end,
    horizon_value,
    num,
)
from tui.state.records import EpochRecord

COLUMNS = (
    ("epoch", "Ep"), ("expected", "Expect"), ("actual", "Actual"), ("time", "Time"),
    ("train", "Train"), ("val", "Val"), ("sharpe", "Sharpe"), ("ic20", "IC h20"), ("scale", "SCALE"),
)


def epoch_cells(v: RunView, rec: EpochRecord) -> dict[str, str]:
    """The timeline cells of one epoch."""
    scale = horizon_value(rec, "scale", "all")
    return {
        "epoch": f"{rec.epoch}/{v.max_epochs or '?'}",
        "expected": clock(expected_end(v, rec.epoch)),
        "actual": clock(rec.ended_at) if rec.validated else "…",
        "time": duration(epoch_seconds(rec)),
        "train": num(rec.train_loss),
        "val": num(rec.val_loss),
        "sharpe": num(rec.sharpe),
        "ic20": num(horizon_value(rec, "ic", 20)),
        "scale": num(scale, 2),
    }


class EpochTimeline(Vertical):
    """A DataTable updated cell by cell, and a line comparing the plan with reality."""

    def __init__(self, clock_fn: Callable[[], float], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._clock = clock_fn
        self._cells: dict[int, dict[str, str]] = {}
        self._summary = ""

    def compose(self) -> ComposeResult:
        yield Static("[b]Epochs[/b]", id="timeline-summary")
        table: DataTable[str] = DataTable(id="timeline-table", cursor_type="none", zebra_stripes=True)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table

    def clear(self) -> None:
        """Forget all rows (a new run)."""
        self.query_one(DataTable).clear()
        self._cells.clear()

    def show(self, v: RunView) -> None:
        """Add new epochs, update changed cells, refresh the plan-vs-actual line."""
        table = self.query_one(DataTable)
        for rec in v.state.epochs:
            cells = epoch_cells(v, rec)
            old = self._cells.get(rec.epoch)
            if old is None:
                table.add_row(*(cells[k] for k, _ in COLUMNS), key=str(rec.epoch))
            else:
                for k, value in cells.items():
                    if old[k] != value:
                        table.update_cell(str(rec.epoch), k, value)
            self._cells[rec.epoch] = cells
        n = v.max_epochs
        now = self._clock()
        planned = clock(expected_end(v, n)) if n else "—"
        eta = eta_seconds(v, now)
        if v.active:
            finish = "—" if eta is None else f"{clock(now + eta)} (in {duration(eta)})"
            text = f"[b]Epochs[/b]  planned end {planned} · expected now {finish}"
        else:
            text = f"[b]Epochs[/b]  planned end {planned} · ended {clock(v.state.last_time)} ({v.state.state})"
        if text != self._summary:
            self._summary = text
            self.query_one("#timeline-summary", Static).update(text)
