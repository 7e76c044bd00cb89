"""Lightning callbacks that write the documented log stream, checkpoints and the metrics CSV."""

from __future__ import annotations

import csv
import logging
import math
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from engine.logstream import EPOCH_RULE


def _hms(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "--:--:--"
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _f(x: float | None, spec: str) -> str:
    if x is None or not math.isfinite(x):
        return "nan"
    return format(x, spec)


class LogStream(L.Callback):
    """Epoch starts, progress, losses, per-horizon metrics, Sharpe, epoch summaries, metrics.csv."""

    def __init__(self, log: logging.Logger, progress_every: int, run_dir: Path | None) -> None:
        self._log = log
        self.every = max(1, progress_every)
        self.csv_path = run_dir / "metrics.csv" if run_dir else None
        self._t0 = 0.0
        self._steps = 0
        self._started_epoch = 0  # the epoch this process started (0: none yet)
        self.epochs_completed = 0
        self.best_val_loss = math.inf

    def _epoch(self, trainer: L.Trainer) -> int:
        return trainer.current_epoch + 1

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log.info(EPOCH_RULE)
        self._log.info(f"[main] Epoch {self._epoch(trainer)}/{trainer.max_epochs}")
        opt = trainer.optimizers[0] if trainer.optimizers else None
        if opt is not None:
            self._log.info(f"Learning rate: {opt.param_groups[0]['lr']:.6f}")
        self._t0 = time.monotonic()
        self._steps = 0
        self._started_epoch = self._epoch(trainer)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        self._steps += 1
        total = int(trainer.num_training_batches) if math.isfinite(trainer.num_training_batches) else 0
        step = batch_idx + 1
        if step % self.every and step != total:
            return
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        rate = self._steps / elapsed
        eta = (total - step) / rate if total and rate > 0 else math.nan
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        loss_v = float(loss.detach()) if isinstance(loss, torch.Tensor) else math.nan
        pct = 100.0 * step / total if total else 0.0
        self._log.info(
            f"[progress] epoch={self._epoch(trainer)}/{trainer.max_epochs} step={step}/{total} "
            f"({pct:.0f}%) steps/s={rate:.2f} eta={_hms(eta)} loss={_f(loss_v, '.4f')}"
        )

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # on_validation_end: the module's on_validation_epoch_end (which computes the metrics)
        # has run; ModelCheckpoint (always ordered last) saves right after this.
        if trainer.sanity_checking:
            return
        m: Any = pl_module
        self._log.info(f"train/total_loss: {_f(m.last_train_loss, '.6f')}")
        self._log.info(f"val/loss: {_f(m.last_val_loss, '.6f')}")
        ev = m.last_eval
        if ev is None:
            return
        for h in m.horizons:
            r = ev.per_horizon[h]
            scale = r["scale"]
            if math.isfinite(scale) and scale < 0.005:
                self._log.warning(
                    f"Low prediction variance for horizon {h}: scale_ratio={scale:.4f}, "
                    f"yhat_std={_f(r.get('pred_std', math.nan), '.6f')}"
                )
            self._log.info(
                f"Val metrics (z) h={h}: MAE={_f(r['mae'], '.4f')} RMSE={_f(r['rmse'], '.4f')} "
                f"IC={_f(r['ic'], '.4f')} RankIC={_f(r['rank_ic'], '.4f')} "
                f"SCALE(yhat/y)={_f(scale, '.2f')} HIT={_f(r['hit'], '.4f')}"
            )
        self._log.info(f"Sharpe: {_f(ev.sharpe, '.4f')}")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        m: Any = pl_module
        epoch = self._epoch(trainer)
        if epoch != self._started_epoch:
            # Lightning replays the end of the epoch a resumed checkpoint was saved in; it was
            # already reported by the process that trained it.
            return
        self.epochs_completed = epoch
        if m.last_eval is None:  # no validation ran this epoch
            m.last_train_loss = m._reduce_mean(m._train_sum, m._train_n)
            self._log.info(f"train/total_loss: {_f(m.last_train_loss, '.6f')}")
        ev = m.last_eval
        sharpe = ev.sharpe if ev else math.nan
        sharpe_ann = ev.sharpe_ann if ev else math.nan
        self._log.info(
            f"[epoch-end] epoch={epoch}/{trainer.max_epochs} train_loss={_f(m.last_train_loss, '.6f')} "
            f"val_loss={_f(m.last_val_loss, '.6f')} sharpe={_f(sharpe, '.4f')} "
            f"sharpe_ann={_f(sharpe_ann, '.4f')} time={time.monotonic() - self._t0:.1f}s"
        )
        if math.isfinite(m.last_val_loss) and m.last_val_loss < self.best_val_loss:
            self.best_val_loss = m.last_val_loss
            self._log.info(f"Best model saved (main) (val_loss: {m.last_val_loss:.4f})")
        if trainer.is_global_zero:
            self._write_csv(epoch, m)

    def _write_csv(self, epoch: int, m: Any) -> None:
        if self.csv_path is None:
            return
        row: dict[str, Any] = {"epoch": epoch, "train_loss": m.last_train_loss, "val_loss": m.last_val_loss}
        ev = m.last_eval
        if ev is not None:
            row["sharpe"] = ev.sharpe
            row["sharpe_ann"] = ev.sharpe_ann
            for h in m.horizons:
                for k in ("ic", "rank_ic", "scale", "hit", "mae", "rmse"):
                    row[f"{k}_h{h}"] = ev.per_horizon[h][k]
        new = not self.csv_path.exists()
        with self.csv_path.open("a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)


class LoggedCheckpoint(ModelCheckpoint):
    """ModelCheckpoint (one file per epoch + last) that announces every epoch file it writes."""

    def __init__(self, dirpath: Path, log: logging.Logger) -> None:
        super().__init__(
            dirpath=str(dirpath), filename="epoch={epoch:03d}", auto_insert_metric_name=False,
            save_top_k=-1, save_last=True, every_n_epochs=1, save_on_train_epoch_end=False,
        )
        self._log = log

    def format_checkpoint_name(self, metrics: dict[str, Any], filename: str | None = None,
                               ver: int | None = None, prefix: str | None = None) -> str:
        """Name epoch files 1-based (epoch=001.ckpt is the first epoch), as the log counts them."""
        if "epoch" in metrics:
            metrics = {**metrics, "epoch": metrics["epoch"] + 1}
        return super().format_checkpoint_name(metrics, filename, ver, prefix)

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)
        if Path(filepath).name != "last.ckpt" and trainer.is_global_zero:
            self._log.info(f"Checkpoint saved: {filepath} (epoch={trainer.current_epoch + 1})")


class SigtermCheckpoint(L.Callback):
    """On SIGTERM (Lightning stops after the current batch) save the mid-epoch state.

    The mid-epoch weights and optimizer go to `interrupted.ckpt`; `last.ckpt` stays the end of
    the last completed epoch, so `--resume` re-runs the interrupted epoch from its start and every
    epoch is trained and validated whole (Lightning cannot resume a plain DataLoader mid-epoch).
    """

    def __init__(self, dirpath: Path | None, log: logging.Logger) -> None:
        self.dirpath = dirpath
        self._log = log
        self.terminated = False

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException):
            return
        self.terminated = True
        if self.dirpath is None:
            return
        path = self.dirpath / "interrupted.ckpt"
        trainer.save_checkpoint(str(path))
        if trainer.is_global_zero:
            self._log.info(
                f"Checkpoint saved: {path} (epoch={trainer.current_epoch + 1}, step={trainer.global_step}, mid-epoch)"
            )


