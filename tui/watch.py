"""Following one run from the command line: `runctl status --watch` and `launch/resume --follow`.

The log is read by one `tui.follow.LogFollower`: each poll reads only the bytes appended since the
last one (a truncated log starts again, a rotated one is drained and then followed anew). Its folded
state, with the manifest's liveness applied by `tui.store.live_state` (the fold the TUI's follower
worker uses), is what gets printed. No torch, no Textual.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tui.follow import LogFollower
from tui.runstate import RunState
from tui.store import Manifest, RunStore, live_state
from tui.textview import ProgressPrinter, Say


class RunTail:
    """One log followed incrementally, judged with its manifest (re-read each poll) when it has one."""

    def __init__(self, store: RunStore, log: Path, manifest: Manifest | None = None) -> None:
        self.store, self.log, self.manifest = store, Path(log), manifest
        self.follower = LogFollower(self.log)
        self.alive: bool | None = None  # the last poll's liveness sample (None: no manifest)

    def poll(self) -> RunState:
        """The state now; liveness is sampled before the log is read (a dead process's log is complete)."""
        if self.manifest is not None:
            self.manifest = self.store.for_log(self.log) or self.manifest  # kill / resume update it
            self.alive = self.store.is_running(self.manifest)
        self.follower.poll()
        return live_state(self.follower.state, self.store, self.manifest, self.alive)

    def close(self) -> None:
        """Close the log file."""
        self.follower.close()


def follow_run(
    store: RunStore, m: Manifest, judge: Callable[[RunState], dict[str, Any] | None], say: Say,
    horizon: int = 20, interval: float = 1.0, sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Print the run's progress until its process ends; 0 only if it finished."""
    printer = ProgressPrinter(say, horizon)
    tail = RunTail(store, store.log_path(m.run), m)
    try:
        while True:
            st = tail.poll()
            v = judge(st)
            printer.update(st, v)
            if not tail.alive:
                printer.end(st, v)
                return 0 if st.state == "finished" else 1
            sleep(interval)
    finally:
        tail.close()
