"""Judging a run: metric table vs the baseline, success criteria, checkpoint decisions, next action.

Pure functions of a `Preset`, a `RunState` and the baseline table; nothing here reads files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tui.presets import (
    HORIZON_METRICS,
    LEVELS,
    Baseline,
    Baselines,
    Condition,
    NextAction,
    Preset,
    PresetError,
    metric_key,
    metric_label,
)
from tui.runstate import EpochRecord, RunState, finite_or_none

TERMINAL = ("finished", "crashed", "killed")
COLLAPSE_BELOW = 0.005  # SCALE prints as 0.00 below this
LOWER_IS_BETTER = ("val_loss", "train_loss")
TREND_TOLERANCE = 5e-4
PENDING, MET, UNMET = "pending", "met", "unmet"
MARKS = {MET: "✅", UNMET: "❌", PENDING: "⏳"}


# ----------------------------------------------------------------------------- reading the state
def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def metric_values(rec: EpochRecord, metric: str, horizon: int | str | None) -> list[float]:
    """The finite values of a metric in one epoch (several for horizon "all")."""
    if metric not in HORIZON_METRICS:
        v = _finite(getattr(rec, metric, None))
        return [] if v is None else [v]
    hs = sorted(rec.horizons) if horizon == "all" else [horizon] if isinstance(horizon, int) else []
    out = []
    for h in hs:
        m = rec.horizons.get(h)
        v = _finite(getattr(m, metric, None)) if m is not None else None
        if v is not None:
            out.append(v)
    return out


def _worst(values: list[float], metric: str, op: str | None) -> float | None:
    """One value standing for several horizons: the one that decides the comparison."""
    if not values:
        return None
    lower_wins = op in ("<", "<=") if op else metric in LOWER_IS_BETTER
    return max(values) if lower_wins else min(values)


def condition_value(rec: EpochRecord, cond: Condition) -> float | None:
    """The value a condition is judged on (None: not measured)."""
    return _worst(metric_values(rec, cond.metric, cond.horizon), cond.metric, cond.op)


def condition_holds(rec: EpochRecord, cond: Condition) -> bool | None:
    """True/False, or None when the metric was not measured in that epoch."""
    values = metric_values(rec, cond.metric, cond.horizon)
    return all(cond.holds(v) for v in values) if values else None


def validated(state: RunState) -> list[EpochRecord]:
    """Validated epochs, oldest first."""
    return [r for r in state.epochs if r.validated]


def epoch_complete(state: RunState, rec: EpochRecord) -> bool:
    """Validation of this epoch is over (Sharpe printed, a later epoch began, or the run ended)."""
    if not rec.validated:
        return False
    later = any(r.epoch > rec.epoch for r in state.epochs) or (state.epoch or 0) > rec.epoch
    return rec.sharpe is not None or later or state.state in TERMINAL


def max_epochs_of(preset: Preset, state: RunState) -> int | None:
    """The run's epoch budget: from the log if known, else the preset."""
    return state.max_epochs or preset.max_epochs


def summary_metrics(state: RunState) -> dict[str, float]:
    """The latest validated epoch as baseline-table metrics (for `add_baseline`)."""
    recs = validated(state)
    if not recs:
        return {}
    rec = recs[-1]
    out = {k: v for k in ("sharpe", "val_loss", "train_loss")
           if (v := _finite(getattr(rec, k))) is not None}
    for h in sorted(rec.horizons):
        for m in HORIZON_METRICS:
            vals = metric_values(rec, m, h)
            if vals:
                out[metric_key(m, h)] = vals[0]
    lowest = _worst(metric_values(rec, "scale", "all"), "scale", None)
    if lowest is not None:
        out["scale"] = lowest
    return out


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
                "title": c.title, "epoch": c.epoch, "status": c.status, "verdict": c.verdict,
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


# ------------------------------------------------------------------------------------ judging
def _trend(values: list[float]) -> str | None:
    last = values[-3:]
    if len(last) < 2:
        return None
    d = last[-1] - last[0]
    return "flat" if abs(d) < TREND_TOLERANCE else "up" if d > 0 else "down"


