"""The run queue of one logs folder: presets waiting for GPUs, started in order by one runner.

`<logs>/training/queue.json` holds the waiting items (oldest first), the last items started and
the last ones that could not start; it is written atomically under the controller lock, so it
survives the runner's and the controller's death. One detached runner per logs folder
(`python -m tui.runs.queue_runner`, its identity in `queue_runner.json`) starts the head item as
soon as the GPUs it needs are free; `ensure_runner` (called by every `runctl` command) restarts it
when items wait and no runner is alive. The autopilot's next steps go through the queue too.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from tui.errors import RunctlError
from tui.runs import procs
from tui.runs.lock import controller_lock
from tui.runs.store import RunStore, atomic_write_json

QUEUE_FILE = "queue.json"
RUNNER_FILE = "queue_runner.json"
KEEP = 100  # started / failed items kept for `runctl queue`


class UnknownItem(RunctlError):
    """No waiting queue item of that id."""


@dataclass(frozen=True)
class QueueItem:
    """One preset waiting for its GPUs (validated like a launch when it was added)."""

    id: str
    preset: str
    presets_dir: str
    sets: tuple[str, ...] = ()
    envs: tuple[str, ...] = ()
    name: str | None = None
    gpus: int = 0  # GPUs it waits for
    added_at: float = 0.0
    by: str = ""
    parent: str | None = None  # autopilot: the run whose verdict queued it
    autopilot: dict[str, Any] | None = None  # carried into the launched run's manifest
    run: str | None = None  # once started: the run it became
    started_at: float | None = None
    error: str | None = None  # could not start: why
    waiting_for: str | None = None  # the head of the queue: what it waits for (GPUs, its run name)
    backend: str | None = None  # where it runs (None: its preset's backend)
    sweep: dict[str, Any] | None = None  # a sweep's point: {id, index, values, parallel} (tui.runs.sweeps)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON."""
        out = asdict(self)
        out["sets"], out["envs"] = list(self.sets), list(self.envs)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QueueItem:
        """Parse one item (unknown keys ignored)."""
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in data.items() if k in known}
        kw["sets"], kw["envs"] = tuple(kw.get("sets") or ()), tuple(kw.get("envs") or ())
        return cls(**kw)


@dataclass
class QueueState:
    """The queue file's content."""

    waiting: list[QueueItem] = field(default_factory=list)
    started: list[QueueItem] = field(default_factory=list)
    failed: list[QueueItem] = field(default_factory=list)
    next_id: int = 1


def gpus_needed(launcher: Any, preset: str, sets: Sequence[str] = (), envs: Sequence[str] = (),
                name: str | None = None, backend: str | None = None) -> int:
    """Validate a would-be launch exactly like `Launcher.launch` does before starting anything;
    the GPUs of this machine it will wait for (0 on a backend whose runs do not take this machine's
    slots: Slurm's scheduler hands out its own). Raises the launch's errors (nothing is queued)."""
    from tui.runs.backend import backend_named
    from tui.runs.gpus import box_gpus, default_count
    from tui.runs.store import NAME_RE

    resolved = launcher.prepare(preset, sets, envs)
    name = name or preset
    if not NAME_RE.match(name):
        raise RunctlError(f"--name {name!r}: use letters, digits, '_', '-', '.'")
    backend = backend or resolved.backend
    impl = backend_named(backend)
    impl.check(resolved.backend_settings.get(backend, {}))  # Slurm: its commands, the partition
    if not impl.holds_box_gpus:
        return 0
    box = box_gpus()
    need: int = resolved.gpus if resolved.gpus is not None else default_count(box)
    if need > len(box):
        raise RunctlError(f"{resolved.path}: gpus = {need}, but this box has {len(box)} GPU(s)")
    return need


