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

# Lifecycle values, in the order a healthy run goes through them; `stalled` (alive but silent for
# its stall_after, tui.state.stall) is set by the controller, never by the fold, and clears at the
# run's next output.
LIFECYCLE = ("launching", "initializing", "training", "validating", "stalled", "finished", "crashed",
             "killed")

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

# A preset command's checklist (any training script): its own life, not the engine's data pipeline.
COMMAND_PHASES: tuple[tuple[str, str], ...] = (
    ("started", "Process started"),
    ("first_output", "First output"),
    ("first_step", "First step"),
    ("first_eval", "First evaluation"),
    ("checkpoint", "Checkpoint saved"),
)

HORIZONS = (1, 5, 10, 20)
STEP_TIMES_MAX = 32  # a step run's pace: over its latest this many (time, step) samples


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
    """One point of the timeline: an epoch (1-based), or, for a run without epochs
    (`RunData.axis == "step"`), an evaluation at step `epoch` (then `step == epoch`)."""

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
    step: int | None = None  # the script's step counter at this point, where a source said it
    ranks: dict[str, int] | None = None  # name -> rank of the source its value came from (None:
    # every value from the runctl stream, the best rank); tui.log.sources.SOURCES' order

    def unshared(self, gen: int) -> EpochRecord:
        """A copy to write to (its dicts copied too; the HorizonMetrics in them never change)."""
        out = copy.copy(self)
        out.horizons, out.metrics, out.gen = dict(self.horizons), dict(self.metrics), gen
        if self.ranks is not None:
            out.ranks = dict(self.ranks)
        return out


@dataclass(slots=True)
class Progress:
    """The latest in-epoch progress line (a step run's: its latest step)."""

    epoch: int | None = None
    step: int | None = None
    steps: int | None = None
    steps_per_s: float | None = None
    eta_s: float | None = None
    loss: float | None = None
    postfix: tuple[tuple[str, float | None], ...] = ()  # a tqdm bar's `name=value` postfix


BAR_RANK = 1_000  # a progress bar's postfix values: after every declared source's


@dataclass(frozen=True, slots=True)
class Scalar:
    """A metric's latest value, where it was (step, 1-based epoch) and the rank of its source."""

    value: float | None
    step: int | None = None
    epoch: int | None = None
    rank: int = 0
    t: float | None = None


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
    log_event: str | None = None  # the log changed under its reader: truncated | rotated | deleted
    resume_from: str | None = None  # the checkpoint a resume would continue from (set by the controller)
    resume_blocked: str | None = None  # why a resume would not help (set by the controller)
    gen: int = field(default=0, compare=False, repr=False)  # records of an older one are shared
    axis: str = "epoch"  # the timeline's points: epochs, or steps for a run that has no epochs
    max_steps: int | None = None  # a step run's budget (a printed `step N/M`, the preset's max_steps)
    latest: dict[str, Scalar] = field(default_factory=dict)  # every metric's latest value, any source
    epoch_base: int | None = None  # printed epochs: 0- or 1-based (the run's first one says)
    kind: str | None = None  # the manifest's: "engine" (the bundled engine) | "command" | None
    stalled_since: float | None = None  # set by the controller: state `stalled`, silent since then
    stall_after: float | None = None  # set with it: the silence (seconds) that made it stalled
    checkpoint_file: str | None = None  # set by the controller: a command's newest complete
    # checkpoint as its script writes it (`checkpoint_files`), for a log that names none
    step_times: list[tuple[float, int]] = field(default_factory=list, compare=False, repr=False)
    # (when, step) of a step run's latest steps, when from the log's timestamps, else when read
    # (`read_at`): its pace (`step_rate`); the last STEP_TIMES_MAX, one per distinct time
    pace_source: str | None = field(default=None, compare=False, repr=False)  # whose steps they are
    read_at: float | None = field(default=None, compare=False, repr=False)  # when the follower
    # read the bytes being folded (tui.state.follow): the time of a line that carries none

    @property
    def engine_phases(self) -> bool:
        """The start-up checklist is the engine's (the bundled engine, the original pipeline); any
        other script gets `COMMAND_PHASES` (a log of no known kind or format yet: the engine's)."""
        return (self.kind == "engine" or self.source_format in ("engine", "atft")
                or self.kind is None and self.source_format is None)

    def checklist(self) -> list[tuple[str, str, bool, str]]:
        """(key, label, done, detail) of each start-up phase of this run's kind."""
        if self.engine_phases:
            return [(k, label, self.phases.get(k, False), self.phase_details.get(k, ""))
                    for k, label in PHASES]
        evals = sum(1 for r in self.epochs if r.validated)
        stepped = self.progress.step is not None or bool(self.epochs) or bool(self.latest)
        where = (f"{self.axis} {self.epoch}" if self.epoch is not None
                 else f"step {self.progress.step}" if self.progress.step is not None else "")
        done = {
            "started": (self.started_at is not None or self.lines > 0 or self.state != "launching", ""),
            "first_output": (self.lines > 0, f"{self.lines} lines" if self.lines else ""),
            "first_step": (stepped, where if stepped else ""),
            "first_eval": (evals > 0, f"{evals} so far" if evals else ""),
            "checkpoint": (bool(self.checkpoints) or self.checkpoint_file is not None,
                           self.checkpoints[-1] if self.checkpoints else self.checkpoint_file or ""),
        }
        return [(k, label, *done[k]) for k, label in COMMAND_PHASES]

    def latest_values(self) -> dict[str, Scalar]:
        """Every metric's latest value (`latest`), and the current progress bar's postfix values
        (a tqdm bar's `loss=0.31, acc=0.9`) for the names no source gave: a bar is read as it is
        now, its earlier draws are not kept (the fast attach path keeps a read's last bar only)."""
        bar = self.progress.postfix
        if not bar:
            return self.latest
        out = dict(self.latest)
        for k, v in bar:
            if k not in out:
                out[k] = Scalar(v, self.progress.step, self.progress.epoch, BAR_RANK)
        return out

    def step_rate(self) -> float | None:
        """A step run's steps a second over its latest steps (`step_times`; None: not two
        distinct times yet, e.g. a log read once whose lines carry no timestamps)."""
        times = self.step_times
        if len(times) < 2:
            return None
        (t0, s0), (t1, s1) = times[0], times[-1]
        if t1 <= t0 or s1 <= s0:
            return None
        return (s1 - s0) / (t1 - t0)

    @property
    def budget(self) -> int | None:
        """The run's budget on its axis: max_epochs, or max_steps for a run counted in steps."""
        return self.max_steps if self.axis == "step" else self.max_epochs

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
        out.grad_l2, out.latest = dict(self.grad_l2), dict(self.latest)
        out.step_times = list(self.step_times)
        self.gen = out.gen = next(_GENERATIONS)
        return out


_GENERATIONS = itertools.count(1)  # a fresh one per snapshot: no two states write the same record
