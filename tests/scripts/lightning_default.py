"""A plain Lightning training script with Lightning's defaults: no runctl instrumentation at all.

A tiny linear regression on random torch data. The Trainer gets no `logger` and no callbacks, so
Lightning picks its own: a TensorBoardLogger when tensorboard is installed (a CSVLogger when it is
not) under RUN_DIR/lightning_logs/version_N/, the TQDM progress bar, and a ModelCheckpoint that
keeps the newest RUN_DIR/lightning_logs/version_N/checkpoints/epoch=E-step=S.ckpt.

    python tests/scripts/lightning_default.py --run-dir DIR [--max-epochs N] [--ckpt PATH]
                                              [--sleep S] [--steps N] [--log-every N]

--ckpt: resume from that checkpoint (trainer.fit(..., ckpt_path=PATH)); the logger then starts a
new version_N. --sleep: seconds to sleep in each training step (a window to kill the run).
--steps: training batches per epoch. --log-every: the Trainer's log_every_n_steps; Lightning's own
default (50) is more than this tiny run's step count, so train_loss would never be written.
Imports only torch and lightning; a default run takes a few seconds on a CPU.
"""

from __future__ import annotations

import argparse
import time

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

FEATURES = 8
BATCH = 16
VAL_BATCHES = 4


class TinyRegressor(L.LightningModule):
    """y = x @ w + noise, fitted by one linear layer; logs train_loss, val_loss and val_acc."""

    def __init__(self, sleep: float = 0.0, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Linear(FEATURES, 1)
        self.sleep = sleep
        self.lr = lr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)  # Lightning's default in training_step: per step
        if self.sleep:
            time.sleep(self.sleep)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        pred = self(x)
        # Lightning's default in validation_step: averaged over the epoch.
        self.log("val_loss", torch.nn.functional.mse_loss(pred, y))
        # "Accuracy" of a regression: the share of predictions with the target's sign.
        self.log("val_acc", (torch.sign(pred) == torch.sign(y)).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def make_loader(batches: int, seed: int, shuffle: bool) -> DataLoader:
    """`batches` batches of random regression data (the same true weights for every seed)."""
    w = torch.linspace(-1.0, 1.0, FEATURES)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batches * BATCH, FEATURES, generator=g)
    y = x @ w + 0.3 * torch.randn(batches * BATCH, generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=shuffle)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run-dir", required=True, help="the Trainer's default_root_dir")
    p.add_argument("--max-epochs", type=int, default=4)
    p.add_argument("--ckpt", default=None, help="a checkpoint to resume from")
    p.add_argument("--sleep", type=float, default=0.0, help="seconds to sleep per training step")
    p.add_argument("--steps", type=int, default=8, help="training batches per epoch")
    p.add_argument("--log-every", type=int, default=4, help="the Trainer's log_every_n_steps")
    args = p.parse_args()

    L.seed_everything(0)
    model = TinyRegressor(sleep=args.sleep)
    trainer = L.Trainer(
        max_epochs=args.max_epochs,
        default_root_dir=args.run_dir,
        log_every_n_steps=args.log_every,
    )
    trainer.fit(
        model,
        train_dataloaders=make_loader(args.steps, seed=1, shuffle=True),
        val_dataloaders=make_loader(VAL_BATCHES, seed=2, shuffle=False),
        ckpt_path=args.ckpt,
    )


if __name__ == "__main__":
    main()
