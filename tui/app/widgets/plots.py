"""Per-epoch plots: losses, Sharpe and IC as sparklines."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Sparkline

from tui.app.view import horizon_value, num
from tui.state.records import EpochRecord
from tui.state.run import RunState

SERIES = (
    ("train", "train loss", lambda r: r.train_loss),
    ("val", "val loss", lambda r: r.val_loss),
    ("sharpe", "Sharpe", lambda r: r.sharpe),
    ("ic1", "IC h1", lambda r: horizon_value(r, "ic", 1)),
    ("ic20", "IC h20", lambda r: horizon_value(r, "ic", 20)),
)


def series(st: RunState, getter: object) -> list[float]:
    """The finite values of one metric over the validated epochs."""
    out = []
    for rec in st.epochs:
        x = getter(rec) if isinstance(rec, EpochRecord) else None  # type: ignore[operator]
        if x is not None and x == x and abs(x) != float("inf"):
            out.append(float(x))
    return out


class Plots(Vertical):
    """One labelled sparkline per series, with the latest value."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._data: dict[str, list[float]] = {}

    def compose(self) -> ComposeResult:
        yield Label("[b]Per epoch[/b]")
        for key, label, _ in SERIES:
            with Horizontal(classes="plot-row"):
                yield Label(label, classes="plot-label")
                yield Sparkline([], id=f"spark-{key}")
                yield Label("—", id=f"last-{key}", classes="plot-last")

    def show(self, st: RunState) -> None:
        """Update the sparklines whose data changed."""
        for key, _, getter in SERIES:
            data = series(st, getter)
            if self._data.get(key) == data:
                continue
            self._data[key] = data
            self.query_one(f"#spark-{key}", Sparkline).data = data
            self.query_one(f"#last-{key}", Label).update(num(data[-1]) if data else "—")
