"""Judging a run against its preset and baseline: the metric table, the success criteria, the
critical checkpoints' decisions, the variance-collapse flag.

Pure functions of a `Preset`, a `RunState` and a baseline row; `tui.judge.evaluate.evaluate` calls them.
"""

from __future__ import annotations

from typing import Any

from tui.judge.conditions import (
    COLLAPSE_BELOW,
    MET,
    PENDING,
    TERMINAL,
    TREND_TOLERANCE,
    UNMET,
    checkpoint_record,
    condition_holds,
    condition_value,
    epoch_complete,
    latest_holds,
    latest_value,
    latest_values,
    lower_is_better,
    max_epochs_of,
    metric_values,
    validated,
    worst,
)
from tui.judge.results import CheckpointResult, CriterionResult, Row, VarianceCollapse
from tui.presets.baselines import Baseline
from tui.presets.preset import Condition, Preset, metric_key, metric_label, split_metric_key
from tui.state.records import EpochRecord, finite_or_none
from tui.state.run import RunState


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
        metric, horizon = split_metric_key(key)
        specs.setdefault(key, (metric, horizon, None))
    return list(specs.values())


def _better(metric: str, a: float, b: float) -> bool:
    """Better by more than printing resolution (SCALE 0.001 is no better than 0.00)."""
    tol = COLLAPSE_BELOW if metric == "scale" else TREND_TOLERANCE
    return a < b - tol if lower_is_better(metric) else a > b + tol


def _row(metric: str, horizon: int | str | None, cond: Condition | None, state: RunState,
         recs: list[EpochRecord], baseline: Baseline | None) -> Row:
    key = metric_key(metric, horizon)
    series = [v for r in recs if (v := worst(metric_values(r, metric, horizon), metric,
                                              cond.op if cond else None)) is not None]
    base = finite_or_none(baseline.metrics.get(key)) if baseline else None
    current = worst(latest_values(state, recs, metric, horizon), metric, cond.op if cond else None)
    if not series and current is not None:
        series = [current]  # a metric off the timeline: its latest value is all there is
    best = (min(series) if lower_is_better(metric) else max(series)) if series else None
    target = cond.describe().removeprefix(metric_label(metric, horizon)).strip() if cond else None
    if current is None:
        status = "⏳"
    elif cond is not None and latest_holds(state, recs, cond):
        status = "✅"
    elif base is not None and _better(metric, current, base):
        status = "⚠️" if cond is not None else "✅"
    elif base is not None and cond is None and not _better(metric, base, current):
        status = "⚠️"  # no target, level with the baseline
    else:
        status = "❌" if (cond is not None or base is not None) else "➖"
    return Row(label=metric_label(metric, horizon), key=key, target=target, baseline=base,
               current=current, best=best, trend=_trend(series), status=status)


def table_rows(preset: Preset, state: RunState, recs: list[EpochRecord],
               baseline: Baseline | None) -> tuple[Row, ...]:
    """The metric table: one row per criterion metric, then per baseline metric; each row's
    current value is its metric's latest evaluation (a per-step metric's latest value)."""
    return tuple(_row(m, h, c, state, recs, baseline) for m, h, c in _row_specs(preset, baseline))


def criteria_results(preset: Preset, state: RunState, recs: list[EpochRecord]) -> list[CriterionResult]:
    """Each success criterion judged on the latest validated epoch (`completed`: on the lifecycle)."""
    out = []
    done = sum(1 for r in state.epochs if epoch_complete(state, r))
    for c in preset.criteria:
        if c.condition is None:  # "completed"
            status = (MET if state.state == "finished" else UNMET if state.state in TERMINAL
                      else PENDING)
            out.append(CriterionResult(c.label, status, float(done)))
            continue
        holds = latest_holds(state, recs, c.condition)
        value = latest_value(state, recs, c.condition)
        status = PENDING if holds is None else MET if holds else UNMET
        out.append(CriterionResult(c.label, status, value))
    return out


def checkpoint_results(preset: Preset, state: RunState) -> list[CheckpointResult]:
    """Each critical checkpoint: its first rule whose conditions all hold at that epoch decides."""
    out = []
    n = max_epochs_of(preset, state)
    by_epoch = {r.epoch: r for r in state.epochs} if state.axis == "epoch" else {}
    for cp in preset.checkpoints:
        budget = n if cp.axis == state.axis else state.max_steps or preset.max_steps \
            if cp.axis == "step" else state.max_epochs or preset.max_epochs
        k = cp.at(budget)
        if cp.axis == "epoch":
            rec = by_epoch.get(k) if k is not None else None
        else:
            rec = checkpoint_record(state, "step", k)
        conds = {metric_label(c.metric, c.horizon): c for r in cp.rules for c in r.when}
        common: dict[str, Any] = {"title": cp.title, "epoch": k, "look_for": cp.look_for, "axis": cp.axis}
        if rec is None or not epoch_complete(state, rec):
            ended = state.state in TERMINAL or (cp.axis == state.axis and budget is not None
                                                and k is not None and k > budget)
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


def variance_collapse(state: RunState) -> VarianceCollapse:
    """SCALE below printing resolution in any validated epoch, or a low-variance warning."""
    first, horizons, lowest = None, set(state.low_variance), None
    recs = validated(state)
    latest = False
    for rec in recs:
        bad = [h for h, m in rec.horizons.items()
               if (s := finite_or_none(m.scale)) is not None and s < COLLAPSE_BELOW]
        for h in bad:
            s = rec.horizons[h].scale
            lowest = s if lowest is None or (s is not None and s < lowest) else lowest
        if bad:
            first = rec.epoch if first is None else first
            horizons.update(bad)
        latest = bool(bad)
    for v in state.low_variance.values():
        if finite_or_none(v) is not None and (lowest is None or v < lowest):
            lowest = v
    if first is None and horizons and recs:
        first = recs[-1].epoch
    return VarianceCollapse(detected=bool(horizons), first_epoch=first,
                            horizons=tuple(sorted(horizons)), latest=latest, lowest=lowest)
