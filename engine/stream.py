"""`RunctlCallback`: runctl's log stream from any Lightning training script (docs/instrument.md).

Add the callback to a `Trainer` and the run writes the stream runctl follows (docs/log-format.md):
epoch starts, progress, losses, one `[metrics]` line per epoch with every epoch-level metric,
epoch summaries, checkpoints (one per epoch, `last.ckpt`, `interrupted.ckpt` on SIGTERM) and a
final `[exit]` line. `run_fit` runs `trainer.fit` and returns the exit status that line states.

The bundled engine uses this same callback (`engine.callbacks.EngineStream` adds its per-horizon
lines). This module imports only the standard library, torch, Lightning, `engine.logstream` and
`engine.runfiles` (the exit record): nothing of the engine's model, data, losses or metrics.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from engine import __version__, runfiles
from engine.logstream import (
    EPOCH_RULE,
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_FINISHED,
    EXIT_REQUEUED,
    EXIT_TERMINATED,
    configure_logger,
    fnum,
    hms,
)

__all__ = [
    "EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_FINISHED", "EXIT_REQUEUED", "EXIT_TERMINATED", "LOGGER_NAME",
    "RUN_DIR_ENV", "DiskFull", "Requeue", "RunctlCallback", "metric_name", "metrics_line", "run_fit",
]

RUN_DIR_ENV = "RUNCTL_RUN_DIR"  # runctl sets it to the run's directory
SIGNAL_BEFORE_ENV = "RUNCTL_SLURM_SIGNAL_BEFORE"  # runctl's batch script: stop this many s before the end
REQUEUE_FLAG_ENV = "RUNCTL_REQUEUE_FLAG"  # runctl's shim writes this file when SIGUSR1 arrives


def _slurm_end_time(job: str) -> float | None:
    """The job's end (unix seconds) as `squeue` tells it; None if it cannot say."""
    try:
        r = subprocess.run(["squeue", "-h", "-j", job, "-o", "%e"], capture_output=True, text=True, timeout=30)
        return time.mktime(time.strptime(r.stdout.strip(), "%Y-%m-%dT%H:%M:%S"))
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None


class Requeue(Exception):  # noqa: N818 - it names what happens, not an error
    """SIGUSR1 in a Slurm job: its time limit is near (sbatch --signal); stop, checkpoint, requeue."""


class DiskFull(OSError):  # noqa: N818 - it names what happened
    """A write of the run (a checkpoint, metrics.csv) found no space left: `[exit] reason=disk_full`."""
LOGGER_NAME = "runctl"  # the logger field of the callback's lines in a user's script
INTERRUPTED = "interrupted.ckpt"
LAST = "last.ckpt"

_NAME_BAD = re.compile(r"[^A-Za-z0-9_./-]")
# `ckpt_path` values Lightning resolves itself (not a local file to check)
_LIGHTNING_CKPT_WORDS = ("last", "best", "hpc", "registry")


def metric_name(name: str) -> str:
    """A metric name as the `[metrics]` line writes it: characters outside `[A-Za-z0-9_./-]` -> `_`."""
    return _NAME_BAD.sub("_", name) or "_"


def metrics_line(epoch: int, values: Mapping[str, float]) -> str:
    """`[metrics] epoch={e} name=value ...`: names sanitised and sorted, values `format(v, '.6g')`."""
    clean = {metric_name(k): float(v) for k, v in values.items()}
    clean.pop("epoch", None)  # the line's own field
    body = " ".join(f"{k}={format(clean[k], '.6g')}" for k in sorted(clean))
    return f"[metrics] epoch={epoch}" + (f" {body}" if body else "")


def scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The one-number entries of `trainer.callback_metrics`, without the per-step `*_step` copies."""
    out: dict[str, float] = {}
    for k, v in metrics.items():
        if k.endswith("_step"):
            continue
        if isinstance(v, torch.Tensor):
            if v.numel() == 1:
                out[k] = float(v.detach().float())
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out[k] = float(v)
    return out


def _callbacks(trainer: L.Trainer) -> list[L.Callback]:
    return trainer.callbacks  # type: ignore[attr-defined]


def _fitting(trainer: L.Trainer) -> bool:
    return trainer.state.fn == TrainerFn.FITTING


def _count(n: float) -> str:
    return str(int(n)) if math.isfinite(n) else "?"


def _default_logger() -> logging.Logger:
    log = logging.getLogger(LOGGER_NAME)
    return log if log.handlers else configure_logger(LOGGER_NAME)


def _is_lightning_default(cb: ModelCheckpoint) -> bool:
    """A ModelCheckpoint left entirely at its defaults: what Lightning adds when none is given."""
    if type(cb) is not ModelCheckpoint:
        return False
    ref = ModelCheckpoint()
    keys = ("dirpath", "filename", "monitor", "save_last", "save_top_k", "save_weights_only",
            "_every_n_epochs", "_every_n_train_steps", "_train_time_interval", "_save_on_train_epoch_end")
    return all(getattr(cb, k, None) == getattr(ref, k, None) for k in keys)


class RunctlCallback(L.Callback):
    """Writes runctl's log stream, per-epoch checkpoints and the SIGTERM checkpoint of a fit.

    Args:
        run_dir: where `checkpoints/` goes; default: `$RUNCTL_RUN_DIR`, else the Trainer's
            `default_root_dir`.
        progress_every: a `[progress]` line every this many training steps (and at the last).
        checkpoints: write `epoch=NNN.ckpt` + `last.ckpt` after each epoch and `interrupted.ckpt`
            on SIGTERM, in `{run_dir}/checkpoints`. A ModelCheckpoint you configured yourself
            keeps saving instead (its files are announced; no duplicates are written); the
            all-defaults one Lightning adds on its own is switched off.
        logger: the logger to write through; default: the `runctl` logger on stdout.
        announce: write the `runctl callback ... starting` line when fit starts.

    After `trainer.fit`, `reason` / `status` / `epochs_completed` say how the run ended.
    Subclasses add lines through `log_validation` and `after_epoch`, and may override the
    numbers (`train_loss`, `val_loss`, `sharpe`, `epoch_metrics`) and error text.
    """

    exit_writer = "callback"  # who wrote the exit record ($RUNCTL_EXIT_FILE)

    def __init__(self, run_dir: str | os.PathLike[str] | None = None, progress_every: int = 50,
                 checkpoints: bool = True, logger: logging.Logger | None = None, announce: bool = True) -> None:
        if isinstance(progress_every, bool) or not isinstance(progress_every, int) or progress_every < 1:
            raise ValueError(f"RunctlCallback: progress_every must be a positive integer, got {progress_every!r}")
        if logger is not None and not isinstance(logger, logging.Logger):
            raise TypeError(f"RunctlCallback: logger must be a logging.Logger, got {type(logger).__name__}")
        self._run_dir_arg = run_dir
        self.progress_every = progress_every
        self.checkpoints = bool(checkpoints)
        self.announce = announce
        # not `self.log`: Lightning binds the module's `log` method onto every callback
        self.stream_log = logger if logger is not None else _default_logger()
        self.run_dir: Path | None = None
        self.ckpt_dir: Path | None = None
        self._reset()

    def _reset(self) -> None:
        # how the fit ended (None while it runs)
        self.reason: str | None = None
        self.status: int | None = None
        self.error: str | None = None  # the `[error]` text of a fit that failed
        # carried in checkpoints, so a resumed process continues the count
        self.epochs_completed = 0
        self.best_val_loss = math.inf
        # this process
        self._training = False  # the training loop has started: a checkpoint means something
        self._epoch = 0  # the epoch (1-based) whose start lines this process wrote
        self._validated = 0  # the epoch whose end-of-epoch validation this process reported
        self._improved = False
        self._t0 = time.monotonic()
        self._steps = 0
        self._loss_sum: float | torch.Tensor = 0.0
        self._loss_n = 0
        self._train_loss = math.nan
        self._val_loss = math.nan
        self._foreign: list[ModelCheckpoint] = []
        self._usr1 = False  # SIGUSR1 arrived (a Slurm job near its time limit)
        self._usr1_prev: Any = None
        self._deadline: float | None = None  # stop and requeue at this unix time (Slurm job)
        self._flag: Path | None = None  # runctl's shim writes it when SIGUSR1 arrives

    # ------------------------------------------------------------------ numbers (overridable)
    def train_loss(self, trainer: L.Trainer, pl_module: L.LightningModule) -> float:
        """The epoch's training loss: the mean of the training steps' losses (across ranks)."""
        total, n = float(self._loss_sum), self._loss_n
        if trainer.world_size > 1:
            t = torch.tensor([total, float(n)], device=pl_module.device, dtype=torch.float64)
            t = trainer.strategy.reduce(t, reduce_op="sum")
            total, n = float(t[0]), int(t[1])
        return total / n if n else math.nan

    def val_loss(self, trainer: L.Trainer, pl_module: L.LightningModule) -> float:
        """The epoch's validation loss: `val_loss` or `val/loss` as the module logged it."""
        scalars = scalar_metrics(trainer.callback_metrics)
        for key in ("val_loss", "val/loss"):
            if key in scalars:
                return scalars[key]
        return math.nan

    def sharpe(self, trainer: L.Trainer, pl_module: L.LightningModule) -> tuple[float, float]:
        """(sharpe, sharpe_ann) for the `[epoch-end]` line: logged `sharpe`/`sharpe_ann`, else nan."""
        scalars = scalar_metrics(trainer.callback_metrics)
        return scalars.get("sharpe", math.nan), scalars.get("sharpe_ann", math.nan)

    def epoch_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, float]:
        """The `[metrics]` line's values (train_loss and val_loss are added to them)."""
        return scalar_metrics(trainer.callback_metrics)

    def error_message(self, exception: BaseException) -> str:
        """The `[error]` line's text (after `[error] `) for an exception that ended the fit."""
        if isinstance(exception, KeyboardInterrupt):
            return "interrupted: KeyboardInterrupt"
        return f"training failed: {type(exception).__name__}: {exception}"

    def wants_traceback(self, exception: BaseException) -> bool:
        """Should `run_fit` print this exception's traceback on stderr?"""
        return not isinstance(exception, SystemExit | KeyboardInterrupt | Requeue | DiskFull)

    # ------------------------------------------------------------------ extra lines (overridable)
    def log_validation(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Called after the `train/total_loss` / `val/loss` lines of an end-of-epoch validation."""

    def after_epoch(self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: int, improved: bool) -> None:
        """Called after the `[epoch-end]` line; `improved`: the epoch set a new best val loss."""

    # ------------------------------------------------------------------ checkpoint state
    def state_dict(self) -> dict[str, Any]:
        return {"epochs_completed": self.epochs_completed, "best_val_loss": self.best_val_loss}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.epochs_completed = int(state_dict.get("epochs_completed", self.epochs_completed))
        self.best_val_loss = float(state_dict.get("best_val_loss", self.best_val_loss))

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        # A checkpoint this callback did not write: count the epoch it was saved in as done
        # (load_state_dict, which runs next, replaces this for our own checkpoints).
        self.epochs_completed = int(checkpoint.get("epoch", -1)) + 1

    # ------------------------------------------------------------------ fit start
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != TrainerFn.FITTING:
            return
        self._reset()
        self.run_dir = Path(self._run_dir_arg or os.environ.get(RUN_DIR_ENV) or trainer.default_root_dir)
        self.ckpt_dir = Path(os.path.realpath(self.run_dir / "checkpoints"))
        if self.announce:
            self.stream_log.info(f"runctl callback {__version__} starting: pid={os.getpid()} run_dir={self.run_dir}")
        if trainer.progress_bar_callback is not None:
            self.stream_log.warning("RunctlCallback: the progress bar writes carriage returns to stdout; "
                                    "pass enable_progress_bar=False to the Trainer to keep one line per record")
        if self.checkpoints:
            found = [c for c in _callbacks(trainer) if isinstance(c, ModelCheckpoint)]
            defaults = [c for c in found if _is_lightning_default(c)]
            if defaults:  # Lightning's own: this callback's checkpoints replace it
                kept = [c for c in _callbacks(trainer) if not any(c is d for d in defaults)]
                setattr(trainer, "callbacks", kept)  # noqa: B010
            self._foreign = [c for c in found if not any(c is d for d in defaults)]
            for mc in self._foreign:
                self._announce_saves(mc)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # In a Slurm job, SIGUSR1 (sbatch --signal=USR1@N) means the time limit is near. Installed
        # before Lightning's signal connector, which then leaves SIGUSR1 to this handler.
        job = os.environ.get("SLURM_JOB_ID", "")
        if job and threading.current_thread() is threading.main_thread():
            self._usr1_prev = signal.signal(signal.SIGUSR1, self._on_usr1)
        # Slurm's --signal has a coarse resolution (it can come late, or before this handler is in
        # place): runctl's batch script also says how long before the end to stop, and the end is
        # asked of Slurm once, so the requeue happens in time either way.
        flag = os.environ.get(REQUEUE_FLAG_ENV, "")
        self._flag = Path(flag) if job and flag else None
        before = os.environ.get(SIGNAL_BEFORE_ENV, "")
        if job.isdigit() and before.isdigit() and trainer.is_global_zero:
            end = _slurm_end_time(job)
            if end is not None:
                self._deadline = end - int(before)

    def _deadline_before(self) -> float:
        return float(os.environ.get(SIGNAL_BEFORE_ENV, "0") or 0)

    def _on_usr1(self, signum: int, frame: FrameType | None) -> None:
        self._usr1 = True  # acted on after the current training step

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._usr1_prev is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGUSR1, self._usr1_prev)
            self._usr1_prev = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not _fitting(trainer):
            return
        self._training = True
        if trainer.ckpt_path:
            self.stream_log.info(f"Resuming from checkpoint {trainer.ckpt_path} (completed_epochs={self.epochs_completed}, "
                                 f"next_epoch={self.epochs_completed + 1}, global_step={trainer.global_step})")
        self.stream_log.info(f"Starting training: max_epochs={trainer.max_epochs} "
                             f"steps_per_epoch={_count(trainer.num_training_batches)}")

    # ------------------------------------------------------------------ epochs and steps
    def _begin_epoch(self, trainer: L.Trainer) -> None:
        epoch = trainer.current_epoch + 1
        self.stream_log.info(EPOCH_RULE)
        self.stream_log.info(f"[main] Epoch {epoch}/{trainer.max_epochs}")
        if trainer.optimizers:
            self.stream_log.info(f"Learning rate: {float(trainer.optimizers[0].param_groups[0]['lr']):.6f}")
        self._epoch = epoch
        self._t0 = time.monotonic()
        self._steps = 0
        self._loss_sum, self._loss_n = 0.0, 0
        self._train_loss = self._val_loss = math.nan
        self._improved = False

    def _ensure_epoch(self, trainer: L.Trainer) -> None:
        # Resumed mid-epoch, Lightning calls no on_train_epoch_start: open the epoch here.
        if self._epoch != trainer.current_epoch + 1:
            self._begin_epoch(trainer)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if _fitting(trainer):
            self._begin_epoch(trainer)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if _fitting(trainer):
            self._ensure_epoch(trainer)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        if not _fitting(trainer):
            return
        if self.status is None and not self._usr1 and self._flag is not None and self._flag.exists():
            self._usr1 = True  # runctl's shim took the SIGUSR1 (it can come before our handler)
        if self.status is None and (self._usr1 or (self._deadline is not None and time.time() >= self._deadline)):
            raise Requeue("SIGUSR1 received" if self._usr1 else
                          f"{int(self._deadline_before())} s before the job's end")
        self._steps += 1
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        loss_v = math.nan
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            loss = loss.detach().float()
            self._loss_sum = self._loss_sum + loss
            self._loss_n += 1
        step = batch_idx + 1
        total = trainer.num_training_batches
        if step % self.progress_every and step != total:
            return
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            loss_v = float(loss)
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        rate = self._steps / elapsed
        finite = math.isfinite(total)
        eta = (total - step) / rate if finite and rate > 0 else math.nan
        pct = 100.0 * step / total if finite and total else 0.0
        self.stream_log.info(
            f"[progress] epoch={trainer.current_epoch + 1}/{trainer.max_epochs} step={step}/{_count(total)} "
            f"({pct:.0f}%) steps/s={rate:.2f} eta={hms(eta)} loss={fnum(loss_v, '.4f')}"
        )

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if _fitting(trainer) and not trainer.sanity_checking:
            self._ensure_epoch(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The module's on_validation_epoch_end has run (its metrics are in callback_metrics);
        # a ModelCheckpoint, always ordered last, saves right after this.
        if not _fitting(trainer) or trainer.sanity_checking:
            return
        if not getattr(trainer.fit_loop.epoch_loop.batch_progress, "is_last_batch", True):
            return  # a validation inside the epoch (val_check_interval < 1): not the epoch's
        epoch = trainer.current_epoch + 1
        self._train_loss = self.train_loss(trainer, pl_module)
        self._val_loss = self.val_loss(trainer, pl_module)
        self.stream_log.info(f"train/total_loss: {fnum(self._train_loss, '.6f')}")
        self.stream_log.info(f"val/loss: {fnum(self._val_loss, '.6f')}")
        self.log_validation(trainer, pl_module)
        self._validated = epoch
        self._close_epoch(epoch)
        if self.checkpoints and not self._foreign:
            self._save_epoch(trainer, epoch)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not _fitting(trainer):
            return
        epoch = trainer.current_epoch + 1
        if self._epoch != epoch:
            # Lightning replays the end of the epoch a resumed checkpoint was saved in; the
            # process that trained it reported it.
            self.epochs_completed = max(self.epochs_completed, epoch)
            return
        validated = self._validated == epoch
        if not validated:
            self._train_loss = self.train_loss(trainer, pl_module)
            self.stream_log.info(f"train/total_loss: {fnum(self._train_loss, '.6f')}")
            self._close_epoch(epoch)
        values = self.epoch_metrics(trainer, pl_module)
        values.update(train_loss=self._train_loss, val_loss=self._val_loss)
        self.stream_log.info(metrics_line(epoch, values))
        sharpe, sharpe_ann = self.sharpe(trainer, pl_module)
        self.stream_log.info(
            f"[epoch-end] epoch={epoch}/{trainer.max_epochs} train_loss={fnum(self._train_loss, '.6f')} "
            f"val_loss={fnum(self._val_loss, '.6f')} sharpe={fnum(sharpe, '.4f')} "
            f"sharpe_ann={fnum(sharpe_ann, '.4f')} time={time.monotonic() - self._t0:.1f}s"
        )
        self.after_epoch(trainer, pl_module, epoch, self._improved)
        if not validated and self.checkpoints and not self._foreign:
            self._save_epoch(trainer, epoch)

    def _close_epoch(self, epoch: int) -> None:
        """The epoch's numbers are final: count it, track the best val loss (before any save)."""
        self.epochs_completed = max(self.epochs_completed, epoch)
        self._improved = math.isfinite(self._val_loss) and self._val_loss < self.best_val_loss
        if self._improved:
            self.best_val_loss = self._val_loss

    # ------------------------------------------------------------------ checkpoints
    def _save_epoch(self, trainer: L.Trainer, epoch: int) -> None:
        """`epoch=NNN.ckpt`, then `last.ckpt` replaced atomically with a copy of it."""
        assert self.ckpt_dir is not None
        path = self.ckpt_dir / f"epoch={epoch:03d}.ckpt"
        tmp = self.ckpt_dir / f".{LAST}.tmp"
        try:
            trainer.save_checkpoint(str(path), weights_only=False)
            if trainer.is_global_zero:
                shutil.copyfile(path, tmp)
                os.replace(tmp, self.ckpt_dir / LAST)
        except Exception as e:
            last = self.ckpt_dir / LAST
            expected = last.stat().st_size if last.is_file() else None
            if not runfiles.is_disk_full(e, self.ckpt_dir, expected):
                raise
            # nothing half-written is left to be resumed from (and its space is free again)
            for partial in (path, tmp):
                with contextlib.suppress(OSError):
                    partial.unlink()
            raise DiskFull(errno.ENOSPC, f"disk full while saving epoch {epoch}: {path} "
                           f"({runfiles.free_text(self.ckpt_dir)}; {LAST} is the previous epoch's)") from e
        if trainer.is_global_zero:
            self._drop_interrupted()
            self.stream_log.info(f"Checkpoint saved: {path} (epoch={epoch})")

    def _drop_interrupted(self) -> None:
        # A newer checkpoint exists now: a stale interrupted.ckpt must not be resumed from.
        assert self.ckpt_dir is not None
        with contextlib.suppress(FileNotFoundError):
            (self.ckpt_dir / INTERRUPTED).unlink()

    def _announce_saves(self, mc: ModelCheckpoint) -> None:
        """Make a ModelCheckpoint of the user's announce each file it writes."""
        original = mc._save_checkpoint
        if getattr(original, "_runctl_announces", False):
            return

        def save(trainer: L.Trainer, filepath: str) -> None:
            original(trainer, filepath)
            if trainer.is_global_zero:
                self._drop_interrupted()
                self.stream_log.info(f"Checkpoint saved: {filepath} (epoch={trainer.current_epoch + 1})")

        save._runctl_announces = True  # type: ignore[attr-defined]
        setattr(mc, "_save_checkpoint", save)  # noqa: B010

    # ------------------------------------------------------------------ how the fit ends
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.status is not None:
            return
        self.stream_log.info("=== Training Complete ===")
        self.stream_log.info(f"Best validation loss: {fnum(self.best_val_loss, '.4f')}")
        self._finish("finished", EXIT_FINISHED)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if not _fitting(trainer) or self.status is not None:
            return
        if isinstance(exception, SIGTERMException):
            self._terminated(trainer)
            exception.code = EXIT_TERMINATED  # an uncaught SIGTERMException now exits with 143
        elif isinstance(exception, Requeue):
            self._requeue(trainer, str(exception))
        else:
            self._failed(exception)

    def _save_interrupted(self, trainer: L.Trainer) -> None:
        if not (self.checkpoints and self._training and self.ckpt_dir is not None):
            return
        path = self.ckpt_dir / INTERRUPTED
        try:
            trainer.save_checkpoint(str(path), weights_only=False)
        except Exception as e:  # keep stopping cleanly; say why there is no checkpoint
            self.stream_log.warning(f"could not save {path}: {type(e).__name__}: {e}")
        else:
            if trainer.is_global_zero:
                self.stream_log.info(f"Checkpoint saved: {path} (epoch={trainer.current_epoch + 1}, "
                                     f"step={trainer.global_step}, mid-epoch)")

    def _requeue(self, trainer: L.Trainer, why: str) -> None:
        job = os.environ.get("SLURM_JOB_ID", "")
        self.stream_log.warning(f"[signal] Slurm time limit near ({why}): saving checkpoint and "
                                f"requeueing job {job}")
        self._save_interrupted(trainer)
        if trainer.is_global_zero and job.isdigit():
            try:
                r = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
                ok, why = r.returncode == 0, (r.stderr or r.stdout).strip()
            except (OSError, subprocess.TimeoutExpired) as e:
                ok, why = False, str(e)
            if not ok:
                self._finish("error", EXIT_FAILED, f"scontrol requeue {job} failed: {why}")
                return
        self._finish("requeued", EXIT_REQUEUED)

    def _terminated(self, trainer: L.Trainer) -> None:
        self.stream_log.warning("[signal] SIGTERM received: saving checkpoint and stopping")
        self._save_interrupted(trainer)
        self._finish("terminated", EXIT_TERMINATED)

    def _failed(self, exception: BaseException) -> None:
        if isinstance(exception, DiskFull):
            self._finish("disk_full", EXIT_FAILED, exception.strerror or str(exception))
            return
        if runfiles.is_disk_full(exception, self.ckpt_dir or self.run_dir):
            where = self.ckpt_dir or self.run_dir or Path.cwd()
            self._finish("disk_full", EXIT_FAILED, f"disk full: {type(exception).__name__}: {exception} "
                                                    f"({runfiles.free_text(where)})")
            return
        self._finish("error", EXIT_FAILED, self.error_message(exception))

    def _finish(self, reason: str, status: int, error: str | None = None) -> None:
        """The final lines: `[error]` (with `error`), then `[exit]`; the exit record first, so the
        end is known even where the log cannot be written (a full disk)."""
        self.reason, self.status, self.error = reason, status, error
        runfiles.write_exit(reason, status, self.epochs_completed, error, writer=self.exit_writer)
        if error is not None:
            self.stream_log.error(f"[error] {error}")
        level = self.stream_log.error if reason not in ("finished", "terminated", "requeued") else self.stream_log.info
        level(f"[exit] reason={reason} status={status} epochs_completed={self.epochs_completed}")


def _missing_local_file(ckpt_path: str | os.PathLike[str]) -> bool:
    text = os.fspath(ckpt_path)
    if text in _LIGHTNING_CKPT_WORDS or "://" in text or text.startswith("registry:"):
        return False
    return not Path(text).is_file()


@contextlib.contextmanager
def _sigterm_until_training(trainer: L.Trainer, cb: RunctlCallback) -> Iterator[None]:
    """SIGTERM before Lightning's own handler is in place stops the fit like SIGTERM during it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        # Lightning composes this with its handler, which runs first and stops the loop itself.
        if trainer.received_sigterm or cb.status is not None:
            return
        raise SIGTERMException(EXIT_TERMINATED)

    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def run_fit(trainer: L.Trainer, model: L.LightningModule, datamodule: L.LightningDataModule | None = None,
            ckpt_path: str | os.PathLike[str] | None = None, **fit_kwargs: Any) -> int:
    """`trainer.fit(...)`, returning the exit status its `[exit]` line states.

    0: finished; 2: `ckpt_path` names no file (nothing is run); 3: the fit raised (traceback on
    stderr); 143: SIGTERM (`interrupted.ckpt` saved). Use it as `sys.exit(run_fit(...))`. Other
    keyword arguments (`train_dataloaders`, `val_dataloaders`, ...) go to `trainer.fit`.
    """
    cb = next((c for c in _callbacks(trainer) if isinstance(c, RunctlCallback)), None)
    if cb is None:
        raise ValueError("run_fit: the Trainer has no RunctlCallback; create it with callbacks=[RunctlCallback()]")
    if ckpt_path is not None and _missing_local_file(ckpt_path):
        cb._finish("error", EXIT_BAD_INPUT, f"bad input: checkpoint not found: {os.fspath(ckpt_path)}")
        return EXIT_BAD_INPUT
    with _sigterm_until_training(trainer, cb):
        try:
            trainer.fit(model, datamodule=datamodule,
                        ckpt_path=None if ckpt_path is None else os.fspath(ckpt_path), **fit_kwargs)
        except SIGTERMException:
            if cb.status is None:
                cb._finish("terminated", EXIT_TERMINATED)
        except BaseException as e:  # noqa: B036 - every way out of fit gets its final line and status
            if cb.status is None:  # raised before Lightning's hooks could see it
                cb._failed(e)
            if cb.wants_traceback(e):
                traceback.print_exc()
    return cb.status if cb.status is not None else EXIT_FINISHED
