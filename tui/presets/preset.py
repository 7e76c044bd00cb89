"""Preset types: the typed, validated form of a preset file (format: docs/presets.md).

`Preset` and its parts (criteria, checkpoints with decision rules, next actions, timeline), the
metric vocabulary and `PresetError`. No TOML parsing here (`tui.presets.parse`), no torch, no
Textual: `Preset.validate` goes through `engine.config.check`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import config as ec
from tui.errors import RunctlError


class PresetError(RunctlError):
    """A preset (or baseline table) the user wrote is wrong; one line naming file and key."""


METRICS = ("sharpe", "val_loss", "train_loss", "ic", "rank_ic", "scale")
HORIZON_METRICS = ("ic", "rank_ic", "scale")
OPS = (">", ">=", "<", "<=", "between")
LEVELS = {"good": "✅", "warn": "⚠️", "bad": "❌"}


@dataclass(frozen=True)
class Condition:
    """`metric [at horizon] op value`; horizon "all": must hold at every horizon."""

    metric: str
    op: str
    value: float | tuple[float, float]
    horizon: int | str | None = None  # None for sharpe/val_loss/train_loss (and before defaulting)

    def holds(self, x: float) -> bool:
        """Whether one finite value satisfies the comparison."""
        v = self.value
        if self.op == "between":
            lo, hi = v  # type: ignore[misc]
            return lo <= x <= hi
        assert isinstance(v, float)
        return {">": x > v, ">=": x >= v, "<": x < v, "<=": x <= v}[self.op]

    def describe(self) -> str:
        """Human text, e.g. `SCALE(yhat/y) (all h) >= 0.005`."""
        v = self.value
        rhs = f"{v[0]:g}..{v[1]:g}" if isinstance(v, tuple) else f"{v:g}"
        return f"{metric_label(self.metric, self.horizon)} {self.op} {rhs}"


@dataclass(frozen=True)
class Criterion:
    """A success criterion; metric "completed" means the run finished all its epochs."""

    label: str
    metric: str
    condition: Condition | None = None  # None only for "completed"


@dataclass(frozen=True)
class Rule:
    """One decision rule of a checkpoint: all `when` conditions hold -> verdict (empty: otherwise)."""

    verdict: str
    when: tuple[Condition, ...] = ()
    say: str = ""
    level: str = "warn"  # good | warn | bad

    @property
    def mark(self) -> str:
        """✅ / ⚠️ / ❌."""
        return LEVELS[self.level]


@dataclass(frozen=True)
class Checkpoint:
    """A critical checkpoint: decided from the record of `epoch` ("last": the final epoch)."""

    epoch: int | str
    title: str
    rules: tuple[Rule, ...]
    look_for: tuple[str, ...] = ()

    def at(self, max_epochs: int | None) -> int | None:
        """The 1-based epoch number this checkpoint is decided at (None: unknown)."""
        return max_epochs if self.epoch == "last" else int(self.epoch)


@dataclass(frozen=True)
class NextAction:
    """What to do after a verdict: a preset to launch (optional), why, alternatives, manual steps."""

    verdict: str
    why: str
    preset: str | None = None
    alternatives: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()


@dataclass(frozen=True)
class Timeline:
    """Expected durations in minutes (None: unknown; measured epochs take over)."""

    setup_minutes: float | None = None
    epoch_minutes: float | None = None


@dataclass(frozen=True)
class Preset:
    """A resolved preset (extends applied)."""

    name: str
    path: Path
    description: str = ""
    extends: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted key -> typed value
    max_epochs: int | None = None
    data_path: str | None = None
    default_horizon: int = 20
    baseline: str | None = None  # name of the baselines.toml row to compare with; None: the first
    timeline: Timeline = field(default_factory=Timeline)
    criteria: tuple[Criterion, ...] = ()
    checkpoints: tuple[Checkpoint, ...] = ()
    next: dict[str, NextAction] = field(default_factory=dict)
    chain: tuple[str, ...] = ()  # this preset, its parent, ... up to the root

    def override_args(self) -> list[str]:
        """The overrides as engine `key=value` arguments."""
        return [f"{k}={value_text(v)}" for k, v in self.overrides.items()]

    def engine_args(self) -> list[str]:
        """Arguments for `python -m engine train` (after the subcommand)."""
        args: list[str] = []
        if self.max_epochs is not None:
            args += ["--max-epochs", str(self.max_epochs)]
        if self.data_path is not None:
            args += ["--data-path", self.data_path]
        return args + self.override_args()

    def validate(self) -> ec.EngineConfig:
        """Resolve the engine config as the engine would; raise PresetError naming this file."""
        args = self.override_args()
        if self.max_epochs is not None:
            args.append(f"train.trainer.max_epochs={self.max_epochs}")
        if self.data_path is not None:
            args.append(f"data.path={self.data_path}")
        try:
            cfg = ec.check(args, environ=self.env)
        except ec.ConfigError as e:
            raise PresetError(f"{self.path}: {e}") from None
        horizons = set(cfg.model.horizons)
        for where, cond in self._conditions():
            if isinstance(cond.horizon, int) and cond.horizon not in horizons:
                raise PresetError(
                    f"{self.path}: {where}: horizon {cond.horizon} is not one of model.horizons "
                    f"{sorted(horizons)}"
                )
        return cfg

    def unknown_env(self) -> list[str]:
        """Env names the engine does not read (passed through, worth a warning)."""
        return [k for k in self.env if k not in ec.ENV_KEYS]

    def _conditions(self) -> list[tuple[str, Condition]]:
        out = [(f"criteria {c.label!r}", c.condition) for c in self.criteria if c.condition]
        for cp in self.checkpoints:
            out += [(f"checkpoint {cp.title!r}", c) for r in cp.rules for c in r.when]
        return out


def metric_label(metric: str, horizon: int | str | None) -> str:
    """Display name, e.g. `IC (h20)`, `SCALE(yhat/y) (all h)`, `Sharpe`."""
    base = {
        "sharpe": "Sharpe", "val_loss": "val/loss", "train_loss": "train/total_loss",
        "ic": "IC", "rank_ic": "RankIC", "scale": "SCALE(yhat/y)", "completed": "Completed",
    }.get(metric, metric)
    if horizon is None:
        return base
    return f"{base} (all h)" if horizon == "all" else f"{base} (h{horizon})"


def metric_key(metric: str, horizon: int | str | None) -> str:
    """Baseline-table key: `sharpe`, `ic_h20`, `scale` (all horizons)."""
    return metric if horizon in (None, "all") else f"{metric}_h{horizon}"


def value_text(v: Any) -> str:
    """A typed value as the engine's command line reads it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, list):
        return json.dumps(v)
    return str(v)
