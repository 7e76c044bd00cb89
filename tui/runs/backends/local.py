"""The local backend: a run as a detached process of this machine (docs/cli.md, `launch`).

An attempt is one process the launcher starts (`Attempt.spawn`: its own session and process
group, stdin /dev/null, its output appended to the run's log), recorded by its identity (pid,
psutil create_time, cmdline: tui.runs.procs) in the manifest and the pid file, holding the
machine's GPUs it was given (tui.runs.gpus reservations). It is alive while that process is, and
killed through its verified process group only. Its exit record's placeholder is written first
(it reserves the record's space); a start whose later writes fail stops the process it started
and removes what it wrote.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.runfiles import (
    ATTEMPT_ENV,
    EXIT_FILE_ENV,
    LOW_SPACE,
    checkpoint_problem,
    epoch_checkpoints,
    free_bytes,
    free_text,
    placeholder,
    write_record,
)
from tui.errors import RunctlError, write_error
from tui.runs import procs
from tui.runs.backend import Attempt, Backend, Say, actor
from tui.runs.gpus import release, reserve
from tui.runs.store import NO_FINAL_LINE, Manifest, RunStore


class LocalBackend(Backend[Manifest, RunStore]):
    """A process of this machine, started detached, known by its verified identity."""

    name = "local"
    title = "local"
    holds_box_gpus = True
    log_at_start = True
    resume_hints = True

    # ------------------------------------------------------------------------- launching
    def start(self, store: RunStore, run: Manifest, attempt: Attempt) -> Manifest:
        """Launch: the manifest's command; resume: it again with the engine's `--resume` (right
        after `train`) or a command's resume_args, in the same folder, onto the same log."""
        m, a = run, attempt
        if a.event == "launch":
            return self._start_attempt(store, m, a, list(m.argv), Path(m.log), cwd=a.cwd,
                                       made_dir=a.made_dir)
        if m.kind == "command":
            argv = [*m.argv, *a.resume]
            cwd: Path | None = Path(m.cwd or m.run_dir)
        else:
            argv = list(m.argv)
            i = argv.index("train") + 1 if "train" in argv else len(argv)
            argv[i:i] = list(a.resume)
            cwd = None
        log = store.log_path(m.run).resolve()
        return self._start_attempt(store, m, a, argv, log, cwd=cwd, **a.entry)

    def _start_attempt(self, store: RunStore, m: Manifest, a: Attempt, argv: list[str], log: Path,
                       cwd: Path | None, made_dir: bool = False, **entry: Any) -> Manifest:
        """Start one attempt and record it: the exit record's placeholder first (it reserves the
        record's space), the process, then its manifest, pid file and GPU reservations. When one
        of those writes fails, the process is stopped and what was written removed (a new run
        leaves nothing; a resume leaves its manifest as it was)."""
        new_run = not m.history
        attempt = m.attempt + (0 if new_run else 1)
        exit_file = store.exit_path(m.run)
        old_exit = exit_file.read_bytes() if exit_file.exists() else None
        new_log = not log.exists()
        target: Path = Path(m.run_dir)
        gpus = list(a.gpus)
        try:
            if made_dir:
                target.mkdir(parents=True, exist_ok=True)
            target = exit_file
            write_record(exit_file, placeholder(attempt), reserve=True)  # fails whole (old record stays)
        except OSError as e:
            _undo(store, m, None, [], exit_file, None, log if new_log else None, made_dir, new_run,
                  keep_exit=True)
            raise write_error(target, e, "write" if target == exit_file else "create") from None
        env = {**a.env, EXIT_FILE_ENV: str(exit_file.resolve()), ATTEMPT_ENV: str(attempt)}
        try:
            ident = a.spawn(argv, log, env, m.run, Path(m.run_dir), cwd=cwd)
        except RunctlError:
            _undo(store, m, None, [], exit_file, old_exit, log if new_log else None, made_dir, new_run)
            raise
        files: list[Path] = []
        if not entry.get("log_ino"):
            with contextlib.suppress(OSError):
                fs = os.stat(log)
                entry["log_ino"] = [fs.st_dev, fs.st_ino]  # the file it writes, even once renamed
        try:
            if gpus:
                files = reserve(gpus, ident, m.run, store.logs_dir)
            m = replace(m, pid=ident.pid, create_time=ident.create_time, cmdline=ident.cmdline,
                        gpus=tuple(gpus), state="running")
            m = m.with_event(a.event, pid=ident.pid, create_time=ident.create_time, by=actor(), **entry)
            store.save(m)
            store.write_pid(m)
        except RunctlError:
            _undo(store, m, ident, files, exit_file, old_exit, log if new_log else None, made_dir, new_run)
            raise
        return m

    def kill(self, store: RunStore, run: Manifest, grace: float, say: Say, by: str) -> str:
        """SIGTERM the run's process group, wait `grace` s for checkpoint-and-exit, then SIGKILL;
        the process verified before each signal (a reused pid is refused, never signalled)."""
        m = run
        ident = m.identity
        if ident is None and m.damaged is not None:
            raise RunctlError(f"run {m.run} is not running: its manifest is damaged ({m.damaged}) and "
                              f"no live process writes its log (the pid file and the log's pid lines "
                              f"checked)")
        if ident is None:
            raise RunctlError(f"run {m.run} has no recorded process")
        why = procs.mismatch(ident)
        if why == "gone":
            st = store.state(m)
            raise RunctlError(f"run {m.run} is not running (pid {m.pid} is gone; state {st.state})")
        if why is not None:
            raise RunctlError(
                f"refusing to signal pid {m.pid}: it is not run {m.run}'s engine ({why}); "
                f"the pid was reused, the run itself is gone"
            )
        m = m.with_event("kill", pid=m.pid, grace=grace, by=by)
        m = replace(m, state="killing")
        store.save(m)
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
        m = replace(m, state="killed", history=tuple(hist))
        store.save(m)
        st = store.state(m)
        if st.exit_status is not None:
            steps.append(f"exit status {st.exit_status} ({st.exit_reason})")
        return "; ".join(steps)

    # --------------------------------------------------------------------------- reading
    def alive(self, store: RunStore, run: Manifest) -> bool:
        """The recorded process is alive and still the same process."""
        return procs.is_running(run.identity)

    def where(self, run: Manifest) -> str:
        return f"pid {run.pid}"

    def local_pid(self, run: Manifest) -> int | None:
        return run.pid

    def process(self, run: Manifest) -> dict[str, Any] | None:
        return procs.stats(run.identity)

    def why_gone(self, store: RunStore, run: Manifest) -> str:
        return _cut_checkpoint(run) or NO_FINAL_LINE

    def live_writer(self, run: Manifest, log: Path, here: tuple[int, int] | None,
                    given: tuple[int, int] | None) -> str | None:
        """The live process's stdout (`/proc/PID/fd/1`, the process verified) when it is the file
        the run was given as its log (an older manifest: a file still carrying the log's name)."""
        if run.pid is None:
            return None
        path = str(log)
        fd1 = f"/proc/{run.pid}/fd/1"
        try:
            wst: os.stat_result | None = os.stat(fd1)
        except OSError:
            wst = None
        if wst is not None and (wst.st_dev, wst.st_ino) == here:
            return path  # the common case, one stat: the process writes the log path's file
        if wst is None or not procs.is_running(run.identity):
            return None
        if not stat.S_ISREG(wst.st_mode):
            return path
        if given is not None and (wst.st_dev, wst.st_ino) != given:
            return path  # not the file the run was given as its log
        if given is None:  # an older manifest: the file must still carry the log's name
            with contextlib.suppress(OSError):
                if os.readlink(fd1).startswith(str(log.absolute())):
                    return fd1
            return path
        return fd1


