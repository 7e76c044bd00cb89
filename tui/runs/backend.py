"""Where a run runs: the backend interface, and each backend found by its name.

A backend starts one attempt of a run (a launch or a resume), kills it, says whether it is alive,
where it runs, what its scheduler says about it and what keeps its log growing here. The
launcher, the store, the CLI and the TUI ask a run's backend (`backend_named(manifest.backend)`,
`RunStore.backend(manifest)`) instead of testing its name; the names, their preset tables and
their modules are the registry `tui.presets.backends.BACKENDS`. The implementations are the
modules of `tui.runs.backends` (`local`, `slurm`, `ssh`), imported on first use: they use the
store, and the store asks them, so neither imports the other's module at load time.

`Backend` is generic in the manifest and the store only so that this module imports nothing of
tui.runs.store (no import circle between tui.runs' modules): every implementation is a
`Backend[Manifest, RunStore]`. docs/design.md, *Backends*, says how to add one.
"""

from __future__ import annotations

import importlib
import os
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from tui.errors import RunctlError
from tui.presets.backends import BACKENDS
from tui.runs.procs import Identity

RunT = TypeVar("RunT")  # tui.runs.store.Manifest
StoreT = TypeVar("StoreT")  # tui.runs.store.RunStore
Say = Callable[[str], None]
CACHE_S = 1.0  # a scheduler is asked about a job at most this often (per job and owner)


class UnknownBackend(RunctlError):
    """A backend name no entry of the registry has."""


@dataclass(frozen=True)
class Attempt:
    """One start of a run the launcher hands its backend, under the controller lock: a launch
    (the manifest new, nothing written yet) or a resume (its checks done, its log ready)."""

    event: str  # "launch" | "resume": the history entry the start records
    spawn: Callable[..., Identity]  # a detached process of this machine (Launcher._start)
    env: dict[str, str] = field(default_factory=dict)  # what its environment adds (preset, --env, GPUs)
    gpus: tuple[int, ...] = ()  # this machine's GPUs given to it (a backend that holds_box_gpus)
    settings: Mapping[str, Any] = field(default_factory=dict)  # a launch: the preset's table for it
    cwd: Path | None = None  # a launch of a preset's command: the folder it runs in
    made_dir: bool = False  # a launch: the start makes the run folder (removed again if it fails)
    resume: tuple[str, ...] = ()  # a resume: the arguments it adds (--resume, resume_args)
    entry: dict[str, Any] = field(default_factory=dict)  # a resume: more of its history entry


@dataclass(frozen=True)
class Scheduled:
    """A run's current attempt as its scheduler tells it now (a Slurm job)."""

    job_id: str | None  # the job the manifest records (`runs --json` job_id)
    state: str | None  # the scheduler's state; "unknown": it did not answer; None: it knows nothing
    alive: bool  # queued or running: it may still write to the log
    executing: bool  # running now (a queued job is alive but has nothing to say yet)
    text: str  # one line, for the TUI's process panel
    fields: dict[str, Any]  # `status --json`'s block (its `slurm` key), the status text's line
    unanswered: bool = False  # the scheduler did not answer: the log's state stands


@dataclass(frozen=True)
class Job:
    """One job of a scheduler, and how to ask about it (`ask(id)`: what the scheduler says now;
    `ttl`: how long an answer stands, longer where asking costs more, e.g. another host)."""

    id: str
    ask: Callable[[str], Any]
    ttl: float = CACHE_S


class JobCache:
    """What schedulers said about jobs, each asked at most once per CACHE_S: every owner keeps
    its own (a store, the TUI's process panel), so one listing asks each job once."""

    def __init__(self) -> None:
        self._seen: dict[Job, tuple[float, Any]] = {}

    def info(self, job: Job) -> Any:
        """The scheduler's answer about `job` now (its errors raise, as `job.ask` raised them)."""
        now = time.monotonic()
        hit = self._seen.get(job)
        if hit is not None and now - hit[0] < job.ttl:
            return hit[1]
        info = job.ask(job.id)
        self._seen[job] = (now, info)
        return info

    def seen(self, job: Job) -> Any:
        """The scheduler's answer about `job` while it stands (its ttl), else None: never asks."""
        hit = self._seen.get(job)
        return hit[1] if hit is not None and time.monotonic() - hit[0] < job.ttl else None

    def remember(self, job: Job, info: Any) -> None:
        """What the scheduler just said about `job` through another call (it stands its ttl)."""
        self._seen[job] = (time.monotonic(), info)

    def forget(self, job: Job) -> None:
        """Ask again next time (after a submit or a kill)."""
        self._seen.pop(job, None)


class LogFeed(Protocol):
    """What brings a run's log file on this machine up to date while it is read (ssh: a process
    streaming the remote log into it)."""

    def poll(self) -> None:
        """Append what the run's log gained since the last poll."""

    def close(self) -> None:
        """Stop (nothing of the log file is removed)."""


