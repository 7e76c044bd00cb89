"""Reading a run state for the verdicts: a metric's values in an epoch, whether a preset condition
holds there, which epochs are validated and complete; the shared thresholds and status names.

Pure functions of a `RunState` (and a `Preset`'s conditions).
"""

from __future__ import annotations

import re

from tui.presets.preset import (
    HORIZON_METRICS,
    METRICS,
    Condition,
    Preset,
    metric_key,
    metric_name_problem,
)
from tui.state.records import EpochRecord, finite_or_none
from tui.state.run import RunState

TERMINAL = ("finished", "crashed", "killed")
COLLAPSE_BELOW = 0.005  # SCALE prints as 0.00 below this
LOWER_IS_BETTER = ("val_loss", "train_loss")
# A metric of any other name is better lower when its name says it is a loss or an error.
_LOWER_NAME = re.compile(r"(?:^|[_./-])(?:loss|err|error|mae|mse|rmse|nll|perplexity|ppl)(?:$|[_./-])",
                         re.IGNORECASE)
BUILTIN_FIELDS = ("sharpe", "val_loss", "train_loss")  # EpochRecord fields; other names: rec.metrics
TREND_TOLERANCE = 5e-4
PENDING, MET, UNMET = "pending", "met", "unmet"
MARKS = {MET: "✅", UNMET: "❌", PENDING: "⏳"}


# ----------------------------------------------------------------------------- reading the state
def metric_values(rec: EpochRecord, metric: str, horizon: int | str | None) -> list[float]:
    """The finite values of a metric in one epoch (several for horizon "all")."""
    if metric not in HORIZON_METRICS:
        v = finite_or_none(getattr(rec, metric) if metric in BUILTIN_FIELDS else None)
        if v is None:
            v = finite_or_none(rec.metrics.get(metric))
        return [] if v is None else [v]
    hs = sorted(rec.horizons) if horizon == "all" else [horizon] if isinstance(horizon, int) else []
    out = []
    for h in hs:
        m = rec.horizons.get(h)
        v = finite_or_none(getattr(m, metric, None)) if m is not None else None
        if v is not None:
            out.append(v)
    return out


def lower_is_better(metric: str) -> bool:
    """val_loss, train_loss, and any metric whose name says loss or error (`val_nll`, `mae`)."""
    return metric in LOWER_IS_BETTER or bool(_LOWER_NAME.search(metric))


def worst(values: list[float], metric: str, op: str | None) -> float | None:
    """One value standing for several horizons: the one that decides the comparison."""
    if not values:
        return None
    lower_wins = op in ("<", "<=") if op else lower_is_better(metric)
    return max(values) if lower_wins else min(values)


def condition_value(rec: EpochRecord, cond: Condition) -> float | None:
    """The value a condition is judged on (None: not measured)."""
    return worst(metric_values(rec, cond.metric, cond.horizon), cond.metric, cond.op)


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
    last = state.epochs[-1].epoch if state.epochs else rec.epoch  # the timeline is sorted: O(1)
    later = last > rec.epoch or (state.epoch or 0) > rec.epoch
    return rec.sharpe is not None or rec.metrics_final or later or state.state in TERMINAL


def own_value(rec: EpochRecord, name: str) -> float | None:
    """One epoch's value of a metric of another name (None: not logged, or not finite)."""
    return finite_or_none(rec.metrics.get(name))


def max_epochs_of(preset: Preset, state: RunState) -> int | None:
    """The run's epoch budget: from the log if known, else the preset."""
    return state.max_epochs or preset.max_epochs


def own_metrics(preset: Preset | None, state: RunState, limit: int = 4) -> list[str]:
    """The metrics of other names worth a timeline column: those the preset judges on, then (for a
    run without the engine's own metrics: a user script's) the ones the run logs, sorted; at most
    `limit`."""
    names: dict[str, None] = {}
    if preset is not None:
        conds = [c.condition for c in preset.criteria if c.condition is not None]
        conds += [c for cp in preset.checkpoints for r in cp.rules for c in r.when]
        names.update((c.metric, None) for c in conds if c.metric not in METRICS)
    if any(r.horizons or r.sharpe is not None for r in state.epochs):
        return list(names)[:limit]  # the engine's own run: its columns are the built-in ones
    logged = sorted({k for r in state.epochs for k in r.metrics} - set(METRICS) - set(names)
                    - {"train/total_loss", "val/loss", "sharpe_ann"})
    names.update((k, None) for k in logged if not k.startswith(("ic_h", "rank_ic_h", "scale_h")))
    return list(names)[:limit]


def summary_metrics(state: RunState) -> dict[str, float]:
    """The latest validated epoch as baseline-table metrics (for `add_baseline`)."""
    recs = validated(state)
    if not recs:
        return {}
    rec = recs[-1]
    out = {k: v for k in BUILTIN_FIELDS if (v := finite_or_none(getattr(rec, k))) is not None}
    for k, val in sorted(rec.metrics.items()):  # a metric of any name, as logged
        if k not in out and metric_name_problem(k) is None and (v := finite_or_none(val)) is not None:
            out[k] = v
    for h in sorted(rec.horizons):
        for m in HORIZON_METRICS:
            vals = metric_values(rec, m, h)
            if vals:
                out[metric_key(m, h)] = vals[0]
    lowest = worst(metric_values(rec, "scale", "all"), "scale", None)
    if lowest is not None:
        out["scale"] = lowest
    return out
