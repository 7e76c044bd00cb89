"""A stand-in trainer for the fault tests (tests/test_faults.py): one epoch per go-file, no torch.

    python tests/scripts/stepped_train.py RUN_DIR EPOCHS [--quiet] [--resume CKPT]

Before epoch e it waits for RUN_DIR/go<e>; then it writes the engine's epoch lines (docs/log-format.md:
`[main] Epoch e/n`, the losses, `Sharpe:`, `[epoch-end]`), saves `checkpoints/epoch=NNN.ckpt` (a zip
with a data.pkl, as a torch checkpoint is) and copies it to `last.ckpt`, says `Checkpoint saved`,
and touches RUN_DIR/done<e>. `--quiet`: no epoch lines at all, only a `step` line per epoch (a
plain script whose log says nothing runctl folds). `--resume CKPT`: continue after the epoch in
CKPT's name (`epoch=NNN`, `last` -> the newest epoch=NNN.ckpt), says `resumed from CKPT`.
It exits 0 after the last epoch (the supervise shim then records `finished`), 143 on SIGTERM.
Starts in well under a second: only the standard library.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import sys
import time
import zipfile
from pathlib import Path

FORMAT = "[%(asctime)s][engine][INFO] - %(message)s"


def main() -> int:
    args = sys.argv[1:]
    quiet = "--quiet" in args
    resume = args[args.index("--resume") + 1] if "--resume" in args else None
    run_dir, epochs = Path(args[0]), int(args[1])
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(FORMAT))
    log = logging.getLogger("stepped")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ckpts = run_dir / "checkpoints"
    ckpts.mkdir(parents=True, exist_ok=True)
    first = 1
    if resume is not None:
        m = re.search(r"epoch=(\d+)", Path(resume).name)
        if m is None:
            done = sorted(int(p.stem.split("=")[1]) for p in ckpts.glob("epoch=*.ckpt"))
            first = (done[-1] if done else 0) + 1
        else:
            first = int(m.group(1)) + 1
        print(f"resumed from {resume}", flush=True)
    for e in range(first, epochs + 1):
        go = run_dir / f"go{e}"
        while not go.exists():
            time.sleep(0.02)
        if quiet:
            print(f"step {e * 10}", flush=True)
        else:
            log.info("=" * 50)
            log.info(f"[main] Epoch {e}/{epochs}")
            log.info(f"train/total_loss: {1 / e:.6f}")
            log.info(f"val/loss: {1.1 / e:.6f}")
            log.info(f"Sharpe: {0.1 * e:.4f}")
            log.info(f"[epoch-end] epoch={e}/{epochs} train_loss={1 / e:.6f} val_loss={1.1 / e:.6f} "
                     f"sharpe={0.1 * e:.4f} sharpe_ann=0.0000 time=0.1s")
        path = ckpts / f"epoch={e:03d}.ckpt"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", f"epoch {e}".encode())
        tmp = ckpts / ".last.ckpt.tmp"
        shutil.copyfile(path, tmp)
        os.replace(tmp, ckpts / "last.ckpt")
        if not quiet:
            log.info(f"Checkpoint saved: {path} (epoch={e})")
        (run_dir / f"done{e}").touch()
    return 0


if __name__ == "__main__":
    sys.exit(main())
