"""A log file followed incrementally: bytes -> whole lines -> events, with rotation and truncation.

Each `poll()` reads only the bytes appended since the last one, in `CHUNK`-sized reads; whole lines
go to a `tui.log.scan.RegionScanner`, a partial last line waits for the next poll. Subclasses fold
the events somewhere (`tui.state.follow.LogFollower` folds them into a RunState) by overriding
`_emit`. No state of a run here.

The file under the path may change while it is followed; each change is one `Reset` event
(`kind`: truncated, rotated or deleted; what was read before stays read):

- truncated (the file shrank): read again from its start;
- renamed away or deleted while its writer still writes it: the open handle is read on (nothing
  else writes the path); once a new file at the path is written, the old one is drained and the
  new one followed;
- `writer` (optional) names the file the log's writer now writes when that is not the file at the
  path (a run's `/proc/PID/fd/1`, where a renamed or deleted log stays readable): a reader that
  opens the log then reads that file instead of an empty or missing one at the path.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable
from pathlib import Path

from tui.log import events as evt
from tui.log.gcpause import gc_paused
from tui.log.lines import LineAssembler, LineTail, RawLines
from tui.log.scan import RegionScanner
from tui.log.sources import LineSet

CHUNK = 4 << 20  # bytes per read (8 MB reads cost more in page faults than they save in calls)
MARK = 32  # bytes remembered before the offset: a file rewritten under the reader is told by them


class LogTail:
    """Follow one log file: `poll()` reads only the new bytes and returns their events.

    With `keep_lines`, the raw lines read are kept too (the last `keep_lines` of them, at most
    `keep_bytes`), for `take_lines()`: one read of the file feeds both the events and a log view.
    """

    def __init__(self, path: str | os.PathLike[str], fast: bool = True, chunk: int = CHUNK,
                 keep_lines: int = 0, keep_bytes: int = 2 << 20, lines: LineSet | None = None,
                 writer: Callable[[], str | None] | None = None) -> None:
        self.path = Path(path)
        self.writer = writer  # the file the log's writer writes when the path no longer names it
        self.event: str | None = None  # the latest change of the file: truncated | rotated | deleted
        self.reading: str | None = None  # the file read when it is not the path (e.g. /proc/PID/fd/1)
        self._mark = b""  # the last MARK bytes read: still there before `offset`, or the file was rewritten
        self.fast = fast
        self.chunk = chunk
        self.line_sources = lines  # the line sources beyond the prefixed formats (tui.log.sources)
        self.offset = 0
        self._fh: io.BufferedReader | None = None
        self._ino: tuple[int, int] | None = None
        self._lines = LineAssembler()
        self._scanner = RegionScanner(fast, lines)
        self._tail = LineTail(keep_lines, keep_bytes) if keep_lines > 0 else None

    def _restart(self) -> None:
        self.offset = 0
        self._mark = b""
        self._lines = LineAssembler()
        self._scanner = RegionScanner(self.fast, self.line_sources)

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

        A truncated or rotated log goes on (the lines read before it stay).
        """
        return self._tail.take() if self._tail is not None else None

    def _run(self, out: list[evt.Event] | None) -> None:
        try:
            st: os.stat_result | None = os.stat(self.path)
        except OSError:
            st = None
        if self._fh is not None and (st is None or (st.st_dev, st.st_ino) != self._ino):
            if st is not None and st.st_size > 0:
                # a new file at the path is written (a writer that reopens, a resumed run): drain
                # the old one, then follow the new one from its start
                self._read(None, out)
                self.close()
                self._restart()
                self._ino = None
                self._note("rotated", out)
            else:  # renamed away or deleted, and nothing writes the path: read on what we hold
                fst = os.fstat(self._fh.fileno())
                self._note("deleted" if fst.st_nlink == 0 else "rotated", out)
                self._follow(fst.st_size, out)
                return
        if self._fh is None:
            opened = self._open(st, out)
            if opened is None:
                return
            size = opened
        else:
            size = st.st_size if st is not None else 0
        self._follow(size, out)

    def _open(self, st: os.stat_result | None, out: list[evt.Event] | None) -> int | None:
        """Open the file to follow and return its size (None: nothing to open): the file read
        before a close() while the path or the writer still names it; else the writer's file
        when the path does not name it; else the file at the path."""
        path_ino = (st.st_dev, st.st_ino) if st is not None else None
        alt = self.writer() if self.writer is not None else None
        ast: os.stat_result | None = None
        if alt:
            try:
                ast = os.stat(alt)
            except OSError:
                ast = None
            if ast is not None and (not stat.S_ISREG(ast.st_mode) or (ast.st_dev, ast.st_ino) == path_ino):
                ast = None  # not a file, or the path's own: read the path
        alt_ino = (ast.st_dev, ast.st_ino) if ast is not None else None
        if self._ino is not None and self._ino not in (path_ino, alt_ino):
            self._restart()  # the file read before is gone: follow what there is now, from its start
            if path_ino is not None and alt_ino is None:
                self._note("rotated", out)
        if alt is not None and ast is not None and (self._ino is None or alt_ino == self._ino
                                                    or path_ino != self._ino):
            try:
                self._fh = open(alt, "rb")  # noqa: SIM115 - kept open between polls
            except OSError:
                return None
            self._ino, self.reading = alt_ino, alt
            self._note("deleted" if ast.st_nlink == 0 else "rotated", out)
            size = ast.st_size
        elif st is not None:
            try:
                self._fh = open(self.path, "rb")  # noqa: SIM115 - kept open between polls
            except OSError:
                return None
            self._ino, self.reading = path_ino, None
            size = st.st_size
        else:
            return None
        self._fh.seek(self.offset)
        return size

    def _follow(self, size: int, out: list[evt.Event] | None) -> None:
        """Read the open file up to `size`; a file shorter than what was read was truncated, and
        so was one whose bytes before `offset` changed (truncated, then written past it again
        before this poll: one small read tells)."""
        if self._fh is not None and (size < self.offset or self._rewritten()):  # read it again from its start
            self._restart()
            self._fh.seek(0)
            self._note("truncated", out, again=True)
        self._read(size, out)

    def _rewritten(self) -> bool:
        mark = self._mark
        if not mark or self._fh is None or self.offset < len(mark):
            return False
        try:
            return os.pread(self._fh.fileno(), len(mark), self.offset - len(mark)) != mark
        except OSError:
            return False

    def _note(self, kind: str, out: list[evt.Event] | None, again: bool = False) -> None:
        """A change of the file: one `Reset(kind)` event (a repeated rotated / deleted is not news)."""
        if kind == self.event and not again:
            return
        self.event = kind
        self._emit([evt.Reset(kind)], out)

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
            self._mark = (self._mark + bytes(data[-MARK:]))[-MARK:]
            for seg in self._lines.feed(data):
                self._emit(self._scanner.scan(seg), out)
                if self._tail is not None:
                    self._tail.feed(seg)

    def _emit(self, events: list[evt.Event], out: list[evt.Event] | None) -> None:
        """Hand a segment's events on (subclasses fold them first)."""
        if out is not None:
            out.extend(events)
