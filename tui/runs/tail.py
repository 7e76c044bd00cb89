"""One run followed: its log read incrementally, judged with its manifest's liveness.

The log is read by one `tui.state.follow.LogFollower`: each poll reads only the bytes appended since
the last one. A log truncated, renamed away or deleted under a live run is followed where the
run's process writes it (`RunStore.writer_file`: its `/proc/PID/fd/1`), and nothing read before is
dropped; the state's `log_event` says what happened. A run whose backend copies its log here (ssh)
has the copy brought up to date before each read (`Backend.log_feed`). Its
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
        self.follower = LogFollower(self.log, sources=manifest.source_config if manifest else None)
        self._first = True  # the first poll reads the log afresh (tui.runs.seen)
        if manifest is not None:
            self.follower.writer = lambda: store.writer_file(self.manifest) if self.manifest else None
        # what keeps the log here growing, where its backend copies it (ssh); None: the run writes it
        self.feed = store.backend(manifest).log_feed(store, manifest) if manifest is not None else None
        self.alive: bool | None = None  # the last poll's liveness sample (None: no manifest)

    def poll(self) -> RunState:
        """The state now; liveness is sampled before the log is read (a dead process's log is complete)."""
        if self.manifest is not None:
            self.manifest = self.store.for_log(self.log) or self.manifest  # kill / resume update it
            self.alive = self.store.is_running(self.manifest)
        if self.feed is not None:
            self.feed.poll()
        self.follower.poll()
        if self.manifest is not None and self.feed is None:  # a log cut under the run loses nothing
            self.store.seen_read(self.manifest, self.follower.state, self._first, alive=self.alive)
            self._first = False
        return live_state(self.follower.state, self.store, self.manifest, self.alive)

    def close(self) -> None:
        """Close the log file (and stop its backend's feed)."""
        if self.feed is not None:
            self.feed.close()
        self.follower.close()
