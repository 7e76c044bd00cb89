"""The main screen: one run, laid out by priority for the terminal's size.

Always: the header and the recommendation. Then the metric table with the checkpoint decisions,
then the epoch timeline; the log, the charts and the process panel are tabs below (`t`), or on
the right from `WIDE_AT` columns, where the charts sit under the timeline when they fit. The
initialization checklist is a full list while a phase is pending or failed, else one line. Rows
are shared out by `tui.app.view.allocate`: a panel never covers another, a later one shrinks first.
"""

from __future__ import annotations

from collections.abc import Callable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Input, Static

from tui.app.messages import LogChunk, ProcSample, RunSnapshot
from tui.app.view import RunView, Want, allocate
from tui.app.widgets.charts import Charts
from tui.app.widgets.header import RunHeader
from tui.app.widgets.logpane import QUICK_FILTERS, LogPane
from tui.app.widgets.metrics import MetricPanel
from tui.app.widgets.phases import PhaseChecklist
from tui.app.widgets.process import ProcessPanel
from tui.app.widgets.recommendation import RecommendationBar
from tui.app.widgets.timeline import EpochTimeline

TABS = (("logpane", "Log"), ("charts", "Charts"), ("process", "Process"))
WIDE_AT = 150  # columns from which the log / charts / process tabs go to the right
CHARTS_BESIDE = 16  # rows the charts need under the timeline (wide), else they are a tab
SECONDARY_LEAST = 5  # the tab bar, the log's status line and three lines
COMPACT_BELOW = 30  # rows under which the header folds the run bar into the epoch line