def _row_specs(preset: Preset, baseline: Baseline | None) -> list[tuple[str, int | str | None, Condition | None]]:
    specs: dict[str, tuple[str, int | str | None, Condition | None]] = {}
    for c in preset.criteria:
        if c.condition is not None:
            specs.setdefault(metric_key(c.metric, c.condition.horizon),
                             (c.metric, c.condition.horizon, c.condition))
    for key in (baseline.metrics if baseline else {}):
        metric, _, h = key.partition("_h")
        horizon: int | str | None = int(h) if h else ("all" if metric == "scale" else None)
        specs.setdefault(key, (metric, horizon, None))
    return list(specs.values())


def _better(metric: str, a: float, b: float) -> bool:
    """Better by more than printing resolution (SCALE 0.001 is no better than 0.00)."""
    tol = COLLAPSE_BELOW if metric == "scale" else TREND_TOLERANCE
    return a < b - tol if metric in LOWER_IS_BETTER else a > b + tol


def _row(metric: str, horizon: int | str | None, cond: Condition | None,
         recs: list[EpochRecord], baseline: Baseline | None) -> Row:
    key = metric_key(metric, horizon)
    series = [v for r in recs if (v := _worst(metric_values(r, metric, horizon), metric,
                                              cond.op if cond else None)) is not None]
    base = _finite(baseline.metrics.get(key)) if baseline else None
    current = None
    if recs:
        current = _worst(metric_values(recs[-1], metric, horizon), metric, cond.op if cond else None)
    best = (min(series) if metric in LOWER_IS_BETTER else max(series)) if series else None
    target = cond.describe().removeprefix(metric_label(metric, horizon)).strip() if cond else None
    if current is None:
        status = "⏳"
    elif cond is not None and condition_holds(recs[-1], cond):
        status = "✅"
    elif base is not None and _better(metric, current, base):
        status = "⚠️" if cond is not None else "✅"
    elif base is not None and cond is None and not _better(metric, base, current):
        status = "⚠️"  # no target, level with the baseline
    else:
        status = "❌" if (cond is not None or base is not None) else "➖"
    return Row(label=metric_label(metric, horizon), key=key, target=target, baseline=base,
               current=current, best=best, trend=_trend(series), status=status)


def _criteria(preset: Preset, state: RunState, recs: list[EpochRecord]) -> list[CriterionResult]:
    out = []
    done = sum(1 for r in state.epochs if epoch_complete(state, r))
    for c in preset.criteria:
        if c.condition is None:  # "completed"
            status = (MET if state.state == "finished" else UNMET if state.state in TERMINAL
                      else PENDING)
            out.append(CriterionResult(c.label, status, float(done)))
            continue
        holds = condition_holds(recs[-1], c.condition) if recs else None
        value = condition_value(recs[-1], c.condition) if recs else None
        status = PENDING if holds is None else MET if holds else UNMET
        out.append(CriterionResult(c.label, status, value))
    return out


def _checkpoints(preset: Preset, state: RunState) -> list[CheckpointResult]:
    out = []
    n = max_epochs_of(preset, state)
    by_epoch = {r.epoch: r for r in state.epochs}
    for cp in preset.checkpoints:
        k = cp.at(n)
        rec = by_epoch.get(k) if k is not None else None
        conds = {metric_label(c.metric, c.horizon): c for r in cp.rules for c in r.when}
        common: dict[str, Any] = {"title": cp.title, "epoch": k, "look_for": cp.look_for}
        if rec is None or not epoch_complete(state, rec):
            ended = state.state in TERMINAL or (n is not None and k is not None and k > n)
            out.append(CheckpointResult(status="not_reached" if ended else "pending", **common))
            continue
        values = tuple((label, condition_value(rec, c)) for label, c in conds.items())
        result = CheckpointResult(status="no_data", values=values, **common)
        for rule in cp.rules:
            holds = [condition_holds(rec, c) for c in rule.when]
            if False in holds:
                continue
            if None not in holds:
                result = CheckpointResult(status="decided", verdict=rule.verdict, say=rule.say,
                                          level=rule.level, values=values, **common)
            break
        out.append(result)
    return out


