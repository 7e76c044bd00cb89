"""Whole lines -> events, fast: a bytes-level prefilter picks the lines worth parsing.

The fast path never loops over every line in Python: only lines that one regex anchored on the
` - ` of a log prefix (plus a few literal needles) picks go to `tui.log.parse`. Events whose latest
value is all that matters (progress, grad-monitor stats, a plain warning) are coalesced to the last
one per segment; the events fold to the same state as the plain line loop's (`fast=False`), which
tests check.
"""

from __future__ import annotations

import re

from tui.log import events as evt
from tui.log.lines import Segment
from tui.log.parse import (
    LineParser,
    is_traceback_error,
    parse_continuation,
    parse_full,
    parse_lines,
    parse_prefixed,
)
from tui.log.prefix import line_time, split_prefix
from tui.log.recognise import TRACEBACK

# Message starts that can make an event, factored by first byte (sre tries branches in order).
_STARTS = (
    rb"[\x80-\xff]|\[(?:exit|error|signal|epoch-end|metrics|data-filter|GRAD-MONITOR|\w{1,20}+\] (?:Epoch |Validation loss))"
    rb"|E(?:poch \d)|S(?:harpe: |tarting )|V(?:al [mM]etrics)|t(?:rain/total_loss: )|v(?:al/loss: )"
    rb"|L(?:earning rate: |ow prediction variance)|B(?:est (?:validation loss|model saved))"
    rb"|C(?:heckpoint saved: |reating data loaders)|A(?:chieved Sharpe)|G(?:PU: )|U(?:sing device: )"
    rb"|F(?:ound |itting OnlineRobustScaler)|O(?:nlineRobustScaler fitted)|I(?:terable datasets ready)"
    rb"|D(?:ata loaders created)|r(?:unctl (?:engine|callback) )|=(?:== Training Complete)"
)
_WS = rb"[ \t\x0b\x0c]*+"
# Matches right after a prefix's " - " (our [progress] lines, the bulk, are rejected first):
# `gs` grad stats (coalesced), `ev` a line to parse (an event start, any wrapper-format line
# `X - `, an ERROR/CRITICAL line), `cont` an empty message continued on the next line,
# `W` a WARNING line (counted; the last one parsed).
SCAN_RE = re.compile(
    rb" - (?!\[progress\] )(?:(?P<gs>\[GRAD-MONITOR\] step=)"
    rb"|(?P<ev>" + _WS + rb"(?:" + _STARTS + rb")|(?<=[A-Z] - )|(?<=[RL]\] - ))"
    rb"|(?P<cont>\n" + _WS + rb"(?:" + _STARTS + rb"))"
    rb"|(?<=NG\] - )(?P<W>))"
)
_TB = TRACEBACK.encode()  # bare lines: no prefix to anchor on
_COALESCED = (b"[progress] ", b"Epoch ")  # the last Progress per read (ours, tqdm)


