"""Raw log bytes -> whole lines: the line assembler under `tui.log.tail`, and a bounded tail of them.

`LineAssembler` turns the chunks a follower reads into segments of whole lines (`\r` is a line
break, an over-long line keeps its first LINE_CAP bytes, a partial last line waits for its end).
`LineTail` keeps the last lines of the segments one poll read, for the TUI's log pane: only what
will be shown is decoded.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

LINE_CAP = 64 << 10  # a longer line keeps its first LINE_CAP bytes; the rest is skipped
Bytes = bytes | bytearray  # a read: a long read reuses one bytearray (tui.log.tail)
Segment = tuple[Bytes, int, int]  # (buffer, start, end): whole lines buf[start:end], end after a \n


def cap_long_lines(buf: Bytes, start: int, end: int, cap: int = LINE_CAP) -> Segment:
    """Cut every line of buf[start:end] to its first `cap` bytes, without a line loop."""
    p = start
    pieces: list[Bytes] = []
    keep_from = start
    while end - p > cap:
        q = buf.rfind(b"\n", p, p + cap + 1)
        if q >= 0:
            p = q + 1
            continue
        e = buf.find(b"\n", p + cap, end)
        pieces.append(buf[keep_from : p + cap])
        keep_from = p = e
    if not pieces:
        return buf, start, end
    pieces.append(buf[keep_from:end])
    out = b"".join(pieces)
    return out, 0, len(out)


class LineAssembler:
    """Raw bytes -> whole lines: `\r` is a line break, a partial last line waits for its end."""

    def __init__(self, cap: int = LINE_CAP) -> None:
        self.cap = cap
        self.partial = b""
        self.skipping = False  # inside an over-long line, dropping bytes until its end
        self.held_cr = False  # a trailing \r that may be the first half of \r\n

    def feed(self, data: Bytes) -> list[Segment]:
        """The complete lines now available, as segments of (mostly) the given buffer."""
        if self.held_cr:
            data = b"\r" + data
            self.held_cr = False
        if data.endswith(b"\r"):
            data = data[:-1]
            self.held_cr = True
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        pos = 0
        if self.skipping:
            pos = data.find(b"\n")
            if pos < 0:
                return []
            self.skipping = False
        first = data.find(b"\n", pos)
        if first < 0:
            self._keep(data, pos)
            return []
        room = self.cap - len(self.partial)
        head = self.partial + data[pos : min(first, pos + room)] + b"\n"
        segs: list[Segment] = [(head, 0, len(head))]
        last = data.rfind(b"\n")
        if last > first:
            segs.append(cap_long_lines(data, first + 1, last + 1, self.cap))
        self.partial = b""
        self._keep(data, last + 1)
        return segs

    def _keep(self, data: Bytes, pos: int) -> None:
        """Add data[pos:] to the partial line, keeping at most `cap` bytes."""
        room = self.cap - len(self.partial)
        if len(data) - pos > room:
            self.skipping = True
        self.partial += data[pos : pos + room]


@dataclass
class RawLines:
    """The raw lines read since the last take: the newest ones, decoded, oldest first."""

    lines: list[str] = field(default_factory=list)
    reset: bool = False  # the log was truncated: what was shown before is gone
    skipped: int = 0  # older new lines left out (over the tail's line or byte budget)


class LineTail:
    """The last `max_lines` (and at most `max_bytes`) of the lines fed since the last `take()`.

    Segments are kept by reference and counted, not split: an old segment is dropped, its lines
    counted as skipped, once the newer ones alone fill either budget.
    """

    def __init__(self, max_lines: int, max_bytes: int = 2 << 20) -> None:
        self.max_lines, self.max_bytes = max_lines, max_bytes
        self._segs: deque[tuple[Segment, int]] = deque()  # (segment, its line count)
        self._lines = 0  # lines in _segs
        self._bytes = 0  # bytes in _segs
        self._skipped = 0
        self._reset = False

    def feed(self, seg: Segment) -> None:
        """Keep one segment of whole lines (dropping older ones that can no longer be shown)."""
        buf, start, end = seg
        if end <= start:
            return
        n = buf.count(b"\n", start, end)
        self._segs.append((seg, n))
        self._lines += n
        self._bytes += end - start
        while len(self._segs) > 1:
            (_, s0, e0), n0 = self._segs[0]
            if self._lines - n0 < self.max_lines and self._bytes - (e0 - s0) < self.max_bytes:
                break
            self._segs.popleft()
            self._lines -= n0
            self._bytes -= e0 - s0
            self._skipped += n0

    def reset(self) -> None:
        """The log starts again: forget what was fed, and say so at the next take."""
        self._segs.clear()
        self._lines = self._bytes = self._skipped = 0
        self._reset = True

    def take(self) -> RawLines | None:
        """The kept lines (None: nothing fed and no reset since the last take); starts afresh."""
        if not self._segs and not self._reset:
            return None
        lines: list[str] = []
        room_bytes = self.max_bytes
        for (buf, start, end), _ in reversed(self._segs):
            room = self.max_lines - len(lines)
            if room <= 0 or room_bytes <= 0:
                break
            lo = max(start, end - room_bytes)
            if lo > start:  # cut inside a line: start after its end
                lo = buf.find(b"\n", lo - 1, end) + 1
            room_bytes -= end - lo
            part = buf[lo : end - 1].decode("utf-8", "replace").split("\n") if end > lo else []
            lines[:0] = part[-room:]
            if lo > start:  # the budget ended inside this segment: older lines are not contiguous
                break
        out = RawLines(lines, self._reset, self._skipped + self._lines - len(lines))
        self._segs.clear()
        self._lines = self._bytes = self._skipped = 0
        self._reset = False
        return out
