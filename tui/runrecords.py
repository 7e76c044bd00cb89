"""The plain records a run state is made of: an epoch of the timeline, its per-horizon metrics, the
latest progress line; the lifecycle and start-up checklist vocabularies. No I/O, no Textual.

`tui.runstate.RunState` holds them (and re-exports every name here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Lifecycle values, in the order a healthy run goes through them.
LIFECYCLE = ("launching", "initializing", "training", "validating", "finished", "crashed", "killed")

# The seed's "Initialization Phase" checklist: (key, label).
PHASES: tuple[tuple[str, str], ...] = (
    ("device", "Device detected"),
    ("hidden_size", "Model hidden_size configured"),
    ("files", "Data files found"),
    ("scaler", "OnlineRobustScaler fitted"),
    ("date_filter", "Global date filter applied"),
    ("loaders", "Data loaders created"),
    ("first_epoch", "First epoch started"),
)

HORIZONS = (1, 5, 10, 20)


def finite_or_none(x: float | None) -> float | None:
    """nan/inf -> None, so JSON never carries NaN."""
    if x is None or not math.isfinite(x):
        return None
    return x


@dataclass
class HorizonMetrics:
    """Validation metrics at one horizon for one epoch (None: not reported or nan)."""

    ic: float | None = None
    rank_ic: float | None = None
    scale: float | None = None
    mae: float | None = None
    rmse: float | None = None
    hit: float | None = None


@dataclass
class EpochRecord:
    """One epoch of the timeline."""

    epoch: int
    max_epochs: int | None = None
    started_at: float | None = None  # unix seconds, from the log line's timestamp
    ended_at: float | None = None  # time of the epoch's last validation line
    train_loss: float | None = None
    val_loss: float | None = None
    sharpe: float | None = None
    horizons: dict[int, HorizonMetrics] = field(default_factory=dict)
    lr: float | None = None
    validated: bool = False  # at least one per-horizon metrics line or Sharpe seen
    sharpe_ann: float | None = None  # our [epoch-end] line's annualised Sharpe
    seconds: float | None = None  # our [epoch-end] line's epoch duration


@dataclass
class Progress:
    """The latest in-epoch progress line."""

    epoch: int | None = None
    step: int | None = None
    steps: int | None = None
    steps_per_s: float | None = None
    eta_s: float | None = None
    loss: float | None = None