def _decode(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def _line_at(buf: bytes, pos: int) -> tuple[int, int]:
    """(start, end) of the line holding byte `pos` (end: index of its \n)."""
    return buf.rfind(b"\n", 0, pos) + 1, buf.find(b"\n", pos)


class RegionScanner:
    """Whole lines -> events, fast (prefilter) or plain (every line); keeps the cross-line context."""

    def __init__(self, fast: bool = True) -> None:
        self.fast = fast
        self.seen_time = False
        self.parser = LineParser()  # in_traceback / cont shared by both paths

    def scan(self, seg: Segment) -> list[evt.Event]:
        """Events of the segment's lines, in line order, closed by one Activity."""
        buf, start, end = seg
        if end <= start:
            return []
        return self._scan_fast(buf, start, end) if self.fast else self._scan_plain(buf, start, end)

    def _scan_plain(self, buf: bytes, start: int, end: int) -> list[evt.Event]:
        events = parse_lines(_decode(buf[start : end - 1]).split("\n"), self.parser)
        act = events[-1]
        assert isinstance(act, evt.Activity)
        if self.seen_time:
            events[-1] = evt.Activity(act.lines, act.warnings, act.errors, None, t=act.t)
        self.seen_time = self.seen_time or act.t is not None
        return events

    def _scan_fast(self, buf: bytes, start: int, end: int) -> list[evt.Event]:
        found: dict[int, evt.Event] = {}
        levels: dict[int, str] = {}
        parse: set[int] = set()
        conts: list[int] = []
        last_w = last_gs = -1
        if self.parser.cont is not None:  # the previous read ended with an empty message
            conts.append(start - 1)
        for m in SCAN_RE.finditer(buf, start, end):
            g = m.lastgroup
            ls = buf.rfind(b"\n", 0, m.start()) + 1
            if g == "ev":
                parse.add(ls)
            elif g == "W":
                levels[ls] = "WARNING"
                last_w = ls
            elif g == "cont":
                conts.append(ls)
            else:
                last_gs = ls
        i = buf.find(_TB, start, end)
        while i >= 0:
            ls, le = _line_at(buf, i)
            parse.add(ls)
            i = buf.find(_TB, le, end)
        for ls in (last_gs, last_w):
            if ls >= 0:
                parse.add(ls)
        for ls in parse:
            lv, ev = parse_full(_decode(buf[ls : buf.find(b"\n", ls)]))
            if lv == "WARNING" or lv == "ERROR":
                levels[ls] = lv
            if ev is not None and not isinstance(ev, evt.Progress):
                found[ls] = ev
        self._continuations(buf, start, conts, found, levels)
        self._last_progress(buf, start, end, found)
        self._tracebacks(buf, start, end, found)
        self.parser.cont = None
        if buf.endswith(b" - ", start, end - 1):  # the last line's message may be on the next
            ls = buf.rfind(b"\n", start, end - 1) + 1 or start
            self.parser.cont = parse_prefixed(_decode(buf[ls : end - 1]))[2]
        events = [found[k] for k in sorted(found)]
        warnings = sum(1 for v in levels.values() if v == "WARNING")
        events.append(evt.Activity(buf.count(b"\n", start, end), warnings, len(levels) - warnings,
                                  self._first_time(buf, start, end), t=self._last_time(buf, start, end)))
        return events

    def _continuations(self, buf: bytes, start: int, conts: list[int], found: dict[int, evt.Event],
                       levels: dict[int, str]) -> None:
        """Lines whose (empty) message went on the next line: parse that line as the message."""
        for ls in conts:
            if ls < start:
                cont = self.parser.cont
            else:
                lv, _, cont = parse_prefixed(_decode(buf[ls : buf.find(b"\n", ls)]))
                if lv == "WARNING" or lv == "ERROR":
                    levels[ls] = lv
            nxt = buf.find(b"\n", ls) + 1 if ls >= start else start
            line = _decode(buf[nxt : buf.find(b"\n", nxt)])
            if cont is None or split_prefix(line)[2] is not None:
                continue
            ev = parse_continuation(line, cont)
            if ev is not None and not isinstance(ev, evt.Progress):
                found[nxt] = ev

    def _last_progress(self, buf: bytes, start: int, end: int, found: dict[int, evt.Event]) -> None:
        """Add the segment's last Progress event (ours or tqdm) to `found`."""
        best: tuple[int, evt.Event] | None = None
        for needle in _COALESCED:
            stop = end
            while True:
                i = buf.rfind(needle, start, stop)
                if i < 0 or (best is not None and i < best[0]):
                    break
                ls, le = _line_at(buf, i)
                _, ev = parse_full(_decode(buf[ls:le]))
                if isinstance(ev, evt.Progress):
                    best = (ls, ev)
                    break
                stop = ls
        if best is not None and best[0] not in found:
            found[best[0]] = best[1]

    def _tracebacks(self, buf: bytes, start: int, end: int, found: dict[int, evt.Event]) -> None:
        """Find each traceback's error line (it may come in a later read)."""
        starts = sorted(k for k, ev in found.items() if isinstance(ev, evt.TracebackStart))
        pending = self.parser.in_traceback
        if pending:
            pending = self._tb_end(buf, start, end, found)
        for ls in starts:
            pending = self._tb_end(buf, buf.find(b"\n", ls) + 1, end, found)
        self.parser.in_traceback = pending

    @staticmethod
    def _tb_end(buf: bytes, pos: int, end: int, found: dict[int, evt.Event]) -> bool:
        """Scan from `pos` for the error line; True when the segment ended first."""
        while pos < end:
            e = buf.find(b"\n", pos)
            line = _decode(buf[pos:e])
            if is_traceback_error(line):
                found[pos] = evt.TracebackEnd(line.strip())
                return False
            pos = e + 1
        return True

    def _first_time(self, buf: bytes, start: int, end: int) -> float | None:
        if self.seen_time:
            return None
        pos = start
        while pos < end:
            e = buf.find(b"\n", pos)
            t = line_time(_decode(buf[pos:e]))
            if t is not None:
                self.seen_time = True
                return t
            pos = e + 1
        return None

    @staticmethod
    def _last_time(buf: bytes, start: int, end: int) -> float | None:
        stop = end - 1
        while stop >= start:
            s = buf.rfind(b"\n", 0, stop) + 1
            t = line_time(_decode(buf[s:stop]))
            if t is not None:
                return t
            stop = s - 1
        return None
