"""A stand-in for a run Slurm requeues (tests/test_notify.py), no torch, no Slurm.

    python tests/scripts/requeue_train.py RUN_DIR

Writes what engine.stream.RunctlCallback writes around a requeue: its start line, one validated
epoch, then `[exit] reason=requeued status=75` (the job requeued near its time limit); then, as
the restarted job would, once RUN_DIR/go exists: a second start line, epoch 2 and
`[exit] reason=finished status=0`, and exits 0. The process stays alive between the two, as a
requeued job stays queued: the log is what tells the requeue.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

FORMAT = "[%(asctime)s][engine][INFO] - %(message)s"


def main() -> int:
    run_dir = Path(sys.argv[1])
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(FORMAT))
    log = logging.getLogger("requeue")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    for attempt, (epoch, end) in enumerate(((1, "requeued status=75"), (2, "finished status=0")), 1):
        if attempt == 2:
            while not (run_dir / "go").exists():
                time.sleep(0.02)
        log.info(f"runctl callback 0.1.0 starting: pid={os.getpid()} run_dir={run_dir}")
        log.info(f"[main] Epoch {epoch}/2")
        log.info(f"[epoch-end] epoch={epoch}/2 train_loss=0.5 val_loss=0.6 sharpe=0.1 "
                 f"sharpe_ann=0.0 time=0.1s")
        log.info(f"[exit] reason={end} epochs_completed={epoch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
