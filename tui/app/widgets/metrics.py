"""The metric table against the baseline, the success criteria and the critical checkpoints.

The rows are the judge's (`tui.judge.results.Row`, one per criterion or baseline metric, of any
name); numbers have 4 significant digits, aligned on the decimal point per column. The decisions
take the rows the screen gives them: one line per item when they fit, else a compact form.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.markup import escape
from textual.widgets import DataTable, Static

from tui.app.view import align, fit, num
from tui.app.widgets.tables import Filled, fill
from tui.judge.results import CheckpointResult, Row, Verdicts

COLUMNS = (
    ("status", "  "), ("metric", "Metric"), ("target", "Target"), ("baseline", "Baseline"),
    ("current", "Current"), ("best", "Best"), ("trend", "Trend"),
)
NUMERIC = ("baseline", "current", "best")
TRENDS = {"up": "↗", "down": "↘", "flat": "→", None: "—"}
LABEL_WIDTH = 24  # a longer metric name is cut, with an ellipsis


def table_cells(rows: tuple[Row, ...] | list[Row]) -> list[dict[str, str]]:
    """The cells of every metric row, numbers aligned per column."""
    cells = [{
        "status": r.status, "metric": fit(r.label, LABEL_WIDTH), "target": fit(r.target or "—", 12),
        "trend": TRENDS.get(r.trend, "—"),
        "baseline": num(r.baseline), "current": num(r.current), "best": num(r.best),
    } for r in rows]
    for key in NUMERIC:
        for c, text in zip(cells, align([c[key] for c in cells]), strict=False):
            c[key] = text
    return cells


def row_cells(r: Row) -> dict[str, str]:
    """The cells of one metric row alone."""
    return table_cells([r])[0]


def _checkpoint_line(cp: CheckpointResult) -> str:
    if cp.status == "decided":
        return (f"{cp.mark} {escape(cp.title)} ({cp.where}): [b]{escape(cp.verdict or '')}[/b]"
                f" — {escape(cp.say)}")
    why = ", not reached" if cp.status == "not_reached" else ", no data" if cp.status == "no_data" else ""
    return f"{cp.mark} {escape(cp.title)} ({cp.where}{why})"


def _collapse(v: Verdicts) -> list[str]:
    vc = v.variance_collapse
    if not vc.detected:
        return []
    where = ", ".join(f"h{h}" for h in vc.horizons)
    return [f"⚠️ SCALE(yhat/y) = 0.00 at {where} from epoch {vc.first_epoch}"
            + (" (still)" if vc.latest else " (recovered)")]


def checkpoint_text(v: Verdicts) -> str:
    """Criteria and checkpoints, one marked line each."""
    lines = ["[b]Success criteria[/b]"]
    lines += [f" {c.mark} {escape(c.label)}" for c in v.criteria] or [" (none)"]
    lines.append("[b]Critical checkpoints[/b]")
    lines += [f" {_checkpoint_line(cp)}" for cp in v.checkpoints] or [" (none)"]
    return "\n".join(lines + [f" {ln}" for ln in _collapse(v)])


def compact_text(v: Verdicts) -> str:
    """The same in fewer lines: criteria on one (unmet and pending first), each decision on its
    own, the undecided checkpoints on one."""
    lines = []
    if v.criteria:
        order = {"unmet": 0, "pending": 1, "met": 2}
        crit = sorted(v.criteria, key=lambda c: order.get(c.status, 3))
        met = sum(c.status == "met" for c in v.criteria)
        lines.append(f"[b]Criteria {met}/{len(v.criteria)}[/b] "
                     + " · ".join(f"{c.mark} {escape(c.label)}" for c in crit))
    lines += [_checkpoint_line(cp) for cp in v.checkpoints if cp.status == "decided"]
    if undecided := [_checkpoint_line(cp) for cp in v.checkpoints if cp.status != "decided"]:
        lines.append(" · ".join(undecided))
    return "\n".join(lines + _collapse(v))


class MetricPanel(Vertical):
    """Metric x (target, baseline, current, best, trend, status) and the decisions."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._shown = Filled()
        self._text = ""
        self._verdicts: Verdicts | None = None
        self.decision_rows = 99

    def compose(self) -> ComposeResult:
        yield Static("[b]Metrics vs baseline[/b]", id="metrics-title", classes="section-title")
        yield DataTable(id="metrics-table", cursor_type="none")
        yield Static("", id="checkpoints")

    def clear(self) -> None:
        """Forget all rows (a new run)."""
        self.query_one(DataTable).clear(columns=True)
        self._shown = Filled()

    # ------------------------------------------------------------------ what it asks of the screen
    def table_lines(self) -> int:
        """Rows the table needs: title, header and one per metric."""
        v = self._verdicts
        return 2 + (len(v.table) if v else 0)

    def decision_lines(self) -> tuple[int, int]:
        """(compact, full) rows of the decisions."""
        v = self._verdicts
        if v is None:
            return 1, 1
        return compact_text(v).count("\n") + 1, checkpoint_text(v).count("\n") + 1

    def set_rows(self, table: int, decisions: int) -> None:
        """Render in the rows the screen gave: `table` for title + table, `decisions` below."""
        self.decision_rows = decisions
        self.query_one(DataTable).styles.height = max(0, table - 1)
        self.query_one("#checkpoints", Static).styles.height = decisions
        self.styles.height = table + decisions
        self._render_decisions()

    # ------------------------------------------------------------------ rendering
    def show(self, v: Verdicts | None) -> None:
        """Render the verdicts (None: no preset known, nothing to judge)."""
        self._verdicts = v
        if v is None:
            self._set_text("[dim]no preset known for this run: nothing to judge[/dim]")
            return
        base = v.baseline.name if v.baseline else "none"
        self.query_one("#metrics-title", Static).update(f"[b]Metrics vs baseline[/b] ({escape(base)})")
        rows = {r.key: cells for r, cells in zip(v.table, table_cells(v.table), strict=True)}
        self._shown = fill(self.query_one(DataTable), self._shown, COLUMNS, rows)
        self._render_decisions()

    def _render_decisions(self) -> None:
        v = self._verdicts
        if v is None:
            return
        full = checkpoint_text(v)
        self._set_text(full if full.count("\n") + 1 <= self.decision_rows else compact_text(v))

    def _set_text(self, text: str) -> None:
        if text != self._text:
            self._text = text
            self.query_one("#checkpoints", Static).update(text)
