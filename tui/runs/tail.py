"""One run followed: its log read incrementally, judged with its manifest's liveness.

The log is read by one `tui.state.follow.LogFollower`: each poll reads only the bytes appended since
the last one (a truncated log starts again, a rotated one is drained and then followed anew). Its
folded state, with the manifest's liveness applied by `tui.runs.store.live_state` (the fold the
TUI's follower worker uses), is the run's state now (`runctl status`, `--watch`, `--follow`, the
autopilot). No torch, no Textual.
"""

from __future__ import annotations

from pathlib import Path

from tui.runs.store import Manifest, RunStore, live_state
from tui.state.follow import LogFollower
from tui.state.run import RunState


class RunTail:
    """One log followed incrementally, judged with its manifest (re-read each poll) when it has one."""

    def __init__(self, store: RunStore, log: Path, manifest: Manifest | None = None) -> None:
        self.store, self.log, self.manifest = store, Path(log), manifest
        self.follower = LogFollower(self.log, metrics_csv=manifest.metrics_csv if manifest else None)
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
