"""The runctl stream: the bundled engine's log and a script with `engine.stream.RunctlCallback`.

Hydra-prefixed lines (`[time][logger][LEVEL] - message`, docs/log-format.md, rows 1-39): epochs,
progress, losses, per-horizon metrics, `[metrics]` (every metric the module logs), checkpoints,
the exit line. Read by the structured recognisers (`tui.log.recognise`, shared with the original
pipeline's format, whose lines are partly the same) and found by the compiled prefix scanner:
`STARTS` are the message starts it looks for right after a prefix's ` - ` (tui/log/_scanc.c has the
same list compiled; tests/test_scanc.py checks the two agree).
"""

from __future__ import annotations

from tui.log.events import Event
from tui.log.parse import parse_line
from tui.log.sources.base import LineSource

_TAG = rb"\[[\w\x80-\xff]{1,80}+\] "  # `[main] `: a tag of word (or non-ASCII) characters

STARTS = (
    rb"\[exit", rb"\[error", rb"\[signal", rb"\[epoch-end", rb"\[metrics", rb"\[data-filter",
    rb"\[GRAD-MONITOR", _TAG + rb"Epoch ", rb"Epoch \d", rb"Sharpe: ", rb"Starting ", rb"Val metrics",
    rb"train/total_loss: ", rb"val/loss: ", rb"Learning rate: ", rb"Low prediction variance",
    rb"Best validation loss", rb"Best model saved", rb"Checkpoint saved: ", rb"Creating data loaders",
    rb"GPU: ", rb"Using device: ", rb"Found ", rb"Fitting OnlineRobustScaler",
    rb"OnlineRobustScaler fitted", rb"Data loaders created", rb"runctl engine ", rb"runctl callback ",
    rb"=== Training Complete",
)


def parse(line: str) -> Event | None:
    """One whole line of either prefixed format -> its event (no context of the lines before)."""
    return parse_line(line)


_P = "[2026-11-24 04:21:51,473][engine][INFO] - "
_W = "[2026-11-24 04:21:52,001][engine][WARNING] - "
EXAMPLES = (  # docs/log-format.md's examples, one per line type that makes an event
    _P + "runctl engine 0.1.0 starting: pid=4242 run_dir=_logs/runs/smoke_20261124_042151",
    _P + "runctl callback 0.1.0 starting: pid=4242 run_dir=_logs/runs/mine_20261124_042151",
    _P + "Using device: cpu",
    _P + "GPU: none (CPU, 2 threads)",
    _P + "Found hidden_size=64 at path: model.hidden_size",
    _P + "\U0001F4C2 Found 1 train, 1 val, 1 test files",
    _P + "[data-filter] Global minimum date filter: 2016-01-01",
    _P + "Fitting OnlineRobustScaler on training data (max_samples=8192, rows=120000)...",
    _P + "OnlineRobustScaler fitted on 8192 samples (24 features)",
    _P + "Creating data loaders...",
    _P + "Data loaders created: train=900 days (113 batches), val=150 days (19 batches), seq_len=20, features=24",
    _P + "Starting training: max_epochs=10 steps_per_epoch=113",
    _P + "[main] Epoch 3/10",
    _P + "Learning rate: 0.000500",
    _P + "[progress] epoch=3/10 step=40/113 (35%) steps/s=9.81 eta=00:00:07 loss=0.3481",
    _P + "[GRAD-MONITOR] step=200 epoch=2 batch=87 encoder:l2=3.1e-02 max=4.0e-03 grad=12/12 small=0 none=0",
    _W + "[GRAD-MONITOR] gat: vanishing gradients (l2=3.0e-09, none=0/6)",
    _P + "train/total_loss: 0.350750",
    _P + "val/loss: 0.351234",
    _P + "Val metrics (z) h=20: MAE=0.7812 RMSE=0.9951 IC=0.0412 RankIC=0.0398 SCALE(yhat/y)=0.31 HIT=0.5123",
    _W + "Low prediction variance for horizon 1: scale_ratio=0.0012, yhat_std=0.000900",
    _P + "Sharpe: 0.1234",
    _P + "[metrics] epoch=3 train_acc=0.901042 train_loss=0.359063 val_acc=0.84375 val_loss=0.35852",
    _P + "[epoch-end] epoch=3/10 train_loss=0.350750 val_loss=0.351234 sharpe=0.1234 sharpe_ann=1.9589 time=12.3s",
    _P + "Checkpoint saved: _logs/runs/x/checkpoints/epoch=003.ckpt (epoch=3)",
    _P + "Best model saved (main) (val_loss: 0.3512)",
    _W + "[data] 12 days dropped: fewer than 20 stocks",
    "[2026-11-24 04:21:52,001][engine][ERROR] - [error] non-finite loss: train/total_loss=nan at epoch=2 step=57",
    _W + "[signal] SIGTERM received: saving checkpoint and stopping",
    _P + "=== Training Complete ===",
    _P + "Best validation loss: 0.3512",
    _P + "[exit] reason=finished status=0 epochs_completed=10",
)

SOURCE = LineSource(
    name="runctl",
    title="the runctl stream (the bundled engine, a script with RunctlCallback): docs/log-format.md",
    parse=parse,
    examples=EXAMPLES,
    prefixed=True,
    starts=STARTS,
)
