"""The files a run leaves for its controller beside its log, and the checks of its checkpoints.

Standard library only (no torch): the engine, `engine.stream.RunctlCallback`, runctl's supervise
shim and the controller itself (tui.runs) share these definitions.

- **The exit record** (`$RUNCTL_EXIT_FILE`, runctl sets it to `_logs/training/<run>.exit`):
  how an attempt of the run ended (`reason`, `status`, `at`, `epochs_completed`, `error`, and the
  file its stdout was then), written by the process itself when it ends, so the end of a run is
  known whatever happened to its log. The controller writes a placeholder for each attempt when
  it starts one (`pending`, padded to `RESERVE` bytes): on a full disk the record is written over
  the placeholder's already allocated bytes instead of through a new file.
- **Checkpoint checks** (`checkpoint_problem`): a torch checkpoint is a zip that opens (with its
  `data.pkl`); a checkpoint folder (an HF `checkpoint-N/`) is complete when it holds files and
  none is empty.
- **Disk full** (`is_disk_full`, `free_text`): an OSError's ENOSPC / EDQUOT anywhere in its chain,
  or a write that torch reports only as failed on a file system left (almost) without space.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
import tempfile
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

EXIT_FILE_ENV = "RUNCTL_EXIT_FILE"  # where this attempt's exit record goes (set by runctl)
ATTEMPT_ENV = "RUNCTL_ATTEMPT"  # which attempt of the run this process is (1: the launch)
RESERVE = 4096  # bytes of a placeholder: what a record may take when written in place
EXIT_VERSION = 1
ERROR_MAX = 1000  # characters of an error kept in a record
TORCH_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
LOW_SPACE = 64 << 20  # a failed write with less free space than this (or than the last checkpoint) is disk full
_FULL = (errno.ENOSPC, errno.EDQUOT)


# --------------------------------------------------------------------------- the exit record
def stdout_file() -> dict[str, Any] | None:
    """The file this process's stdout is (path as the kernel names it, device, inode, whether it
    was deleted); None when stdout is not a regular file."""
    try:
        st = os.fstat(1)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    path = None
    with contextlib.suppress(OSError):
        path = os.readlink("/proc/self/fd/1")
    deleted = st.st_nlink == 0
    if path is not None and path.endswith(" (deleted)"):
        path, deleted = path[: -len(" (deleted)")], True
    return {"path": path, "dev": st.st_dev, "ino": st.st_ino, "deleted": deleted}


def exit_record(reason: str, status: int, epochs_completed: int | None = None, error: str | None = None,
                writer: str = "engine", attempt: int | None = None) -> dict[str, Any]:
    """The record of an attempt that ends now."""
    if attempt is None:
        text = os.environ.get(ATTEMPT_ENV, "")
        attempt = int(text) if text.isdigit() else None
    return {"version": EXIT_VERSION, "attempt": attempt, "pid": os.getpid(), "reason": reason,
            "status": status, "at": round(time.time(), 3), "epochs_completed": epochs_completed,
            "error": error[:ERROR_MAX] if error else None, "writer": writer, "log": stdout_file()}


def placeholder(attempt: int, pid: int | None = None) -> dict[str, Any]:
    """What the controller writes when it starts an attempt (`pending`: not ended yet)."""
    return {"version": EXIT_VERSION, "attempt": attempt, "pid": pid, "pending": True}


def _encode(data: dict[str, Any], pad_to: int = 0) -> bytes:
    raw = (json.dumps(data, sort_keys=False) + "\n").encode()
    return raw + b" " * max(0, pad_to - len(raw))


def write_record(path: str | os.PathLike[str], data: dict[str, Any], reserve: bool = False,
                 in_place: bool = False) -> None:
    """Write a record atomically (temp file + rename; `reserve`: padded to RESERVE bytes). With
    `in_place`, when the new file cannot be written (disk full), the record is written over the
    existing file's bytes instead, padded to its length, if it fits there; else the OSError is
    raised (the file is left as it was)."""
    p = Path(path)
    body = _encode(data, RESERVE if reserve else 0)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, p)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    except OSError:
        if not in_place:
            raise
        try:
            size = p.stat().st_size
        except OSError:
            raise
        small = _encode(data)
        if len(small) > size:
            raise
        with open(p, "r+b") as f:  # no truncation: only bytes already allocated are written
            f.write(small + b" " * (size - len(small)))
            f.flush()
            with contextlib.suppress(OSError):
                os.fsync(f.fileno())


def write_exit(reason: str, status: int, epochs_completed: int | None = None, error: str | None = None,
               writer: str = "engine", keep_existing: bool = False) -> bool:
    """Record how this attempt ended in `$RUNCTL_EXIT_FILE` (nothing without it, nor on a rank other
    than 0). `keep_existing`: leave a record this attempt already has (the supervise shim after a
    script whose callback wrote one), only adding the process's real exit status. True: written."""
    path = os.environ.get(EXIT_FILE_ENV, "")
    if not path or _rank() != 0:
        return False
    data = exit_record(reason, status, epochs_completed, error, writer)
    if keep_existing:
        old = read_exit(path)
        if old is not None and old.get("attempt") == data["attempt"]:
            data = {**old, "process_status": status}
    try:
        write_record(path, data, in_place=True)
    except OSError:
        return False
    return True


