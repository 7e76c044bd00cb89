"""Launch a run, kill it, resume it: what every backend shares, under the controller lock.

The launcher validates the preset and the name, gives a run this machine's GPU slots when its
backend runs it here, builds its command and manifest, and hands each start and kill to the run's
backend (tui.runs.backend: a detached process of this machine, a Slurm job). A run is the
bundled engine (`python -m engine train`), or a preset's own `command` started through
`tui.runs.supervise` (which makes sure its log ends with an exit line). Every run gets
`RUNCTL_RUN_DIR` and `RUNCTL_RUN` in its environment (engine.stream.RunctlCallback reads them),
and `RUNCTL_EXIT_FILE` / `RUNCTL_ATTEMPT`: where and as which attempt it records how it ended
(engine.runfiles; the placeholder written before it starts reserves that record's space).

Nothing is left half-done: a start whose manifest, pid file or GPU reservation cannot be written
(a full disk) stops what it just started and removes what it wrote (the backend's start).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tui.errors import RunctlError, write_error
from tui.presets.backends import BACKENDS
from tui.presets.preset import expand
from tui.runs import procs
from tui.runs.backend import Attempt, actor, backend_named
from tui.runs.checkpoints import resume_point
from tui.runs.gpus import (
    box_gpus,
    default_count,
    held,
    machine_lock,
    visible_devices,
)
from tui.runs.lock import controller_lock
from tui.runs.store import NAME_RE, Manifest, RunStore
from tui.runs.watcher import manifest_fields, wake_watcher

ENGINE_CMD = (sys.executable, "-m", "engine")
SUPERVISE_CMD = (sys.executable, "-m", "tui.runs.supervise")
RESUMABLE = ("last.ckpt", "interrupted.ckpt")  # what `engine train --resume` continues from
DEFAULT_METRICS_CSV = "{run_dir}/**/metrics.csv"  # where a command's CSVLogger writes, by default
ENDING_WAIT_S = 120.0  # a resume's wait for an attempt on its way out (Slurm: COMPLETING)
Say = Callable[[str], None]


def _quiet(_: str) -> None:
    """Default `say`: print nothing."""


class GpusBusy(RunctlError):
    """The GPUs a launch needs are held by other runs (it can wait in the queue)."""


class NameBusy(RunctlError):
    """A live run already has the name a launch asks for (a queued item waits for it)."""


class Launcher:
    """Starts, stops and resumes runs of one RunStore; every change happens under the lock."""

    def __init__(
        self, store: RunStore, registry: Any, engine_cmd: Sequence[str] = ENGINE_CMD,
        lock_timeout: float | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.engine_cmd = list(engine_cmd)
        self.lock_timeout = lock_timeout

    def _lock(self, what: str) -> Any:
        return controller_lock(self.store.logs_dir, what, self.lock_timeout)

    # ----------------------------------------------------------------------------- launch
    def prepare(self, preset: str, sets: Sequence[str] = (), envs: Sequence[str] = ()) -> Any:
        """The resolved, validated preset (PresetError on any bad input; nothing written)."""
        from tui.presets.registry import resolve

        return resolve(self.registry.get(preset), list(sets), list(envs))

    def launch(
        self, preset: str, sets: Sequence[str] = (), envs: Sequence[str] = (),
        name: str | None = None, autopilot: int = 0, parent: str | None = None,
        presets_dir: Path | None = None, backend: str | None = None,
        sweep: dict[str, Any] | None = None,
    ) -> Manifest:
        """Validate everything, then start the run where its backend runs it (a detached process,
        a Slurm job) and write its manifest. `backend` overrides the preset's; `sweep`: the point
        of a sweep this run is (recorded in its manifest)."""
        resolved = self.prepare(preset, sets, envs)
        name = name or preset
        if not NAME_RE.match(name):
            raise RunctlError(f"--name {name!r}: use letters, digits, '_', '-', '.'")
        if autopilot < 0:
            raise RunctlError(f"--autopilot {autopilot}: must be >= 0")
        backend = backend or resolved.backend
        if backend not in BACKENDS:
            *first, last = BACKENDS
            raise RunctlError(f"--backend {backend!r}: use {', '.join(first)} or {last}")
        impl = backend_named(backend)
        settings = resolved.backend_settings.get(backend, {})
        impl.check(settings)  # before anything is written (Slurm: its commands, the partition)
        with self._lock(f"launch {name}"), self._gpu_lock(impl.holds_box_gpus):
            runs = self.store.runs()
            for other in runs:
                if other.name == name and self.store.is_running(other):
                    raise NameBusy(
                        f"run {other.run} ({self.store.backend(other).where(other)}) named {name!r} "
                        f"is still running; kill it or pick another --name"
                    )
            need, ids, gpu_env = self.allocate(resolved, runs) if impl.holds_box_gpus else (0, [], {})
            now = time.time()
            run = self.store.new_run_id(name, now)
            self.store.training_dir.mkdir(parents=True, exist_ok=True)
            log = self.store.log_path(run).resolve()
            run_dir = self.store.run_dir(run).resolve()
            env = {**resolved.env}
            extra: dict[str, Any] = {"gpus": tuple(ids), "gpus_requested": need}
            values = resolved.placeholder_values(run_dir, run)
            if resolved.is_engine:
                argv = [*self.engine_cmd, "train", "--run-dir", str(run_dir), *resolved.engine_args(),
                        *impl.engine_args(settings)]
            else:
                argv = resolved.command_argv(run_dir, run)
                csv = expand(resolved.metrics_csv or DEFAULT_METRICS_CSV, values)
                ckpts = getattr(resolved, "checkpoint_files", None)
                extra |= {"kind": "command", "cwd": str(resolved.workdir),
                          "resume_args": resolved.resume_args, "placeholders": values,
                          "log_format": resolved.log_format, "metrics_csv": csv,
                          "checkpoint_files": expand(ckpts, values) if ckpts else None}
            extra["sources"] = resolved.source_config(run_dir, run).to_json()
            extra |= manifest_fields(resolved)  # issue 20: stall_after, the presets folder
            if sweep is not None:
                extra["sweep"] = dict(sweep)
            m = Manifest(
                run=run, name=name, preset=preset, log=str(log), run_dir=str(run_dir),
                pid_file=str(self.store.pid_path(name).resolve()), created_at=round(now, 3),
                host=socket.gethostname(), argv=tuple(argv), sets=tuple(sets), envs=tuple(envs),
                env=env, overrides=dict(resolved.overrides), state="running", parent=parent,
                backend=backend, **extra,
            )
            m = impl.start(self.store, m, Attempt(
                "launch", self._start, {**env, **gpu_env}, tuple(ids), settings,
                cwd=None if resolved.is_engine else resolved.workdir,
                made_dir=not resolved.is_engine and not run_dir.exists()))
            wake_watcher(self.store, m)  # issue 20: notifications with no window open (never raises)
            if autopilot > 0:
                m = self._start_autopilot(m, autopilot, presets_dir)
                self.store.save(m)
        return m

    def _gpu_lock(self, local: bool) -> Any:
        """The machine-wide GPU allocation lock (a start that takes this machine's GPU slots, on a
        box with GPUs), else nothing."""
        return machine_lock() if local and box_gpus() else contextlib.nullcontext()

    def allocate(self, resolved: Any, runs: list[Manifest] | None = None,
                 need: int | None = None) -> tuple[int, list[int], dict[str, str]]:
        """(GPUs needed, the free ones given, the env that gives them); GpusBusy when taken.

        Call under the lock. A box without GPUs gives none and leaves CUDA_VISIBLE_DEVICES alone.
        """
        box = box_gpus()
        if need is None:
            asked = resolved.gpus if resolved is not None else None
            need = asked if asked is not None else default_count(box)
        if need > len(box):
            where = f"{resolved.path}: gpus = {need}" if resolved is not None else f"{need} GPU(s)"
            raise RunctlError(f"{where}, but this box has {len(box)} GPU(s) "
                              f"({'RUNCTL_GPUS' if 'RUNCTL_GPUS' in os.environ else 'NVML'})")
        if not box:
            return need, [], {}
        taken = held(self.store, runs)
        free = [g for g in box if g not in taken]
        if need > len(free):
            who = ", ".join(sorted(set(taken.values())))
            raise GpusBusy(f"{need} GPU(s) needed, {len(free)} of {len(box)} free (held by {who}); "
                           f"`--queue` waits for them")
        ids = free[:need]
        return need, ids, {"CUDA_VISIBLE_DEVICES": visible_devices(ids)}

    def _start(self, argv: list[str], log: Path, env: dict[str, str], run: str | None = None,
               run_dir: Path | None = None, cwd: Path | None = None) -> procs.Identity:
        """Popen detached (own session, no stdin, log appended); the identity psutil sees.

        With `cwd`, `argv` is a preset's command: it runs there, through `tui.runs.supervise`.
        """
        full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        if run is not None and run_dir is not None:
            full_env.update(RUNCTL_RUN=run, RUNCTL_RUN_DIR=str(run_dir))
        if cwd is not None:
            argv = [*SUPERVISE_CMD, "--log", str(log), "--", *argv]
        created = not log.exists()
        try:
            out = open(log, "ab")  # noqa: SIM115 - closed below, once the child has it
        except OSError as e:
            raise write_error(log, e, "create") from None
        try:
            with out:
                proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    env=full_env, start_new_session=True, close_fds=True, cwd=cwd,
                )
        except OSError as e:
            if created and log.exists() and log.stat().st_size == 0:
                log.unlink()
            raise RunctlError(f"cannot start {argv[0]}: {e.strerror or e}") from None
        # Reap it if this process outlives it (the identity check treats a zombie as gone anyway).
        threading.Thread(target=proc.wait, daemon=True).start()
        ident = procs.identify(proc.pid)
        if ident is None:  # exited at once: keep what we know, the log says why
            ident = procs.Identity(proc.pid, time.time(), tuple(argv))
        return ident

    def _start_autopilot(self, m: Manifest, steps: int, presets_dir: Path | None) -> Manifest:
        cmd = [sys.executable, "-m", "tui.runs.autopilot", "--logs", str(self.store.logs_dir.resolve()),
               "--steps", str(steps), m.run]
        if presets_dir is not None:
            cmd[5:5] = ["--presets", str(Path(presets_dir).resolve())]
        ident = self._start(cmd, self.store.training_dir / f"{m.run}.autopilot.log", {})
        info = {"steps": steps, "step": 0, "root": m.run, "supervisor": ident.to_json(),
                "decisions": []}
        return replace_autopilot(m, info)

    # ------------------------------------------------------------------------------- kill
    def kill(self, run: str, grace: float = 30.0, say: Say = _quiet, by: str | None = None) -> str:
        """Stop the run through its backend, under the lock: SIGTERM (checkpoint-and-exit), then
        for good after `grace` s (a local run: its verified process group; Slurm: scancel)."""
        run = self.store.get(run).run  # unknown: say so before touching anything
        with self._lock(f"kill {run}"):
            m = self.store.get(run)
            return self.store.backend(m).kill(self.store, m, grace, say, by or actor())

    # ----------------------------------------------------------------------------- resume
    def _await_ending(self, run: str, say: Say) -> None:
        """A run whose attempt is on its way out (a job cancelled from outside runctl, still
        COMPLETING in Slurm): wait up to ENDING_WAIT_S for it to end, outside the lock."""
        m = self.store.get(run)
        impl = self.store.backend(m)
        if m.damaged is not None or not impl.ending(self.store, m):
            return
        say(f"{impl.where(m)} is completing; waiting up to {ENDING_WAIT_S:g}s for it to end")
        deadline = time.monotonic() + ENDING_WAIT_S
        while time.monotonic() < deadline and impl.ending(self.store, m):
            time.sleep(0.5)

    def resume(self, run: str, say: Say = _quiet) -> Manifest:
        """Relaunch in the same run dir, appending to the same log, from the newest checkpoint that
        loads (each damaged one is named through `say`, in the log and in the resume's history
        entry; none intact: the run starts again from epoch 1, said the same way)."""
        run = self.store.get(run).run
        self._await_ending(run, say)
        with self._lock(f"resume {run}"):
            m = self.store.get(run)
            if m.damaged is not None:
                raise RunctlError(f"run {m.run} cannot be resumed: its manifest {self.store.manifest_path(m.run)} "
                                  f"is damaged ({m.damaged}); its log is {m.log}, its checkpoints in {m.run_dir}")
            if self.store.is_running(m):
                raise RunctlError(f"run {m.run} is still running ({self.store.backend(m).where(m)}); "
                                  f"kill it first")
            ckpts = Path(m.run_dir) / "checkpoints"
            if m.kind == "command" and not m.resume_args:
                raise RunctlError(f"run {m.run} cannot be resumed: its preset {m.preset!r} has no "
                                  f"resume_args (e.g. resume_args = [\"--ckpt\", \"{{ckpt}}\"])")
            point = resume_point(m)
            if point.path is None and not point.damaged and not point.restart:
                where = m.checkpoint_files if m.kind == "command" and m.checkpoint_files else None
                raise RunctlError(f"run {m.run} has no checkpoint to resume from "
                                  + (f"(nothing matches {where})" if where
                                     else f"(no {' or '.join(RESUMABLE)} in {ckpts})"))
            note = point.summary() if point.damaged or point.path is None else None
            if note is not None:
                say(f"run {m.run}: {note}")
            after = self._ended_as(m)
            log = self.store.log_path(m.run)
            offset, ino = self._open_log_for_resume(log, m, note)
            impl = self.store.backend(m)
            with self._gpu_lock(impl.holds_box_gpus):
                ids: list[int] = []
                gpu_env: dict[str, str] = {}
                if impl.holds_box_gpus:
                    _, ids, gpu_env = self.allocate(None, need=m.gpus_requested)
                entry: dict[str, Any] = {"log_offset": offset, "log_ino": ino, "after": after,
                                         "ckpt": str(point.path) if point.path is not None else None}
                if note is not None:
                    entry["note"] = note
                args = self._resume_args(m, point) if m.kind == "command" else ["--resume"]
                m = impl.start(self.store, m, Attempt("resume", self._start, {**m.env, **gpu_env},
                                                       tuple(ids), resume=tuple(args), entry=entry))
            wake_watcher(self.store, m)  # issue 20: notifications with no window open (never raises)
        return m

    def _resume_args(self, m: Manifest, point: Any) -> list[str]:
        """A command's resume_args with `{ckpt}` (none intact: none at all, so it starts again)."""
        if point.path is None:
            return []
        values = {**m.placeholders, "ckpt": str(point.path)}
        return [expand(a, values) for a in m.resume_args]

    def _ended_as(self, m: Manifest) -> dict[str, Any]:
        """How the attempt being resumed ended (the resume entry keeps it: a resumed run that
        crashes the same way is not sent to resume again)."""
        st = self.store.state(m)
        return {"state": st.state, "error": st.error, "exit_reason": st.exit_reason}

    def _open_log_for_resume(self, log: Path, m: Manifest, note: str | None) -> tuple[int, list[int] | None]:
        """Before a resume appends to the log: end a cut last line (a full disk, a kill mid-write),
        so the new attempt's first line starts a line of its own, and write the checkpoint note of
        a command's resume (the engine writes its own). (The log's size then, its (dev, ino).)"""
        if not log.exists():
            return 0, None
        try:
            with open(log, "r+b") as f:
                size = f.seek(0, os.SEEK_END)
                text = b""
                if size:
                    f.seek(size - 1)
                    if f.read(1) != b"\n":
                        text += b"\n"
                if note is not None and m.kind == "command":
                    stamp = time.strftime("%Y-%m-%d %H:%M:%S") + f",{int(time.time() * 1000) % 1000:03d}"
                    text += f"[{stamp}][runctl][WARNING] - [resume] {note}\n".encode()
                if text:
                    f.seek(0, os.SEEK_END)
                    f.write(text)
                    f.flush()
                fs = os.fstat(f.fileno())
                return f.tell(), [fs.st_dev, fs.st_ino]
        except OSError as e:
            raise write_error(log, e) from None

def replace_state(m: Manifest, state: str, **kw: Any) -> Manifest:
    """A copy with a new controller state (and other fields)."""
    return replace(m, state=state, **kw)


def replace_autopilot(m: Manifest, info: dict[str, Any] | None, **kw: Any) -> Manifest:
    """A copy with new autopilot info."""
    return replace(m, autopilot=info, **kw)



