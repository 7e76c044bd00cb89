"""GPU slots on one box: which GPUs it has, which runs hold them, which are free.

The box's GPUs come from NVML (nvidia-ml-py); `RUNCTL_GPUS=0,1,2,3` declares them where NVML has
none (CPU boxes, tests), `RUNCTL_GPUS=` (empty) means none. A run holds its GPUs while its process
is alive, checked by process identity (tui.runs.procs), never by a timer: a reservation ends when
the process does.

The slots are the machine's, not one logs folder's: each run's GPUs are also recorded in the
machine-wide reservation folder (`$RUNCTL_GPU_DIR`, default `/tmp/runctl-gpus`), one file per GPU
and process (`gpu<N>-<pid>.json`: the process's identity, the run, its logs folder), written under
a machine-wide lock (`.lock` there) taken inside the controller lock. A GPU is held when a live
process's reservation names it, when a live run's manifest lists it, or when a live run whose
manifest is damaged was given it (its process's own CUDA_VISIBLE_DEVICES), so runs launched from
two logs folders never share a GPU and a damaged manifest hides none.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tui.errors import RunctlError, write_error
from tui.runs import procs
from tui.runs.lock import LockTimeout, flock_within

ENV = "RUNCTL_GPUS"
DIR_ENV = "RUNCTL_GPU_DIR"
DEFAULT_DIR = "/tmp/runctl-gpus"
LOCK_TIMEOUT_S = 30.0


class GpuError(RunctlError):
    """The GPUs cannot be told (a bad RUNCTL_GPUS, NVML failing)."""


def _declared(text: str) -> list[int]:
    ids: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit():
            raise GpuError(f"{ENV}={text!r}: expected GPU indices like 0,1,2,3 (empty: no GPUs)")
        ids.append(int(part))
    if len(set(ids)) != len(ids):
        raise GpuError(f"{ENV}={text!r}: a GPU is listed twice")
    return ids


def _nvml() -> list[int]:
    """The GPUs NVML sees; none where there is no NVIDIA driver; GpuError when NVML fails."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as e:
        none = tuple(getattr(pynvml, n) for n in ("NVML_ERROR_LIBRARY_NOT_FOUND",
                                                   "NVML_ERROR_DRIVER_NOT_LOADED", "NVML_ERROR_NO_PERMISSION")
                     if hasattr(pynvml, n))
        if getattr(e, "value", None) in none:
            return []  # no NVIDIA driver on this box: a CPU box
        raise GpuError(f"NVML failed ({e}); declare the GPUs with {ENV}=0,1,... or {ENV}= for none") from None
    try:
        return list(range(pynvml.nvmlDeviceGetCount()))
    except pynvml.NVMLError as e:
        raise GpuError(f"NVML failed to count GPUs ({e}); declare them with {ENV}=0,1,...") from None
    finally:
        with contextlib.suppress(pynvml.NVMLError):
            pynvml.nvmlShutdown()


def box_gpus(environ: dict[str, str] | None = None) -> list[int]:
    """This box's GPU indices: $RUNCTL_GPUS if set, else NVML's."""
    env = os.environ if environ is None else environ
    if ENV in env:
        return _declared(env[ENV])
    return _nvml()


def held(store: Any, runs: Iterable[Any] | None = None) -> dict[int, str]:
    """GPU index -> the live run holding it (process identity checked): from the machine's
    reservations (any logs folder), this folder's live manifests, and the environment of a live
    run whose manifest is damaged."""
    out: dict[int, str] = {}
    mine = Path(store.logs_dir).resolve()
    for g, (run, logs) in reserved().items():
        out[g] = run if Path(logs) == mine else f"{run} (in {logs})"
    for m in store.runs() if runs is None else runs:
        if m.gpus and store.is_running(m):
            for g in m.gpus:
                out.setdefault(g, m.run)
        elif m.damaged is not None and m.identity is not None and store.is_running(m):
            for g in _visible_of(m.pid):
                out.setdefault(g, m.run)
    return out


def _visible_of(pid: int | None) -> list[int]:
    """The GPU indices in a live process's CUDA_VISIBLE_DEVICES (its trainer's, under the shim)."""
    import psutil

    try:
        text = psutil.Process(pid).environ().get("CUDA_VISIBLE_DEVICES", "")
    except (psutil.Error, OSError, ValueError):
        return []
    return [int(x) for x in text.split(",") if x.strip().isdigit()]


# ---------------------------------------------------------------------- the machine's reservations
def reservation_dir() -> Path:
    """`$RUNCTL_GPU_DIR`, else /tmp/runctl-gpus (shared by every logs folder on this machine)."""
    return Path(os.environ.get(DIR_ENV) or DEFAULT_DIR)


def _ensure_dir() -> Path:
    d = reservation_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
        if str(d) == DEFAULT_DIR:
            with contextlib.suppress(OSError):
                os.chmod(d, 0o1777)  # every user's runs reserve here (sticky: each keeps its own files)
    except OSError as e:
        raise write_error(d, e, "create") from None
    return d


@contextlib.contextmanager
def machine_lock(timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """The machine-wide allocation lock (always taken inside a logs folder's controller lock)."""
    d = _ensure_dir()
    path = d / ".lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as e:
        raise write_error(path, e, "create") from None
    try:
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o666)
        if not flock_within(fd, timeout):
            raise LockTimeout(f"another runctl holds {path}; gave up after {timeout:g}s, try again")
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def reserved() -> dict[int, tuple[str, str]]:
    """GPU -> (run, logs folder) of every reservation whose process is alive (identity checked);
    the caller's own stale files are removed on the way."""
    d = reservation_dir()
    out: dict[int, tuple[str, str]] = {}
    try:
        files = list(d.glob("gpu*-*.json"))
    except OSError:
        return out
    for f in files:
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
            gpu = int(data["gpu"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if procs.is_running(procs.identity_from(data.get("process"))):
            out.setdefault(gpu, (str(data.get("run", "?")), str(data.get("logs", "?"))))
        else:
            with contextlib.suppress(OSError):
                f.unlink()  # its process is gone (someone else's file: the sticky folder keeps it)
    return out


def reserve(ids: Iterable[int], ident: procs.Identity, run: str, logs: Path | str) -> list[Path]:
    """Record that `ident` (run `run` of logs folder `logs`) holds GPUs `ids` (under machine_lock);
    the files written. A failed write removes what it wrote and raises the one-line error."""
    d = _ensure_dir()
    written: list[Path] = []
    try:
        for g in ids:
            path = d / f"gpu{g}-{ident.pid}.json"
            tmp = path.with_name(f".{path.name}.tmp")
            try:
                tmp.write_text(json.dumps({"gpu": g, "run": run, "logs": str(Path(logs).resolve()),
                                           "process": ident.to_json(), "at": round(time.time(), 3)}),
                               encoding="utf-8")
                os.replace(tmp, path)
            except OSError as e:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise write_error(path, e) from None
            written.append(path)
    except RunctlError:
        release(written)
        raise
    return written


def release(files: Iterable[Path]) -> None:
    """Remove reservation files (a start that was rolled back)."""
    for f in files:
        with contextlib.suppress(OSError):
            f.unlink()


def default_count(box: list[int]) -> int:
    """A preset's `gpus` when it names none: 1 where the box has GPUs, 0 where it has none."""
    return 1 if box else 0


def visible_devices(ids: list[int]) -> str:
    """CUDA_VISIBLE_DEVICES for a run given exactly these GPUs ("" hides every GPU)."""
    return ",".join(str(i) for i in ids)
