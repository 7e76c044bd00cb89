"""A log followed into a RunState: `LogFollower` (incremental) and `read_state` (one shot).

With `metrics_csv` (a glob: a CSVLogger's metrics.csv of a script with no runctl callback), those
files' epochs and metrics are folded in too, after the log's events, at most once a second.
"""

from __future__ import annotations

import os
import time

from tui.log import events as evt
from tui.log.csvmetrics import CsvMetrics
from tui.log.tail import CHUNK, LogTail
from tui.state.run import RunState

CSV_EVERY_S = 1.0


class LogFollower(LogTail):
    """`tui.log.tail.LogTail` whose events are folded into `.state` as they are read."""

    def __init__(self, path: str | os.PathLike[str], fast: bool = True, chunk: int = CHUNK,
                 keep_lines: int = 0, keep_bytes: int = 2 << 20, metrics_csv: str | None = None) -> None:
        super().__init__(path, fast, chunk, keep_lines, keep_bytes)
        self.state = RunState()
        self._csv = CsvMetrics(metrics_csv) if metrics_csv else None
        self._csv_at = -CSV_EVERY_S

    def _run(self, out: list[evt.Event] | None) -> None:
        super()._run(out)
        now = time.monotonic()
        if self._csv is not None and (out is None or now - self._csv_at >= CSV_EVERY_S):
            self._csv_at = now
            events: list[evt.Event] = list(self._csv.poll())
            if events:
                self._emit(events, out)

    def _emit(self, events: list[evt.Event], out: list[evt.Event] | None) -> None:
        apply = self.state.apply
        for ev in events:
            apply(ev)
        super()._emit(events, out)


def read_state(path: str | os.PathLike[str], fast: bool = True,
               metrics_csv: str | None = None) -> RunState:
    """One-shot: the state of a whole log file (a fresh RunState if the file does not exist)."""
    follower = LogFollower(path, fast=fast, metrics_csv=metrics_csv)
    try:
        follower.catch_up()
    finally:
        follower.close()
    return follower.state
