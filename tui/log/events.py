"""The typed events a log line can carry (built by `tui.log.parse`, folded by `tui.state`).

Events are values: nothing changes one once built. They are not `frozen` dataclasses only because
a frozen dataclass's __init__ costs four times a plain one's, and attaching to a 300 MB log builds
a hundred thousand of them (bench/bench_attach.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Event:
    """Base of every event: `t` is the line's timestamp (unix seconds) and `level` its log level."""

    t: float | None = field(default=None, kw_only=True)
    level: str | None = field(default=None, kw_only=True)


@dataclass(slots=True)
class Start(Event):
    """A process started: kind `engine` (ours), `callback` (a script with engine.stream.RunctlCallback),
    `wrapper` (pipeline started) or `trainer` (ATFT child)."""

    kind: str
    pid: int | None = None
    run_dir: str | None = None
    version: str | None = None


@dataclass(slots=True)
class Phase(Event):
    """A start-up checklist step (key from runstate.PHASES); done=False: begun, not finished."""

    key: str
    detail: str
    done: bool = True


@dataclass(slots=True)
class TrainingStart(Event):
    """`Starting training: max_epochs=N steps_per_epoch=S`."""

    max_epochs: int
    steps_per_epoch: int | None = None


@dataclass(slots=True)
class EpochStart(Event):
    """`[main] Epoch N/M` or `Epoch N/M` (1-based)."""

    epoch: int
    max_epochs: int | None


@dataclass(slots=True)
class LearningRate(Event):
    """`Learning rate: X`."""

    lr: float | None


@dataclass(slots=True)
class Progress(Event):
    """Our `[progress]` line, or a tqdm fragment of the ATFT trainer (source `tqdm`)."""

    epoch: int | None
    max_epochs: int | None
    step: int | None
    steps: int | None
    steps_per_s: float | None
    eta_s: float | None
    loss: float | None
    source: str = "engine"
    postfix: tuple[tuple[str, float | None], ...] = ()  # a tqdm bar's `name=value` postfix


@dataclass(slots=True)
class GradGroup:
    """One parameter group of a `[GRAD-MONITOR]` stats line."""

    name: str
    l2: float | None
    max: float | None
    with_grad: int
    tracked: int
    small: int
    none: int


@dataclass(slots=True)
class GradMonitor(Event):
    """`[GRAD-MONITOR] step=.. epoch=.. batch=.. group:l2=.. | ...` stats."""

    step: int
    epoch: int
    batch: int
    groups: tuple[GradGroup, ...]


@dataclass(slots=True)
class GradWarning(Event):
    """`[GRAD-MONITOR] gat: vanishing gradients (l2=.., none=../..)`."""

    group: str
    kind: str
    l2: float | None
    message: str


@dataclass(slots=True)
class TrainLoss(Event):
    """`train/total_loss: X`."""

    loss: float | None


@dataclass(slots=True)
class ValLoss(Event):
    """`val/loss: X` (source `val/loss`) or `[tag] Validation loss: X` (source = tag)."""

    loss: float | None
    source: str = "val/loss"


@dataclass(slots=True)
class HorizonMetrics(Event):
    """`Val metrics (z) h=H: ...`; variant `z`, `z,cal` or `raw` (only `z` feeds the table)."""

    h: int
    ic: float | None
    rank_ic: float | None
    scale: float | None
    mae: float | None
    rmse: float | None
    hit: float | None
    variant: str = "z"


@dataclass(slots=True)
class Sharpe(Event):
    """The summary `Sharpe: X` (the whole message; never `[VAL-DEBUG] ... Sharpe:`)."""

    value: float | None


@dataclass(slots=True)
class Metrics(Event):
    """Every metric of one epoch by its logged name: our `[metrics] epoch=E name=value ...` line
    (source `log`), or a row group of a CSVLogger metrics.csv (source `csv`, epoch made 1-based).

    `final`: the epoch's end-of-epoch metrics (a `[metrics]` line always is; a CSV epoch once it
    has an epoch-level column: a validation metric or an `*_epoch` one)."""

    epoch: int
    values: tuple[tuple[str, float | None], ...]
    source: str = "log"
    final: bool = True


@dataclass(slots=True)
class Scalars(Event):
    """Named numbers a script wrote at one point of its run, read by a metric source other than the
    runctl stream (tui.log.sources): a stdout line (`step 250: train loss 2.41, val loss 2.57`), a
    printed dict (the HF Trainer's), a tqdm postfix, an explicit preset pattern, a TensorBoard event
    file, a JSON-lines file, an HF `trainer_state.json`.

    `step`: the script's own step counter (as it counts: nanoGPT's `iter_num`, the HF global step,
    a SummaryWriter's `global_step`); `epoch`: 1-based (a 0-based epoch is made 1-based by the source;
    an HF fractional epoch 0.5 is epoch 1); either or both may be None. `source`: the source's name
    (its rank in `tui.log.sources.SOURCES` decides a name two sources carry). `kind`: "eval" (an
    evaluation: a point of the run's timeline), "train" (per-step numbers: only the latest of each
    is kept), or "auto" (told from the names: any `val`/`eval`/`test` name makes it an evaluation).
    """

    values: tuple[tuple[str, float | None], ...]
    step: int | None = None
    epoch: int | None = None
    source: str = "stdout"
    kind: str = "auto"
    epochs: int | None = None  # the M of a printed `epoch N/M` (the run's epoch budget)
    steps: int | None = None  # the M of a printed `step N/M`
    printed: bool = False  # `epoch` as the script printed it (0- or 1-based: the run's first says)


