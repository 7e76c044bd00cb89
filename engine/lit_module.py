"""The LightningModule: one model, one per-day loss, per-day validation metrics."""

from __future__ import annotations

import copy
import math
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from engine.config import EngineConfig
from engine.data import make_loader
from engine.losses import MultiHorizonLoss
from engine.metrics import EvalResult, evaluate
from engine.model import ATFTGATFAN


class NonFiniteLossError(RuntimeError):
    """Training produced a nan/inf loss; the run stops with a clear error line."""


class EngineModule(L.LightningModule):
    """ATFT-GAT-FAN trained with the per-day multi-horizon loss."""

    def __init__(
        self,
        cfg: EngineConfig,
        n_features: int,
        return_channel: int | None,
        n_stocks: int,
        train_set: Dataset | None = None,
        val_set: Dataset | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.horizons = list(cfg.model.horizons)
        self.model = ATFTGATFAN(n_features, cfg.model, return_channel)
        # Weight EMA: a frozen copy that validation uses; a submodule, so checkpoints carry it.
        self.ema_model: ATFTGATFAN | None = None
        if cfg.train.ema_decay > 0:
            self.ema_model = copy.deepcopy(self.model).requires_grad_(False)
        self.loss_fn = MultiHorizonLoss(cfg.loss, self.horizons, list(cfg.model.quantiles), n_stocks)
        self._train_set = train_set
        self._val_set = val_set
        self._train_sum = 0.0
        self._train_n = 0
        self._val_loss_sum = 0.0
        self._val_loss_n = 0
        self._val_pred: list[np.ndarray] = []
        self._val_y: list[np.ndarray] = []
        self._val_day: list[np.ndarray] = []
        self._val_days_seen = 0
        self.last_eval: EvalResult | None = None
        self.last_val_loss: float = math.nan
        self.last_train_loss: float = math.nan

    # -- data ---------------------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        """Whole-day batches; sharded by batch across ranks when distributed."""
        assert self._train_set is not None
        world = self.trainer.world_size if self._trainer is not None else 1
        if world > 1:
            sampler: DistributedSampler = DistributedSampler(
                self._train_set, num_replicas=world, rank=self.trainer.global_rank, shuffle=True,
                seed=self.cfg.train.seed, drop_last=True,
            )
            return DataLoader(self._train_set, batch_size=None, sampler=sampler,
                              num_workers=self.cfg.train.batch.num_workers)
        return make_loader(self._train_set, shuffle=True, num_workers=self.cfg.train.batch.num_workers)

    def val_dataloader(self) -> DataLoader:
        """Every rank validates on the full validation set, so metrics need no gathering."""
        assert self._val_set is not None
        return make_loader(self._val_set, shuffle=False, num_workers=self.cfg.train.batch.num_workers)

    # -- steps --------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, day: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model(x, day)

    def _loss(self, batch: dict[str, torch.Tensor], model: torch.nn.Module | None = None
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        out = (model or self.model)(batch["x"], batch["day"])
        total, parts = self.loss_fn(out, batch["y"], batch["day"], batch["stock"], batch.get("exposures"))
        return total, parts, out

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        total, _parts, _ = self._loss(batch)
        value = float(total.detach())
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"non-finite loss: train/total_loss={value} at epoch={self.current_epoch + 1} step={self.global_step}"
            )
        self._train_sum += value
        self._train_n += 1
        return total

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema_model is not None:
            self._update_ema()

    @torch.no_grad()
    def _update_ema(self) -> None:
        """ema <- ema + (1 - d) * (weights - ema), d ramping up to train.ema_decay."""
        assert self.ema_model is not None
        step = self.global_step
        d = min(self.cfg.train.ema_decay, (1.0 + step) / (10.0 + step))
        ema: list[torch.Tensor] = list(self.ema_model.parameters())
        torch._foreach_lerp_(ema, [p.detach() for p in self.model.parameters()], 1.0 - d)
        for b_ema, b in zip(self.ema_model.buffers(), self.model.buffers(), strict=True):
            b_ema.copy_(b)

    def on_train_epoch_start(self) -> None:
        self._train_sum, self._train_n = 0.0, 0

    def on_validation_epoch_start(self) -> None:
        self._val_loss_sum, self._val_loss_n = 0.0, 0
        self._val_pred, self._val_y, self._val_day = [], [], []
        self._val_days_seen = 0
        if not self.trainer.sanity_checking:
            self.last_train_loss = self._reduce_mean(self._train_sum, self._train_n)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        total, _parts, out = self._loss(batch, self.ema_model)
        self._val_loss_sum += float(total.detach())
        self._val_loss_n += 1
        day = batch["day"].detach().cpu().numpy().astype(np.int64)
        self._val_pred.append(out["pred"].detach().float().cpu().numpy())
        self._val_y.append(batch["y"].detach().float().cpu().numpy())
        self._val_day.append(day + self._val_days_seen)
        self._val_days_seen += int(day.max()) + 1 if day.size else 0

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking or not self._val_pred:
            return
        self.last_val_loss = self._val_loss_sum / max(self._val_loss_n, 1)
        self.last_eval = evaluate(
            np.concatenate(self._val_pred), np.concatenate(self._val_y), np.concatenate(self._val_day),
            self.horizons,
        )
        self.log("val_loss", self.last_val_loss, logger=False)

    def _reduce_mean(self, total: float, n: int) -> float:
        """Mean of a per-rank sum across ranks (plain mean when not distributed)."""
        if self.trainer.world_size > 1:
            t = torch.tensor([total, float(n)], device=self.device, dtype=torch.float64)
            t = self.trainer.strategy.reduce(t, reduce_op="sum")
            total, n = float(t[0]), int(t[1])
        return total / n if n else math.nan

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Checkpoints from before the turnover state was saved resume with a fresh one."""
        state = checkpoint.get("state_dict", {})
        for name, buf in self.loss_fn.named_buffers():
            state.setdefault(f"loss_fn.{name}", buf.detach().clone())

    # -- optimisation -------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        o, s = self.cfg.train.optimizer, self.cfg.train.scheduler
        params = [p for p in self.parameters() if p.requires_grad]
        if o.name == "sgd":
            opt: torch.optim.Optimizer = torch.optim.SGD(params, lr=o.lr, momentum=0.9, weight_decay=o.weight_decay)
        elif o.name == "adam":
            opt = torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
        else:
            opt = torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
        max_epochs = self.cfg.train.trainer.max_epochs
        sched: Any
        if s.name == "cosine":
            cosine = torch.optim.lr_scheduler.CosineAnnealingLR(
                opt, T_max=max(max_epochs - s.warmup_epochs, 1), eta_min=s.min_lr
            )
            if s.warmup_epochs > 0:
                warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=s.warmup_epochs)
                sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, cosine], milestones=[s.warmup_epochs])
            else:
                sched = cosine
        elif s.name == "step":
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=s.step_size, gamma=s.gamma)
        elif s.name == "plateau":
            plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=s.gamma, patience=1)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": plateau, "monitor": "val_loss"}}
        else:
            return opt
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
