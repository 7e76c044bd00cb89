"""Judging a run: metric table vs the baseline, success criteria, checkpoint decisions, next action.

Pure functions of a `Preset`, a `RunState` and the baseline table; nothing here reads files.
`evaluate` puts together the parts: reading the state and conditions (`tui.conditions`), the
result types (`tui.verdict_types`), the table, criteria, checkpoints and collapse flag
(`tui.judging`) and the recommendation (`tui.recommend`); their public names are re-exported here.
"""

from __future__ import annotations

from tui.conditions import (
    COLLAPSE_BELOW,
    LOWER_IS_BETTER,
    MARKS,
    MET,
    PENDING,
    TERMINAL,
    TREND_TOLERANCE,
    UNMET,
    condition_holds,
    condition_value,
    epoch_complete,
    max_epochs_of,
    metric_values,
    summary_metrics,
    validated,
)
from tui.judging import checkpoint_results, criteria_results, table_rows, variance_collapse
from tui.presets import Baselines, Preset, PresetError
from tui.recommend import recommend
from tui.runstate import RunState
from tui.verdict_types import (
    CheckpointResult,
    CriterionResult,
    Recommendation,
    Row,
    VarianceCollapse,
    Verdicts,
)

__all__ = [
    "COLLAPSE_BELOW", "LOWER_IS_BETTER", "MARKS", "MET", "PENDING", "TERMINAL", "TREND_TOLERANCE",
    "UNMET", "CheckpointResult", "CriterionResult", "Recommendation", "Row", "VarianceCollapse",
    "Verdicts", "checkpoint_results", "condition_holds", "condition_value", "criteria_results",
    "epoch_complete", "evaluate", "max_epochs_of", "metric_values", "recommend", "summary_metrics",
    "table_rows", "validated", "variance_collapse",
]


def evaluate(preset: Preset, state: RunState, baselines: Baselines | None) -> Verdicts:
    """Judge `state` against the preset's criteria and checkpoints and the baseline table."""
    try:
        baseline = baselines.get(preset.baseline) if baselines is not None else None
    except PresetError:
        baseline = None
    recs = validated(state)
    crit = criteria_results(preset, state, recs)
    cps = checkpoint_results(preset, state)
    return Verdicts(baseline=baseline, table=table_rows(preset, recs, baseline), criteria=tuple(crit),
                    checkpoints=tuple(cps), recommendation=recommend(preset, state, cps, crit),
                    variance_collapse=variance_collapse(state))
