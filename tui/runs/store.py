"""Run manifests under `_logs/training` and the RunStore: which runs exist and how they stand.

Layout (the seed's): `training/<run>.log`, `training/<run>.json` (this manifest),
`training/<name>.pid`, engine checkpoints in `runs/<run>/`; run id = `<name>_<YYYYmmdd_HHMMSS>`;
`training/.cache/<run>.json` an ended run's listing row (`RunStore.listing`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from tui.errors import RunctlError
from tui.runs import procs, slurm
from tui.state.run import RunState

MANIFEST_VERSION = 1
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}$")
TERMINAL = ("finished", "crashed", "killed")
NO_FINAL_LINE = "process exited without a final line"
LISTING_VERSION = 1  # of the cached listing rows (`RunStore.listing`)
_LISTED = ("state", "epoch", "max_epochs", "error", "exit_reason", "exit_status", "source_format")


class UnknownRun(RunctlError):
    """No manifest for the run the user named."""


@dataclass(frozen=True)
class Manifest:
    """One run as the controller launched it (docs/cli.md lists every field)."""

    run: str
    name: str
    preset: str
    log: str
    run_dir: str
    pid_file: str
    created_at: float
    host: str
    argv: tuple[str, ...] = ()  # the command of the first launch (no --resume / resume_args)
    sets: tuple[str, ...] = ()  # --set as typed
    envs: tuple[str, ...] = ()  # --env as typed
    env: dict[str, str] = field(default_factory=dict)  # resolved preset env (+ --env)
    overrides: dict[str, Any] = field(default_factory=dict)  # resolved dotted overrides
    pid: int | None = None  # the current (latest) engine process
    create_time: float | None = None
    cmdline: tuple[str, ...] = ()
    state: str = "running"  # controller's last action: running | killing | killed
    history: tuple[dict[str, Any], ...] = ()  # launch / resume / kill / autopilot events
    parent: str | None = None  # autopilot: the run whose verdict launched this one
    children: tuple[str, ...] = ()
    autopilot: dict[str, Any] | None = None
    version: int = MANIFEST_VERSION
    # A preset's own command (kind "command"; "engine": the bundled engine), docs/presets.md.
    kind: str = "engine"
    cwd: str | None = None  # the folder the command runs in
    resume_args: tuple[str, ...] = ()  # the preset's resume_args, placeholders unexpanded
    placeholders: dict[str, str] = field(default_factory=dict)  # {python} {run_dir} {run} {max_epochs}
    log_format: str = "auto"
    metrics_csv: str | None = None  # a Lightning CSVLogger metrics.csv (a glob) read beside the log
    gpus: tuple[int, ...] = ()  # the GPUs this run's current process holds (CUDA_VISIBLE_DEVICES)
    gpus_requested: int | None = None  # what its preset asked for (a resume asks again; None: the default)
    backend: str = "local"  # local | slurm
    job_id: str | None = None  # slurm: the current job (a resume submits a new one)
    job_ids: tuple[str, ...] = ()  # slurm: every job of this run, oldest first
    slurm: dict[str, Any] | None = None  # slurm: the [slurm] settings it was submitted with

    @property
    def identity(self) -> procs.Identity | None:
        """The recorded engine process."""
        if self.pid is None or self.create_time is None:
            return None
        return procs.Identity(self.pid, self.create_time, self.cmdline)

    @property
    def killed(self) -> bool:
        """The controller stopped this run (its latest attempt)."""
        return self.state in ("killing", "killed")

    def with_event(self, event: str, **data: Any) -> Manifest:
        """A copy with one history entry appended."""
        entry = {"event": event, "at": round(time.time(), 3), **data}
        return replace(self, history=(*self.history, entry))

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (lists for tuples)."""
        out = asdict(self)
        for k in ("argv", "sets", "envs", "cmdline", "history", "children", "resume_args", "gpus", "job_ids"):
            out[k] = list(out[k])
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        """Parse a manifest; unknown keys are ignored (newer writers)."""
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in data.items() if k in known}
        for k in ("argv", "sets", "envs", "cmdline", "history", "children", "resume_args", "gpus", "job_ids"):
            if k in kw:
                kw[k] = tuple(kw[k] or ())
        return cls(**kw)


