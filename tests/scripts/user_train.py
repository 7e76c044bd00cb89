"""A user's own Lightning training script, instrumented for runctl as docs/instrument.md shows.

Its own tiny classifier on random torch data; nothing of the engine's model, data or losses.

    python tests/scripts/user_train.py --run-dir DIR --max-epochs N [--ckpt PATH] [--no-callback]
                                       [--sleep S] [--fail-epoch E] [--setup-sleep S] [--own-checkpoint]
                                       [--plain-fit]

--no-callback: plain Lightning only (CSVLogger DIR/version_N/metrics.csv, a ModelCheckpoint writing
DIR/checkpoints/last.ckpt, no progress bar). --own-checkpoint: the instrumented run also has its
own ModelCheckpoint (the callback announces that one's files). --fail-epoch: raise in that epoch;
--setup-sleep: wait in the module's setup hook (a window before training starts); --plain-fit:
call trainer.fit directly instead of run_fit.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset


class TinyClassifier(L.LightningModule):
    """Logistic regression on 8 features, logging `train_acc`, `val_loss` and `val_acc`."""

    def __init__(self, sleep: float = 0.0, fail_epoch: int = 0, setup_sleep: float = 0.0) -> None:
        super().__init__()
        self.net = torch.nn.Linear(8, 2)
        self.sleep = sleep
        self.fail_epoch = fail_epoch
        self.setup_sleep = setup_sleep

    def setup(self, stage: str) -> None:
        time.sleep(self.setup_sleep)  # inside fit, before Lightning installs its SIGTERM handler

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.current_epoch + 1 == self.fail_epoch and batch_idx == 2:
            raise RuntimeError(f"deliberate failure in epoch {self.fail_epoch}")
        x, y = batch
        logits = self.net(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        self.log("train_acc", (logits.argmax(1) == y).float().mean(), on_step=False, on_epoch=True)
        if self.sleep:
            time.sleep(self.sleep)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self.net(x)
        self.log("val_loss", torch.nn.functional.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loaders() -> tuple[DataLoader, DataLoader]:
    """192 training rows (12 batches of 16) and 64 validation rows of a separable problem."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    train = DataLoader(TensorDataset(x[:192], y[:192]), batch_size=16, shuffle=True, generator=g)
    val = DataLoader(TensorDataset(x[192:], y[192:]), batch_size=64)
    return train, val


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run-dir", default=None, help="default: $RUNCTL_RUN_DIR, else the current directory")
    p.add_argument("--max-epochs", type=int, required=True)
    p.add_argument("--ckpt", default=None, help="checkpoint to resume from (runctl's resume_args)")
    p.add_argument("--no-callback", action="store_true")
    p.add_argument("--own-checkpoint", action="store_true")
    p.add_argument("--plain-fit", action="store_true", help="trainer.fit instead of run_fit (callback only)")
    p.add_argument("--sleep", type=float, default=0.0, help="seconds per training step")
    p.add_argument("--fail-epoch", type=int, default=0)
    p.add_argument("--setup-sleep", type=float, default=0.0, help="seconds in the module's setup hook")
    args = p.parse_args(argv)

    L.seed_everything(0, verbose=False)
    model = TinyClassifier(args.sleep, args.fail_epoch, args.setup_sleep)
    train, val = loaders()
    plain = dict(max_epochs=args.max_epochs, accelerator="cpu", devices=1, enable_progress_bar=False,
                 enable_model_summary=False, default_root_dir=args.run_dir)

    if args.no_callback:
        run_dir = Path(args.run_dir or ".")
        # CSVLogger's default layout: run_dir/version_N/metrics.csv, a new version per process
        trainer = L.Trainer(**plain, logger=CSVLogger(run_dir, name=""),  # type: ignore[arg-type]
                            callbacks=[ModelCheckpoint(dirpath=run_dir / "checkpoints", save_last=True)])
        trainer.fit(model, train, val, ckpt_path=args.ckpt)
        return 0

    from engine.stream import RunctlCallback, run_fit  # runctl, line 1 of 3

    callbacks: list[L.Callback] = [RunctlCallback(progress_every=4)]  # line 2: into the Trainer
    if args.own_checkpoint:
        ckpt_dir = Path(args.run_dir or ".") / "checkpoints"
        callbacks.append(ModelCheckpoint(dirpath=ckpt_dir, filename="own-{epoch}", save_top_k=-1, save_last=True))
    trainer = L.Trainer(**plain, logger=False, callbacks=callbacks)  # type: ignore[arg-type]
    if args.plain_fit:  # still exits 143 on SIGTERM; a crash exits 1 (Python's status), not 3
        trainer.fit(model, train, val, ckpt_path=args.ckpt)
        return 0
    return run_fit(trainer, model, train_dataloaders=train, val_dataloaders=val,
                   ckpt_path=args.ckpt)  # line 3: fit with the exit status of the [exit] line


if __name__ == "__main__":
    sys.exit(main())