def _collapse(state: RunState) -> VarianceCollapse:
    first, horizons, lowest = None, set(state.low_variance), None
    recs = validated(state)
    latest = False
    for rec in recs:
        bad = [h for h, m in rec.horizons.items()
               if (s := _finite(m.scale)) is not None and s < COLLAPSE_BELOW]
        for h in bad:
            s = rec.horizons[h].scale
            lowest = s if lowest is None or (s is not None and s < lowest) else lowest
        if bad:
            first = rec.epoch if first is None else first
            horizons.update(bad)
        latest = bool(bad)
    for v in state.low_variance.values():
        if _finite(v) is not None and (lowest is None or v < lowest):
            lowest = v
    if first is None and horizons and recs:
        first = recs[-1].epoch
    return VarianceCollapse(detected=bool(horizons), first_epoch=first,
                            horizons=tuple(sorted(horizons)), latest=latest, lowest=lowest)


def _from_action(action: NextAction | None, verdict: str, say: str, source: str,
                 finished: bool) -> Recommendation:
    if action is None:
        return Recommendation("done" if finished else "continue", say or verdict, verdict, source)
    kind = "launch" if action.preset else ("done" if finished else "continue")
    return Recommendation(
        kind, action.why or say, verdict, source, action.preset, action.alternatives, action.steps,
        f"runctl launch {action.preset}" if action.preset else None,
    )


def _recommend(preset: Preset, state: RunState, cps: list[CheckpointResult],
               crit: list[CriterionResult]) -> Recommendation:
    run = state.run or "RUN"
    if state.state == "killed":
        return Recommendation("resume", "The run was stopped; its last checkpoint can continue it",
                              source="killed", command=f"runctl resume {run}")
    if state.state == "crashed":
        err = state.error or "the run crashed"
        numeric = any(w in err.lower() for w in ("non-finite", "nan", "inf"))
        if state.checkpoints and not numeric:
            return Recommendation("resume", f"Crashed: {err}; resume from the last checkpoint",
                                  source="crash", command=f"runctl resume {run}")
        return Recommendation("investigate", f"Crashed: {err}", source="crash",
                              steps=("Read the traceback at the end of the log",
                                     "Fix the cause, then resume or relaunch"))
    finished = state.state == "finished"
    decided = [c for c in cps if c.status == "decided" and c.verdict]
    if finished and (not decided or decided[-1].epoch != max_epochs_of(preset, state)):
        ok = all(c.status == MET for c in crit)
        verdict = "success" if ok else "failure"
        action = preset.next.get(verdict)
        if action is not None or not decided:
            why = "All success criteria met" if ok else "Some success criteria not met"
            return _from_action(action, verdict, why, "success criteria", True)
    if decided:
        last = max(decided, key=lambda c: c.epoch or 0)
        return _from_action(preset.next.get(last.verdict or ""), last.verdict or "", last.say,
                            last.title, finished)
    pending = [c for c in cps if c.status == "pending"]
    why = (f"Waiting for {pending[0].title} (epoch {pending[0].epoch})" if pending
           else "Waiting for the first validation")
    return Recommendation("wait", why, source=pending[0].title if pending else None)


def evaluate(preset: Preset, state: RunState, baselines: Baselines | None) -> Verdicts:
    """Judge `state` against the preset's criteria and checkpoints and the baseline table."""
    try:
        baseline = baselines.get(preset.baseline) if baselines is not None else None
    except PresetError:
        baseline = None
    recs = validated(state)
    table = tuple(_row(m, h, c, recs, baseline) for m, h, c in _row_specs(preset, baseline))
    crit = _criteria(preset, state, recs)
    cps = _checkpoints(preset, state)
    return Verdicts(baseline=baseline, table=table, criteria=tuple(crit), checkpoints=tuple(cps),
                    recommendation=_recommend(preset, state, cps, crit),
                    variance_collapse=_collapse(state))
