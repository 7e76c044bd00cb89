"""The plain records a run state is made of: an epoch of the timeline, its per-horizon metrics, the
latest progress line; the lifecycle and start-up checklist vocabularies. No I/O, no Textual.

`RunData` is the state's fields; `tui.state.run.RunState` adds the fold (`tui.state.fold`) and
its JSON (`tui.state.serialize`), which read and write a `RunData`.
"""

from __future__ import annotations

import bisect
import copy
import itertools
import math
from dataclasses import dataclass, field
from typing import Self

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


@dataclass(slots=True)
class HorizonMetrics:
    """Validation metrics at one horizon for one epoch (None: not reported or nan)."""

    ic: float | None = None
    rank_ic: float | None = None
    scale: float | None = None
    mae: float | None = None
    rmse: float | None = None
    hit: float | None = None


@dataclass(slots=True)
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
    sharpe_ann: float | None = None  # our [epoch-end] line's annualised Sharpe
    seconds: float | None = None  # our [epoch-end] line's epoch duration
    metrics: dict[str, float | None] = field(default_factory=dict)  # every metric by its logged name
    metrics_final: bool = False  # the epoch's end-of-epoch metrics arrived ([metrics] line, CSV)
    gen: int = field(default=0, compare=False, repr=False)  # the state generation that may write it

    def unshared(self, gen: int) -> EpochRecord:
        """A copy to write to (its dicts copied too; the HorizonMetrics in them never change)."""
        out = copy.copy(self)
        out.horizons, out.metrics, out.gen = dict(self.horizons), dict(self.metrics), gen
        return out


@dataclass(slots=True)
class Progress:
    """The latest in-epoch progress line."""

    epoch: int | None = None
    step: int | None = None
    steps: int | None = None
    steps_per_s: float | None = None
    eta_s: float | None = None
    loss: float | None = None


@dataclass
class RunData:
    """The fields of a run state: everything known about a run from its log (and, for the
    controller, its manifest). `tui.state.run.RunState` adds the fold and the JSON."""

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
    source_format: str | None = None  # "engine" | "callback" | "atft" | "csv" | None
    checkpoints: list[str] = field(default_factory=list)
    attempt_starts: list[str] = field(default_factory=list)  # Start kinds seen in this attempt
    grad_l2: dict[str, float | None] = field(default_factory=dict)  # group -> latest grad L2 norm
    last_warning: str | None = None  # latest WARNING line no specific event covers
    last_error: str | None = None  # latest ERROR line (fatal or not)
    gen: int = field(default=0, compare=False, repr=False)  # records of an older one are shared

    def epoch_record(self, epoch: int) -> EpochRecord:
        """The record for `epoch` to write to, created if missing (timeline kept sorted); one that
        a snapshot shares is replaced by a copy first."""
        epochs = self.epochs
        if not epochs or epochs[-1].epoch < epoch:  # the common cases, O(1) on long runs: the
            rec = EpochRecord(epoch=epoch, max_epochs=self.max_epochs, gen=self.gen)  # next epoch,
            epochs.append(rec)  # or the current one (below)
            return rec
        i = len(epochs) - 1
        if epochs[i].epoch != epoch:
            i = bisect.bisect_left(epochs, epoch, key=lambda r: r.epoch)  # sorted, one per epoch
            if epochs[i].epoch != epoch:
                epochs.insert(i, EpochRecord(epoch=epoch, max_epochs=self.max_epochs, gen=self.gen))
                return epochs[i]
        rec = epochs[i]
        if rec.gen != self.gen:
            rec = epochs[i] = rec.unshared(self.gen)
        return rec

    def snapshot(self) -> Self:
        """A copy that nothing folded into this state later changes, nor folding into the copy
        changes this one, in time linear in the epochs' count but not their contents: the epoch
        records are shared until either side writes one (`epoch_record` copies it first). What the
        TUI and `runctl status --watch` hand on every poll (a deep copy costs ~50 us an epoch)."""
        out = copy.copy(self)
        out.phases, out.phase_details = dict(self.phases), dict(self.phase_details)
        out.epochs, out.progress = list(self.epochs), copy.copy(self.progress)
        out.grad_warnings, out.low_variance = list(self.grad_warnings), dict(self.low_variance)
        out.checkpoints, out.attempt_starts = list(self.checkpoints), list(self.attempt_starts)
        out.grad_l2 = dict(self.grad_l2)
        self.gen = out.gen = next(_GENERATIONS)
        return out


_GENERATIONS = itertools.count(1)  # a fresh one per snapshot: no two states write the same record
