"""A log followed into a RunState: `LogFollower` (incremental) and `read_state` (one shot).

The run's metric sources (`tui.log.sources.SourceConfig`) say what is read besides the log's own
lines: the line sources the scanner adds (zero-configuration stdout shapes, explicit patterns)
and the files beside the log (a CSVLogger's metrics.csv, TensorBoard event files, JSON lines, the
HF Trainer's state), whose events are folded in after the log's, at most once a second.
"""

from __future__ import annotations

import os
import time

from tui.log import events as evt
from tui.log.sources import SourceConfig, file_readers, line_set
from tui.log.tail import CHUNK, LogTail
from tui.state.run import RunState

FILES_EVERY_S = 1.0


class LogFollower(LogTail):
    """`tui.log.tail.LogTail` whose events are folded into `.state` as they are read."""

    def __init__(self, path: str | os.PathLike[str], fast: bool = True, chunk: int = CHUNK,
                 keep_lines: int = 0, keep_bytes: int = 2 << 20, metrics_csv: str | None = None,
                 sources: SourceConfig | None = None) -> None:
        if sources is None:
            sources = SourceConfig(files=(("csv", metrics_csv),) if metrics_csv else ())
        super().__init__(path, fast, chunk, keep_lines, keep_bytes, lines=line_set(sources))
        self.sources = sources
        self.state = RunState()
        self._files = file_readers(sources)
        self._files_at = -FILES_EVERY_S

    def _run(self, out: list[evt.Event] | None) -> None:
        self.state.read_at = time.time()  # one time per read: a backlog read at once has no pace
        super()._run(out)
        now = time.monotonic()
        if self._files and (out is None or now - self._files_at >= FILES_EVERY_S):
            self._files_at = now
            for _name, reader in self._files:
                events = list(reader.poll())
                if events:
                    self._emit(events, out)

    def _emit(self, events: list[evt.Event], out: list[evt.Event] | None) -> None:
        apply = self.state.apply
        for ev in events:
            apply(ev)
        super()._emit(events, out)


def read_state(path: str | os.PathLike[str], fast: bool = True, metrics_csv: str | None = None,
               sources: SourceConfig | None = None) -> RunState:
    """One-shot: the state of a whole log file and its sources (a fresh RunState if the file does
    not exist)."""
    follower = LogFollower(path, fast=fast, metrics_csv=metrics_csv, sources=sources)
    try:
        follower.catch_up()
    finally:
        follower.close()
    return follower.state
