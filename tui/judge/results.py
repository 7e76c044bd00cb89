"""What `tui.judge.evaluate.evaluate` returns: the metric table's rows, criteria and checkpoint results,
the recommendation, the variance-collapse flag, and `Verdicts` (all of them, with its JSON form).

Frozen dataclasses, no logic beyond presentation (marks) and JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tui.judge.conditions import MARKS
from tui.presets.baselines import Baseline
from tui.presets.preset import LEVELS
from tui.state.records import finite_or_none


# ------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Row:
    """One metric of the table: target, baseline, current (latest validated), best, trend."""

    label: str
    key: str
    target: str | None
    baseline: float | None
    current: float | None
    best: float | None
    trend: str | None  # up | down | flat | None (fewer than 2 values)
    status: str  # ✅ ⚠️ ❌ ⏳ or ➖ (nothing to compare with)


@dataclass(frozen=True)
class CriterionResult:
    """A success criterion and where it stands."""

    label: str
    status: str  # met | unmet | pending
    value: float | None = None

    @property
    def mark(self) -> str:
        """✅ ❌ ⏳."""
        return MARKS[self.status]


@dataclass(frozen=True)
class CheckpointResult:
    """A critical checkpoint: pending, decided, not_reached or no_data (epoch done, metric missing)."""

    title: str
    epoch: int | None
    status: str
    verdict: str | None = None
    say: str = ""
    level: str | None = None
    values: tuple[tuple[str, float | None], ...] = ()  # (metric label, value at that epoch)
    look_for: tuple[str, ...] = ()
    axis: str = "epoch"  # `epoch` holds a step for a checkpoint at `step = N`

    @property
    def where(self) -> str:
        """`epoch 5`, `step 250` (`epoch ?` while the budget is unknown)."""
        return f"{self.axis} {self.epoch if self.epoch is not None else '?'}"

    @property
    def mark(self) -> str:
        """✅ ⚠️ ❌ for a decision, ⏳ pending, ➖ otherwise."""
        if self.status == "decided" and self.level:
            return LEVELS[self.level]
        return "⏳" if self.status == "pending" else "➖"


@dataclass(frozen=True)
class Recommendation:
    """What to do now: wait | continue | launch | resume | investigate | done."""

    action: str
    why: str
    verdict: str | None = None
    source: str | None = None  # e.g. "Epoch 5 Validation", "success criteria", "crash"
    preset: str | None = None
    alternatives: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    command: str | None = None


@dataclass(frozen=True)
class VarianceCollapse:
    """SCALE(yhat/y) printing as 0.00 (< 0.005) at any horizon of any validated epoch."""

    detected: bool
    first_epoch: int | None = None
    horizons: tuple[int, ...] = ()
    latest: bool = False  # still collapsed in the latest validated epoch
    lowest: float | None = None


@dataclass(frozen=True)
class Verdicts:
    """Everything `evaluate` decides about a run."""

    baseline: Baseline | None
    table: tuple[Row, ...]
    criteria: tuple[CriterionResult, ...]
    checkpoints: tuple[CheckpointResult, ...]
    recommendation: Recommendation
    variance_collapse: VarianceCollapse

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (no NaN)."""
        b = self.baseline
        return {
            "baseline": None if b is None else {
                "name": b.name, "config": b.config, "status": b.status, "preset": b.preset,
                "metrics": {k: finite_or_none(v) for k, v in b.metrics.items()},
            },
            "table": [{
                "metric": r.label, "key": r.key, "target": r.target,
                "baseline": finite_or_none(r.baseline), "current": finite_or_none(r.current),
                "best": finite_or_none(r.best), "trend": r.trend, "status": r.status,
            } for r in self.table],
            "criteria": [{"label": c.label, "status": c.status, "value": finite_or_none(c.value)}
                         for c in self.criteria],
            "checkpoints": [{
                "title": c.title, "epoch": c.epoch, "axis": c.axis, "status": c.status,
                "verdict": c.verdict,
                "say": c.say, "level": c.level,
                "values": {k: finite_or_none(v) for k, v in c.values},
            } for c in self.checkpoints],
            "recommendation": {
                "action": (r := self.recommendation).action, "why": r.why, "verdict": r.verdict,
                "source": r.source, "preset": r.preset, "alternatives": list(r.alternatives),
                "steps": list(r.steps), "command": r.command,
            },
            "variance_collapse": {
                "detected": (v := self.variance_collapse).detected, "first_epoch": v.first_epoch,
                "horizons": list(v.horizons), "latest": v.latest, "lowest": finite_or_none(v.lowest),
            },
        }