def atomic_write_json(path: Path, data: Any, durable: bool = True) -> None:
    """Write JSON to `path` via a temp file + rename (readers never see half a file); `durable`:
    fsync'd first (a manifest; a cache need not be)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=False)
            f.write("\n")
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


class RunStore:
    """The runs of one `_logs` directory."""

    def __init__(self, logs_dir: Path | str) -> None:
        self.logs_dir = Path(logs_dir)
        self.training_dir = self.logs_dir / "training"
        self.runs_dir = self.logs_dir / "runs"
        self.jobs = slurm.JobCache()
        self.job_errors: dict[str, str] = {}  # run -> why Slurm could not be asked about its job
        self._logs: dict[str, _ReadLog] = {}  # run -> its log as read so far (`log_state`)
        self._logs_lock = threading.Lock()

    # ------------------------------------------------------------------------------ paths
    def manifest_path(self, run: str) -> Path:
        """`training/<run>.json`."""
        return self.training_dir / f"{run}.json"

    def log_path(self, run: str) -> Path:
        """`training/<run>.log`."""
        return self.training_dir / f"{run}.log"

    def pid_path(self, name: str) -> Path:
        """`training/<name>.pid` (the seed's pid file: the latest run of that name)."""
        return self.training_dir / f"{name}.pid"

    def run_dir(self, run: str) -> Path:
        """`runs/<run>/` (engine checkpoints)."""
        return self.runs_dir / run

    def new_run_id(self, name: str, when: float | None = None) -> str:
        """`<name>_<YYYYmmdd_HHMMSS>` (local time), `_2`, `_3`... if that second is taken."""
        base = f"{name}_{time.strftime('%Y%m%d_%H%M%S', time.localtime(when))}"
        run, n = base, 1
        while self.manifest_path(run).exists() or self.log_path(run).exists():
            n += 1
            run = f"{base}_{n}"
        return run

    # --------------------------------------------------------------------------- manifests
    def runs(self) -> list[Manifest]:
        """Every readable manifest, newest first."""
        out = []
        if self.training_dir.is_dir():
            for p in self.training_dir.glob("*.json"):
                m = self._read(p)
                if m is not None:
                    out.append(m)
        return sorted(out, key=lambda m: (m.created_at, m.run), reverse=True)

    def _read(self, path: Path) -> Manifest | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return Manifest.from_json(data) if isinstance(data, dict) and "run" in data else None
        except (OSError, ValueError, TypeError):
            return None

    def get(self, run: str) -> Manifest:
        """A run by id, or by name (its newest run); UnknownRun listing recent runs."""
        m = self._read(self.manifest_path(run)) if NAME_RE.match(run) else None
        if m is not None:
            return m
        all_runs = self.runs()
        for m in all_runs:
            if m.name == run:
                return m
        recent = ", ".join(m.run for m in all_runs[:8]) or "(none)"
        raise UnknownRun(f"unknown run {run!r} in {self.training_dir}; recent runs: {recent}")

    def for_log(self, log: Path | str) -> Manifest | None:
        """The manifest beside a log file (same stem), if any."""
        p = Path(log)
        return self._read(p.with_suffix(".json"))

    def save(self, m: Manifest) -> None:
        """Write the manifest atomically."""
        self.training_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.manifest_path(m.run), m.to_json())

    def write_pid(self, m: Manifest) -> None:
        """The seed's pid file, atomically."""
        path = Path(m.pid_file)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w") as f:
            f.write(f"{m.pid}\n")
        os.replace(tmp, path)

    # ------------------------------------------------------------------------------- state
    def is_running(self, m: Manifest) -> bool:
        """The recorded engine process is alive and still the same process (a Slurm run: its job
        is queued or running)."""
        if m.backend == "slurm":
            info = self.job(m)
            return info is not None and info.active
        return procs.is_running(m.identity)

    def job(self, m: Manifest) -> slurm.JobInfo | None:
        """A Slurm run's job as Slurm tells it now (None: not Slurm, or Slurm forgot it; errors of
        the Slurm commands are None too: a state read never fails on them)."""
        if m.backend != "slurm":
            return None
        try:
            job = m.job_id or slurm.find_by_name(f"runctl-{m.run}")  # submitted, not yet recorded
            info = self.jobs.info(job)
        except RunctlError as e:
            self.job_errors[m.run] = str(e)
            return None
        self.job_errors.pop(m.run, None)
        return info

    def state(self, m: Manifest) -> RunState:
        """The run's state: its log combined with process liveness and the manifest."""
        return self.judge(m, self.log_state(m))

    def log_state(self, m: Manifest) -> RunState:
        """The state of the run's log alone, read incrementally: a log this store read before is
        read on from where it stopped (nothing at all if its size and mtime did not change); a
        truncated or replaced log is read again. The same state as reading the whole log.

        Returns a `snapshot()`: later reads never change it (they copy a shared epoch record
        before writing to it).
        """
        path = self.log_path(m.run)
        try:
            st = os.stat(path)
        except OSError:
            with self._logs_lock:
                self._logs.pop(m.run, None)
            return RunState()
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        with self._logs_lock:
            read = self._logs.get(m.run)
            if (read is None or read.key[:2] != key[:2] or st.st_size < read.follower.offset
                    or read.metrics_csv != m.metrics_csv):
                from tui.state.follow import LogFollower

                read = _ReadLog(LogFollower(path, metrics_csv=m.metrics_csv), m.metrics_csv)
                self._logs[m.run] = read
            if read.key != key or m.metrics_csv:  # grown (or a metrics CSV that may have)
                read.follower.catch_up()
                read.follower.close()  # no handle kept per run (a logs folder may hold thousands)
                read.key = key
            return read.follower.state.snapshot()

    def listing(self, m: Manifest) -> tuple[RunState, float | None, float | None]:
        """What a runs listing shows of a run: its judged state (the log's scalar fields only, no
        timeline), its last Sharpe and its last validation loss.

        An ended run's log does not change, so what its log gave is kept in
        `training/.cache/<run>.json`, keyed by the log's (device, inode, size, mtime) and reused
        while they match: `runctl runs` costs a stat and a small read per ended run instead of
        reading its log whole. The manifest and liveness are applied afresh every time; a cache
        that cannot be read or written is only a miss.
        """
        path = self.log_path(m.run)
        try:
            fs = os.stat(path)
        except OSError:
            return self.judge(m, RunState()), None, None
        key = [LISTING_VERSION, fs.st_dev, fs.st_ino, fs.st_size, fs.st_mtime_ns]
        cache = self.training_dir / ".cache" / f"{m.run}.json"
        row: dict[str, Any] | None = None
        if not m.metrics_csv:  # a metrics CSV may grow while the log does not
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(cache.read_text(encoding="utf-8"))
                if isinstance(data, dict) and data.get("key") == key and isinstance(data.get("row"), dict):
                    row = data["row"]
        fresh = row is None
        if row is None:
            full = self.log_state(m)
            row = {k: getattr(full, k) for k in _LISTED}
            row["sharpe"] = next((r.sharpe for r in reversed(full.epochs) if r.sharpe is not None), None)
            row["val_loss"] = next((r.val_loss for r in reversed(full.epochs) if r.val_loss is not None), None)
        st = RunState()
        for k in _LISTED:
            setattr(st, k, row.get(k, getattr(st, k)))
        st = self.judge(m, st)
        if fresh and st.state in TERMINAL and not m.metrics_csv:
            with contextlib.suppress(OSError, TypeError, ValueError):
                cache.parent.mkdir(exist_ok=True)
                atomic_write_json(cache, {"key": key, "row": row}, durable=False)
        sharpe, val = row.get("sharpe"), row.get("val_loss")
        return (st, sharpe if isinstance(sharpe, float) else None,
                val if isinstance(val, float) else None)

    def judge(self, m: Manifest, st: RunState, alive: bool | None = None) -> RunState:
        """Apply liveness and the manifest to a state read from the log (mutates and returns it)."""
        st.run = m.run
        st.pid = m.pid
        if st.source_format is None and m.log_format != "auto":
            st.source_format = m.log_format  # the preset says what the log is, before it says it
        if alive is None:
            alive = self.is_running(m)
        if alive:
            if st.state in TERMINAL and self._resumed_since_exit(m):
                st.state = "launching"  # a new attempt started and has not written yet
            return st
        if st.exit_reason is not None and st.exit_reason != "requeued" or st.state in ("finished", "crashed"):
            return st
        if st.state == "killed" or m.killed:
            st.state = "killed"
            return st
        st.state = "crashed"
        st.error = st.error or self._why_gone(m)
        return st

    def _why_gone(self, m: Manifest) -> str:
        if m.backend != "slurm":
            return NO_FINAL_LINE
        info = self.job(m)
        if info is None and m.run in self.job_errors:
            return f"Slurm job {m.job_id}: state unknown ({self.job_errors[m.run]})"
        if info is None:
            return (f"Slurm job {m.job_id} vanished (not in scontrol or sacct) and the log has no "
                    f"final line")
        return f"Slurm job {m.job_id} ended {info.state}" + (f" (exit {info.exit_code})" if info.exit_code else "") \
            + " without a final line"

    def _resumed_since_exit(self, m: Manifest) -> bool:
        last = m.history[-1] if m.history else {}
        if last.get("event") != "resume":
            return False
        try:
            return self.log_path(m.run).stat().st_size <= int(last.get("log_offset", -1))
        except OSError:
            return False