class Backend(ABC, Generic[RunT, StoreT]):
    """Where a run runs: how its attempts start and stop, and how it stands.

    One instance per backend (a module's `BACKEND`), shared: whatever it remembers between calls
    belongs to its caller (`RunStore.jobs`, `RunStore.job_errors`, the TUI probe's `JobCache`).
    """

    name: ClassVar[str]  # the registry's name (tui.presets.backends)
    title: ClassVar[str]  # how messages name it ("Slurm")
    holds_box_gpus: ClassVar[bool] = False  # its runs take this machine's GPU slots (the launcher's)
    log_at_start: ClassVar[bool] = False  # its log exists once started (a missing one was deleted)
    resume_hints: ClassVar[bool] = False  # status says what a resume would continue from

    # ------------------------------------------------------------------------- launching
    def check(self, settings: Mapping[str, Any]) -> None:
        """Before a launch writes anything: refuse what cannot work here (one-line RunctlError)."""

    def engine_args(self, settings: Mapping[str, Any]) -> list[str]:
        """Engine overrides a run of the bundled engine needs here (Slurm: DDP across its tasks)."""
        return []

    @abstractmethod
    def start(self, store: StoreT, run: RunT, attempt: Attempt) -> RunT:
        """Start one attempt and record it (manifest saved); nothing is left half-done when it
        fails: a new run leaves nothing, a resume leaves its manifest as it was."""

    @abstractmethod
    def kill(self, store: StoreT, run: RunT, grace: float, say: Say, by: str) -> str:
        """Stop the run (a checkpoint first: SIGTERM, then for good after `grace` s), record the
        kill; the steps taken, one line. Under the controller lock."""

    # --------------------------------------------------------------------------- reading
    @abstractmethod
    def alive(self, store: StoreT, run: RunT) -> bool:
        """The run's current attempt is alive (may still write to its log); never raises."""

    def executing(self, store: StoreT, run: RunT) -> bool:
        """An alive attempt is executing now (a queued job is not: its silence is no stall)."""
        return True

    def ending(self, store: StoreT, run: RunT) -> bool:
        """An alive attempt is on its way out (Slurm's COMPLETING after a `scancel`): a resume
        waits for it a little instead of refusing. Asked afresh (no cached answer)."""
        return False

    @abstractmethod
    def where(self, run: RunT) -> str:
        """Where it runs, for messages: `pid 4242`, `Slurm job 42`."""

    def label(self, run: RunT) -> str | None:
        """Short, for tables and the TUI's header (`job 42`); None: its pid says it."""
        return None

    def local_pid(self, run: RunT) -> int | None:
        """Its process on this machine (None: it runs elsewhere)."""
        return None

    def stall(self, store: StoreT, run: RunT) -> tuple[float, float | None] | None:
        """Where the far side judges a silence (a host): (stalled since, stall_after) when it says
        the run is stalled, else None. This machine's own judgement needs `executing`."""
        return None

    def started_json(self, run: RunT) -> dict[str, Any]:
        """What `launch --json` / `resume --json` add to `{run, pid, log}` (Slurm: `job_id`)."""
        return {}

    def process(self, run: RunT) -> dict[str, Any] | None:
        """`status --json`'s `process`: its process's CPU, RSS, uptime (None: none here)."""
        return None

    def scheduled(self, run: RunT, jobs: JobCache,
                  errors: dict[str, str] | None) -> Scheduled | None:
        """What its scheduler says (None: it has none, e.g. a process of this machine). `errors`:
        run -> why the scheduler could not be asked, kept by the caller (None: not kept)."""
        return None

    @abstractmethod
    def why_gone(self, store: StoreT, run: RunT) -> str:
        """Why a run that is not alive and whose log has no final line ended (its `error`)."""

    def live_writer(self, run: RunT, log: Path, here: tuple[int, int] | None,
                    given: tuple[int, int] | None) -> str | None:
        """The file its live process writes its output to, where this machine can tell (`log`
        itself: read the log path; None: it cannot tell, the exit record is asked). `here`: the
        (device, inode) of the log path, `given`: of the file the attempt was started with."""
        return None

    def log_feed(self, store: StoreT, run: RunT) -> LogFeed | None:
        """What keeps its log file here (`training/<run>.log`) growing while it is read (None:
        the run writes the file itself: a local process, a Slurm job on the shared filesystem)."""
        return None


_loaded: dict[tuple[str, str], Backend[Any, Any]] = {}


def backend_named(name: str) -> Backend[Any, Any]:
    """The backend of that name (its module imported on first use); UnknownBackend if none."""
    entry = BACKENDS.get(name)
    if entry is None:
        raise UnknownBackend(f"unknown backend {name!r}; backends: {', '.join(BACKENDS)}")
    key = (name, entry.module)
    impl = _loaded.get(key)
    if impl is None:
        impl = importlib.import_module(entry.module).BACKEND
        if not isinstance(impl, Backend) or impl.name != name:
            raise UnknownBackend(f"backend {name!r}: {entry.module}.BACKEND is not its Backend")
        _loaded[key] = impl
    return impl


def actor() -> str:
    """Who acted, for history entries: host and pid of this controller."""
    return f"{socket.gethostname()}:{os.getpid()}"


R = TypeVar("R")


def asked(run: str, errors: dict[str, str] | None, ask: Callable[[], R]) -> tuple[R | None, str | None]:
    """Ask a backend's far side about `run` (a scheduler, a host): (its answer, None), or (None,
    why) when it could not be asked, the reason also kept in `errors` by run until it answers
    again. A state read never fails on the far side's errors."""
    try:
        out = ask()
    except RunctlError as e:
        if errors is not None:
            errors[run] = str(e)
        return None, str(e)
    if errors is not None:
        errors.pop(run, None)
    return out, None
