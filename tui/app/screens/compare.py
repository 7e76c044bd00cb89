"""Any number of runs side by side: their curves overlaid (one stable colour and letter per run),
the config keys whose values differ (only those), and the latest metrics of each (those two
tables are tui.judge.compare's, as `runctl compare` prints them)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tui.app.view import RunView, align, fit, num, short_label
from tui.app.widgets.charts import PALETTE, Chart, ChartSpec, epoch_series
from tui.judge.compare import config_diff, metric_rows

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Plotext colour names -> Rich colours for the legend and the table headers.
RICH = {"cyan": "cyan", "orange": "dark_orange", "green": "green", "magenta": "magenta",
        "blue": "dodger_blue1", "red": "red", "yellow": "yellow", "gray": "grey62"}


def letter(i: int) -> str:
    """A, B, ... Z, then A2, B2 ..."""
    return LETTERS[i % 26] + (str(i // 26 + 1) if i >= 26 else "")


def colour(i: int) -> str:
    """The plotext colour of the i-th run compared (the same in every chart and the legend)."""
    return PALETTE[i % len(PALETTE)]


def overlay(views: list[RunView], key: str, title: str) -> ChartSpec:
    """One metric per epoch, one line per run."""
    series = []
    for i, v in enumerate(views):
        s = epoch_series(v, key, letter(i), colour(i))
        if s is not None:
            series.append(s)
    return ChartSpec(title, tuple(series))


class CompareScreen(Screen[None]):
    """Esc goes back to the runs list; `m` shows the next metric in the right chart."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("m", "next_metric", "Next metric"),
        Binding("s", "log_scale", "Log scale"),
    ]

    def __init__(self, views: list[RunView]) -> None:
        super().__init__(id="compare")
        self.views = views
        self.metric_keys = [k for k, _ in metric_rows(views) if k not in ("val_loss", "train_loss")] or ["sharpe"]
        self.metric = 0
        self.log_y = False

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(f"[b]Compare {len(self.views)} runs[/b]  [dim]m next metric · s log scale · Esc back[/dim]",
                         classes="section-title")
            yield Static(self._legend(), id="compare-legend")
            with Horizontal(id="compare-charts"):
                yield Chart(id="compare-loss", classes="chart")
                yield Chart(id="compare-metric", classes="chart")
            yield Static("[b]Config: only what differs[/b]", classes="section-title")
            cfg: DataTable[Text] = DataTable(id="config-diff", cursor_type="none")
            yield cfg
            yield Static("[b]Metrics (latest validated epoch)[/b]", classes="section-title")
            met: DataTable[Text] = DataTable(id="metric-deltas", cursor_type="none")
            yield met
        yield Footer()

    def _legend(self) -> str:
        lines = []
        for i, v in enumerate(self.views):
            rc = RICH.get(colour(i), "white")
            preset = v.preset.name if v.preset else "—"
            lines.append(f"[{rc}]■ {letter(i)}[/{rc}] {escape(v.run or '?')}  {preset}  {v.state.state}")
        return "\n".join(lines)

    def _headers(self, table: DataTable[Text], first: str) -> None:
        table.add_column(first, key="key")
        for i, _ in enumerate(self.views):
            table.add_column(Text(letter(i), style=f"bold {RICH.get(colour(i), 'white')}"), key=f"r{i}")

    def on_mount(self) -> None:
        """Fill the tables and draw the charts."""
        cfg = self.query_one("#config-diff", DataTable)
        self._headers(cfg, "Key")
        diff = config_diff(self.views)
        for k, values in diff or [("(the same config)", [""] * len(self.views))]:
            cfg.add_row(Text(fit(k, 40)), *(Text(fit(x, 30)) for x in values))
        met = self.query_one("#metric-deltas", DataTable)
        self._headers(met, "Metric")
        for k, numbers in metric_rows(self.views):
            texts = align([num(x) for x in numbers])
            met.add_row(Text(short_label(k, k)), *(Text(t) for t in texts))
        self._draw()

    def _draw(self) -> None:
        loss = overlay(self.views, "val_loss", "Val loss per epoch")
        self.query_one("#compare-loss", Chart).draw(ChartSpec(
            loss.title, loss.series, log_y=self.log_y))
        key = self.metric_keys[self.metric % len(self.metric_keys)]
        spec = overlay(self.views, key, f"{short_label(key, key)} per epoch")
        self.query_one("#compare-metric", Chart).draw(spec)

    def action_next_metric(self) -> None:
        """The right chart shows the next metric."""
        self.metric = (self.metric + 1) % len(self.metric_keys)
        self._draw()

    def action_log_scale(self) -> None:
        """The loss chart on a log scale, or back to linear."""
        self.log_y = not self.log_y
        self._draw()