@dataclass
class _ReadLog:
    """One log as `RunStore.log_state` read it: its follower (closed between reads) and the
    (device, inode, size, mtime) it had then."""

    follower: Any
    metrics_csv: str | None
    key: tuple[int, ...] = ()


def live_state(
    st: RunState, store: RunStore | None, manifest: Manifest | None, alive: bool | None,
    run: str | None = None,
) -> RunState:
    """A snapshot of a follower's folded state with the manifest and liveness applied.

    The one fold of the TUI's follower worker and `runctl status --watch` / `--follow`: the
    follower's own state is never mutated, and its later folds never change the snapshot. Without
    a store, a manifest or a liveness sample, only the run id is filled in.
    """
    out = st.snapshot()
    if store is not None and manifest is not None and alive is not None:
        return store.judge(manifest, out, alive=alive)
    if run is not None:
        out.run = out.run or run
    return out


def read_log_state(path: Path, metrics_csv: str | None = None) -> RunState:
    """`tui.state.follow.read_state`, imported lazily (an empty state while it is missing)."""
    try:
        from tui.state.follow import read_state
    except ImportError:
        return RunState()
    if not Path(path).exists():
        return RunState()
    return read_state(path, metrics_csv=metrics_csv)


def metrics_csv_of_log(log: Path | str) -> str | None:
    """The metrics CSV glob recorded in the manifest beside `log` (None: none, or no manifest)."""
    m = RunStore(Path(log).parent.parent).for_log(log)
    return m.metrics_csv if m is not None else None
