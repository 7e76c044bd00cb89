"""A log file followed incrementally: bytes -> whole lines -> events, with rotation and truncation.

Each `poll()` reads only the bytes appended since the last one, in `CHUNK`-sized reads; whole lines
go to a `tui.log.scan.RegionScanner`, a partial last line waits for the next poll. A truncated file
starts again (a `Reset` event), a rotated one is drained and then followed anew. Subclasses fold
the events somewhere (`tui.state.follow.LogFollower` folds them into a RunState) by overriding
`_emit`. No state of a run here.
"""

from __future__ import annotations

import gc
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tui.log import events as evt
from tui.log.lines import LineAssembler, LineTail, RawLines
from tui.log.scan import RegionScanner

CHUNK = 4 << 20  # bytes per read (8 MB reads cost more in page faults than they save in calls)


@contextmanager
def gc_paused(pause: bool = True) -> Iterator[None]:
    """No cyclic garbage collection inside (when `pause`): reading a long log builds a state of
    millions of objects, none of them in a cycle, and each collection on the way walks the young
    ones again (a third to a half of an attach to a log of 85,000 epochs, bench/bench_attach.py).
    After it, what was built goes straight to the oldest generation (`gc.freeze()` then
    `gc.unfreeze()`: a move, not a walk; skipped if something else froze objects), where a later
    full collection sees it as it would have anyway. The collector is process-wide: another
    thread's allocations wait for it too, for one read."""
    was = pause and gc.isenabled()
    if was:
        gc.disable()
    try:
        yield
    finally:
        if was:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


class LogTail:
    """Follow one log file: `poll()` reads only the new bytes and returns their events.

    With `keep_lines`, the raw lines read are kept too (the last `keep_lines` of them, at most
    `keep_bytes`), for `take_lines()`: one read of the file feeds both the events and a log view.
    """

    def __init__(self, path: str | os.PathLike[str], fast: bool = True, chunk: int = CHUNK,
                 keep_lines: int = 0, keep_bytes: int = 2 << 20) -> None:
        self.path = Path(path)
        self.fast = fast
        self.chunk = chunk
        self.offset = 0
        self._fh: io.BufferedReader | None = None
        self._ino: tuple[int, int] | None = None
        self._lines = LineAssembler()
        self._scanner = RegionScanner(fast)
        self._tail = LineTail(keep_lines, keep_bytes) if keep_lines > 0 else None

    def _restart(self) -> None:
        self.offset = 0
        self._lines = LineAssembler()
        self._scanner = RegionScanner(self.fast)

    def close(self) -> None:
        """Close the file handle (poll() reopens)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def poll(self) -> list[evt.Event]:
        """Events from the bytes appended since the last poll; [] if no file."""
        out: list[evt.Event] = []
        self._run(out)
        return out

    def catch_up(self) -> None:
        """Read to the end of the file, emitting its events without collecting them."""
        self._run(None)

    def take_lines(self) -> RawLines | None:
        """The raw lines read since the last take (None: none, or not kept: no `keep_lines`).

        A truncated log sets `reset` (the lines before it are dropped); a rotated one goes on.
        """
        return self._tail.take() if self._tail is not None else None

    def _run(self, out: list[evt.Event] | None) -> None:
        try:
            st = os.stat(self.path)
        except OSError:
            return
        ino = (st.st_dev, st.st_ino)
        if self._fh is not None and ino != self._ino:
            self._read(None, out)  # rotated: drain the old file, then follow the new one
            self.close()
            self._restart()
        if self._fh is None:
            try:
                self._fh = open(self.path, "rb")  # noqa: SIM115 - kept open between polls
            except OSError:
                return
            self._ino = ino
            self._fh.seek(self.offset)
        if st.st_size < self.offset:  # truncated: the log starts again
            self._restart()
            self._fh.seek(0)
            self._emit([evt.Reset()], out)
            if self._tail is not None:
                self._tail.reset()
        self._read(st.st_size, out)

    def _read(self, size: int | None, out: list[evt.Event] | None) -> None:
        long = size is None or size - self.offset > self.chunk
        with gc_paused(long):
            # A long read without a line tail goes through one buffer: a fresh 4 MB object per read
            # is fresh pages, which the kernel zeroes first (a fifth of an attach); the segments of
            # a read are scanned before the next one, and only the line tail keeps them.
            self._read_chunks(size, out, bytearray(self.chunk) if long and self._tail is None else None)

    def _read_chunks(self, size: int | None, out: list[evt.Event] | None, buf: bytearray | None) -> None:
        fh = self._fh
        while fh is not None and (size is None or self.offset < size):
            data: bytes | bytearray
            if buf is not None:
                n = fh.readinto(buf)
                data = buf if n == len(buf) else buf[:n]
            else:
                data = fh.read(self.chunk)
                n = len(data)
            if not n:
                break
            self.offset += n
            for seg in self._lines.feed(data):
                self._emit(self._scanner.scan(seg), out)
                if self._tail is not None:
                    self._tail.feed(seg)

    def _emit(self, events: list[evt.Event], out: list[evt.Event] | None) -> None:
        """Hand a segment's events on (subclasses fold them first)."""
        if out is not None:
            out.extend(events)