class MainScreen(Screen[None]):
    """Routes the follower's messages to the widgets; shares the rows out; owns the panel keys."""

    BINDINGS = [
        Binding("t", "next_tab", "Next tab", show=False),
        Binding("z", "zoom", "Zoom the tabs", show=False),
        Binding("slash", "filter", "Filter log", key_display="/", show=False),
        Binding("end", "follow", "Follow the log", show=False, priority=True),
        Binding("g", "epoch_start", "Log: latest epoch start", show=False),
        Binding("s", "log_scale", "Charts: log scale", show=False),
        Binding("c", "next_chart", "Charts: next chart", show=False),
        Binding("i", "checklist", "Initialization checklist", show=False),
        *[
            Binding(k, f"quick('{k}')", f"Log: {label}", show=False)
            for k, (label, _) in QUICK_FILTERS.items()
        ],
        Binding("0", "quick('0')", "Log: all lines", show=False),
    ]

    def __init__(self, clock: Callable[[], float], readonly: bool = False) -> None:
        super().__init__(id="main")
        self._clock = clock
        self.readonly = readonly
        self.view: RunView | None = None
        self.zoomed = False
        self.tab = "logpane"
        self.charts_beside = False
        self._wants: tuple[object, ...] = ()

    def compose(self) -> ComposeResult:
        yield RunHeader(self._clock, id="header")
        yield RecommendationBar(id="recommendation")
        with Horizontal(id="body"):
            with Vertical(id="primary"):
                yield PhaseChecklist(id="phases")
                yield MetricPanel(id="metrics")
                yield EpochTimeline(self._clock, id="timeline")
                yield Charts(id="charts-side")
            with Vertical(id="secondary"):
                yield Static("", id="tabbar")
                with ContentSwitcher(initial="logpane", id="switcher"):
                    yield LogPane(id="logpane")
                    yield Charts(id="charts")
                    yield ProcessPanel(id="process")
        yield Footer()

    def on_mount(self) -> None:
        """First layout (the size is known on resize too)."""
        self.relayout()

    def on_resize(self) -> None:
        """Share the rows out again."""
        self.relayout()

    # ------------------------------------------------------------------------ layout
    @property
    def tabs(self) -> list[tuple[str, str]]:
        """The tabs offered (no Charts tab while the charts are beside the timeline)."""
        return [(k, label) for k, label in TABS if not (k == "charts" and self.charts_beside)]

    def relayout(self) -> None:
        """Give each panel its rows by priority for the current size and content."""
        width, height = self.size
        if not width or not height:
            return
        wide = width >= WIDE_AT
        self.set_class(wide, "-wide")
        self.set_class(not wide, "-narrow")
        phases = self.query_one(PhaseChecklist)
        metrics = self.query_one(MetricPanel)
        timeline = self.query_one(EpochTimeline)
        side = self.query_one("#charts-side", Charts)
        primary = self.query_one("#primary")
        header = self.query_one(RunHeader)
        header.set_compact(height < COMPACT_BELOW)
        body = max(0, height - header.rows - 2)  # the recommendation and the footer
        compact, full = metrics.decision_lines()
        table = metrics.table_lines()
        n_phases = phases.full_rows
        wants = [
            Want("table", table, table),
            Want("decisions", compact, compact),
            Want("phases", 1, n_phases if phases.wants_full else 1, whole=True),
            Want("decisions+", 0, full - compact, whole=True),  # one line per item, if it fits
            Want("timeline", min(3, timeline.lines()), timeline.lines()),
        ]
        if wide:
            wants.append(Want("side", 0, body))  # what the panels above leave, if enough
        else:
            wants.append(Want("secondary", SECONDARY_LEAST, body))
        rows = allocate(0 if self.zoomed else body, wants)
        beside = wide and not self.zoomed and rows.get("side", 0) >= CHARTS_BESIDE
        if beside != self.charts_beside:
            self.charts_beside = beside
            if not beside and self.tab == "charts":
                pass  # the Charts tab is offered again: it stays chosen
            elif beside and self.tab == "charts":
                self.tab = "logpane"
        primary.display = not self.zoomed
        primary.styles.width = min(110, max(80, width // 2)) if wide else "100%"
        primary.styles.height = body if wide or self.zoomed else body - rows.get("secondary", 0)
        metrics.set_rows(rows["table"], rows["decisions"] + rows["decisions+"])
        phases.styles.height = rows["phases"]
        phases.display = rows["phases"] > 0
        phases.show(phases._state, rows["phases"])
        timeline.display = rows["timeline"] > 0
        timeline.set_rows(rows["timeline"])
        side.display = beside
        if beside:
            side.styles.height = rows["side"]
        secondary = self.query_one("#secondary")
        secondary.styles.height = body if wide or self.zoomed else rows.get("secondary", 0)
        secondary.display = secondary.styles.height.value > 0  # type: ignore[union-attr]
        self._show_tab()

    def _show_tab(self) -> None:
        if self.tab not in dict(self.tabs):
            self.tab = "logpane"
        self.query_one(ContentSwitcher).current = self.tab
        parts = []
        for key, label in self.tabs:
            text = f" {label} "
            parts.append(f"[reverse][b]{text}[/b][/reverse]" if key == self.tab
                         else f"[@click=screen.tab('{key}')]{text}[/]")
        zoom = "z unzoom" if self.zoomed else "z zoom"
        self.query_one("#tabbar", Static).update("".join(parts) + f"  [dim]t next tab · {zoom}[/dim]")

    def _wants_signature(self) -> tuple[object, ...]:
        metrics, timeline = self.query_one(MetricPanel), self.query_one(EpochTimeline)
        return (metrics.table_lines(), metrics.decision_lines(), timeline.lines(),
                self.query_one(PhaseChecklist).wants_full)

    # ------------------------------------------------------------------------ messages
    def reset(self) -> None:
        """Forget the previous run's rows (a new run is being attached)."""
        self.view = None
        self.query_one(EpochTimeline).clear()
        self.query_one(MetricPanel).clear()

    @on(RunSnapshot)
    def _snapshot(self, message: RunSnapshot) -> None:
        v = self.view = message.view
        self.query_one(RunHeader).show(v)
        self.query_one(PhaseChecklist).show(v.state)
        self.query_one(MetricPanel).show(v.verdicts)
        self.query_one(EpochTimeline).show(v)
        for charts in self.query(Charts):
            charts.show(v)
        self.query_one(RecommendationBar).show(v.verdicts.recommendation if v.verdicts else None,
                                               readonly=self.readonly)
        wants = self._wants_signature()
        if wants != self._wants:
            self._wants = wants
            self.relayout()

    @on(LogChunk)
    def _log_chunk(self, message: LogChunk) -> None:
        self.query_one(LogPane).append(message.lines, message.reset, message.skipped)

    @on(ProcSample)
    def _proc(self, message: ProcSample) -> None:
        self.query_one(ProcessPanel).show(message.proc)

    # ------------------------------------------------------------------------ actions
    def action_tab(self, key: str) -> None:
        """Show one tab (clicked in the tab bar)."""
        self.tab = key
        self._show_tab()

    def action_next_tab(self) -> None:
        """Log -> Charts -> Process -> Log."""
        keys = [k for k, _ in self.tabs]
        self.tab = keys[(keys.index(self.tab) + 1) % len(keys)] if self.tab in keys else keys[0]
        self._show_tab()

    def action_zoom(self) -> None:
        """The tabs take the whole body (again: back to the layout by priority)."""
        self.zoomed = not self.zoomed
        self.relayout()

    def action_filter(self) -> None:
        """Open the log's regex filter (on the Log tab)."""
        self.action_tab("logpane")
        self.query_one(LogPane).open_filter()

    def action_quick(self, key: str) -> None:
        """Apply one of the seed's greps to the log."""
        self.action_tab("logpane")
        self.query_one(LogPane).quick(key)

    def action_follow(self) -> None:
        """`End`: the log shows its tail and follows it again (in an input: the end of the text)."""
        focused = self.focused
        if isinstance(focused, Input):
            focused.action_end()
            return
        self.action_tab("logpane")
        self.query_one(LogPane).follow()

    def action_epoch_start(self) -> None:
        """Scroll the log to the latest epoch's first line."""
        self.action_tab("logpane")
        if not self.query_one(LogPane).jump_to_epoch():
            self.notify("No epoch start among the lines shown", severity="warning")

    def action_log_scale(self) -> None:
        """Loss charts on a log scale, or back to linear."""
        for charts in self.query(Charts):
            charts.toggle_log()
        scale = "log" if self.query_one("#charts", Charts).log_y else "linear"
        self.notify(f"loss charts: {scale} scale", timeout=3)

    def action_next_chart(self) -> None:
        """When only one chart fits: the next one."""
        for charts in self.query(Charts):
            charts.next_chart()

    def action_checklist(self) -> None:
        """Show the full initialization checklist (again: one line once every phase is done)."""
        phases = self.query_one(PhaseChecklist)
        phases.expanded = not phases.expanded
        self._wants = self._wants_signature()
        self.relayout()