class GradMonitor(L.Callback):
    """Per-module-group gradient norms every N steps; warns on vanishing or missing gradients."""

    SMALL = 1e-8

    def __init__(self, every: int, log: logging.Logger) -> None:
        self.every = max(1, every)
        self._log = log
        self._warned: set[tuple[str, str]] = set()

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Any) -> None:
        step = trainer.global_step + 1
        if step % self.every and step != 1:
            return
        groups = pl_module.model.param_groups()  # type: ignore[union-attr,operator]
        parts = []
        for name, params in groups.items():
            grads = [p.grad for p in params if p.requires_grad]
            present = [g.detach().float() for g in grads if g is not None]
            none = len(grads) - len(present)
            l2 = math.sqrt(sum(float(g.pow(2).sum()) for g in present)) if present else 0.0
            mx = max((float(g.abs().max()) for g in present if g.numel()), default=0.0)
            small = sum(1 for g in present if float(g.norm()) < self.SMALL)
            parts.append(f"{name}:l2={l2:.2e} max={mx:.2e} grad={len(present)}/{len(grads)} small={small} none={none}")
            kind = "missing" if present == [] and grads else ("vanishing" if present and l2 < self.SMALL else "")
            if kind and (name, kind) not in self._warned:
                self._warned.add((name, kind))
                self._log.warning(
                    f"[GRAD-MONITOR] {name}: {kind} gradients (l2={l2:.2e}, none={none}/{len(grads)})"
                )
        self._log.info(
            f"[GRAD-MONITOR] step={step} epoch={trainer.current_epoch + 1} batch={trainer.fit_loop.epoch_loop.batch_idx} "
            + " | ".join(parts)
        )