def _undo(store: RunStore, m: Manifest, ident: procs.Identity | None, files: list[Path],
          exit_file: Path, old_exit: bytes | None, new_log: Path | None, made_dir: bool,
          new_run: bool, keep_exit: bool = False) -> None:
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
            store.manifest_path(m.run).unlink()
        if new_log is not None:
            with contextlib.suppress(OSError):
                new_log.unlink()
        if made_dir:
            shutil.rmtree(m.run_dir, ignore_errors=True)


def _cut_checkpoint(m: Manifest) -> str | None:
    """A process that died mid-checkpoint (its newest `epoch=NNN.ckpt` incomplete): said, and
    when its folder is (nearly) full, said as a full disk."""
    ckpts = Path(m.run_dir) / "checkpoints"
    newest = epoch_checkpoints(ckpts)[:1]
    if not newest:
        return None
    problem = checkpoint_problem(newest[0])
    if problem is None:
        return None
    epoch = int(newest[0].stem.split("=", 1)[1])
    last = ckpts / "last.ckpt"
    need = last.stat().st_size if last.is_file() else 0
    free = free_bytes(ckpts)
    full = free is not None and free < max(LOW_SPACE, need)
    what = "disk full while saving" if full else "the process died while saving"
    return (f"{what} epoch {epoch} ({NO_FINAL_LINE}; {newest[0].name}: {problem}; "
            f"{free_text(ckpts)})")


BACKEND = LocalBackend()
