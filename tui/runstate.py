"""The run state: what a log says about a run, as plain data (no I/O, no Textual).

`tui.logparse` turns lines into events; `RunState.apply(event)` folds them in.
`RunState.to_json()` is the stable JSON documented in docs/cli.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# Lifecycle values, in the order a healthy run goes through them.
LIFECYCLE = ("launching", "initializing", "training", "validating", "finished", "crashed", "killed")

# The seed's "Initialization Phase" checklist: (key, label).
PHASES: tuple[tuple[str, str], ...] = (
    ("device", "Device detected"),
    ("hidden_size", "Model hidden_size configured"),
    ("files", "Data files found"),
    ("scaler", "OnlineRobustScaler fitted"),
    ("date_filter", "Global date filter applied"),
    ("loaders", "Data loaders created"),
    ("first_epoch", "First epoch started"),
)

HORIZONS = (1, 5, 10, 20)


def finite_or_none(x: float | None) -> float | None:
    """nan/inf -> None, so JSON never carries NaN."""
    if x is None or not math.isfinite(x):
        return None
    return x


@dataclass
class HorizonMetrics:
    """Validation metrics at one horizon for one epoch (None: not reported or nan)."""

    ic: float | None = None
    rank_ic: float | None = None
    scale: float | None = None
    mae: float | None = None
    rmse: float | None = None
    hit: float | None = None


@dataclass
class EpochRecord:
    """One epoch of the timeline."""

    epoch: int
    max_epochs: int | None = None
    started_at: float | None = None  # unix seconds, from the log line's timestamp
    ended_at: float | None = None  # time of the epoch's last validation line
    train_loss: float | None = None
    val_loss: float | None = None
    sharpe: float | None = None
    horizons: dict[int, HorizonMetrics] = field(default_factory=dict)
    lr: float | None = None
    validated: bool = False  # at least one per-horizon metrics line or Sharpe seen


@dataclass
class Progress:
    """The latest in-epoch progress line."""

    epoch: int | None = None
    step: int | None = None
    steps: int | None = None
    steps_per_s: float | None = None
    eta_s: float | None = None
    loss: float | None = None


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

    def epoch_record(self, epoch: int) -> EpochRecord:
        """The record for `epoch`, created if missing (timeline kept sorted)."""
        for rec in self.epochs:
            if rec.epoch == epoch:
                return rec
        rec = EpochRecord(epoch=epoch, max_epochs=self.max_epochs)
        self.epochs.append(rec)
        self.epochs.sort(key=lambda r: r.epoch)
        return rec

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape of docs/cli.md (without controller-only keys)."""
        return {
            "run": self.run,
            "pid": self.pid,
            "state": self.state,
            "epoch": self.epoch,
            "max_epochs": self.max_epochs,
            "phases": dict(self.phases),
            "progress": {
                "epoch": self.progress.epoch,
                "step": self.progress.step,
                "steps": self.progress.steps,
                "steps_per_s": finite_or_none(self.progress.steps_per_s),
                "eta_s": finite_or_none(self.progress.eta_s),
                "loss": finite_or_none(self.progress.loss),
            },
            "epochs": [
                {
                    "epoch": r.epoch,
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
                }
                for r in self.epochs
            ],
            "error": self.error,
            "exit_reason": self.exit_reason,
            "exit_status": self.exit_status,
            "warnings": self.warnings,
            "errors": self.errors,
            "grad_warnings": list(self.grad_warnings),
            "low_variance": {str(h): v for h, v in sorted(self.low_variance.items())},
            "started_at": self.started_at,
            "last_time": self.last_time,
        }
