"""Two runs side by side: config differences and metric deltas."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tui.app.view import RunView, field_of, num
from tui.judge.conditions import summary_metrics
from tui.presets.preset import value_text


def config_of(v: RunView) -> dict[str, str]:
    """A flat view of what a run was launched with: preset, epochs, overrides, env, changes."""
    out: dict[str, str] = {"preset": v.preset.name if v.preset else "—"}
    if v.max_epochs is not None:
        out["max_epochs"] = str(v.max_epochs)
    if v.preset:
        out.update({k: value_text(x) for k, x in v.preset.overrides.items()})
        out.update({f"env {k}": x for k, x in v.preset.env.items()})
    for key in ("sets", "overrides"):
        for item in field_of(v.manifest, key, None) or ():
            k, _, x = str(item).partition("=")
            out[k] = x
    for item in field_of(v.manifest, "envs", None) or ():
        k, _, x = str(item).partition("=")
        out[f"env {k}"] = x
    return out


def config_diff(a: RunView, b: RunView) -> list[tuple[str, str, str]]:
    """(key, a, b) for every key whose values differ."""
    ca, cb = config_of(a), config_of(b)
    keys = list(dict.fromkeys([*ca, *cb]))
    return [(k, ca.get(k, "—"), cb.get(k, "—")) for k in keys if ca.get(k) != cb.get(k)]


def metric_deltas(a: RunView, b: RunView) -> list[tuple[str, float | None, float | None, float | None]]:
    """(metric, a, b, b - a) over the latest validated epoch of each."""
    ma, mb = summary_metrics(a.state), summary_metrics(b.state)
    keys = list(dict.fromkeys([*ma, *mb]))
    out: list[tuple[str, Any, Any, Any]] = []
    for k in keys:
        x, y = ma.get(k), mb.get(k)
        out.append((k, x, y, (y - x) if x is not None and y is not None else None))
    return out


class CompareScreen(Screen[None]):
    """Esc goes back to the runs list."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, a: RunView, b: RunView) -> None:
        super().__init__(id="compare")
        self.a, self.b = a, b

    def compose(self) -> ComposeResult:
        a, b = self.a.run or "A", self.b.run or "B"
        with VerticalScroll():
            yield Static(f"[b]Compare[/b]  A = {a} ({self.a.state.state})   B = {b} ({self.b.state.state})")
            yield Static("[b]Config differences[/b]")
            cfg: DataTable[str] = DataTable(id="config-diff", cursor_type="none")
            cfg.add_columns("Key", "A", "B")
            for row in config_diff(self.a, self.b) or [("(identical)", "", "")]:
                cfg.add_row(*row)
            yield cfg
            yield Static("[b]Metrics (latest validated epoch)[/b]")
            met: DataTable[str] = DataTable(id="metric-deltas", cursor_type="none")
            met.add_columns("Metric", "A", "B", "B − A")
            for k, x, y, d in metric_deltas(self.a, self.b):
                sign = "" if d is None or d < 0 else "+"
                met.add_row(k, num(x), num(y), "—" if d is None else f"{sign}{d:.4f}")
            yield met
        yield Footer()
