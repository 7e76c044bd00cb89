"""The runs screen: every run with its state and headline metrics; open one or compare two."""

from __future__ import annotations

from collections.abc import Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tui.app.messages import RunsLoaded
from tui.app.screens.compare import CompareScreen
from tui.app.view import STATE_MARKS, RunView, clock, horizon_value, num, start_time

COLUMNS = (
    ("mark", " "), ("run", "Run"), ("preset", "Preset"), ("state", "State"), ("epoch", "Epoch"),
    ("sharpe", "Sharpe"), ("ic1", "IC h1"), ("ic20", "IC h20"), ("scale", "SCALE"),
    ("val", "Val loss"), ("started", "Started"),
)
REFRESH_S = 5.0


def run_cells(v: RunView, marked: bool) -> dict[str, str]:
    """Headline cells of one run (metrics of its latest validated epoch)."""
    st = v.state
    recs = [r for r in st.epochs if r.validated]
    last = recs[-1] if recs else None
    n = v.max_epochs
    return {
        "mark": "◆" if marked else " ",
        "run": v.run or "?",
        "preset": v.preset.name if v.preset else "—",
        "state": f"{STATE_MARKS.get(st.state, '?')} {st.state}",
        "epoch": f"{st.epoch or 0}/{n or '?'}",
        "sharpe": num(last.sharpe if last else None),
        "ic1": num(horizon_value(last, "ic", 1) if last else None),
        "ic20": num(horizon_value(last, "ic", 20) if last else None),
        "scale": num(horizon_value(last, "scale", "all") if last else None, 2),
        "val": num(last.val_loss if last else None),
        "started": clock(start_time(v)),
    }


class RunsScreen(Screen[str | None]):
    """Enter opens the run under the cursor; space marks runs; c compares two."""

    BINDINGS = [
        Binding("enter", "open", "Open"),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare 2"),
        Binding("g", "refresh", "Refresh"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, loader: Callable[[], list[RunView]]) -> None:
        super().__init__(id="runs")
        self._loader = loader
        self.views: dict[str, RunView] = {}
        self.marked: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static("[b]Runs[/b]  Enter open · space mark · c compare two · l launch · Esc back",
                     id="runs-title")
        table: DataTable[str] = DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Static("", id="runs-empty")
        yield Footer()

    def on_mount(self) -> None:
        """Load now and every few seconds (in a thread: the store reads files)."""
        self.action_refresh()
        self.set_interval(REFRESH_S, self.action_refresh)

    @work(thread=True, exclusive=True, group="runs", exit_on_error=False)
    def action_refresh(self) -> None:
        """Reload the run list."""
        self.post_message(RunsLoaded(self._loader()))

    @on(RunsLoaded)
    def _loaded(self, message: RunsLoaded) -> None:
        table = self.query_one(DataTable)
        cursor = self._cursor_run()
        self.views = {v.run or "?": v for v in message.views}
        table.clear()
        for name, v in self.views.items():
            cells = run_cells(v, name in self.marked)
            table.add_row(*(cells[k] for k, _ in COLUMNS), key=name)
        if cursor in self.views:
            table.move_cursor(row=table.get_row_index(cursor))
        empty = "" if self.views else "No runs yet in this logs folder: press [b]l[/b] to launch one."
        self.query_one("#runs-empty", Static).update(empty)

    def _cursor_run(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return key.value

    def action_open(self) -> None:
        """Attach the main screen to the run under the cursor."""
        run = self._cursor_run()
        if run is not None:
            self.dismiss(run)

    @on(DataTable.RowSelected)
    def _selected(self) -> None:
        self.action_open()

    def action_mark(self) -> None:
        """Mark / unmark the run under the cursor for comparison (at most two)."""
        run = self._cursor_run()
        if run is None:
            return
        if run in self.marked:
            self.marked.remove(run)
        else:
            self.marked = [*self.marked, run][-2:]
        table = self.query_one(DataTable)
        for name in self.views:
            table.update_cell(name, "mark", "◆" if name in self.marked else " ")

    def action_compare(self) -> None:
        """Compare the two marked runs (or the marked one with the one under the cursor)."""
        names = list(self.marked)
        cur = self._cursor_run()
        if len(names) < 2 and cur is not None and cur not in names:
            names.append(cur)
        if len(names) < 2:
            self.notify("Mark two runs with space, then press c", severity="warning")
            return
        a, b = (self.views[n] for n in names[:2])
        self.app.push_screen(CompareScreen(a, b))

    def action_back(self) -> None:
        """Back to the main screen (stays here if no run is attached)."""
        self.dismiss(None)
