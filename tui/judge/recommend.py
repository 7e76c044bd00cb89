"""What to do now, from the run's state, its checkpoint decisions and criteria: the preset's `next`
action for the deciding verdict, or wait / resume / investigate.

Pure; `tui.judge.evaluate.evaluate` calls `recommend`.
"""

from __future__ import annotations

from tui.judge.conditions import MET, max_epochs_of
from tui.judge.results import CheckpointResult, CriterionResult, Recommendation
from tui.presets.preset import NextAction, Preset
from tui.state.run import RunState


def _from_action(action: NextAction | None, verdict: str, say: str, source: str,
                 finished: bool) -> Recommendation:
    if action is None:
        return Recommendation("done" if finished else "continue", say or verdict, verdict, source)
    kind = "launch" if action.preset else ("done" if finished else "continue")
    return Recommendation(
        kind, action.why or say, verdict, source, action.preset, action.alternatives, action.steps,
        f"runctl launch {action.preset}" if action.preset else None,
    )


def recommend(preset: Preset, state: RunState, cps: list[CheckpointResult],
               crit: list[CriterionResult]) -> Recommendation:
    """killed -> resume; crashed -> resume or investigate; else the deciding verdict's next action.
    Resume only where there is something to resume from and it would not crash the same way
    again (`state.resume_blocked`, set by the controller); else what to do instead."""
    run = state.run or "RUN"
    if state.state == "damaged":
        return Recommendation("investigate", state.error or "The run's manifest is damaged", source="manifest",
                              steps=("Repair or remove the damaged manifest file",
                                     f"`runctl kill {run}` still stops it while it runs"))
    if state.state in ("killed", "crashed") and state.resume_blocked:
        what = "stopped" if state.state == "killed" else f"crashed: {state.error or 'the run crashed'}"
        why = f"The run {what}; a resume would not help: {state.resume_blocked}"
        if state.state == "killed" or "checkpoint" in state.resume_blocked:
            return Recommendation("launch", why + "; launch it again", source=state.state, preset=preset.name,
                                  command=f"runctl launch {preset.name}")
        return Recommendation("investigate", why, source="crash",
                              steps=("Read the error at the end of the log", "Fix the cause, then relaunch"))
    if state.state == "killed":
        return Recommendation("resume", "The run was stopped; its last checkpoint can continue it",
                              source="killed", command=f"runctl resume {run}")
    if state.state == "crashed":
        err = state.error or "the run crashed"
        numeric = any(w in err.lower() for w in ("non-finite", "nan", "inf"))
        if (state.checkpoints or state.resume_from) and not numeric:
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
    why = (f"Waiting for {pending[0].title} ({pending[0].where})" if pending
           else "Waiting for the first validation")
    return Recommendation("wait", why, source=pending[0].title if pending else None)
