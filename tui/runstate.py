"""The run state: what a log says about a run, as plain data (no I/O, no Textual).

`tui.logparse` turns lines into events; `RunState.apply(event)` folds them in.
`RunState.to_json()` is the stable JSON documented in docs/cli.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from tui import logparse as lp

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
    sharpe_ann: float | None = None  # our [epoch-end] line's annualised Sharpe
    seconds: float | None = None  # our [epoch-end] line's epoch duration


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
    attempt_starts: list[str] = field(default_factory=list)  # Start kinds seen in this attempt
    grad_l2: dict[str, float | None] = field(default_factory=dict)  # group -> latest grad L2 norm
    last_warning: str | None = None  # latest WARNING line no specific event covers
    last_error: str | None = None  # latest ERROR line (fatal or not)

    def apply(self, event: lp.Event) -> None:
        """Fold one `tui.logparse` event into the state (events of unknown type are ignored)."""
        handler = _HANDLERS.get(type(event))
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


# ---------------------------------------------------------------- the reducer

GRAD_WARNINGS_MAX = 50
CHECKPOINTS_MAX = 50
TERMINAL = ("finished", "crashed", "killed")


def _current(st: RunState) -> EpochRecord | None:
    """The record of the epoch being run (None before the first epoch start)."""
    return st.epoch_record(st.epoch) if st.epoch is not None else None


def _validating(st: RunState, t: float | None) -> EpochRecord | None:
    """A validation line: the current epoch's record; lifecycle -> validating (a crash that the log
    outlives, e.g. a caught traceback, is not the end)."""
    if st.state in ("launching", "initializing", "training", "crashed"):
        st.state = "validating"
        st.error = None
    rec = _current(st)
    if rec is not None and t is not None:
        rec.ended_at = t
    return rec


def _start(st: RunState, ev: lp.Start) -> None:
    if ev.kind in st.attempt_starts:
        st.attempts += 1
        st.attempt_starts = [ev.kind]
        st.error = None
        st.exit_reason = None
        st.exit_status = None
        st.progress = Progress()
    else:
        st.attempt_starts.append(ev.kind)
    st.state = "initializing"
    st.source_format = "engine" if ev.kind == "engine" else "atft"
    if ev.pid is not None:
        st.pid = ev.pid
    if st.run is None and ev.run_dir and ev.run_dir != "-":
        st.run = ev.run_dir.rstrip("/").rsplit("/", 1)[-1]


def _phase(st: RunState, ev: lp.Phase) -> None:
    st.phase_details[ev.key] = ev.detail
    if ev.done:
        st.phases[ev.key] = True


def _epoch_start(st: RunState, ev: lp.EpochStart) -> None:
    e = ev.epoch
    if st.epochs and st.epochs[-1].epoch >= e:  # a re-run replaces e and drops later ones
        st.epochs = [r for r in st.epochs if r.epoch < e]
    st.epoch = e
    if ev.max_epochs is not None:
        st.max_epochs = ev.max_epochs
    rec = st.epoch_record(e)
    rec.started_at = ev.t
    st.state = "training"
    st.error = None
    st.progress = Progress(epoch=e, step=0)
    for key in st.phase_details:
        st.phases[key] = True  # training began: every begun start-up step is done
    st.phases["first_epoch"] = True
    st.phase_details.setdefault("first_epoch", f"Epoch {e}/{ev.max_epochs}")


def _train_loss(st: RunState, ev: lp.TrainLoss) -> None:
    rec = _current(st)
    if rec is not None:
        rec.train_loss = ev.loss


def _val_loss(st: RunState, ev: lp.ValLoss) -> None:
    if ev.source not in ("val/loss", "main"):
        return  # e.g. the SWA model's loss: not the epoch's
    rec = _validating(st, ev.t)
    if rec is not None:
        rec.val_loss = ev.loss


def _metrics(st: RunState, ev: lp.HorizonMetrics) -> None:
    if ev.variant != "z":
        return  # (z, CAL) and (raw) are other views of the same predictions
    rec = _validating(st, ev.t)
    if rec is not None:
        rec.horizons[ev.h] = HorizonMetrics(ev.ic, ev.rank_ic, ev.scale, ev.mae, ev.rmse, ev.hit)
        rec.validated = True
    if ev.scale is not None and ev.scale >= 0.005:
        st.low_variance.pop(ev.h, None)


def _sharpe(st: RunState, ev: lp.Sharpe) -> None:
    rec = _validating(st, ev.t)
    if rec is not None:
        rec.sharpe = ev.value
        rec.validated = True


def _epoch_end(st: RunState, ev: lp.EpochEnd) -> None:
    rec = st.epoch_record(ev.epoch)
    rec.train_loss, rec.val_loss, rec.sharpe = ev.train_loss, ev.val_loss, ev.sharpe
    rec.sharpe_ann, rec.seconds = ev.sharpe_ann, ev.seconds
    rec.ended_at = ev.t if ev.t is not None else rec.ended_at
    rec.validated = True
    if ev.max_epochs is not None:
        st.max_epochs = rec.max_epochs = ev.max_epochs


def _phase_epoch(st: RunState, ev: lp.PhaseEpoch) -> None:
    prev = st.epochs[-1].ended_at if st.epochs else None
    if st.epochs and st.epochs[-1].epoch >= ev.epoch:
        st.epochs = [r for r in st.epochs if r.epoch < ev.epoch]
    st.epoch, st.max_epochs = ev.epoch, ev.max_epochs
    rec = st.epoch_record(ev.epoch)
    rec.started_at, rec.ended_at = prev, ev.t
    rec.train_loss, rec.val_loss, rec.lr = ev.train_loss, ev.val_loss, ev.lr
    st.phases["first_epoch"] = True
    if st.state not in ("finished", "killed"):
        st.state = "validating"


def _phase_val(st: RunState, ev: lp.PhaseValMetrics) -> None:
    rec = _validating(st, ev.t)
    if rec is not None:
        rec.sharpe = ev.sharpe
        rec.validated = True


def _lr(st: RunState, ev: lp.LearningRate) -> None:
    rec = _current(st)
    if rec is not None:
        rec.lr = ev.lr


def _progress(st: RunState, ev: lp.Progress) -> None:
    st.progress = Progress(ev.epoch, ev.step, ev.steps, ev.steps_per_s, ev.eta_s, ev.loss)


def _grad_monitor(st: RunState, ev: lp.GradMonitor) -> None:
    st.grad_l2 = {g.name: g.l2 for g in ev.groups}


def _grad_warning(st: RunState, ev: lp.GradWarning) -> None:
    """One entry per (group, kind), in first-seen order, holding the latest text."""
    key = f"{ev.group}: {ev.kind} "
    for i, text in enumerate(st.grad_warnings):
        if text.startswith(key):
            st.grad_warnings[i] = ev.message
            return
    st.grad_warnings.append(ev.message)
    del st.grad_warnings[:-GRAD_WARNINGS_MAX]


def _low_variance(st: RunState, ev: lp.LowVariance) -> None:
    st.low_variance[ev.h] = ev.ratio if ev.ratio is not None else 0.0


def _checkpoint(st: RunState, ev: lp.Checkpoint) -> None:
    if ev.path and ev.path not in st.checkpoints:
        st.checkpoints.append(ev.path)
        del st.checkpoints[:-CHECKPOINTS_MAX]
    if ev.best and ev.val_loss is not None:
        st.best_val_loss = ev.val_loss


def _complete(st: RunState, ev: lp.Complete) -> None:
    st.state = "finished"


def _best(st: RunState, ev: lp.BestValLoss) -> None:
    st.best_val_loss = ev.loss


def _achieved(st: RunState, ev: lp.AchievedSharpe) -> None:
    st.achieved_sharpe = ev.value


def _wrapper(st: RunState, ev: lp.WrapperResult) -> None:
    if ev.ok:
        st.state = "finished"
    else:
        st.state = "crashed"
        st.error = st.error or ev.message
        st.last_error = ev.message


def _error(st: RunState, ev: lp.Error) -> None:
    st.last_error = ev.message
    if ev.fatal:
        st.state = "crashed"
        st.error = ev.message


def _warning(st: RunState, ev: lp.Warning) -> None:
    st.last_warning = ev.message


def _signal(st: RunState, ev: lp.Signal) -> None:
    st.state = "killed"


def _exit(st: RunState, ev: lp.Exit) -> None:
    st.exit_reason, st.exit_status = ev.reason, ev.status
    if ev.reason == "finished":
        st.state = "finished"
    elif ev.reason == "terminated":
        st.state = "killed"
    else:
        st.state = "crashed"
        st.error = st.error or f"[exit] reason={ev.reason} status={ev.status}"


def _tb_start(st: RunState, ev: lp.TracebackStart) -> None:
    st.state = "crashed"
    st.error = st.error or lp.TRACEBACK + ":"


def _tb_end(st: RunState, ev: lp.TracebackEnd) -> None:
    st.state = "crashed"
    st.error = ev.error
    st.last_error = ev.error


def _training_start(st: RunState, ev: lp.TrainingStart) -> None:
    st.max_epochs = ev.max_epochs


def _activity(st: RunState, ev: lp.Activity) -> None:
    st.lines += ev.lines
    st.warnings += ev.warnings
    st.errors += ev.errors
    if st.started_at is None and ev.first_t is not None:
        st.started_at = ev.first_t
    if ev.t is not None:
        st.last_time = ev.t
    if st.state == "launching" and ev.lines:
        st.state = "initializing"


def _reset(st: RunState, ev: lp.Reset) -> None:
    run, pid = st.run, st.pid
    st.__init__()  # type: ignore[misc]
    st.run, st.pid = run, pid


_HANDLERS: dict[type, Any] = {
    lp.Start: _start, lp.Phase: _phase, lp.EpochStart: _epoch_start, lp.TrainLoss: _train_loss,
    lp.ValLoss: _val_loss, lp.HorizonMetrics: _metrics, lp.Sharpe: _sharpe, lp.EpochEnd: _epoch_end,
    lp.PhaseEpoch: _phase_epoch, lp.PhaseValMetrics: _phase_val, lp.LearningRate: _lr,
    lp.Progress: _progress, lp.GradMonitor: _grad_monitor, lp.GradWarning: _grad_warning,
    lp.LowVariance: _low_variance, lp.Checkpoint: _checkpoint, lp.Complete: _complete,
    lp.BestValLoss: _best, lp.AchievedSharpe: _achieved, lp.WrapperResult: _wrapper,
    lp.Error: _error, lp.Warning: _warning, lp.Signal: _signal, lp.Exit: _exit,
    lp.TracebackStart: _tb_start, lp.TracebackEnd: _tb_end, lp.TrainingStart: _training_start,
    lp.Activity: _activity, lp.Reset: _reset,
}
