"""Charts with axes and values (plotext, through textual-plotext): the losses and Sharpe / IC per
epoch, the train loss per progress step, the baseline as a reference line; `s` puts the losses on
a log scale.

A chart is drawn only when Textual renders it: a chart that is hidden (another tab) or whose data
did not change costs nothing, and the per-step chart redraws at most once a second.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.containers import Grid
from textual.widgets import Static
from textual_plotext import PlotextPlot

from tui.app.view import RunView, epoch_value, short_label

# Stable colours: a series keeps its colour in every chart and every run (plotext colour names).
PALETTE = ("cyan", "orange", "green", "magenta", "blue", "red", "yellow", "gray")
SERIES_COLOURS = {"train_loss": "cyan", "val_loss": "orange", "sharpe": "green",
                  "ic_h1": "magenta", "ic_h20": "blue", "ic_h5": "red", "ic_h10": "yellow"}
STEP_EVERY_S = 1.0  # the per-step chart redraws at most this often
MIN_ROWS = 8  # a chart shorter than this shows only one chart at a time
MIN_DRAW_ROWS, MIN_DRAW_COLS = 6, 30  # smaller than this, a chart is not drawn (it says so)


@dataclass(frozen=True)
class Series:
    """One line: label, points, colour; `reference`: a baseline drawn as a flat line."""

    label: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    colour: str
    reference: bool = False


@dataclass(frozen=True)
class ChartSpec:
    """What one chart draws."""

    title: str
    series: tuple[Series, ...]
    xlabel: str = "epoch"
    log_y: bool = False
    integer_x: bool = True
    empty: str = "no validated epoch yet"


MAX_POINTS = 1000  # per epoch series: more than any terminal chart has columns for


def colour_of(key: str, index: int = 0) -> str:
    """The colour of a series key (a known metric's own, else by position)."""
    return SERIES_COLOURS.get(key, PALETTE[index % len(PALETTE)])


def envelope(pts: list[tuple[float, float]], most: int = MAX_POINTS) -> list[tuple[float, float]]:
    """At most ~`most` points of a long series, its shape kept: each of most/2 runs of points
    gives its lowest and its highest, in epoch order (a chart is ~100 columns wide)."""
    if len(pts) <= most:
        return pts
    out: list[tuple[float, float]] = []
    step = len(pts) / (most // 2)
    for b in range(most // 2):
        run = pts[round(b * step) : round((b + 1) * step)]
        if run:
            lo, hi = min(run, key=lambda p: p[1]), max(run, key=lambda p: p[1])
            out += sorted({lo, hi})
    if out[-1] != pts[-1]:
        out.append(pts[-1])  # the latest epoch is always drawn
    return out


def epoch_series(v: RunView, key: str, label: str, colour: str) -> Series | None:
    """A metric over the validated epochs (None: no value yet); a long run's as its envelope."""
    pts = envelope([(float(r.epoch), float(val)) for r in v.state.epochs if r.validated
                    and (val := epoch_value(r, key)) is not None and math.isfinite(val)])
    if not pts:
        return None
    return Series(label, tuple(p[0] for p in pts), tuple(p[1] for p in pts), colour)


def baseline_of(v: RunView, key: str) -> float | None:
    """The baseline table's value of a metric, if any."""
    b = v.verdicts.baseline if v.verdicts else None
    x = b.metrics.get(key) if b is not None else None
    return float(x) if x is not None and math.isfinite(x) else None


def _with_baselines(v: RunView, keyed: list[tuple[str, Series]]) -> tuple[Series, ...]:
    out = [s for _, s in keyed]
    for key, s in keyed:
        base = baseline_of(v, key)
        if base is not None:
            out.append(Series(f"base {s.label}", (), (base,), s.colour, reference=True))
    return tuple(out)


def score_keys(v: RunView) -> list[tuple[str, str]]:
    """(key, label) of the Sharpe / IC chart: Sharpe and every IC row of the metric table."""
    rows = v.verdicts.table if v.verdicts else ()
    keys = {"sharpe": "Sharpe"}
    for r in rows:
        if r.key.startswith(("ic_", "rank_ic_")):
            keys.setdefault(r.key, short_label(r.key, r.label))
    if len(keys) == 1:
        keys.update({"ic_h1": "IC h1", "ic_h20": "IC h20"})
    return list(keys.items())


def chart_specs(v: RunView, log_y: bool) -> tuple[ChartSpec, ChartSpec, ChartSpec]:
    """The three charts of a run: losses, Sharpe / IC (per epoch), train loss per step."""
    losses = [(k, s) for i, (k, lab) in enumerate((("train_loss", "train"), ("val_loss", "val")))
              if (s := epoch_series(v, k, lab, colour_of(k, i))) is not None]
    scores = [(k, s) for i, (k, lab) in enumerate(score_keys(v))
              if (s := epoch_series(v, k, lab, colour_of(k, i + 2))) is not None]
    steps = v.steps
    step_series = (Series("train", tuple(p[0] for p in steps), tuple(p[1] for p in steps),
                          colour_of("train_loss")),) if steps else ()
    unit = v.unit
    return (
        ChartSpec(f"Loss per {unit}", _with_baselines(v, losses), xlabel=unit, log_y=log_y,
                  integer_x=unit == "epoch"),
        ChartSpec(f"Sharpe / IC per {unit}", _with_baselines(v, scores), xlabel=unit,
                  integer_x=unit == "epoch"),
        ChartSpec("Train loss per step", step_series, xlabel="step", log_y=log_y, integer_x=False,
                  empty="no progress line yet"),
    )


def nice_ticks(lo: float, hi: float, most: int) -> list[int]:
    """At most `most` whole-number ticks from `lo` to `hi`, spaced 1, 2 or 5 x 10^k."""
    lo_i, hi_i = math.floor(lo), math.ceil(hi)
    span = max(1, hi_i - lo_i)
    step = 1
    for k in range(0, 12):
        for m in (1, 2, 5):
            step = m * 10 ** k
            if span / step <= most:
                break
        else:
            continue
        break
    first = math.ceil(lo_i / step) * step
    return list(range(first, hi_i + 1, step)) or [lo_i]


class Chart(PlotextPlot):
    """One plotext chart, built from its spec when Textual renders it (never while hidden)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.spec: ChartSpec | None = None
        self.builds = 0

    def draw(self, spec: ChartSpec) -> bool:
        """Show `spec`; False (and nothing redrawn) if it is what is shown."""
        if spec == self.spec:
            return False
        self.spec = spec
        self.refresh()
        return True

    def render(self) -> RenderResult:
        """Build the plot for the current size (plotext draws axes, ticks and the legend)."""
        spec = self.spec
        if self.size.height < MIN_DRAW_ROWS or self.size.width < MIN_DRAW_COLS:
            return Text(f"{spec.title if spec else 'chart'}: too small here, z zooms the tabs",
                        style="dim")
        if spec is None or not spec.series:
            title = spec.title if spec else "chart"
            return Text(f"{title}: {spec.empty if spec else 'no data'}", style="dim")
        self.builds += 1
        plt = self.plt
        plt.clear_figure()
        lines = [s for s in spec.series if not s.reference]
        xs = [x for s in lines for x in s.x]
        positive = all(y > 0 for s in spec.series for y in s.y)
        log_y = spec.log_y and positive
        for s in lines:
            plt.plot(list(s.x), list(s.y), label=s.label, color=s.colour, marker="braille")
        for s in spec.series:
            if s.reference:
                plt.hline(s.y[0], s.colour)
        if log_y:
            plt.yscale("log")
        if xs:
            plt.xticks([float(t) for t in nice_ticks(min(xs), max(xs), 10 if spec.integer_x else 6)])
        refs = ", ".join(s.label for s in spec.series if s.reference)
        title = spec.title + (" (log)" if log_y else "") + (f" — {refs}" if refs else "")
        plt.title(title)
        plt.xlabel(spec.xlabel)
        return super().render()


class Charts(Grid):
    """The three charts, side by side when wide, stacked when tall, else one at a time (`c`)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.log_y = False
        self.selected = 0
        self._view: RunView | None = None
        self._last_step_draw = 0.0
        self._pending: ChartSpec | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="charts-hint")
        for i in range(3):
            yield Chart(id=f"chart-{i}", classes="chart")

    @property
    def charts(self) -> list[Chart]:
        """The chart widgets, in order."""
        return list(self.query(Chart))

    def on_resize(self) -> None:
        """Arrange the charts for the new size."""
        self._arrange()

    def _arrange(self) -> None:
        w, h = self.size.width, self.size.height
        cols = 3 if w >= 180 else 2 if w >= 110 else 1
        rows = math.ceil(3 / cols)
        single = h // rows < MIN_ROWS and cols < 3
        hint = self.query_one("#charts-hint", Static)
        hint.display = single
        if single:
            self.styles.grid_size_columns, self.styles.grid_size_rows = 1, 2
            self.styles.grid_rows = "1 1fr"
            hint.update(f"[dim]chart {self.selected + 1}/3 · c next chart · s log scale · z zoom[/dim]")
        else:
            self.styles.grid_size_columns, self.styles.grid_size_rows = cols, rows
            self.styles.grid_rows = "1fr"
        for i, chart in enumerate(self.charts):
            chart.display = not single or i == self.selected

    def next_chart(self) -> None:
        """Show the next chart (when only one fits)."""
        self.selected = (self.selected + 1) % 3
        self._arrange()

    def toggle_log(self) -> None:
        """Log scale on the loss charts, or back to linear."""
        self.log_y = not self.log_y
        if self._view is not None:
            self.show(self._view)

    def show(self, v: RunView) -> None:
        """Give each chart its data; the per-step chart redraws at most once a second."""
        self._view = v
        charts = self.charts
        specs = chart_specs(v, self.log_y)
        for chart, spec in zip(charts[:2], specs[:2], strict=False):
            chart.draw(spec)
        now = time.monotonic()
        step_chart = charts[2]
        log_changed = step_chart.spec is not None and step_chart.spec.log_y != specs[2].log_y
        if now - self._last_step_draw >= STEP_EVERY_S or log_changed or step_chart.spec is None:
            if step_chart.draw(specs[2]):
                self._last_step_draw = now
        elif self._pending is None:
            self.set_timer(STEP_EVERY_S - (now - self._last_step_draw), self._draw_pending)
            self._pending = specs[2]
        else:
            self._pending = specs[2]

    def _draw_pending(self) -> None:
        spec, self._pending = self._pending, None
        if spec is not None and self.charts[2].draw(spec):
            self._last_step_draw = time.monotonic()

