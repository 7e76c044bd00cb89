"""Runs side by side, as the TUI's compare screen (tui.app.screens.compare) and `runctl compare`
(tui.cli.compare_commands) show them: the config keys whose values differ (only those: for the
runs of one sweep, its swept values) and the latest validated metrics of each run.

A run compared is anything with a `state`, a `preset` (None: unknown), a `manifest` (a Manifest,
a host's `runs --json` row, or None) and a `max_epochs` (its budget): the TUI's RunView, or a
`Compared`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tui.judge.conditions import max_epochs_of, summary_metrics
from tui.presets.preset import Preset, value_text
from tui.state.run import RunState

MISSING = "—"  # a config key a run does not have (its preset unknown: its `preset`)


class Comparable(Protocol):
    """What a compared run gives (RunView and Compared have it)."""

    @property
    def state(self) -> RunState: ...

    @property
    def preset(self) -> Preset | None: ...

    @property
    def manifest(self) -> Any: ...

    @property
    def max_epochs(self) -> int | None: ...


@dataclass(frozen=True)
class Compared:
    """A run compared outside the TUI: `run` as commands name it (`RUN`, `HOST:RUN`), its host
    (None: this machine), its state, the preset it was launched with, its manifest."""

    run: str
    state: RunState
    preset: Preset | None = None
    manifest: Any = None
    host: str | None = None

    @property
    def max_epochs(self) -> int | None:
        """Epochs the run will do (log first, then the preset); a run counted in steps: its steps."""
        return max_epochs_of(self.preset, self.state)


def _field(obj: Any, name: str) -> Any:
    """`obj.name` or `obj[name]` (a Manifest or a mapping); None when absent."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def config_of(v: Comparable) -> dict[str, str]:
    """A flat view of what a run was launched with: preset, epochs, overrides, env, changes."""
    out: dict[str, str] = {"preset": v.preset.name if v.preset else MISSING}
    if v.max_epochs is not None:
        out["max_epochs"] = str(v.max_epochs)
    if v.preset:
        out.update({k: value_text(x) for k, x in v.preset.overrides.items()})
        out.update({f"env {k}": x for k, x in v.preset.env.items()})
    for key in ("sets", "overrides"):
        items = _field(v.manifest, key) or ()
        if isinstance(items, dict):
            out.update({str(k): value_text(x) for k, x in items.items()})
            continue
        for item in items:
            k, _, x = str(item).partition("=")
            out[k] = x
    for item in _field(v.manifest, "envs") or ():
        k, _, x = str(item).partition("=")
        out[f"env {k}"] = x
    return out


def config_diff(views: Sequence[Comparable]) -> list[tuple[str, list[str]]]:
    """(key, value per run) for every key whose values are not all the same (a sweep's runs
    differ in its swept values: those are its rows)."""
    configs = [config_of(v) for v in views]
    keys = list(dict.fromkeys(k for c in configs for k in c))
    out = []
    for k in keys:
        values = [c.get(k, MISSING) for c in configs]
        if len(set(values)) > 1:
            out.append((k, values))
    return out


def metric_rows(views: Sequence[Comparable]) -> list[tuple[str, list[float | None]]]:
    """(metric, value per run) over the latest validated epoch of each."""
    ms = [summary_metrics(v.state) for v in views]
    keys = list(dict.fromkeys(k for m in ms for k in m))
    return [(k, [m.get(k) for m in ms]) for k in keys]


def sweep_point(v: Comparable) -> tuple[str, int | None] | None:
    """(sweep id, point index) of a sweep's run (its manifest's `sweep`), else None."""
    sweep = _field(v.manifest, "sweep")
    if not isinstance(sweep, Mapping) or not isinstance(sweep.get("id"), str):
        return None
    index = sweep.get("index")
    return sweep["id"], index if isinstance(index, int) and not isinstance(index, bool) else None
