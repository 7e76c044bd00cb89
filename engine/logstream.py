"""The engine's one log stream: line-buffered stdout, Hydra-shaped lines (docs/log-format.md)."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings

LOGGER_NAME = "engine"
FORMAT = "[%(asctime)s][engine][%(levelname)s] - %(message)s"
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


def setup_logger() -> logging.Logger:
    """Configure the `engine` logger on stdout; ranks > 0 stay silent except for errors."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        with contextlib.suppress(ValueError):
            reconfigure(line_buffering=True)
    log = logging.getLogger(LOGGER_NAME)
    log.handlers.clear()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_OneLine(FORMAT))
    log.addHandler(handler)
    log.setLevel(logging.INFO if global_rank() == 0 else logging.ERROR)
    log.propagate = False
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
