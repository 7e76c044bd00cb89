"""A training script for sweep tests: no framework, a known objective, its own checkpoint.

    python tests/scripts/sweep_target.py --out DIR [--x X] [--y Y] [--max-epochs N] [--sleep S] [--resume]
                                         [--count_in FILE --bad_from K]

Epoch e (1-based) prints `Epoch e: train_loss=... val_loss=...` with
val_loss = (x - 0.3)^2 + (y - 1)^2 + 1/(e + 1): the best point of a sweep is the one nearest
(0.3, 1), whatever the epoch, so a test can check the ranking. After each epoch it writes
OUT/ckpt.json (atomically); `--resume` goes on after the epoch saved there. It sleeps `--sleep`
seconds per epoch (a window to watch or stop it); SIGTERM ends it with Python's default.
`--count_in FILE --bad_from K`: each start appends a line to FILE, and the K-th start (0-based) and
later ones add 10 to every val_loss: a run that goes bad, whatever point a sampler drew for it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--x", type=float, default=0.0)
    p.add_argument("--y", type=float, default=0.0)
    p.add_argument("--max-epochs", type=int, default=3)
    p.add_argument("--sleep", type=float, default=0.2)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--count_in", type=Path)
    p.add_argument("--bad_from", type=int, default=-1)
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    ckpt = a.out / "ckpt.json"
    first = 1
    if a.resume:
        if not ckpt.exists():
            print(f"error: --resume but no checkpoint at {ckpt}", file=sys.stderr)
            return 2
        first = json.loads(ckpt.read_text())["epoch"] + 1
        print(f"Resuming from {ckpt} at epoch {first}", flush=True)
    base = (a.x - 0.3) ** 2 + (a.y - 1.0) ** 2
    if a.count_in is not None:
        with a.count_in.open("a+") as f:
            f.seek(0)
            started = len(f.read().splitlines())
            f.write(f"{a.out}\n")
        if 0 <= a.bad_from <= started:
            base += 10.0
    for e in range(first, a.max_epochs + 1):
        print(f"Epoch {e}/{a.max_epochs}", flush=True)
        time.sleep(a.sleep)
        val = base + 1.0 / (e + 1)
        print(f"Epoch {e}: train_loss={val + 0.05:.6f} val_loss={val:.6f}", flush=True)
        tmp = ckpt.with_suffix(".tmp")
        tmp.write_text(json.dumps({"epoch": e, "x": a.x, "y": a.y}))
        os.replace(tmp, ckpt)
    return 0


if __name__ == "__main__":
    sys.exit(main())
