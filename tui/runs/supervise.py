"""`python -m tui.runs.supervise --log LOG -- PROGRAM [ARG...]`: run a preset's training command.

The launcher starts a preset's own `command` (any training script) through this shim, detached,
with its stdout and stderr on the run's log. The shim waits for the command and, when the command's
own output did not end with runctl's `[exit]` line (a plain Lightning script, the original
pipeline), appends one with the real exit status, so every run's log says how it ended
(docs/log-format.md). It leads the run's process group: `runctl kill` signals the group, so SIGTERM
reaches the command itself; the shim only notes it and keeps waiting for the command to end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from engine.runfiles import write_exit

EXIT_TAIL = 64 << 10  # bytes of the log's end searched for the command's own exit line
_EXIT_MARK = b"] - [exit] reason="


def exit_line(status: int, terminated: bool, when: float | None = None) -> str:
    """The line appended for a command that wrote none (Hydra shape, logger `runctl`)."""
    t = time.time() if when is None else when
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + f",{int(t * 1000) % 1000:03d}"
    # told to stop (the group got SIGTERM): terminated, whatever status the script chose (plain
    # Lightning exits 0 on SIGTERM); else finished only on status 0
    reason = "terminated" if terminated or status == 143 else "finished" if status == 0 else "error"
    level = "ERROR" if reason == "error" else "INFO"
    return f"[{stamp}][runctl][{level}] - [exit] reason={reason} status={status}\n"


def wrote_exit_line(log: Path, since: int) -> bool:
    """Whether the log, after byte `since`, ends with an exit line (in its last EXIT_TAIL bytes;
    a log shorter than `since` was truncated meanwhile: its whole tail)."""
    try:
        with open(log, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            start = max(since if since <= size else 0, size - EXIT_TAIL)
            fh.seek(start)
            return _EXIT_MARK in fh.read()
    except OSError:
        return False


def _own_log(log: Path) -> Path:
    """The log as this process writes it: its stdout when that is a file (`/proc/self/fd/1`: the
    same file even after the log was renamed away or deleted), else the path."""
    with contextlib.suppress(OSError):
        if stat.S_ISREG(os.fstat(1).st_mode) and os.path.exists("/proc/self/fd/1"):
            return Path("/proc/self/fd/1")
    return log


def _append(log: Path, text: str) -> None:
    """Append to the log where this process writes it (best effort: a full disk loses the line,
    the exit record still tells)."""
    with contextlib.suppress(OSError):
        if log == Path("/proc/self/fd/1"):
            sys.stdout.flush()
            os.write(1, text.encode())
        else:
            with open(log, "a", encoding="utf-8") as out:
                out.write(text)


def supervise(log: Path, command: Sequence[str], requeue_flag: Path | None = None) -> int:
    """Run `command` (output already on the log), then make sure the log ends with an exit line.

    With `requeue_flag` (a Slurm job): SIGUSR1, which Slurm sends before the time limit and which
    may come while the command is still importing its libraries (Python's default action would end
    it), is taken here and written to that file; the command starts with SIGUSR1 ignored until
    engine.stream.RunctlCallback installs its handler, and the callback also looks for the file.
    """
    log = _own_log(log)
    since = log.stat().st_size if log.exists() else 0
    terminated = False

    def note(signum: int, _frame: object) -> None:
        nonlocal terminated
        terminated = terminated or signum == signal.SIGTERM

    def requeue(signum: int, _frame: object) -> None:
        assert requeue_flag is not None
        with contextlib.suppress(OSError):
            requeue_flag.write_text(f"{time.time():.3f}\n")

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, note)  # a Python handler: the command itself starts with the default
    if requeue_flag is not None:
        signal.signal(signal.SIGUSR1, requeue)

    def ignore_usr1() -> None:  # in the child, before exec: SIG_IGN outlives exec
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)

    try:
        child = subprocess.Popen(list(command), preexec_fn=ignore_usr1 if requeue_flag else None)
    except OSError as e:
        write_exit("error", 127, error=f"cannot start {command[0]}: {e.strerror or e}", writer="supervise")
        _append(log, f"runctl: cannot start {command[0]}: {e.strerror or e}\n" + exit_line(127, False))
        return 127
    rc = child.wait()
    status = 128 - rc if rc < 0 else rc  # killed by signal N: 128 + N, as a shell reports it
    rank0 = os.environ.get("SLURM_PROCID", "0") == "0"  # one task of a Slurm job speaks for it
    line = exit_line(status, terminated or rc == -signal.SIGTERM)
    if rank0:  # the record first: the end is known even where the log cannot be written
        reason = line.split("reason=", 1)[1].split()[0]
        write_exit(reason, status, writer="supervise", keep_existing=True)
    if rank0 and not wrote_exit_line(log, since):
        _append(log, line)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m tui.runs.supervise")
    p.add_argument("--log", type=Path, required=True)
    p.add_argument("--requeue-flag", type=Path, default=None,
                   help="a Slurm job: SIGUSR1 writes this file (see supervise())")
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not command:
        p.error("no command given")
    return supervise(a.log, command, a.requeue_flag)


if __name__ == "__main__":
    sys.exit(main())
