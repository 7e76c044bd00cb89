"""The engine's additions to the shared log stream (`engine.stream.RunctlCallback`).

`EngineStream` adds the per-horizon validation lines, `Sharpe:`, the best-model line and
metrics.csv to the stream every script gets; `GradMonitor` logs gradient norms per module group.
"""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from typing import Any

import lightning as L

from engine.logstream import fnum
from engine.stream import RunctlCallback


class EngineStream(RunctlCallback):
    """The shared stream with the engine's numbers and lines (docs/log-format.md rows 27-34)."""

    exit_writer = "engine"

    def __init__(self, log: logging.Logger, progress_every: int, run_dir: Path | None) -> None:
        super().__init__(run_dir=run_dir, progress_every=max(1, progress_every),
                         checkpoints=run_dir is not None, logger=log, announce=False)
        self.csv_path = run_dir / "metrics.csv" if run_dir else None

    # -- the engine module's own numbers (float64, as metrics.csv has them) ---------------------
    def train_loss(self, trainer: L.Trainer, pl_module: L.LightningModule) -> float:
        m: Any = pl_module
        m.last_train_loss = m._reduce_mean(m._train_sum, m._train_n)
        return float(m.last_train_loss)

    def val_loss(self, trainer: L.Trainer, pl_module: L.LightningModule) -> float:
        return float(getattr(pl_module, "last_val_loss", math.nan))

    def sharpe(self, trainer: L.Trainer, pl_module: L.LightningModule) -> tuple[float, float]:
        ev = getattr(pl_module, "last_eval", None)
        return (ev.sharpe, ev.sharpe_ann) if ev is not None else (math.nan, math.nan)

    def epoch_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, float]:
        values = super().epoch_metrics(trainer, pl_module)
        values.update(self._eval_row(pl_module))
        return values

    def _eval_row(self, pl_module: L.LightningModule) -> dict[str, float]:
        """sharpe, sharpe_ann and `{metric}_h{h}` of the latest validation (the metrics.csv columns)."""
        m: Any = pl_module
        ev = m.last_eval
        if ev is None:
            return {}
        row: dict[str, float] = {"sharpe": ev.sharpe, "sharpe_ann": ev.sharpe_ann}
        for h in m.horizons:
            for k in ("ic", "rank_ic", "scale", "hit", "mae", "rmse"):
                row[f"{k}_h{h}"] = ev.per_horizon[h][k]
        return row

    def error_message(self, exception: BaseException) -> str:
        from engine.lit_module import NonFiniteLossError

        if isinstance(exception, NonFiniteLossError):
            return str(exception)
        return f"internal: {exception.__class__.__name__}: {exception}"

    def wants_traceback(self, exception: BaseException) -> bool:
        from engine.lit_module import NonFiniteLossError

        return super().wants_traceback(exception) and not isinstance(exception, NonFiniteLossError)

    # -- the engine's extra lines -------------------------------------------------------------
    def log_validation(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        m: Any = pl_module
        ev = m.last_eval
        if ev is None:
            return
        for h in m.horizons:
            r = ev.per_horizon[h]
            scale = r["scale"]
            if math.isfinite(scale) and scale < 0.005:
                self.stream_log.warning(
                    f"Low prediction variance for horizon {h}: scale_ratio={scale:.4f}, "
                    f"yhat_std={fnum(r.get('pred_std', math.nan), '.6f')}"
                )
            self.stream_log.info(
                f"Val metrics (z) h={h}: MAE={fnum(r['mae'], '.4f')} RMSE={fnum(r['rmse'], '.4f')} "
                f"IC={fnum(r['ic'], '.4f')} RankIC={fnum(r['rank_ic'], '.4f')} "
                f"SCALE(yhat/y)={fnum(scale, '.2f')} HIT={fnum(r['hit'], '.4f')}"
            )
        self.stream_log.info(f"Sharpe: {fnum(ev.sharpe, '.4f')}")

    def after_epoch(self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: int, improved: bool) -> None:
        if improved:
            self.stream_log.info(f"Best model saved (main) (val_loss: {self.best_val_loss:.4f})")
        if trainer.is_global_zero:
            self._write_csv(epoch, pl_module)

    def _write_csv(self, epoch: int, pl_module: L.LightningModule) -> None:
        if self.csv_path is None:
            return
        m: Any = pl_module
        row: dict[str, Any] = {"epoch": epoch, "train_loss": m.last_train_loss, "val_loss": m.last_val_loss}
        row.update(self._eval_row(pl_module))
        new = not self.csv_path.exists()
        with self.csv_path.open("a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)


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
