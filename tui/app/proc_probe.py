"""Process and GPU sampling for the process panel (psutil via tui.runs.procs; NVML if pynvml imports)."""

from __future__ import annotations

import contextlib
from typing import Any

import psutil

from tui.app.view import ProcView, field_of, size
from tui.presets.backends import DEFAULT_BACKEND
from tui.runs import procs
from tui.runs.backend import JobCache, backend_named

_nvml: Any = None
_nvml_ok: bool | None = None


def _nvml_init() -> Any:
    global _nvml, _nvml_ok
    if _nvml_ok is None:
        try:
            import pynvml

            pynvml.nvmlInit()
            _nvml, _nvml_ok = pynvml, True
        except Exception:  # noqa: BLE001 - not installed, no driver, no device: all "no GPU"
            _nvml_ok = False
    return _nvml if _nvml_ok else None


def gpu_text(pids: set[int] | None = None) -> str:
    """`GPU0 87% 12.3 GiB/80.0 GiB` per device, or `no GPU`; with `pids` (the trainer and its
    children), each device they use also says how much of its memory is theirs (`run 10.1 GiB`)."""
    nv = _nvml_init()
    if nv is None:
        return "no GPU"
    parts = []
    try:
        for i in range(nv.nvmlDeviceGetCount()):
            h = nv.nvmlDeviceGetHandleByIndex(i)
            util = nv.nvmlDeviceGetUtilizationRates(h).gpu
            mem = nv.nvmlDeviceGetMemoryInfo(h)
            ours = ""
            if pids:
                with contextlib.suppress(Exception):
                    used = sum(p.usedGpuMemory or 0 for p in nv.nvmlDeviceGetComputeRunningProcesses(h)
                               if p.pid in pids)
                    ours = f" (run {size(used)})" if used else ""
            parts.append(f"GPU{i} {util}% {size(mem.used)}/{size(mem.total)}{ours}")
    except Exception:  # noqa: BLE001 - NVML errors mid-run: report what we have
        pass
    return "  ".join(parts) or "no GPU"


_jobs = JobCache()  # what schedulers said, for this panel (apart from any store's answers)


def sample_process(manifest: Any) -> ProcView | None:
    """A sample of the run's process: a scheduled run's job as its scheduler tells it (a Slurm
    job: alive while queued or running), else its process on this machine (None: no pid)."""
    backend = backend_named(field_of(manifest, "backend") or DEFAULT_BACKEND)
    job = backend.scheduled(manifest, _jobs, None)
    if job is not None:
        return ProcView(pid=None, alive=job.alive, status=job.text, gpu="")
    pid = field_of(manifest, "pid")
    if pid is None:
        return None
    ident = getattr(manifest, "identity", None)
    data = procs.stats(ident) if ident is not None else None
    if not data:
        return ProcView(pid=pid, alive=False, gpu=gpu_text())
    pid = data.get("pid") or pid  # the trainer (a preset's command: not the supervise shim)
    rd = wr = None
    tree: set[int] = {pid}
    with contextlib.suppress(psutil.Error, AttributeError):
        p = psutil.Process(pid)
        tree |= {c.pid for c in p.children(recursive=True)}
        io = p.io_counters()
        rd, wr = io.read_bytes, io.write_bytes
    return ProcView(
        pid=pid, alive=True, status=str(data.get("status", "")),
        cpu_percent=data.get("cpu_percent"), rss=int(float(data.get("rss_mb", 0)) * 2**20),
        threads=data.get("threads"), children=data.get("children"),
        read_bytes=rd, write_bytes=wr, gpu=gpu_text(tree),
    )
