"""The original ATFT-GAT-FAN pipeline's log (shared/reference/atft-pipeline.md).

The wrapper's lines (`YYYY-mm-dd HH:MM:SS,mmm - logger - LEVEL - message`: every such line is
parsed, found by the prefix scanner's `X - ` rule) and the trainer's Hydra lines; the messages are
read by the same recognisers as the runctl stream's (`tui.log.recognise`), which shares many of
them (`Epoch N/M`, `Sharpe:`, `Val metrics`). `STARTS`: the message starts only this format
writes, beside the runctl stream's (tui/log/sources/runctl.py).
"""

from __future__ import annotations

from tui.log.sources.base import LineSource
from tui.log.sources.runctl import parse

STARTS = (
    rb"[\x80-\xff]",  # an emoji-led wrapper message
    rb"\[[\w\x80-\xff]{1,80}+\] Validation loss",
    rb"Val Metrics", rb"Achieved Sharpe", rb"Iterable datasets ready",
)

_H = "[2025-10-28 23:59:50,149][__main__][INFO] - "
_W = "2025-10-28 23:54:09,473 - __main__ - INFO - "
EXAMPLES = (
    _W + "\U0001F680 Complete ATFT-GAT-FAN Training Pipeline started",
    _H + "Starting production training",
    _H + "Iterable datasets ready (train=100 files, val=100 files)",
    _H + "[main] Validation loss: 0.3521",
    _H + "Val metrics (z) h=1: MAE=0.7812 RMSE=0.9951 R2=-0.0012 IC=0.0061 NAIVE_RMSE=0.9950 SCALE(yhat/y)=0.00 CAL=0.01",
    _H + "Epoch 3/10: Train Loss=0.3521, Val Loss=0.3610, LR=0.0002",
    _H + "Val Metrics - Sharpe: 0.0818, IC: -0.0603, RankIC: -0.0412, HitRate(h1): 0.5012",
    "[2025-10-28 23:59:50,149][__main__][WARNING] - Low prediction variance for horizon 5: scale_ratio=0.0010, yhat_std=0.000100",
    _W + "\U0001F3AF Achieved Sharpe Ratio: 0.0818",
    _W + "\u2705 Complete training pipeline completed successfully",
    "2025-10-28 23:59:59,001 - __main__ - ERROR - \u274c Complete training pipeline failed: CUDA out of memory",
    "Epoch 1: 9it [00:35,  3.69s/it, loss=0.3544]",
)

SOURCE = LineSource(
    name="atft",
    title="the original pipeline's log (its wrapper's and trainer's lines)",
    parse=parse,
    examples=EXAMPLES,
    prefixed=True,
    starts=STARTS,
)
