"""A live run that has gone silent: `stalled` (docs/cli.md, *Stalled runs*).

A run whose process is alive but has written nothing for `stall_after` seconds (no log byte, no
metric file changed, no checkpoint) is `stalled`; it clears at its next output. The controller
applies it where it judges a state (`tui.runs.store.RunStore.judge`), so `status`, `runs`, the TUI,
`--follow` and the watcher that notifies (`tui.runs.watcher`) all see the same thing. The fold
never sets it: it is a fact about the clock, not about the log's lines.

Cost: this runs on every state read of every live run (the TUI polls each second, `runctl runs`
lists thousands of runs), so the common case is one `stat` of the file the run writes (its
`/proc/PID/fd/1`: the log even when renamed away). Only a run already silent for the least
possible `stall_after` looks further: its epoch times for the default, then its metric files and
checkpoints (a few stats and a glob).

The default `stall_after` comes from the run's own pace: `FACTOR` times the median duration of its
completed epochs (a run counted in steps: of the intervals between its evaluations), at least
`FLOOR_S`; before any epoch completed (or from a log whose lines carry no timestamps) it is
`EARLY_S`, as start-up (data loading, compiling) may be long and silent. A preset's `stall_after`
replaces it (0: never stalled).
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Iterable, Sequence

from tui.state.records import RunData

STALLED = "stalled"
STALLABLE = ("launching", "initializing", "training", "validating")  # live states a silence ends
FACTOR = 3.0  # the default stall_after: this many typical epochs (or evaluation intervals)
FLOOR_S = 300.0  # ... and at least this (a fast run's pauses: validation, a checkpoint write)
EARLY_S = 1800.0  # before any epoch completed: start-up may be long and silent


def default_stall_after(st: RunData) -> float:
    """The silence after which this run is stalled when its preset says nothing."""
    gaps = _paces(st)
    if not gaps:
        return EARLY_S
    gaps.sort()
    mid = len(gaps) // 2
    median = gaps[mid] if len(gaps) % 2 else (gaps[mid - 1] + gaps[mid]) / 2
    return max(FLOOR_S, FACTOR * median)


def _paces(st: RunData) -> list[float]:
    """Durations of the validated epochs (from their log timestamps), or, for a run counted in
    steps (or epochs without start times), the intervals between consecutive evaluations."""
    spans: list[float] = []
    ends: list[float] = []
    for r in st.epochs:
        if r.ended_at is None:
            continue
        ends.append(r.ended_at)
        if st.axis == "epoch" and r.validated and r.started_at is not None and r.ended_at > r.started_at:
            spans.append(r.ended_at - r.started_at)
    return spans or [b - a for a, b in zip(ends, ends[1:], strict=False) if b > a]


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def last_output(writer: str | None, log: str, run_dir: str | None = None,
                globs: Iterable[str] = ()) -> float | None:
    """When the run last wrote anything: its log (the file its process writes: `writer`), its run
    folder and `checkpoints/` (a file created or replaced there), each file there and each match
    of `globs` (metric files, a command's checkpoint files). None: nothing to go by (no log)."""
    times = [t for t in (_mtime(writer) if writer else None, _mtime(log)) if t is not None]
    if run_dir:
        ckpts = os.path.join(run_dir, "checkpoints")
        times += [t for p in (run_dir, ckpts, *glob.glob(os.path.join(glob.escape(ckpts), "*")))
                  if (t := _mtime(p)) is not None]
    for g in globs:
        times += [t for p in glob.iglob(g, recursive=True) if (t := _mtime(p)) is not None]
    return max(times) if times else None


def apply_stall(st: RunData, log: str, run_dir: str | None, pid: int | None = None,
                files: Sequence[tuple[str, str]] = (), checkpoint_files: str | None = None,
                stall_after: float | None = None, now: float | None = None) -> None:
    """Mark a live run's state `stalled` (with `stalled_since`: when it last wrote, and the
    `stall_after` that made it so) when it has been silent that long. Call only for a run whose
    process is alive (the store verified its identity). `pid`: a local run's process, whose
    stdout is read where it really goes (`/proc/PID/fd/1`); `files`: its metric sources' globs
    (`SourceConfig.files`); `stall_after`: the preset's (None: the default; 0: never)."""
    if st.state not in STALLABLE or stall_after == 0:
        return
    now = time.time() if now is None else now
    writer = f"/proc/{pid}/fd/1" if pid is not None else None
    last = _mtime(writer) if writer else None
    if last is None:
        last = _mtime(log)
    if last is None:
        return
    given = stall_after if isinstance(stall_after, int | float) and not isinstance(stall_after, bool) \
        and stall_after > 0 else None  # a manifest's value, checked: it may be hand-edited
    if now - last < (given or FLOOR_S):
        return  # the common case: one stat
    limit = given or default_stall_after(st)
    if now - last < limit:
        return
    globs = [g for _, g in files] + ([checkpoint_files] if checkpoint_files else [])
    last = last_output(writer, log, run_dir, globs) or last
    if now - last < limit:
        return
    st.state, st.stalled_since, st.stall_after = STALLED, round(last, 3), limit
