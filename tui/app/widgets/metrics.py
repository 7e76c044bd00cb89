"""The metric table against the baseline, the success criteria and the critical checkpoints."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.markup import escape
from textual.widgets import DataTable, Static

from tui.app.view import num
from tui.judge.results import Row, Verdicts

COLUMNS = (
    ("status", "  "), ("metric", "Metric"), ("target", "Target"), ("baseline", "Baseline"),
    ("current", "Current"), ("best", "Best"), ("trend", "Trend"),
)
TRENDS = {"up": "↗", "down": "↘", "flat": "→", None: "—"}


def row_cells(r: Row) -> dict[str, str]:
    """The cells of one metric row."""
    return {
        "metric": r.label, "target": r.target or "—", "baseline": num(r.baseline),
        "current": num(r.current), "best": num(r.best), "trend": TRENDS.get(r.trend, "—"),
        "status": r.status,
    }


def checkpoint_text(v: Verdicts) -> str:
    """Criteria and checkpoints as marked lines."""
    lines = ["[b]Success criteria[/b]"]
    lines += [f" {c.mark} {escape(c.label)}" for c in v.criteria] or [" (none)"]
    lines.append("[b]Critical checkpoints[/b]")
    for cp in v.checkpoints:
        at = f"epoch {cp.epoch}" if cp.epoch else "epoch ?"
        decision = f": [b]{escape(cp.verdict)}[/b] — {escape(cp.say)}" if cp.verdict else f" ({cp.status})"
        lines.append(f" {cp.mark} {escape(cp.title)} ({at}){decision}")
    if not v.checkpoints:
        lines.append(" (none)")
    vc = v.variance_collapse
    if vc.detected:
        where = ", ".join(f"h{h}" for h in vc.horizons)
        lines.append(f" ⚠️ SCALE(yhat/y) = 0.00 at {where} from epoch {vc.first_epoch}"
                     + (" (still)" if vc.latest else " (recovered)"))
    return "\n".join(lines)


class MetricPanel(Vertical):
    """Metric x (target, baseline, current, best, trend, status) and the decisions."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._cells: dict[str, dict[str, str]] = {}
        self._text = ""

    def compose(self) -> ComposeResult:
        yield Static("[b]Metrics vs baseline[/b]", id="metrics-title")
        table: DataTable[str] = DataTable(id="metrics-table", cursor_type="none")
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Static("", id="checkpoints")

    def clear(self) -> None:
        """Forget all rows (a new run)."""
        self.query_one(DataTable).clear()
        self._cells.clear()

    def show(self, v: Verdicts | None) -> None:
        """Render the verdicts (None: no preset known, nothing to judge)."""
        if v is None:
            self._set_text("[dim]no preset known for this run: nothing to judge[/dim]")
            return
        base = v.baseline.name if v.baseline else "none"
        self.query_one("#metrics-title", Static).update(f"[b]Metrics vs baseline[/b] ({escape(base)})")
        table = self.query_one(DataTable)
        keys = [r.key for r in v.table]
        if list(self._cells) != keys:
            table.clear()
            self._cells.clear()
        for r in v.table:
            cells = row_cells(r)
            old = self._cells.get(r.key)
            if old is None:
                table.add_row(*(cells[k] for k, _ in COLUMNS), key=r.key)
            else:
                for k, value in cells.items():
                    if old[k] != value:
                        table.update_cell(r.key, k, value)
            self._cells[r.key] = cells
        self._set_text(checkpoint_text(v))

    def _set_text(self, text: str) -> None:
        if text != self._text:
            self._text = text
            self.query_one("#checkpoints", Static).update(text)
