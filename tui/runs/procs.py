"""Process identity and stats (psutil): never signal a pid that is not the run's engine."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from tui.errors import write_error

CREATE_TIME_TOLERANCE = 0.5  # seconds; psutil derives create_time from boot time + start ticks


@dataclass(frozen=True)
class Identity:
    """Who a pid was when we started it: pid, psutil create_time, cmdline."""

    pid: int
    create_time: float
    cmdline: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """Manifest form."""
        return {"pid": self.pid, "create_time": self.create_time, "cmdline": list(self.cmdline)}


def identify(pid: int) -> Identity | None:
    """The identity of a live (non-zombie) process, None if it is gone."""
    try:
        p = psutil.Process(pid)
        with p.oneshot():
            if p.status() == psutil.STATUS_ZOMBIE:
                return None
            return Identity(pid, p.create_time(), tuple(p.cmdline()))
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return None


def mismatch(expected: Identity) -> str | None:
    """Why the live process with this pid is not `expected` (None: it is; 'gone': no process)."""
    now = identify(expected.pid)
    if now is None:
        return "gone"
    problems = []
    if abs(now.create_time - expected.create_time) > CREATE_TIME_TOLERANCE:
        problems.append(
            f"it started at {_fmt(now.create_time)}, the run's engine at {_fmt(expected.create_time)}"
        )
    if expected.cmdline and now.cmdline != expected.cmdline:
        problems.append(f"its command line is {' '.join(now.cmdline)[:120]!r}")
    return "; ".join(problems) or None


def is_running(expected: Identity | None) -> bool:
    """The recorded process is alive and is still the same process."""
    return expected is not None and mismatch(expected) is None


def wait_gone(expected: Identity, timeout: float, step: float = 0.1) -> bool:
    """Wait until the process exits (or stops being `expected`); True if it did in time."""
    deadline = time.monotonic() + timeout
    while True:
        if not is_running(expected):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


def signal_group(expected: Identity, sig: signal.Signals) -> str:
    """Send `sig` to the process group led by the verified pid; return what was signalled.

    The identity is checked again right before signalling, so an escalation after the grace period
    never reaches a process that reused the pid meanwhile.
    """
    pid = expected.pid
    why = mismatch(expected)
    if why == "gone":
        return "nothing (process gone)"
    if why is not None:
        return f"nothing (pid {pid} is no longer the run's engine: {why})"
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return "nothing (process gone)"
    try:
        if pgid == pid:
            os.killpg(pgid, sig)
            return f"process group {pgid}"
        os.kill(pid, sig)
        return f"pid {pid}"
    except ProcessLookupError:
        return "nothing (process gone)"


def identify_run(pid: int, log: str | os.PathLike[str], run: str) -> Identity | None:
    """The identity of live process `pid` if it is run `run`'s: its stdout is the run's log file
    (the same file, even renamed), or its environment has RUNCTL_RUN=`run`; else None."""
    ident = identify(pid)
    if ident is None:
        return None
    with contextlib.suppress(OSError):
        out, lg = os.stat(f"/proc/{pid}/fd/1"), os.stat(log)
        if (out.st_dev, out.st_ino) == (lg.st_dev, lg.st_ino):
            return ident
    with contextlib.suppress(psutil.Error, OSError):
        if psutil.Process(pid).environ().get("RUNCTL_RUN") == run:
            return ident
    return None


def leads_group(pid: int) -> bool:
    """The process leads its process group (a run's process group: the launcher's start_new_session)."""
    try:
        return os.getpgid(pid) == pid
    except OSError:
        return False


SHIM_MODULE = "tui.runs.supervise"


def trainer(p: psutil.Process) -> psutil.Process:
    """The training process of a run's process: itself, or the command a supervise shim runs."""
    with contextlib.suppress(psutil.Error):
        if SHIM_MODULE in p.cmdline():
            kids = p.children()
            if kids:
                return kids[0]
    return p


def stats(expected: Identity | None) -> dict[str, Any] | None:
    """CPU %, RSS and elapsed time of the verified process (and its children); None if not running.

    A preset's command runs under the supervise shim: the figures are then the command's (the
    trainer and its children), `pid` says which process that is."""
    if expected is None or not is_running(expected):
        return None
    try:
        p = trainer(psutil.Process(expected.pid))
        procs = [p, *p.children(recursive=True)]
        rss = 0
        cpu = 0.0
        for q in procs:
            with contextlib.suppress(psutil.Error):
                rss += q.memory_info().rss
                cpu += q.cpu_percent(interval=None) if q is not p else p.cpu_percent(interval=0.05)
        return {
            "alive": True,
            "pid": p.pid,
            "status": p.status(),
            "cpu_percent": round(cpu, 1),
            "rss_mb": round(rss / 2**20, 1),
            "threads": p.num_threads(),
            "children": len(procs) - 1,
            "elapsed_s": round(time.time() - p.create_time(), 1),
        }
    except psutil.Error:
        return None


def _fmt(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + f".{int(t * 100) % 100:02d}"


def spawn_detached(cmd: Sequence[str], log: Path) -> Identity:
    """Start one of runctl's own helpers (the queue runner, a sweep's driver, the watcher) in its
    own session, no stdin, its output appended to `log`; reaped by a thread if we outlive it.
    Its identity (a one-line error naming `log` when that cannot be opened)."""
    try:
        out = open(log, "ab")  # noqa: SIM115 - closed below, once the child has it
    except OSError as e:
        raise write_error(log, e, "create") from None
    with out:
        p = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True, close_fds=True)
    threading.Thread(target=p.wait, daemon=True).start()
    return identify(p.pid) or Identity(p.pid, time.time(), tuple(cmd))


def identity_from(data: dict[str, Any] | None) -> Identity | None:
    """Parse the manifest form (None if absent or incomplete)."""
    if not data or data.get("pid") is None or data.get("create_time") is None:
        return None
    cmd: Sequence[str] = data.get("cmdline") or ()
    return Identity(int(data["pid"]), float(data["create_time"]), tuple(cmd))
