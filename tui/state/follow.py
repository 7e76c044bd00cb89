"""A log followed into a RunState: `LogFollower` (incremental) and `read_state` (one shot)."""

from __future__ import annotations

import os

from tui.log import events as evt
from tui.log.tail import CHUNK, LogTail
from tui.state.run import RunState


class LogFollower(LogTail):
    """`tui.log.tail.LogTail` whose events are folded into `.state` as they are read."""

    def __init__(self, path: str | os.PathLike[str], fast: bool = True, chunk: int = CHUNK,
                 keep_lines: int = 0, keep_bytes: int = 2 << 20) -> None:
        super().__init__(path, fast, chunk, keep_lines, keep_bytes)
        self.state = RunState()

    def _emit(self, events: list[evt.Event], out: list[evt.Event] | None) -> None:
        apply = self.state.apply
        for ev in events:
            apply(ev)
        super()._emit(events, out)


def read_state(path: str | os.PathLike[str], fast: bool = True) -> RunState:
    """One-shot: the state of a whole log file (a fresh RunState if the file does not exist)."""
    follower = LogFollower(path, fast=fast)
    try:
        follower.catch_up()
    finally:
        follower.close()
    return follower.state
