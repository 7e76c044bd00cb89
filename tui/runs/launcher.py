"""Launch a run detached, kill it (pid verified, SIGTERM then SIGKILL), resume it.

A run is the bundled engine (`python -m engine train`), or a preset's own `command` started through
`tui.runs.supervise` (which makes sure its log ends with an exit line). Every run gets
`RUNCTL_RUN_DIR` and `RUNCTL_RUN` in its environment (engine.stream.RunctlCallback reads them),
and `RUNCTL_EXIT_FILE` / `RUNCTL_ATTEMPT`: where and as which attempt it records how it ended
(engine.runfiles; the placeholder written before it starts reserves that record's space).

Nothing is left half-done: a start whose manifest, pid file or GPU reservation cannot be written
(a full disk) stops the process it just started and removes what it wrote.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.runfiles import ATTEMPT_ENV, EXIT_FILE_ENV, placeholder, write_record
from tui.errors import RunctlError, write_error
from tui.presets.preset import expand
from tui.runs import procs, slurm
from tui.runs.checkpoints import resume_point
from tui.runs.gpus import (
    box_gpus,
    default_count,
    held,
    machine_lock,
    release,
    reserve,
    visible_devices,
)
from tui.runs.lock import controller_lock
from tui.runs.slurm import SlurmSpec
from tui.runs.store import NAME_RE, Manifest, RunStore

ENGINE_CMD = (sys.executable, "-m", "engine")
SUPERVISE_CMD = (sys.executable, "-m", "tui.runs.supervise")
RESUMABLE = ("last.ckpt", "interrupted.ckpt")  # what `engine train --resume` continues from
DEFAULT_METRICS_CSV = "{run_dir}/**/metrics.csv"  # where a command's CSVLogger writes, by default
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
    ) -> Manifest:
        """Validate everything, then start the run detached (or submit it to Slurm) and write its
        manifest. `backend` overrides the preset's (local | slurm)."""
        resolved = self.prepare(preset, sets, envs)
        name = name or preset
        if not NAME_RE.match(name):
            raise RunctlError(f"--name {name!r}: use letters, digits, '_', '-', '.'")
        if autopilot < 0:
            raise RunctlError(f"--autopilot {autopilot}: must be >= 0")
        backend = backend or resolved.backend
        if backend not in ("local", "slurm"):
            raise RunctlError(f"--backend {backend!r}: use local or slurm")
        spec = SlurmSpec.from_json(resolved.slurm) if backend == "slurm" else None
        if spec is not None:  # before anything is written: the commands, the partition
            slurm.check_available()
            if spec.partition:
                slurm.check_partition(spec.partition)
        with self._lock(f"launch {name}"), self._gpu_lock(spec is None):
            runs = self.store.runs()
            for other in runs:
                if other.name == name and self.store.is_running(other):
                    raise NameBusy(
                        f"run {other.run} ({_where(other)}) named {name!r} is still running; "
                        f"kill it or pick another --name"
                    )
            need, ids, gpu_env = self.allocate(resolved, runs) if spec is None else (0, [], {})
            now = time.time()
            run = self.store.new_run_id(name, now)
            self.store.training_dir.mkdir(parents=True, exist_ok=True)
            log = self.store.log_path(run).resolve()
            run_dir = self.store.run_dir(run).resolve()
            env = {**resolved.env}
            extra: dict[str, Any] = {"gpus": tuple(ids), "gpus_requested": need}
            values = resolved.placeholder_values(run_dir, run)
            if resolved.is_engine:
                argv = [*self.engine_cmd, "train", "--run-dir", str(run_dir), *resolved.engine_args()]
                if spec is not None and spec.distributed:  # Lightning DDP across the job's tasks
                    argv += [f"train.trainer.num_nodes={spec.nodes}",
                             f"train.trainer.devices={spec.ntasks_per_node}", "train.trainer.strategy=ddp"]
            else:
                argv = resolved.command_argv(run_dir, run)
                csv = expand(resolved.metrics_csv or DEFAULT_METRICS_CSV, values)
                ckpts = getattr(resolved, "checkpoint_files", None)
                extra |= {"kind": "command", "cwd": str(resolved.workdir),
                          "resume_args": resolved.resume_args, "placeholders": values,
                          "log_format": resolved.log_format, "metrics_csv": csv,
                          "checkpoint_files": expand(ckpts, values) if ckpts else None}
            extra["sources"] = resolved.source_config(run_dir, run).to_json()
            m = Manifest(
                run=run, name=name, preset=preset, log=str(log), run_dir=str(run_dir),
                pid_file=str(self.store.pid_path(name).resolve()), created_at=round(now, 3),
                host=socket.gethostname(), argv=tuple(argv), sets=tuple(sets), envs=tuple(envs),
                env=env, overrides=dict(resolved.overrides), state="running", parent=parent, **extra,
            )
            if spec is not None:
                m = self._submit(replace(m, backend="slurm", slurm=spec.to_json(), state="submitting"),
                                 spec, resume_now=[])
            else:
                m = self._start_attempt(m, "launch", argv, log, {**env, **gpu_env}, ids,
                                        cwd=None if resolved.is_engine else resolved.workdir,
                                        made_dir=not resolved.is_engine and not run_dir.exists())
            if autopilot > 0:
                m = self._start_autopilot(m, autopilot, presets_dir)
                self.store.save(m)
        return m

    # ------------------------------------------------------------------------------ slurm
    def _submit(self, m: Manifest, spec: SlurmSpec, resume_now: list[str]) -> Manifest:
        """Write the batch script and submit it; the manifest is written first (no job is ever left
        without one) and, if sbatch refuses, removed again with the script (a new run) or left as
        it was (a resume)."""
        run_dir = Path(m.run_dir)
        new_run = not self.store.manifest_path(m.run).exists()
        if m.kind == "command":
            restart = [expand(a, {**m.placeholders, "ckpt": slurm.CKPT_MARK}) for a in m.resume_args]
            resume_on_restart: list[str] | None = restart or None
        else:
            resume_on_restart = ["--resume"]
        exit_file = self.store.exit_path(m.run)
        attempt = m.attempt + (0 if new_run else 1)
        env = {**m.env, EXIT_FILE_ENV: str(exit_file.resolve()), ATTEMPT_ENV: str(attempt)}
        job = slurm.BatchJob(run=m.run, run_dir=run_dir, log=Path(m.log),
                             cwd=Path(m.cwd) if m.cwd else run_dir, argv=list(m.argv), env=env,
                             spec=spec, resume_now=resume_now, resume_on_restart=resume_on_restart)
        scripts = run_dir / "slurm"
        created_dir = not run_dir.exists()
        try:
            scripts.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise write_error(scripts, e, "create") from None
        script = scripts / f"job-{len(m.job_ids) + 1}.sbatch"
        if new_run:
            self.store.save(m)
        try:
            write_record(exit_file, placeholder(attempt), reserve=True)
            script.write_text(slurm.batch_script(job), encoding="utf-8")
            job_id = slurm.submit(script)
        except (RunctlError, OSError) as e:
            script.unlink(missing_ok=True)
            if new_run:
                self.store.manifest_path(m.run).unlink(missing_ok=True)
                if created_dir:
                    shutil.rmtree(run_dir, ignore_errors=True)
            if isinstance(e, OSError):
                raise write_error(getattr(e, "filename", None) or script, e) from None
            raise
        self.store.jobs.forget(job_id)
        m = replace(m, job_id=job_id, job_ids=(*m.job_ids, job_id), state="running", pid=None,
                    create_time=None, cmdline=())
        m = m.with_event("submit" if new_run else "resume", job_id=job_id, script=str(script), by=_by())
        self.store.save(m)
        return m

    def _kill_job(self, m: Manifest, grace: float, say: Say, by: str | None) -> tuple[Manifest, list[str]]:
        info = self.store.job(m)
        if info is None or not info.active:
            state = info.state if info is not None else "unknown to Slurm"
            raise RunctlError(f"run {m.run} is not running (Slurm job {m.job_id}: {state})")
        job = m.job_id
        assert job is not None
        m = replace_state(m.with_event("kill", job_id=m.job_id, grace=grace, by=by or _by()), "killing")
        self.store.save(m)
        if info.state != "RUNNING":
            slurm.cancel(job)
            steps = [f"scancel {m.job_id} ({info.state.lower()})"]
            say(steps[0])
            return m, steps
        slurm.signal_job(job, "TERM")
        steps = [f"SIGTERM -> Slurm job {m.job_id} (run {m.run})"]
        say(f"{steps[0]}; waiting up to {grace:g}s for checkpoint-and-exit")
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            self.store.jobs.forget(job)
            now = self.store.job(m)
            if now is None or not now.active:
                steps.append("exited after SIGTERM")
                say(f"run {m.run} exited after SIGTERM")
                return m, steps
            time.sleep(0.5)
        slurm.cancel(job)
        steps.append(f"still running after {grace:g}s: scancel {m.job_id}")
        say(steps[-1])
        return m, steps

    def _gpu_lock(self, local: bool) -> Any:
        """The machine-wide GPU allocation lock (a local start on a box with GPUs), else nothing."""
        return machine_lock() if local and box_gpus() else contextlib.nullcontext()

    def _start_attempt(self, m: Manifest, event: str, argv: list[str], log: Path, env: dict[str, str],
                       gpus: list[int], cwd: Path | None, made_dir: bool = False, **entry: Any) -> Manifest:
        """Start one attempt of a local run and record it: the exit record's placeholder first
        (it reserves the record's space), the process, then its manifest, pid file and GPU
        reservations. When one of those writes fails, the process is stopped and what was written
        removed (a new run leaves nothing; a resume leaves its manifest as it was)."""
        new_run = not m.history
        attempt = m.attempt + (0 if new_run else 1)
        exit_file = self.store.exit_path(m.run)
        old_exit = exit_file.read_bytes() if exit_file.exists() else None
        new_log = not log.exists()
        target: Path = Path(m.run_dir)
        try:
            if made_dir:
                target.mkdir(parents=True, exist_ok=True)
            target = exit_file
            write_record(exit_file, placeholder(attempt), reserve=True)  # fails whole (the old record stays)
        except OSError as e:
            self._undo(m, None, [], exit_file, None, log if new_log else None, made_dir, new_run, keep_exit=True)
            raise write_error(target, e, "write" if target == exit_file else "create") from None
        env = {**env, EXIT_FILE_ENV: str(exit_file.resolve()), ATTEMPT_ENV: str(attempt)}
        try:
            ident = self._start(argv, log, env, m.run, Path(m.run_dir), cwd=cwd)
        except RunctlError:
            self._undo(m, None, [], exit_file, old_exit, log if new_log else None, made_dir, new_run)
            raise
        files: list[Path] = []
        if not entry.get("log_ino"):
            with contextlib.suppress(OSError):
                fs = os.stat(log)
                entry["log_ino"] = [fs.st_dev, fs.st_ino]  # the file it writes, even once renamed
        try:
            if gpus:
                files = reserve(gpus, ident, m.run, self.store.logs_dir)
            m = replace(m, pid=ident.pid, create_time=ident.create_time, cmdline=ident.cmdline,
                        gpus=tuple(gpus), state="running")
            m = m.with_event(event, pid=ident.pid, create_time=ident.create_time, by=_by(), **entry)
            self.store.save(m)
            self.store.write_pid(m)
        except RunctlError:
            self._undo(m, ident, files, exit_file, old_exit, log if new_log else None, made_dir, new_run)
            raise
        return m

    def _undo(self, m: Manifest, ident: procs.Identity | None, files: list[Path], exit_file: Path,
              old_exit: bytes | None, new_log: Path | None, made_dir: bool, new_run: bool,
              keep_exit: bool = False) -> None:
        """Roll a start back: stop the process it started (verified), remove what it wrote."""
        if ident is not None:
            procs.signal_group(ident, signal.SIGKILL)
            procs.wait_gone(ident, 5.0)
        release(files)
        with contextlib.suppress(OSError):
            if keep_exit:
                pass  # the placeholder was not written: the file is as it was
            elif old_exit is None:
                exit_file.unlink()
            else:
                exit_file.write_bytes(old_exit)
        if new_run:  # a new run: nothing of it stays
            with contextlib.suppress(OSError):
                self.store.manifest_path(m.run).unlink()
            if new_log is not None:
                with contextlib.suppress(OSError):
                    new_log.unlink()
            if made_dir:
                shutil.rmtree(m.run_dir, ignore_errors=True)

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
        """SIGTERM the run's process group, wait `grace` s for checkpoint-and-exit, then SIGKILL."""
        run = self.store.get(run).run  # unknown: say so before touching anything
        with self._lock(f"kill {run}"):
            m = self.store.get(run)
            if m.backend == "slurm":
                m, steps = self._kill_job(m, grace, say, by)
                m = replace_state(m, "killed", history=(*m.history[:-1], {**m.history[-1],
                                  "done_at": round(time.time(), 3)}))
                self.store.save(m)
                self.store.jobs.forget(m.job_id)
                return "; ".join(steps)
            ident = m.identity
            if ident is None and m.damaged is not None:
                raise RunctlError(f"run {m.run} is not running: its manifest is damaged ({m.damaged}) and no "
                                  f"live process writes its log (the pid file and the log's pid lines checked)")
            if ident is None:
                raise RunctlError(f"run {m.run} has no recorded process")
            why = procs.mismatch(ident)
            if why == "gone":
                st = self.store.state(m)
                raise RunctlError(f"run {m.run} is not running (pid {m.pid} is gone; state {st.state})")
            if why is not None:
                raise RunctlError(
                    f"refusing to signal pid {m.pid}: it is not run {m.run}'s engine ({why}); "
                    f"the pid was reused, the run itself is gone"
                )
            m = m.with_event("kill", pid=m.pid, grace=grace, by=by or _by())
            m = replace_state(m, "killing")
            self.store.save(m)
            target = procs.signal_group(ident, signal.SIGTERM)
            steps = [f"SIGTERM -> {target} (run {m.run})"]
            say(f"{steps[0]}; waiting up to {grace:g}s for checkpoint-and-exit")
            if procs.wait_gone(ident, grace):
                steps.append("exited after SIGTERM")
                say(f"run {m.run} exited after SIGTERM")
                signals = ["SIGTERM"]
            else:
                target = procs.signal_group(ident, signal.SIGKILL)
                steps.append(f"still alive after {grace:g}s: SIGKILL -> {target}")
                say(steps[-1])
                procs.wait_gone(ident, 5.0)
                signals = ["SIGTERM", "SIGKILL"]
            hist = list(m.history)
            hist[-1] = {**hist[-1], "signals": signals, "done_at": round(time.time(), 3)}
            m = replace_state(m, "killed", history=tuple(hist))
            self.store.save(m)
        st = self.store.state(m)
        if st.exit_status is not None:
            steps.append(f"exit status {st.exit_status} ({st.exit_reason})")
        return "; ".join(steps)

    # ----------------------------------------------------------------------------- resume
    def resume(self, run: str, say: Say = _quiet) -> Manifest:
        """Relaunch in the same run dir, appending to the same log, from the newest checkpoint that
        loads (each damaged one is named through `say`, in the log and in the resume's history
        entry; none intact: the run starts again from epoch 1, said the same way)."""
        run = self.store.get(run).run
        with self._lock(f"resume {run}"):
            m = self.store.get(run)
            if m.damaged is not None:
                raise RunctlError(f"run {m.run} cannot be resumed: its manifest {self.store.manifest_path(m.run)} "
                                  f"is damaged ({m.damaged}); its log is {m.log}, its checkpoints in {m.run_dir}")
            if self.store.is_running(m):
                raise RunctlError(f"run {m.run} is still running ({_where(m)}); kill it first")
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
            if m.backend == "slurm":  # a new job on the same run folder and log
                spec = SlurmSpec.from_json(m.slurm)
                slurm.check_available()
                now_args = self._resume_args(m, point) if m.kind == "command" else ["--resume"]
                return self._submit(replace(m, state="running"), spec, resume_now=now_args)
            with self._gpu_lock(True):
                _, ids, gpu_env = self.allocate(None, need=m.gpus_requested)
                env = {**m.env, **gpu_env}
                if m.kind == "command":
                    argv = [*m.argv, *self._resume_args(m, point)]
                    cwd: Path | None = Path(m.cwd or m.run_dir)
                else:
                    argv = list(m.argv)
                    i = argv.index("train") + 1 if "train" in argv else len(argv)
                    argv[i:i] = ["--resume"]
                    cwd = None
                entry: dict[str, Any] = {"log_offset": offset, "log_ino": ino, "after": after,
                                         "ckpt": str(point.path) if point.path is not None else None}
                if note is not None:
                    entry["note"] = note
                m = self._start_attempt(m, "resume", argv, log.resolve(), env, ids, cwd=cwd, **entry)
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


def _where(m: Manifest) -> str:
    """Where a run runs, for messages: its pid, or its Slurm job."""
    return f"Slurm job {m.job_id}" if m.backend == "slurm" else f"pid {m.pid}"


def _by() -> str:
    """Who acted: host and pid of this controller."""
    return f"{socket.gethostname()}:{os.getpid()}"
