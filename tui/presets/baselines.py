"""The baseline table (presets/baselines.toml): finished runs a new run is compared with.

`load_baselines` reads and validates it (a missing file is an empty table); `add_baseline`
appends a row, keeping the file's comments, atomically. Errors are `PresetError`s naming the file.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from tui.presets.preset import PresetError, metric_name_problem
from tui.presets.schema import Where, atomic_write, read_toml

BASELINES_FILE = "baselines.toml"


@dataclass(frozen=True)
class Baseline:
    """One finished run in the baseline table; metrics keyed like `sharpe`, `ic_h20`, `scale`."""

    name: str
    config: str = ""
    status: str = ""
    preset: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Baselines:
    """The baseline table (presets/baselines.toml)."""

    runs: tuple[Baseline, ...] = ()
    path: Path | None = None

    def get(self, name: str | None) -> Baseline | None:
        """The row called `name`; None: the first row (or None if the table is empty)."""
        if name is None:
            return self.runs[0] if self.runs else None
        for b in self.runs:
            if b.name == name:
                return b
        raise PresetError(f"{self.path}: no baseline {name!r}; baselines: "
                          f"{', '.join(b.name for b in self.runs) or '(none)'}")


_METRIC_KEY = re.compile(r"^(sharpe|val_loss|train_loss|(ic|rank_ic|scale)(_h[1-9][0-9]*)?)$")


def _check_metrics(w: Where, metrics: Any, where: str) -> dict[str, float]:
    t = w.table(metrics, where, metrics.keys() if isinstance(metrics, dict) else ())
    for k, v in t.items():
        problem = None if _METRIC_KEY.match(k) else metric_name_problem(k)
        if problem is not None:
            raise w.err(where, f"{problem}; the built-in keys: sharpe, val_loss, train_loss, "
                               "ic_hN, rank_ic_hN, scale_hN or scale")
        w.typed(v, (int, float), f"{where} {k}", "a number")
    return {k: float(v) for k, v in t.items()}


def load_baselines(path: Path | str) -> Baselines:
    """Read the baseline table; a missing file is an empty table."""
    p = Path(path)
    if not p.exists():
        return Baselines(path=p)
    w = Where(p)
    raw = w.table(read_toml(p), "", ("runs",))
    runs = raw.get("runs", [])
    if not isinstance(runs, list):
        raise w.err("runs", "expected an array of tables ([[runs]])")
    out = []
    for i, r in enumerate(runs, 1):
        where = f"runs #{i}"
        t = w.table(r, where, ("name", "config", "status", "preset", "metrics"))
        if "name" not in t:
            raise w.err(where, "missing key 'name'")
        out.append(Baseline(
            name=w.typed(t["name"], str, f"{where} name", "a string"),
            config=w.typed(t.get("config", ""), str, f"{where} config", "a string"),
            status=w.typed(t.get("status", ""), str, f"{where} status", "a string"),
            preset=w.typed(t["preset"], str, f"{where} preset", "a string") if "preset" in t else None,
            metrics=_check_metrics(w, t.get("metrics", {}), f"{where} metrics"),
        ))
    return Baselines(runs=tuple(out), path=p)


def add_baseline(
    path: Path | str, name: str, config: str, metrics: Mapping[str, float | None],
    status: str = "", preset: str | None = None,
) -> Baselines:
    """Append a finished run to the table (comments kept; atomic); None/nan metrics are dropped."""
    p = Path(path)
    clean = {k: float(v) for k, v in metrics.items() if v is not None and v == v}
    _check_metrics(Where(p), clean, "metrics")
    entry: dict[str, Any] = {"name": name, "config": config, "status": status}
    if preset is not None:
        entry["preset"] = preset
    lines = ["", "[[runs]]"] + [tomli_w.dumps({k: v}).strip() for k, v in entry.items()]
    inline = ", ".join(f"{k} = {tomli_w.dumps({'v': v}).split('=', 1)[1].strip()}" for k, v in clean.items())
    lines.append(f"metrics = {{ {inline} }}" if clean else "metrics = {}")
    old = p.read_text(encoding="utf-8") if p.exists() else ""
    text = old.rstrip("\n") + "\n" + "\n".join(lines) + "\n"
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PresetError(f"{p}: cannot append (the table does not parse: {e})") from None
    if any(b.name == name for b in load_baselines(p).runs):
        raise PresetError(f"{p}: a baseline named {name!r} already exists")
    atomic_write(p, text, overwrite=True)
    return load_baselines(p)
