"""The epoch timeline: per epoch time, losses and the metrics of the judge's table; expected vs
actual; ETA. The metric columns follow the metric table's rows (any metric name), numbers with 4
significant digits aligned per column; columns that do not fit the width are left out, the least
important first."""

from __future__ import annotations

from collections.abc import Callable

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from tui.app.view import (
    RunView,
    align,
    clock,
    duration,
    epoch_seconds,
    epoch_value,
    eta_seconds,
    expected_end,
    num,
    short_label,
)
from tui.app.widgets.tables import Filled, fill
from tui.judge.conditions import own_metrics
from tui.state.records import EpochRecord

FIXED = (("epoch", "Ep"), ("expected", "Expect"), ("actual", "Actual"), ("time", "Time"))
UNSIZED_ROWS = 200  # epochs shown before the screen gives the timeline its rows
LOSSES = ("train_loss", "val_loss")
DEFAULT_METRICS = ("sharpe", "ic_h20", "scale")  # when no preset judges the run
DROP_FIRST = ("expected", "actual", "time")  # left out first when the width is short, in this order
PAD = 2  # a DataTable cell's padding


def metric_columns(v: RunView) -> list[tuple[str, str]]:
    """(key, header) of the metric columns: the losses, then the metric table's rows, then the
    script's own metrics that `status` shows (those its checkpoints judge, those it logs)."""
    rows = v.verdicts.table if v.verdicts else ()
    keys: dict[str, str] = {k: short_label(k, k) for k in LOSSES}
    if rows:
        for r in rows:
            keys.setdefault(r.key, short_label(r.key, r.label))
    else:
        for k in DEFAULT_METRICS:
            keys.setdefault(k, short_label(k, k))
    for k in own_metrics(v.preset, v.state):
        keys.setdefault(k, short_label(k, k))
    return list(keys.items())


def points(v: RunView) -> list[EpochRecord]:
    """The timeline's rows: every epoch, or a step run's evaluations."""
    if v.unit == "step":
        return [r for r in v.state.epochs if r.validated]
    return v.state.epochs


def timeline_cells(v: RunView, columns: list[tuple[str, str]],
                   recs: list[EpochRecord] | None = None) -> dict[int, dict[str, str]]:
    """epoch -> cells for every column of `recs` (default: every epoch), numbers aligned per column."""
    recs = points(v) if recs is None else recs
    out: dict[int, dict[str, str]] = {}
    for rec in recs:
        out[rec.epoch] = {
            "epoch": f"{rec.epoch}/{v.max_epochs or '?'}",
            "expected": clock(expected_end(v, rec.epoch)),
            "actual": clock(rec.ended_at) if rec.validated else "…",
            "time": duration(epoch_seconds(rec)),
        }
    for key, _ in columns:
        if key in dict(FIXED):
            continue
        texts = align([num(epoch_value(rec, key)) for rec in recs])
        for rec, text in zip(recs, texts, strict=False):
            out[rec.epoch][key] = text
    return out


def fitting(columns: list[tuple[str, str]], cells: dict[int, dict[str, str]], width: int) -> list[tuple[str, str]]:
    """The columns that fit `width`, in display order; the fixed time columns go first, then the
    metrics from the right; the epoch and the losses stay."""
    def w(key: str, label: str) -> int:
        return PAD + max([cell_len(label), *(cell_len(c.get(key, "")) for c in cells.values())])

    keep = list(columns)
    drop = [k for k in DROP_FIRST] + [k for k, _ in reversed(columns) if k not in ("epoch", *LOSSES, *DROP_FIRST)]
    for key in drop:
        if sum(w(k, lab) for k, lab in keep) <= width:
            break
        keep = [(k, lab) for k, lab in keep if k != key]
    return keep


class EpochTimeline(Vertical):
    """A DataTable updated cell by cell, and a line comparing the plan with reality."""

    def __init__(self, clock_fn: Callable[[], float], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._clock = clock_fn
        self._shown = Filled()
        self._summary = ""
        self._rows = 0  # rows given by the screen (0: not yet: show every epoch)
        self.hidden_epochs = 0
        self._view: RunView | None = None

    def compose(self) -> ComposeResult:
        yield Static("[b]Epochs[/b]", id="timeline-summary", classes="section-title")
        yield DataTable(id="timeline-table", cursor_type="none", zebra_stripes=True)

    def clear(self) -> None:
        """Forget all rows (a new run)."""
        self.query_one(DataTable).clear(columns=True)
        self._shown = Filled()

    def lines(self) -> int:
        """Rows it would use: title, header, one per epoch."""
        return 2 + (len(points(self._view)) if self._view else 0)

    def set_rows(self, rows: int) -> None:
        """Render in `rows` rows: title, header and the latest epochs that fit."""
        self.styles.height = rows
        self.query_one(DataTable).styles.height = max(0, rows - 1)
        if rows != self._rows:
            self._rows = rows
            if self._view is not None:
                self.show(self._view)

    def on_resize(self) -> None:
        """Columns are chosen by the width."""
        if self._view is not None:
            self.show(self._view)

    def show(self, v: RunView) -> None:
        """Add new epochs, update changed cells, refresh the plan-vs-actual line."""
        self._view = v
        table: DataTable[Text] = self.query_one(DataTable)
        fixed = [(k, "Step" if k == "epoch" and v.unit == "step" else lab) for k, lab in FIXED]
        wanted = [*fixed, *metric_columns(v)]
        recs = points(v)
        fits = min(len(recs), UNSIZED_ROWS) if self._rows <= 0 else max(1, self._rows - 2)
        self.hidden_epochs = max(0, len(recs) - fits)  # the oldest, when the rows are short
        cells = timeline_cells(v, wanted, recs[self.hidden_epochs:])  # only what is shown: a
        columns = fitting(wanted, cells, (self.size.width or 200) - 1)  # poll costs the rows shown
        rows = {str(e): c for e, c in cells.items()}
        self._shown = fill(table, self._shown, columns, rows)
        self._summary_line(v)

    def _summary_line(self, v: RunView) -> None:
        n = v.max_epochs
        now = self._clock()
        planned = clock(expected_end(v, n)) if n else "—"
        eta = eta_seconds(v, now)
        title = "Epochs" if v.unit == "epoch" else "Evaluations by step"
        head = f"[b]{title}[/b]" + (f" [dim](latest; {self.hidden_epochs} earlier)[/dim]"
                                    if self.hidden_epochs else "")
        if v.active:
            finish = "—" if eta is None else f"{clock(now + eta)} (in {duration(eta)})"
            text = f"{head}  planned end {planned} · expected now {finish}"
        else:
            text = f"{head}  planned end {planned} · ended {clock(v.state.last_time)} ({v.state.state})"
        if text != self._summary:
            self._summary = text
            self.query_one("#timeline-summary", Static).update(text)
