"""What this logs folder's readers have read of a run's log, kept beside it, so a log truncated
under a live run loses nothing even for a reader that comes after (issue 18.1).

A follower that stays (the TUI, `--watch`, the watcher, a sweep's driver) sees a log shrink and
keeps what it read (tui.log.tail). A one-shot `runctl status` only has the file as it is now: the
epochs a `: > run.log` cut away were never in its hands. So each read of a live run's log leaves,
in `training/.cache/`:

- `<run>.seen.json`, the mark: the file read (device, inode), its size and a hash of its first
  bytes at that read, the number of epochs journaled, the start-up checklist and the current
  epoch as read then (rewritten when that epoch changes: it may still get lines);
- `<run>.seen.jsonl`, the journal: one line per completed epoch (every one before the current),
  appended as they complete (O(new epochs) a read, never the whole timeline again).

A reader that opens the log afresh (the same file as the mark's) puts back the journal's epochs the
file no longer holds, before the ones it does (and keeps the checklist's ticks): the log was cut
(`log_event = "truncated"`, said too when the file is shorter than at the mark or its first bytes
changed, nothing lost). The
files are a cache: one that cannot be read or written is a miss, never an error, and a run's
training never waits on them. Several readers appending at once may write an epoch twice; it is
read back once (the last line of an epoch wins).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from tui.state.records import EpochRecord, HorizonMetrics
from tui.state.run import RunState

VERSION = 1
HEAD_BYTES = 1024  # the first bytes hashed: a truncated log that grew back past its old size differs there
_EPOCH_FIELDS = tuple(f.name for f in fields(EpochRecord) if f.name not in ("gen", "horizons"))
_HORIZON_FIELDS = tuple(f.name for f in fields(HorizonMetrics))


@dataclass
class Mark:
    """The mark of a log's last recorded read."""

    dev: int
    ino: int
    size: int
    hlen: int
    head: str
    n: int  # epochs in the journal
    phases: dict[str, bool]
    details: dict[str, str]
    last: dict[str, Any] | None = None  # the current (last) epoch as read then: it may still change
    first: int | None = None  # the first epoch journaled (a file that starts there lost none)


def _paths(cache_dir: Path, run: str) -> tuple[Path, Path]:
    return cache_dir / f"{run}.seen.json", cache_dir / f"{run}.seen.jsonl"


def _head(path: Path, n: int) -> str:
    with path.open("rb") as f:
        return hashlib.sha1(f.read(n)).hexdigest()


def load(cache_dir: Path, run: str) -> Mark | None:
    """The run's mark (None: none, or not readable)."""
    mark, _ = _paths(cache_dir, run)
    try:
        data = json.loads(mark.read_text(encoding="utf-8"))
        if data.get("v") != VERSION:
            return None
        last = data.get("last")
        return Mark(int(data["dev"]), int(data["ino"]), int(data["size"]), int(data["hlen"]), str(data["head"]),
                    int(data["n"]), dict(data.get("phases") or {}), dict(data.get("details") or {}),
                    last if isinstance(last, dict) else None,
                    data["first"] if isinstance(data.get("first"), int) else None)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def same_file(mark: Mark, stat: os.stat_result) -> bool:
    """The file read now is the marked one (a truncation keeps the file; a rotation does not)."""
    return (stat.st_dev, stat.st_ino) == (mark.dev, mark.ino)


def truncated(mark: Mark | None, path: Path, stat: os.stat_result) -> bool:
    """The file read now is the marked one, cut since (shorter, or its first bytes changed)."""
    if mark is None or not same_file(mark, stat):
        return False
    if stat.st_size < mark.size or stat.st_size < mark.hlen:
        return True
    try:
        return _head(path, mark.hlen) != mark.head
    except OSError:
        return False


