"""Lightning's CSVLogger `metrics.csv` -> `Metrics` events: a plain script's epochs and metrics.

A script with no runctl callback still writes its metrics through Lightning's CSVLogger (columns
`epoch`, `step` and one per logged name, a row per logging call, the file rewritten as columns
appear). `CsvMetrics(pattern)` follows every file matching a glob (`{run_dir}/**/metrics.csv`;
a resumed run's CSVLogger starts a new `version_N` folder) and re-reads a file only when its size
or mtime changed. Per epoch (CSV epochs are 0-based; the events are 1-based like the log's) the
last value of each column is kept; an epoch is `final` once it has an epoch-level column (a
validation metric, `val...`, or an `..._epoch` one). Re-reading yields the same events, so folding
them again is harmless.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

from tui.log.events import Event, Metrics
from tui.log.sources.base import FileSource
from tui.log.sources.files import GlobWatch

_SKIP = ("epoch", "step")


def _float(text: str | None) -> float | None:
    if text is None or not text.strip():
        return None
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _final(name: str) -> bool:
    return name.startswith("val") or name.endswith("_epoch")


def read_metrics_csv(path: Path | str) -> list[Metrics]:
    """One metrics.csv -> one Metrics event per epoch, in epoch order ([] if unreadable)."""
    by_epoch: dict[int, dict[str, float | None]] = {}
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            for row in csv.DictReader(fh):
                e = _float(row.get("epoch"))
                if e is None or e < 0 or e != int(e):
                    continue
                values = by_epoch.setdefault(int(e) + 1, {})
                for k, v in row.items():
                    if k and k not in _SKIP and (x := _float(v)) is not None:
                        values[k] = x
    except (OSError, csv.Error):
        return []
    return [Metrics(e, tuple(sorted(v.items())), "csv", any(_final(k) for k in v))
            for e, v in sorted(by_epoch.items()) if v]


class CsvMetrics:
    """Every file matching `pattern` (a glob, `**` allowed), re-read when it changed."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.watch = GlobWatch(pattern)

    def poll(self) -> Sequence[Event]:
        """Events of the files that are new or changed since the last poll (oldest file first)."""
        out: list[Event] = []
        for name in self.watch.files():
            if self.watch.changed(name):
                out += read_metrics_csv(name)
        return out


SOURCE = FileSource(
    name="csv",
    title="Lightning's CSVLogger metrics.csv",
    preset_key="csv",
    default_glob="{run_dir}/**/metrics.csv",
    reader=CsvMetrics,
)
