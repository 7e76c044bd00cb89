"""Judging a run: metric table vs the baseline, success criteria, checkpoint decisions, next action.

Pure functions of a `Preset`, a `RunState` and the baseline table; nothing here reads files.
`evaluate` puts together the parts of `tui.judge`: reading the state and conditions
(`conditions`), the result types (`results`), the table, criteria, checkpoints and collapse flag
(`judging`) and the recommendation (`recommend`).
"""

from __future__ import annotations

from tui.judge.conditions import (
    validated,
)
from tui.judge.judging import checkpoint_results, criteria_results, table_rows, variance_collapse
from tui.judge.recommend import recommend
from tui.judge.results import (
    Verdicts,
)
from tui.presets.baselines import Baselines
from tui.presets.preset import Preset, PresetError
from tui.state.run import RunState


def evaluate(preset: Preset, state: RunState, baselines: Baselines | None) -> Verdicts:
    """Judge `state` against the preset's criteria and checkpoints and the baseline table."""
    try:
        # the table's rows are the engine's (Sharpe, IC, SCALE): a script's preset compares with
        # one only when it names it
        own = preset.is_engine or preset.baseline is not None
        baseline = baselines.get(preset.baseline) if baselines is not None and own else None
    except PresetError:
        baseline = None
    recs = validated(state)
    crit = criteria_results(preset, state, recs)
    cps = checkpoint_results(preset, state)
    return Verdicts(baseline=baseline, table=table_rows(preset, state, recs, baseline), criteria=tuple(crit),
                    checkpoints=tuple(cps), recommendation=recommend(preset, state, cps, crit),
                    variance_collapse=variance_collapse(state))
