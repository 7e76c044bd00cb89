"""`RunState` -> the stable JSON of docs/cli.md (`runctl status --json`): no NaN, no controller-only
keys. `RunState.to_json()` calls `state_json`.
"""

from __future__ import annotations

from typing import Any

from tui.state.records import RunData, finite_or_none


def state_json(st: RunData) -> dict[str, Any]:
    """The stable JSON shape of docs/cli.md (without controller-only keys)."""
    return {
        "run": st.run,
        "pid": st.pid,
        "state": st.state,
        "epoch": st.epoch,
        "max_epochs": st.max_epochs,
        "phases": {k: done for k, _, done, _ in st.checklist()},
        "progress": {
            "epoch": st.progress.epoch,
            "step": st.progress.step,
            "steps": st.progress.steps,
            "steps_per_s": finite_or_none(st.progress.steps_per_s),
            "eta_s": finite_or_none(st.progress.eta_s),
            "loss": finite_or_none(st.progress.loss),
            "postfix": {k: finite_or_none(v) for k, v in st.progress.postfix},
        },
        "axis": st.axis,
        "max_steps": st.max_steps,
        "epochs": [
            {
                "epoch": r.epoch,
                "step": r.step,
                "validated": r.validated,
                "started_at": r.started_at,
                "ended_at": r.ended_at,
                "train_loss": finite_or_none(r.train_loss),
                "val_loss": finite_or_none(r.val_loss),
                "sharpe": finite_or_none(r.sharpe),
                "horizons": {
                    str(h): {
                        "ic": finite_or_none(m.ic),
                        "rank_ic": finite_or_none(m.rank_ic),
                        "scale": finite_or_none(m.scale),
                    }
                    for h, m in sorted(r.horizons.items())
                },
                "metrics": {k: finite_or_none(v) for k, v in sorted(r.metrics.items())},
            }
            for r in st.epochs
        ],
        "error": st.error,
        "exit_reason": st.exit_reason,
        "exit_status": st.exit_status,
        "warnings": st.warnings,
        "errors": st.errors,
        "grad_warnings": list(st.grad_warnings),
        "low_variance": {str(h): v for h, v in sorted(st.low_variance.items())},
        "started_at": st.started_at,
        "last_time": st.last_time,
        "source_format": st.source_format,
        "latest": {k: {"value": finite_or_none(x.value), "step": x.step, "epoch": x.epoch}
                   for k, x in sorted(st.latest_values().items())},
        "log_event": st.log_event,
        "stalled_since": st.stalled_since,
        "stall_after": st.stall_after,
    }
