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


def latest_values(state: RunState, recs: list[EpochRecord], metric: str,
                  horizon: int | str | None) -> list[float]:
    """A metric's values at its latest evaluation: for the built-in metrics, the latest validated
    epoch (a nan there is not measured, not replaced by an older value); for a metric of another
    name, the latest validated point that carries it, else its latest value from any source (a
    per-step train loss, a TensorBoard scalar not on the timeline, a tqdm postfix)."""
    if metric in METRICS:
        return metric_values(recs[-1], metric, horizon) if recs else []
    for rec in reversed(recs):
        if metric in rec.metrics:
            v = finite_or_none(rec.metrics[metric])
            return [] if v is None else [v]
    x = state.latest.get(metric)
    if x is None:
        post = dict(state.progress.postfix)
        v = finite_or_none(post.get(metric)) if metric in post else None
    else:
        v = finite_or_none(x.value)
    return [] if v is None else [v]


def latest_value(state: RunState, recs: list[EpochRecord], cond: Condition) -> float | None:
    """The value a criterion is judged on: its metric at its latest evaluation."""
    return worst(latest_values(state, recs, cond.metric, cond.horizon), cond.metric, cond.op)


def latest_holds(state: RunState, recs: list[EpochRecord], cond: Condition) -> bool | None:
    """Whether a criterion holds at its metric's latest evaluation (None: not measured yet)."""
    values = latest_values(state, recs, cond.metric, cond.horizon)
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


def max_epochs_of(preset: Preset | None, state: RunState) -> int | None:
    """The run's budget on its axis: epochs (from the log if known, else the preset), or steps for
    a run counted in steps."""
    if state.axis == "step":
        return state.max_steps or (preset.max_steps if preset else None)
    return state.max_epochs or (preset.max_epochs if preset else None)


def checkpoint_record(state: RunState, axis: str, at: int | None) -> EpochRecord | None:
    """The point a critical checkpoint is decided at: the epoch `at`; for `step = N`, the first
    evaluation at or after step N (the run's timeline, or an epoch whose step is known)."""
    if at is None:
        return None
    if axis == "epoch":
        if state.axis == "step":
            return None
        return next((r for r in state.epochs if r.epoch == at), None)
    for r in state.epochs:
        step = r.step if r.step is not None else r.epoch if state.axis == "step" else None
        if r.validated and step is not None and step >= at:
            return r
    return None


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
                    - {"train/total_loss", "val/loss", "sharpe_ann"}, key=_column_order)
    names.update((k, None) for k in logged if not k.startswith(("ic_h", "rank_ic_h", "scale_h"))
                 and not _BOOKKEEPING.search(k))
    return list(names)[:limit]


# Names a script logs about its own running, not its model (the HF Trainer's `eval_runtime`,
# `train_samples_per_second`): never a timeline column of their own.
_BOOKKEEPING = re.compile(r"(?:runtime|_per_second|_flos|^epoch$|^step$|grad_norm|learning_rate|^lr$)",
                          re.IGNORECASE)


def _column_order(name: str) -> tuple[int, str]:
    """Evaluation metrics first (`val_acc`, `eval_loss`), then losses, then the rest, by name."""
    low = name.lower()
    evaluation = any(w in low for w in ("val", "eval", "test"))
    return (0 if evaluation else 1 if "loss" in low or "acc" in low else 2, name)


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
