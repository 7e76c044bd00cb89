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
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

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
    """Whether the log, after byte `since`, ends with an exit line (in its last EXIT_TAIL bytes)."""
    try:
        with open(log, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            start = max(since, size - EXIT_TAIL)
            fh.seek(start)
            return _EXIT_MARK in fh.read()
    except OSError:
        return False


def supervise(log: Path, command: Sequence[str]) -> int:
    """Run `command` (output already on the log), then make sure the log ends with an exit line."""
    since = log.stat().st_size if log.exists() else 0
    terminated = False

    def note(signum: int, _frame: object) -> None:
        nonlocal terminated
        terminated = terminated or signum == signal.SIGTERM

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, note)  # a Python handler: the command itself starts with the default
    try:
        child = subprocess.Popen(list(command))
    except OSError as e:
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"runctl: cannot start {command[0]}: {e.strerror or e}\n")
            out.write(exit_line(127, False))
        return 127
    rc = child.wait()
    status = 128 - rc if rc < 0 else rc  # killed by signal N: 128 + N, as a shell reports it
    if not wrote_exit_line(log, since):
        with open(log, "a", encoding="utf-8") as out:
            out.write(exit_line(status, terminated or rc == -signal.SIGTERM))
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m tui.runs.supervise")
    p.add_argument("--log", type=Path, required=True)
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not command:
        p.error("no command given")
    return supervise(a.log, command)


if __name__ == "__main__":
    sys.exit(main())
