"""The controller lock: one runctl at a time may launch, kill or resume runs of one `_logs`."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from tui.errors import RunctlError, write_error

LOCK_NAME = ".runctl.lock"
DEFAULT_TIMEOUT = 10.0  # seconds; env RUNCTL_LOCK_TIMEOUT overrides
_held: dict[str, list[int]] = {}  # lock file -> [holding thread, depth]: re-entered, not re-taken
_guard = threading.Lock()


class LockTimeout(RunctlError):
    """Another controller held the lock for longer than the timeout."""


def lock_path(logs_dir: Path | str) -> Path:
    """`<logs>/training/.runctl.lock`."""
    return Path(logs_dir) / "training" / LOCK_NAME


def default_timeout() -> float:
    """$RUNCTL_LOCK_TIMEOUT seconds, else DEFAULT_TIMEOUT."""
    try:
        return float(os.environ.get("RUNCTL_LOCK_TIMEOUT", DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


@contextlib.contextmanager
def controller_lock(
    logs_dir: Path | str, what: str = "", timeout: float | None = None
) -> Iterator[None]:
    """Hold an exclusive flock on the lock file; LockTimeout after `timeout` seconds.

    Re-entrant within one thread (the queue runner launches under the lock it already holds);
    another thread or process waits.
    """
    timeout = default_timeout() if timeout is None else timeout
    path = lock_path(logs_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(path.parent, e, "create") from None
    key, me = str(path.resolve()), threading.get_ident()
    with _guard:
        held = _held.get(key)
        if held is not None and held[0] == me:
            held[1] += 1
    if held is not None and held[0] == me:
        try:
            yield
        finally:
            with _guard:
                held[1] -= 1
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise write_error(path, e, "create") from None
    try:
        if not flock_within(fd, timeout):
            holder = _holder(path)
            raise LockTimeout(f"another runctl holds {path}{' (' + holder + ')' if holder else ''}; "
                              f"gave up after {timeout:g}s, try again")
        with contextlib.suppress(OSError):  # who holds it is a courtesy (a full disk leaves it out)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid={os.getpid()} {what}".strip().encode(), 0)
        with _guard:
            _held[key] = [me, 1]
        try:
            yield
        finally:
            with _guard:
                _held.pop(key, None)
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def flock_within(fd: int, timeout: float) -> bool:
    """Take an exclusive flock on `fd`, waiting at most `timeout` seconds (False: not taken)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def _holder(path: Path) -> str:
    """What the current holder wrote into the lock file (best effort)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()[:200]
    except OSError:
        return ""
