"""The run state: what a log says about a run, as plain data (no I/O, no Textual).

`tui.logparse` turns lines into events; `RunState.apply(event)` folds them in (the reducer,
`tui.runfold`). `RunState.to_json()` is the stable JSON documented in docs/cli.md (`tui.runjson`).
The records a state is made of are `tui.runrecords`; every public name of those three modules is
re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tui import logparse as lp
from tui.runfold import CHECKPOINTS_MAX, GRAD_WARNINGS_MAX, HANDLERS, TERMINAL
from tui.runjson import state_json
from tui.runrecords import (
    HORIZONS,
    LIFECYCLE,
    PHASES,
    EpochRecord,
    HorizonMetrics,
    Progress,
    finite_or_none,
)

__all__ = [
    "CHECKPOINTS_MAX", "GRAD_WARNINGS_MAX", "HANDLERS", "HORIZONS", "LIFECYCLE", "PHASES", "TERMINAL",
    "EpochRecord", "HorizonMetrics", "Progress", "RunState", "finite_or_none", "state_json",
]


@dataclass
class RunState:
    """Everything known about a run from its log (and, for the controller, its manifest)."""

    run: str | None = None
    pid: int | None = None
    state: str = "launching"
    epoch: int | None = None  # current (or last) epoch, 1-based
    max_epochs: int | None = None
    phases: dict[str, bool] = field(default_factory=lambda: {k: False for k, _ in PHASES})
    phase_details: dict[str, str] = field(default_factory=dict)  # key -> the line's detail text
    epochs: list[EpochRecord] = field(default_factory=list)
    progress: Progress = field(default_factory=Progress)
    error: str | None = None  # the error line for a crash
    exit_reason: str | None = None  # from our engine's [exit] line
    exit_status: int | None = None
    started_at: float | None = None  # first timestamp seen
    last_time: float | None = None  # latest timestamp seen
    warnings: int = 0
    errors: int = 0
    grad_warnings: list[str] = field(default_factory=list)  # latest first-seen order, bounded
    low_variance: dict[int, float] = field(default_factory=dict)  # horizon -> scale_ratio
    achieved_sharpe: float | None = None  # wrapper's "Achieved Sharpe Ratio"
    best_val_loss: float | None = None
    attempts: int = 1  # wrapper retries / resumes seen in one log
    lines: int = 0  # lines consumed
    source_format: str | None = None  # "engine" | "atft" | None
    checkpoints: list[str] = field(default_factory=list)
    attempt_starts: list[str] = field(default_factory=list)  # Start kinds seen in this attempt
    grad_l2: dict[str, float | None] = field(default_factory=dict)  # group -> latest grad L2 norm
    last_warning: str | None = None  # latest WARNING line no specific event covers
    last_error: str | None = None  # latest ERROR line (fatal or not)

    def apply(self, event: lp.Event) -> None:
        """Fold one `tui.logparse` event into the state (events of unknown type are ignored)."""
        handler = HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def epoch_record(self, epoch: int) -> EpochRecord:
        """The record for `epoch`, created if missing (timeline kept sorted)."""
        if self.epochs and self.epochs[-1].epoch == epoch:
            return self.epochs[-1]  # the common case, O(1) on long runs
        for rec in self.epochs:
            if rec.epoch == epoch:
                return rec
        rec = EpochRecord(epoch=epoch, max_epochs=self.max_epochs)
        self.epochs.append(rec)
        if len(self.epochs) > 1 and self.epochs[-2].epoch > epoch:
            self.epochs.sort(key=lambda r: r.epoch)
        return rec

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape of docs/cli.md (without controller-only keys)."""
        return state_json(self)