def _same_json(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Equal as JSON would keep them (a NaN equal to a NaN)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def epoch_json(r: EpochRecord) -> dict[str, Any]:
    """One journal line's object."""
    out = {k: getattr(r, k) for k in _EPOCH_FIELDS}
    out["horizons"] = {str(h): [getattr(m, k) for k in _HORIZON_FIELDS] for h, m in r.horizons.items()}
    return out


def epoch_from_json(data: dict[str, Any]) -> EpochRecord:
    """A journal line's epoch (ValueError/TypeError/KeyError: not one)."""
    kw = {k: data[k] for k in _EPOCH_FIELDS if k in data}
    rec = EpochRecord(**kw)
    if not isinstance(rec.epoch, int) or not isinstance(rec.metrics, dict):
        raise ValueError("not an epoch")
    rec.horizons = {int(h): HorizonMetrics(*v) for h, v in (data.get("horizons") or {}).items()}
    return rec


def journal(cache_dir: Path, run: str) -> list[EpochRecord]:
    """The journal's epochs, in epoch order, each once (its last line)."""
    _, path = _paths(cache_dir, run)
    out: dict[int, EpochRecord] = {}
    try:
        with path.open(encoding="utf-8") as f:
            for line in f:
                with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
                    rec = epoch_from_json(json.loads(line))
                    out[rec.epoch] = rec
    except OSError:
        return []
    return [out[k] for k in sorted(out)]


def restore(st: RunState, cache_dir: Path, run: str, mark: Mark) -> int:
    """A log read afresh: the journal's epochs before the first one the file holds put back in
    `st` (mutated) and, when there were any (the file was cut), the checklist's ticks kept and
    `log_event` said. Returns how many."""
    first = st.epochs[0].epoch if st.epochs else None
    if first is not None and (mark.first is None and mark.last is None or mark.first is not None
                              and first <= mark.first):
        return 0  # the file starts where the journal does: nothing lost (the journal is not read)
    have = {r.epoch for r in st.epochs}
    seen = {r.epoch: r for r in journal(cache_dir, run)}
    if mark.last is not None:
        with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
            last = epoch_from_json(mark.last)
            seen[last.epoch] = last
    back = [seen[k] for k in sorted(seen) if k not in have and (first is None or k < first)]
    if not back:
        return 0
    for r in back:
        r.gen = st.gen
    st.epochs[:0] = back
    for k, done in mark.phases.items():
        if done and k in st.phases and not st.phases[k]:
            st.phases[k] = True
            if k in mark.details:
                st.phase_details.setdefault(k, mark.details[k])
    if st.epoch is None and back:
        st.epoch = back[-1].epoch
    st.log_event = st.log_event or "truncated"
    return len(back)


def record(st: RunState, cache_dir: Path, run: str, path: Path, stat: os.stat_result,
           mark: Mark | None) -> Mark | None:
    """After a read of the live run's log: its completed epochs not journaled yet appended, and the
    mark written (only when the journal grew or the file is another one: a read that found nothing
    new writes nothing). Returns the mark now. Best effort: a write that fails is a miss."""
    done = st.epochs[:-1]
    last = epoch_json(st.epochs[-1]) if st.epochs else None
    same = mark is not None and (stat.st_dev, stat.st_ino) == (mark.dev, mark.ino) and mark.n <= len(done)
    start = mark.n if same and mark is not None else 0
    if same and mark is not None and start == len(done) and _same_json(last, mark.last):
        return mark
    mark_path, journal_path = _paths(cache_dir, run)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(epoch_json(r)) + "\n" for r in done[start:])
        with journal_path.open("a" if start else "w", encoding="utf-8") as f:
            f.write(text)
        hlen = min(stat.st_size, HEAD_BYTES)
        new = Mark(stat.st_dev, stat.st_ino, stat.st_size, hlen, _head(path, hlen), len(done),
                   dict(st.phases), dict(st.phase_details), last, st.epochs[0].epoch if st.epochs else None)
        data = {"v": VERSION, "dev": new.dev, "ino": new.ino, "size": new.size, "hlen": new.hlen,
                "head": new.head, "n": new.n, "phases": new.phases, "details": new.details, "last": last,
                "first": new.first}
        tmp = mark_path.with_name(f".{mark_path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, mark_path)
    except OSError:
        return mark
    return new
