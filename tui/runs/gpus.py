"""GPU slots on one box: which GPUs it has, which runs hold them, which are free.

The box's GPUs come from NVML (nvidia-ml-py); `RUNCTL_GPUS=0,1,2,3` declares them where NVML has
none (CPU boxes, tests), `RUNCTL_GPUS=` (empty) means none. A run holds the GPUs its manifest lists
(`gpus`) while its process is alive, checked by process identity (tui.runs.procs), never by a
timer: a reservation ends when the process does. Allocation happens under the controller lock.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from typing import Any

from tui.errors import RunctlError

ENV = "RUNCTL_GPUS"


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
    """GPU index -> the live run holding it (process identity checked)."""
    out: dict[int, str] = {}
    for m in store.runs() if runs is None else runs:
        if m.gpus and store.is_running(m):
            for g in m.gpus:
                out[g] = m.run
    return out


def default_count(box: list[int]) -> int:
    """A preset's `gpus` when it names none: 1 where the box has GPUs, 0 where it has none."""
    return 1 if box else 0


def visible_devices(ids: list[int]) -> str:
    """CUDA_VISIBLE_DEVICES for a run given exactly these GPUs ("" hides every GPU)."""
    return ",".join(str(i) for i in ids)
