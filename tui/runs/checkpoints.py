"""What a run resumes from: its checkpoints as its program writes them, each checked before use.

A run's checkpoints are the bundled engine's (`{run_dir}/checkpoints/`: `interrupted.ckpt` after a
kill mid-epoch, `last.ckpt`, `epoch=NNN.ckpt`), or what a preset's `checkpoint_files` glob matches
(files or folders, e.g. `{run_dir}/ckpt.pt`, `{run_dir}/checkpoint-*`). `{ckpt}` in `resume_args`
is the newest complete one; a damaged one (`engine.runfiles.checkpoint_problem`: a torch file that
is not a zip that opens, an empty file or folder) is named and the next older one used instead.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.runfiles import checkpoint_problem, epoch_checkpoints

INTERRUPTED, LAST = "interrupted.ckpt", "last.ckpt"


@dataclass(frozen=True)
class ResumePoint:
    """Where a resume would continue: `path` (None: nowhere), the damaged checkpoints passed over
    (path, why), and whether the run would start again from epoch 1 (`restart`)."""

    path: Path | None
    damaged: tuple[tuple[Path, str], ...] = ()
    candidates: int = 0  # checkpoints found at all (damaged ones included)
    restart: bool = False
    notes: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        """One line: what was passed over and what is used."""
        bad = "; ".join(f"{p.name} is damaged ({why})" for p, why in self.damaged)
        if self.path is not None:
            return f"{bad}; resuming from {self.path}" if bad else f"resuming from {self.path}"
        if bad:
            return f"{bad}; no intact checkpoint: starting again from epoch 1"
        return "no checkpoint"


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


def engine_candidates(ckpt_dir: Path) -> list[Path]:
    """The engine's checkpoints, in the order a resume tries them: `last.ckpt`, then each
    `epoch=NNN.ckpt`, the latest epoch first (the engine resumes from a completed epoch)."""
    last = ckpt_dir / LAST
    return [p for p in (last, *epoch_checkpoints(ckpt_dir)) if p.exists()]


def command_candidates(ckpt_dir: Path, pattern: str | None) -> list[Path]:
    """A command's checkpoints, newest first: the `checkpoint_files` glob's matches (by
    modification time), or by default `interrupted.ckpt` (unless older than `last.ckpt`),
    `last.ckpt`, then the `epoch=NNN.ckpt` files."""
    if pattern:
        found = [Path(p) for p in glob.glob(pattern, recursive=True)]
        return sorted(found, key=lambda p: (_mtime(p), p.name), reverse=True)
    last, interrupted = ckpt_dir / LAST, ckpt_dir / INTERRUPTED
    out: list[Path] = []
    if interrupted.is_file() and (not last.is_file() or _mtime(interrupted) >= _mtime(last)):
        out.append(interrupted)
    if last.is_file():
        out.append(last)
    return out + epoch_checkpoints(ckpt_dir)


def resume_point(m: Any) -> ResumePoint:
    """Where the run of manifest `m` would resume from (checkpoints checked, damaged ones skipped)."""
    ckpt_dir = Path(m.run_dir) / "checkpoints"
    if m.kind == "command":
        cands = command_candidates(ckpt_dir, getattr(m, "checkpoint_files", None))
    else:
        cands = engine_candidates(ckpt_dir)
    damaged: list[tuple[Path, str]] = []
    for c in cands:
        problem = checkpoint_problem(c)
        if problem is None:
            return ResumePoint(c, tuple(damaged), len(cands))
        damaged.append((c, problem))
    engine_restart = m.kind != "command" and (bool(damaged) or (ckpt_dir / INTERRUPTED).is_file())
    return ResumePoint(None, tuple(damaged), len(cands), restart=engine_restart)


_INTACT: dict[tuple[str, int, int], bool] = {}  # (path, mtime_ns, size) found complete (not again)
_INTACT_MAX = 256


def _intact(p: Path) -> bool:
    """`p` passes `checkpoint_problem`; a pass is remembered while the path's mtime and size
    stay (a state read each second looks again only at what changed or did not pass)."""
    try:
        fs = p.stat()
    except OSError:
        return False
    key = (str(p), fs.st_mtime_ns, fs.st_size)
    if key in _INTACT:
        return True
    if checkpoint_problem(p) is not None:
        return False
    if len(_INTACT) >= _INTACT_MAX:
        _INTACT.clear()
    _INTACT[key] = True
    return True


def newest_checkpoint(m: Any) -> Path | None:
    """A command run's newest complete checkpoint as its script writes it (`checkpoint_files`'
    matches, else the default `checkpoints/` files): a glob and a stat each, a check only of what
    changed since it last passed. None: none (yet)."""
    for c in command_candidates(Path(m.run_dir) / "checkpoints", getattr(m, "checkpoint_files", None)):
        if _intact(c):
            return c
    return None


def describe(path: Path | None) -> str:
    """A checkpoint for messages: its path (a folder gets a trailing separator)."""
    if path is None:
        return "-"
    return str(path) + (os.sep if path.is_dir() else "")
