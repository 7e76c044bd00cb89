"""Messages that cross the app: the follower worker posts them, the screens route them to widgets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from tui.app.view import ProcView, RunView


@dataclass
class RunSnapshot(Message):
    """The latest state of the followed run (a newer snapshot replaces an unprocessed one)."""

    view: RunView

    def can_replace(self, message: Message) -> bool:
        """Only the newest snapshot matters."""
        return isinstance(message, RunSnapshot)


@dataclass
class LogChunk(Message):
    """New raw log lines, batched (reset: a new run or a truncated log; clear the pane first)."""

    lines: list[str]
    reset: bool = False
    skipped: int = 0  # older new lines left out (the pane would drop them anyway)


@dataclass
class ProcSample(Message):
    """A psutil/NVML sample of the run's process."""

    proc: ProcView | None

    def can_replace(self, message: Message) -> bool:
        """Only the newest sample matters."""
        return isinstance(message, ProcSample)


@dataclass
class CheckpointDecided(Message):
    """A critical checkpoint was decided while we watched."""

    run: str | None
    title: str
    mark: str
    say: str


@dataclass
class RunNotice(Message):
    """Something around the followed run went wrong or changed (its log rotated, truncated or
    deleted, its manifest damaged or gone, its run folder gone, a file or the scheduler that cannot
    be read): `text` is one line, None once it is over."""

    run: str | None
    text: str | None


@dataclass
class RunEnded(Message):
    """The followed run reached finished / crashed / killed while we watched."""

    run: str | None
    state: str
    detail: str


HOSTS_FILE = "hosts.toml"  # RunsLoaded.host of the hosts file itself: `error` is a mistake in it


@dataclass
class RunsLoaded(Message):
    """Rows for the runs screen, loaded off the UI thread: first the listing (every run, from the
    manifests, states not read yet: `RunView.loaded` False), then batches of runs with their
    states; `done` on the last. A host's listing (issue 19) is one message of its own: `host`
    its name, its runs with their states, or `error`: it did not answer (its rows stay as last
    seen)."""

    views: list[RunView]
    done: bool = True
    listing: bool = False
    host: str | None = None
    error: str | None = None


@dataclass
class QueueLoaded(Message):
    """The queue of the logs folder for the runs screen: waiting items (oldest first), the box's
    GPUs and the free ones; `error`: the queue file could not be read."""

    items: list[Any]
    gpus: list[int]
    free: list[int]
    error: str | None = None