@dataclass(slots=True)
class EpochEnd(Event):
    """Our `[epoch-end] epoch=e/n train_loss=.. val_loss=.. sharpe=.. sharpe_ann=.. time=..s`."""

    epoch: int
    max_epochs: int | None
    train_loss: float | None
    val_loss: float | None
    sharpe: float | None
    sharpe_ann: float | None
    seconds: float | None


@dataclass(slots=True)
class PhaseEpoch(Event):
    """ATFT phase-training `Epoch e/n: Train Loss=.., Val Loss=.., LR=..` (an epoch's summary)."""

    epoch: int
    max_epochs: int
    train_loss: float | None
    val_loss: float | None
    lr: float | None


@dataclass(slots=True)
class PhaseValMetrics(Event):
    """ATFT phase-training `Val Metrics - Sharpe: s, IC: ic, RankIC: r, HitRate(h1): h`."""

    sharpe: float | None
    ic: float | None
    rank_ic: float | None
    hit: float | None


@dataclass(slots=True)
class LowVariance(Event):
    """`Low prediction variance for horizon H: scale_ratio=R, yhat_std=S`."""

    h: int
    ratio: float | None
    yhat_std: float | None = None


@dataclass(slots=True)
class Checkpoint(Event):
    """`Checkpoint saved: PATH (epoch=E)` or `Best model saved (tag) (val_loss: X)` (best=True)."""

    path: str | None
    epoch: int | None = None
    best: bool = False
    val_loss: float | None = None


@dataclass(slots=True)
class Complete(Event):
    """`=== Training Complete ===`."""


@dataclass(slots=True)
class BestValLoss(Event):
    """`Best validation loss: X`."""

    loss: float | None


@dataclass(slots=True)
class AchievedSharpe(Event):
    """The wrapper's `🎯 Achieved Sharpe Ratio: X`."""

    value: float | None


@dataclass(slots=True)
class WrapperResult(Event):
    """The wrapper's verdict: `... Pipeline completed successfully` or `❌ ... failed` / `Training failed:`."""

    ok: bool
    message: str


@dataclass(slots=True)
class Error(Event):
    """An ERROR-level line; fatal for our engine's `[error] ...` (the run then ends)."""

    message: str
    fatal: bool = False


@dataclass(slots=True)
class Warning(Event):  # shadows the builtin on purpose: the log level
    """A WARNING-level line that no more specific event covers."""

    message: str


@dataclass(slots=True)
class Signal(Event):
    """`[signal] SIGTERM received: ...`."""

    name: str


@dataclass(slots=True)
class Exit(Event):
    """Our `[exit] reason=finished|terminated|error status=N epochs_completed=E` (last line)."""

    reason: str
    status: int | None
    epochs_completed: int | None = None


@dataclass(slots=True)
class TracebackStart(Event):
    """`Traceback (most recent call last):`."""


@dataclass(slots=True)
class TracebackEnd(Event):
    """A traceback's last, non-indented line: the error (e.g. `RuntimeError: CUDA out of memory`)."""

    error: str


@dataclass(slots=True)
class Activity(Event):
    """Lines consumed since the last Activity, their WARNING/ERROR counts, first/last timestamps."""

    lines: int
    warnings: int = 0
    errors: int = 0
    first_t: float | None = None


# One sub-block of a HotRun: (epoch start (epoch, max_epochs, t) or None, lr, train_loss, val_loss,
# sharpe, the last validation line's t (each None when no line set it), flags (HOT_CURRENT: a line
# writes the current epoch's record, HOT_VALIDATING: a validation line, HOT_VALIDATED: a metrics or
# Sharpe line), per-horizon metrics ((h, ic, rank_ic, scale, mae, rmse, hit), first-seen order, the
# last values), horizons whose low-variance flag is cleared, checkpoint paths).
HotBlock = tuple[tuple[int, int, float] | None, float | None, float | None, float | None, float | None,
                 float | None, int, tuple[tuple[int, float | None, float | None, float | None, float | None,
                                                float | None, float | None], ...], tuple[int, ...], tuple[str, ...]]
HOT_CURRENT, HOT_VALIDATING, HOT_VALIDATED = 1, 2, 4


@dataclass(slots=True)
class HotRun(Event):
    """Consecutive epoch lines (epoch start, learning rate, losses, Sharpe, per-horizon metrics,
    checkpoints) that tui/log/_scanc.c read and folded per epoch: folding it changes a state as
    folding those lines' events one by one does (tui.state.fold._hot_run)."""

    blocks: list[HotBlock]


@dataclass(slots=True)
class Reset(Event):
    """The log file changed under its reader (`kind`: truncated, rotated, deleted; tui.log.tail):
    what was read before it stays in the state, the change is recorded (`log_event`)."""

    kind: str = "truncated"
