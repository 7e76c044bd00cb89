"""The main screen: one run's header, panels, recommendation and live log."""

from __future__ import annotations

from collections.abc import Callable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer

from tui.app.messages import LogChunk, ProcSample, RunSnapshot
from tui.app.view import RunView
from tui.app.widgets.header import RunHeader
from tui.app.widgets.logpane import QUICK_FILTERS, LogPane
from tui.app.widgets.metrics import MetricPanel
from tui.app.widgets.phases import PhaseChecklist
from tui.app.widgets.plots import Plots
from tui.app.widgets.process import ProcessPanel
from tui.app.widgets.recommendation import RecommendationBar
from tui.app.widgets.timeline import EpochTimeline


class MainScreen(Screen[None]):
    """Routes the follower's messages to the widgets; owns the log filter keys."""

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    BINDINGS = [
        Binding("slash", "filter", "Filter log", key_display="/"),
        *[
            Binding(k, f"quick('{k}')", f"Log: {label}", show=False)
            for k, (label, _) in QUICK_FILTERS.items()
        ],
        Binding("0", "quick('0')", "Log: all lines", show=False),
    ]

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__(id="main")
        self._clock = clock
        self.view: RunView | None = None

    def compose(self) -> ComposeResult:
        yield RunHeader(self._clock, id="header")
        with Horizontal(id="body"):
            with VerticalScroll(id="panels"):
                with Horizontal(id="top-row"):
                    yield PhaseChecklist(id="phases", classes="panel")
                    yield ProcessPanel(id="process", classes="panel")
                yield EpochTimeline(self._clock, id="timeline", classes="panel")
                yield MetricPanel(id="metrics", classes="panel")
                yield Plots(id="plots", classes="panel")
            with Vertical(id="log-column"):
                yield LogPane(id="logpane", classes="panel")
        yield RecommendationBar(id="recommendation")
        yield Footer()

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
        self.query_one(EpochTimeline).show(v)
        self.query_one(MetricPanel).show(v.verdicts)
        self.query_one(Plots).show(v.state)
        self.query_one(RecommendationBar).show(v.verdicts.recommendation if v.verdicts else None)

    @on(LogChunk)
    def _log_chunk(self, message: LogChunk) -> None:
        self.query_one(LogPane).append(message.lines, message.reset, message.skipped)

    @on(ProcSample)
    def _proc(self, message: ProcSample) -> None:
        self.query_one(ProcessPanel).show(message.proc)

    def action_filter(self) -> None:
        """Open the log's regex filter."""
        self.query_one(LogPane).open_filter()

    def action_quick(self, key: str) -> None:
        """Apply one of the seed's greps to the log."""
        self.query_one(LogPane).quick(key)
