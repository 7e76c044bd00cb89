"""A plain PyTorch training loop, as people write them: no framework, no runctl instrumentation.

A tiny two-layer classifier on random torch data. Per epoch: a tqdm bar over the batches (postfix
`loss=...`), then one line `Epoch E: train_loss=X val_loss=Y val_acc=Z` (E counts from 1). A
SummaryWriter in OUT/tb writes `train/loss` every step and `val/loss`, `val/acc` every epoch, all at
the global step (the number of optimizer steps so far). After every epoch OUT/ckpt.pt (model,
optimizer, epoch, global step) is replaced atomically.

    python tests/scripts/plain_loop.py --out DIR [--max-epochs N] [--resume] [--sleep S]
                                       [--steps N] [--lr X]

--resume: continue from OUT/ckpt.pt at the epoch after the one saved there (exit 2 if there is
none). --sleep: seconds to sleep per training step (a window to kill the run). --steps: training
batches per epoch. SIGTERM gets Python's default handling: the process just dies.
Imports only torch, tqdm and torch.utils.tensorboard; a default run takes a few seconds on a CPU.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

FEATURES = 8
BATCH = 16
VAL_BATCHES = 4


def make_data(batches: int, seed: int) -> TensorDataset:
    """`batches` batches of two-class data: the label is the sign of a fixed linear score, with
    some noise, so accuracy climbs but stays below 1."""
    g = torch.Generator().manual_seed(seed)
    w = torch.linspace(-1.0, 1.0, FEATURES)
    x = torch.randn(batches * BATCH, FEATURES, generator=g)
    score = x @ w + 0.5 * torch.randn(batches * BATCH, generator=g)
    return TensorDataset(x, (score > 0).long())


def make_model() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(FEATURES, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2)
    )


def save_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    global_step: int,
) -> None:
    """Write to a temporary file beside `path`, then rename it over `path` (atomic on POSIX)."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,  # the last completed epoch, 1-based
            "global_step": global_step,
        },
        tmp,
    )
    os.replace(tmp, path)


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: DataLoader) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over `loader`."""
    model.eval()
    loss_sum, correct, n = 0.0, 0, 0
    for x, y in loader:
        logits = model(x)
        loss_sum += torch.nn.functional.cross_entropy(logits, y, reduction="sum").item()
        correct += int((logits.argmax(1) == y).sum())
        n += len(y)
    model.train()
    return loss_sum / n, correct / n


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path, help="output folder (tb/, ckpt.pt)")
    p.add_argument("--max-epochs", type=int, default=4)
    p.add_argument("--resume", action="store_true", help="continue from OUT/ckpt.pt")
    p.add_argument("--sleep", type=float, default=0.0, help="seconds to sleep per training step")
    p.add_argument("--steps", type=int, default=8, help="training batches per epoch")
    p.add_argument("--lr", type=float, default=0.05)
    args = p.parse_args()

    torch.manual_seed(0)
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt_path = args.out / "ckpt.pt"
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    start_epoch, global_step = 1, 0
    if args.resume:
        if not ckpt_path.exists():
            print(f"error: --resume but no checkpoint at {ckpt_path}", file=sys.stderr)
            return 2
        state = torch.load(ckpt_path, map_location="cpu")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, global_step = state["epoch"] + 1, state["global_step"]
        print(f"Resuming from {ckpt_path} at epoch {start_epoch}")

    train_set = make_data(args.steps, seed=1)
    val_loader = DataLoader(make_data(VAL_BATCHES, seed=2), batch_size=BATCH)
    writer = SummaryWriter(log_dir=str(args.out / "tb"))
    for epoch in range(start_epoch, args.max_epochs + 1):
        # A generator seeded by the epoch: a resumed run sees the same batches as an unbroken one.
        loader = DataLoader(
            train_set,
            batch_size=BATCH,
            shuffle=True,
            generator=torch.Generator().manual_seed(epoch),
        )
        loss_sum = 0.0
        bar = tqdm(loader, desc=f"Epoch {epoch}")
        for x, y in bar:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            global_step += 1
            loss_sum += loss.item()
            writer.add_scalar("train/loss", loss.item(), global_step)
            bar.set_postfix(loss=f"{loss.item():.4f}")
            if args.sleep:
                time.sleep(args.sleep)
        train_loss = loss_sum / len(loader)
        val_loss, val_acc = evaluate(model, val_loader)
        writer.add_scalar("val/loss", val_loss, global_step)
        writer.add_scalar("val/acc", val_acc, global_step)
        writer.flush()  # so that a reader of tb/ sees each epoch as it ends
        print(
            f"Epoch {epoch}: train_loss={train_loss:.4f} val_loss={val_loss:.4f} "
            f"val_acc={val_acc:.4f}"
        )
        save_checkpoint(ckpt_path, model, optimizer, epoch, global_step)
    writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