class RunQueue:
    """The queue of one RunStore's logs folder."""

    def __init__(self, store: RunStore, lock_timeout: float | None = None) -> None:
        self.store = store
        self.path = store.training_dir / QUEUE_FILE
        self.runner_path = store.training_dir / RUNNER_FILE
        self.lock_timeout = lock_timeout

    def lock(self, what: str) -> Any:
        """The controller lock (re-entrant in one thread)."""
        return controller_lock(self.store.logs_dir, what, self.lock_timeout)

    def load(self) -> QueueState:
        """The queue now (empty if there is no file; a damaged file is an error naming it)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return QueueState()
        except (OSError, ValueError) as e:
            raise RunctlError(f"{self.path}: unreadable queue file ({e}); remove it to start over") from None
        try:
            return QueueState(
                waiting=[QueueItem.from_json(d) for d in data.get("waiting", [])],
                started=[QueueItem.from_json(d) for d in data.get("started", [])],
                failed=[QueueItem.from_json(d) for d in data.get("failed", [])],
                next_id=int(data.get("next_id", 1)),
            )
        except (TypeError, ValueError, AttributeError) as e:
            raise RunctlError(f"{self.path}: malformed queue file ({e}); remove it to start over") from None

    def save(self, q: QueueState) -> None:
        """Write the queue atomically (call under the lock)."""
        self.store.training_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.path, {
            "waiting": [i.to_json() for i in q.waiting],
            "started": [i.to_json() for i in q.started[-KEEP:]],
            "failed": [i.to_json() for i in q.failed[-KEEP:]],
            "next_id": q.next_id,
        })

    @contextmanager
    def change(self, what: str) -> Iterator[QueueState]:
        """Load, let the caller change, save: all under the lock."""
        with self.lock(what):
            q = self.load()
            yield q
            self.save(q)

    def add(self, preset: str, presets_dir: Path, sets: Sequence[str] = (), envs: Sequence[str] = (),
            name: str | None = None, gpus: int = 0, parent: str | None = None,
            autopilot: dict[str, Any] | None = None, backend: str | None = None,
            sweep: dict[str, Any] | None = None) -> QueueItem:
        """Append an item (the caller validated it like a launch)."""
        with self.change(f"queue add {preset}") as q:
            item = QueueItem(id=f"q{q.next_id}", preset=preset, presets_dir=str(Path(presets_dir).resolve()),
                             sets=tuple(sets), envs=tuple(envs), name=name, gpus=gpus,
                             added_at=round(time.time(), 3), by=f"{socket.gethostname()}", parent=parent,
                             autopilot=autopilot, backend=backend, sweep=sweep)
            q.next_id += 1
            q.waiting.append(item)
        return item

    def remove(self, item_id: str) -> QueueItem:
        """Take a waiting item out of the queue."""
        with self.change(f"queue rm {item_id}") as q:
            for i, item in enumerate(q.waiting):
                if item.id == item_id:
                    return q.waiting.pop(i)
        ids = ", ".join(i.id for i in q.waiting) or "(the queue is empty)"
        raise UnknownItem(f"no waiting queue item {item_id!r}; waiting: {ids}")

    def find(self, item_id: str) -> QueueItem | None:
        """An item by id, waiting, started or failed."""
        q = self.load()
        return next((i for i in (*q.waiting, *q.started, *q.failed) if i.id == item_id), None)

    def waiting_for(self, item: QueueItem, why: str) -> None:
        """Record what a waiting item waits for (written only when that changes; best effort)."""
        with contextlib.suppress(RunctlError), self.lock(f"queue {item.id}"):
            q = self.load()
            for i, w in enumerate(q.waiting):
                if w.id == item.id and w.waiting_for != why:
                    q.waiting[i] = replace(w, waiting_for=why)
                    self.save(q)

    def mark(self, item: QueueItem, run: str | None = None, error: str | None = None) -> None:
        """The head item started as `run` (or failed to start): out of the waiting list."""
        with self.change(f"queue {item.id}") as q:
            q.waiting = [i for i in q.waiting if i.id != item.id]
            done = replace(item, run=run, started_at=round(time.time(), 3), error=error, waiting_for=None)
            (q.failed if error else q.started).append(done)

    # --------------------------------------------------------------------------- the runner
    def forget_runner(self, ident: procs.Identity) -> None:
        """The runner `ident` is ending: drop its record (under the lock) if it is still its own."""
        if self.runner_identity() == ident:
            self.runner_path.unlink(missing_ok=True)

    def runner_identity(self) -> procs.Identity | None:
        """The recorded runner process (None: none recorded)."""
        try:
            return procs.identity_from(json.loads(self.runner_path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return None

    def runner_alive(self) -> bool:
        """A runner is alive (process identity checked)."""
        return procs.is_running(self.runner_identity())

    def ensure_runner(self) -> procs.Identity | None:
        """Start the runner if items wait and none is alive; its identity (None: not needed)."""
        with self.lock("queue runner"):
            if not self.load().waiting:
                return None
            ident = self.runner_identity()
            if procs.is_running(ident):
                return ident
            cmd = [sys.executable, "-m", "tui.runs.queue_runner", "--logs", str(self.store.logs_dir.resolve())]
            ident = procs.spawn_detached(cmd, self.store.training_dir / "queue_runner.log")
            try:
                atomic_write_json(self.runner_path, ident.to_json())
            except RunctlError:  # no runner without its record (a second one would start)
                procs.signal_group(ident, signal.SIGKILL)
                raise
            return ident