def read_exit(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """An exit record (None: none, unreadable, or a placeholder still pending)."""
    try:
        data = json.loads(Path(path).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("pending") or not isinstance(data.get("reason"), str):
        return None
    return data


def _rank() -> int:
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


# --------------------------------------------------------------------------- checkpoints
def _zip_problem(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if head[:1] == b"\x80":  # torch's legacy (pre-1.6) pickle format: nothing cheap to check
        return None
    if head[:2] != b"PK":
        return "not a zip archive (a torch checkpoint is one)"
    try:
        with zipfile.ZipFile(path) as z:
            pkl = [n for n in z.namelist() if n.endswith("data.pkl")]
            if not pkl:
                return "a zip without data.pkl (not a torch checkpoint)"
            with z.open(pkl[0]) as member:
                while member.read(1 << 20):  # its CRC is checked at the end
                    pass
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as e:
        return f"not a readable zip archive ({e})"
    return None


def checkpoint_problem(path: str | os.PathLike[str]) -> str | None:
    """Why a checkpoint would not load (None: it looks complete). A file: not empty and, for a torch
    file (`.ckpt` `.pt` `.pth` `.bin`, or any zip), a zip that opens with its `data.pkl`; a folder:
    it holds files, none empty, its torch files each such a zip."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as e:
        return f"missing ({e.strerror or e})"
    if stat.S_ISDIR(st.st_mode):
        files = sorted(f for f in p.rglob("*") if f.is_file())
        if not files:
            return "an empty folder"
        for f in files:
            problem = _file_problem(f)
            if problem is not None:
                return f"{f.relative_to(p)}: {problem}"
        return None
    return _file_problem(p)


def _file_problem(p: Path) -> str | None:
    try:
        size = p.stat().st_size
    except OSError as e:
        return f"missing ({e.strerror or e})"
    if size == 0:
        return "empty (0 bytes)"
    if p.suffix in TORCH_SUFFIXES:
        return _zip_problem(p)
    try:
        with open(p, "rb") as f:
            if f.read(2) == b"PK":
                return _zip_problem(p)
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    return None


def first_intact(candidates: Iterable[str | os.PathLike[str]]) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The first candidate that passes `checkpoint_problem`, and the (path, problem) of each
    candidate before it that did not."""
    bad: list[tuple[Path, str]] = []
    for c in candidates:
        problem = checkpoint_problem(c)
        if problem is None:
            return Path(c), bad
        bad.append((Path(c), problem))
    return None, bad


def epoch_checkpoints(ckpt_dir: str | os.PathLike[str]) -> list[Path]:
    """`epoch=NNN.ckpt` files of a checkpoint folder, the latest epoch first."""
    d = Path(ckpt_dir)
    found = []
    for p in d.glob("epoch=*.ckpt"):
        digits = p.stem.split("=", 1)[1]
        if digits.isdigit():
            found.append((int(digits), p))
    return [p for _, p in sorted(found, reverse=True)]


# --------------------------------------------------------------------------- disk full
def free_bytes(path: str | os.PathLike[str]) -> int | None:
    """Free bytes on the file system of `path` (or of its nearest existing parent)."""
    p = Path(path)
    for q in (p, *p.parents):
        with contextlib.suppress(OSError):
            if q.exists():
                return shutil.disk_usage(q).free
    return None


def size_text(n: int | None) -> str:
    """`1.5 MB`, `0 B`, `?`."""
    if n is None:
        return "?"
    x = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if x < 1000 or unit == "TB":
            return f"{x:.0f} {unit}" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1000
    return f"{n} B"


def free_text(path: str | os.PathLike[str]) -> str:
    """`12.3 MB free on /data` (the nearest existing folder of `path`)."""
    p = Path(path)
    where = next((q for q in (p, *p.parents) if q.exists()), p)
    return f"{size_text(free_bytes(where))} free on {where}"


def is_disk_full(e: BaseException, where: str | os.PathLike[str] | None = None,
                 expected: int | None = None) -> bool:
    """ENOSPC / EDQUOT anywhere in the exception's chain; or (torch reports a failed write without
    its errno) a write error while `where` has less than LOW_SPACE (or `expected`) bytes free."""
    seen: set[int] = set()
    cur: BaseException | None = e
    text = ""
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in _FULL:
            return True
        text += f" {cur}"
        cur = cur.__cause__ or cur.__context__
    if "No space left on device" in text or "Disk quota exceeded" in text:
        return True
    if where is not None and ("write failed" in text or "unexpected pos" in text or "file write" in text):
        free = free_bytes(where)
        return free is not None and free < max(LOW_SPACE, expected or 0)
    return False
