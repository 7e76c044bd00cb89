"""The log stream's plumbing: line-buffered stdout, Hydra-shaped lines (docs/log-format.md).

Standard library only (no torch), so the engine can report bad input before importing Lightning;
`engine.stream` (the Lightning callback) builds on it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import warnings

LOGGER_NAME = "engine"
EXIT_FINISHED = 0  # all epochs ran
EXIT_BAD_INPUT = 2  # bad config, data or checkpoint path: nothing was written
EXIT_FAILED = 3  # the run failed while training
EXIT_TERMINATED = 143  # SIGTERM (128 + 15)
EXIT_REQUEUED = 75  # SIGUSR1 under Slurm: checkpoint saved, the job requeued (EX_TEMPFAIL: try again)
FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"
EPOCH_RULE = "=" * 50


class _OneLine(logging.Formatter):
    """Never let a message break the one-line-per-record contract."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text.replace("\r", " ").replace("\n", " | ")


def global_rank() -> int:
    """This process's rank in a distributed run (0 when not distributed)."""
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def configure_logger(name: str) -> logging.Logger:
    """Logger `name` on line-buffered stdout in the Hydra shape; ranks > 0 log errors only."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        with contextlib.suppress(ValueError):
            reconfigure(line_buffering=True)
    log = logging.getLogger(name)
    log.handlers.clear()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_OneLine(FORMAT))
    log.addHandler(handler)
    log.setLevel(logging.INFO if global_rank() == 0 else logging.ERROR)
    log.propagate = False
    return log


def setup_logger() -> logging.Logger:
    """Configure the engine's `engine` logger and quiet the libraries."""
    log = configure_logger(LOGGER_NAME)
    quiet_libraries()
    return log


def quiet_libraries() -> None:
    """Keep Lightning's banners and known-harmless warnings out of the stream."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for pattern in (
        ".*does not have many workers.*",
        ".*LeafSpec.*",
        ".*You're resuming from a checkpoint that ended before the epoch ended.*",
        ".*Checkpoint directory .* exists and is not empty.*",
        ".*The number of training batches .* is smaller than the logging interval.*",
        ".*torch.cuda.amp.*",
        ".*isinstance\\(treespec, LeafSpec\\).*",
    ):
        warnings.filterwarnings("ignore", message=pattern)


def hms(seconds: float) -> str:
    """Seconds -> `HH:MM:SS` (`--:--:--` when unknown)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "--:--:--"
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def fnum(x: float | None, spec: str) -> str:
    """`format(x, spec)`, or `nan` for a missing or non-finite value."""
    if x is None or not math.isfinite(x):
        return "nan"
    return format(x, spec)
