"""The one reader: follows a run's log and process, and posts snapshots and line chunks.

Runs inside the app's single follower thread worker; nothing here touches a widget.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.message import Message

from tui.messages import CheckpointDecided, LogChunk, ProcSample, RunEnded, RunSnapshot
from tui.presets import Baselines, Preset
from tui.runstate import RunState
from tui.verdicts import TERMINAL, Verdicts, evaluate
from tui.widgets.view import ProcView, RunView, field_of

MAX_CHUNK = 5000  # the log pane keeps no more than this many lines
PROC_EVERY_S = 1.0
MANIFEST_EVERY_S = 1.0

Post = Callable[[Message], Any]
Probe = Callable[[Any], ProcView | None]


class RawTail:
    """Raw lines appended to a file since the last call (partial last line kept back)."""

    def __init__(self, path: Path, backlog: int = 2 << 20) -> None:
        self.path = path
        self.backlog = backlog  # on the first read, skip all but the last `backlog` bytes
        self.offset = 0
        self._partial = b""
        self._ino: int | None = None

    def read(self) -> tuple[list[str], bool]:
        """(new complete lines, reset) where reset means the file was truncated or replaced."""
        try:
            st = os.stat(self.path)
        except OSError:
            return [], False
        reset = False
        if (self._ino is not None and st.st_ino != self._ino) or st.st_size < self.offset:
            self.offset, self._partial, reset = 0, b"", True
        self._ino = st.st_ino
        if st.st_size == self.offset:
            return [], reset
        skip = self.offset == 0 and st.st_size > self.backlog
        if skip:
            self.offset = st.st_size - self.backlog
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(st.st_size - self.offset)
        self.offset += len(data)
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        if skip and lines:
            lines = lines[1:]  # the first one is cut
        return [ln.decode("utf-8", "replace").rstrip("\r") for ln in lines], reset


class RunWatch:
    """One run: its follower (events -> state), its raw tail, its manifest and its process."""

    def __init__(
        self, post: Post, log: Path, follower: Any, *, run: str | None = None, manifest: Any = None,
        preset: Preset | None = None, baselines: Baselines | None = None, store: Any = None,
        probe: Probe | None = None, clock: Callable[[], float] = time.time,
    ) -> None:
        self.post, self.log, self.follower = post, log, follower
        self.run, self.manifest, self.preset, self.baselines = run, manifest, preset, baselines
        self.store, self.probe, self.clock = store, probe, clock
        self.tail = RawTail(log)
        self._first = True
        self._decided: set[str] = set()
        self._last_state: str | None = None
        self._next_proc = 0.0
        self._next_manifest = 0.0
        self._manifest_mtime: float | None = None
        self._alive: bool | None = None
        self.view: RunView | None = None

    def step(self) -> bool:
        """Read what is new; post at most one chunk, one snapshot and one process sample.

        Returns whether the log grew (the caller polls less often while it does not).
        """
        now = time.monotonic()
        lines, reset = self.tail.read()
        events = self.follower.poll()
        if lines or reset:
            self.post(LogChunk(lines[-MAX_CHUNK:], reset=reset or self._first,
                               skipped=max(0, len(lines) - MAX_CHUNK)))
        changed = bool(events) or self._first
        if now >= self._next_manifest:
            self._next_manifest = now + MANIFEST_EVERY_S
            changed |= self._refresh_manifest()
        if now >= self._next_proc and self.probe is not None:
            self._next_proc = now + PROC_EVERY_S
            proc = self.probe(self.manifest)
            alive = bool(proc and proc.alive)
            changed |= alive != self._alive
            self._alive = alive
            self.post(ProcSample(proc))
        if changed:
            self._snapshot()
        self._first = False
        return bool(lines or events)

    def _refresh_manifest(self) -> bool:
        if self.store is None or self.run is None:
            return False
        try:
            mtime = self.store.manifest_path(self.run).stat().st_mtime
        except OSError:
            return False
        if mtime == self._manifest_mtime:
            return False
        self._manifest_mtime = mtime
        try:
            self.manifest = self.store.get(self.run)
        except Exception:  # noqa: BLE001 - a half-written manifest: try again next time
            return False
        return True

    def _state(self) -> RunState:
        st: RunState = copy.deepcopy(self.follower.state)
        if self.store is not None and self.manifest is not None and self._alive is not None:
            st = self.store.judge(self.manifest, st, alive=self._alive)
        elif self.run is not None:
            st.run = st.run or self.run
        return st

    def _snapshot(self) -> None:
        st = self._state()
        verdicts: Verdicts | None = None
        if self.preset is not None:
            verdicts = evaluate(self.preset, st, self.baselines)
        launched = field_of(self.manifest, "created_at")
        self.view = RunView(run=self.run or st.run, state=st, preset=self.preset, verdicts=verdicts,
                            log_path=self.log, launched_at=launched, manifest=self.manifest)
        self.post(RunSnapshot(self.view))
        self._notify(st, verdicts)

    def _notify(self, st: RunState, verdicts: Verdicts | None) -> None:
        decided = [c for c in (verdicts.checkpoints if verdicts else ()) if c.status == "decided"]
        if not self._first:
            for cp in decided:
                if cp.title not in self._decided:
                    self.post(CheckpointDecided(self.view.run if self.view else None, cp.title,
                                                cp.mark, f"{cp.verdict}: {cp.say}"))
            if st.state in TERMINAL and self._last_state not in TERMINAL:
                detail = st.error or st.exit_reason or st.state
                self.post(RunEnded(self.view.run if self.view else None, st.state, detail))
        self._decided = {c.title for c in decided}
        self._last_state = st.state
