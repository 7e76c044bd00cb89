"""Whole lines -> events, fast: a bytes-level prefilter picks the lines worth parsing.

The fast path never loops over every line in Python: only lines that one regex anchored on the
` - ` of a log prefix (plus a few literal needles) picks go to `tui.log.parse`. That regex, with the
line and WARNING counts, also exists compiled (`c_matches`, tui/log/_scanc.c: one pass over the
bytes, the same result as `py_matches`, which tests check); the regex is the fallback of a build
without a C compiler. Events whose latest
value is all that matters (progress, grad-monitor stats, a plain warning) are coalesced to the last
one per segment; the events fold to the same state as the plain line loop's (`fast=False`), which
tests check. With the C scan, the lines every epoch writes (epoch start, learning rate, losses,
Sharpe, per-horizon metrics, checkpoint) never reach Python one by one: `c_hot_matches` reads them
(exactly as tui.log.parse would, else it leaves them as matches) and `c_blocks` folds each run of
them between two other events per epoch into one `HotRun` (tests/test_scanc_hot.py).

Its cost is one compiled pass over the bytes (or a few C-level ones: line count, Hydra WARNING
count, the regex), a reverse search for tracebacks, plus Python work only per line that makes an event, so a log is read
in time linear in its size. One approximation: a line counts as a WARNING line once per Hydra
`][WARNING] - ` in it when the regex does not pick it, or picks it for its empty message (a second
prefix inside a message, which neither format writes, would count twice), so that a read cut
anywhere counts the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tui.log import events as evt
from tui.log.lines import Bytes, Segment
from tui.log.parse import (
    LineParser,
    after_prefix,
    is_traceback_error,
    parse_continuation,
    parse_full,
    parse_lines,
    parse_prefixed,
)
from tui.log.prefix import line_time, split_prefix
from tui.log.recognise import TRACEBACK

Matches = tuple[list[tuple[int, int, int]], int, int, int, int]  # see py_matches

c_matches: Callable[[Bytes, int, int, bool], Matches] | None
c_prefix: Callable[[Bytes, int, int], tuple[float, str, str, bool] | None] | None
c_hot_matches: Callable[[Bytes, int, int, bool], tuple[list[tuple[int, int, int]], int, int, int, int, bytes]] | None
c_blocks: Callable[[Bytes, bytes, list[int]], list[tuple[int, list[evt.HotBlock]]]] | None
try:  # the compiled prefilter (tui/log/_scanc.c, built by `pip install`); the regex one otherwise
    from tui.log._scanc import blocks as c_blocks
    from tui.log._scanc import hot_matches as c_hot_matches
    from tui.log._scanc import matches as c_matches
    from tui.log._scanc import prefix as c_prefix
except ImportError:  # pragma: no cover - a build without a C compiler
    c_matches = c_prefix = c_hot_matches = c_blocks = None

# Message starts that can make an event, factored by first byte (sre tries branches in order). A
# `[tag]` of up to 20 characters (str `\w`, unicode) is up to 80 bytes of word or non-ASCII bytes.
_STARTS = (
    rb"[\x80-\xff]|\[(?:exit|error|signal|epoch-end|metrics|data-filter|GRAD-MONITOR|[\w\x80-\xff]{1,80}+\] (?:Epoch |Validation loss))"
    rb"|E(?:poch \d)|S(?:harpe: |tarting )|V(?:al [mM]etrics)|t(?:rain/total_loss: )|v(?:al/loss: )"
    rb"|L(?:earning rate: |ow prediction variance)|B(?:est (?:validation loss|model saved))"
    rb"|C(?:heckpoint saved: |reating data loaders)|A(?:chieved Sharpe)|G(?:PU: )|U(?:sing device: )"
    rb"|F(?:ound |itting OnlineRobustScaler)|O(?:nlineRobustScaler fitted)|I(?:terable datasets ready)"
    rb"|D(?:ata loaders created)|r(?:unctl (?:engine|callback) )|=(?:== Training Complete)"
)
_WS = rb"[ \t\x0b\x0c]*+"
# Matches right after a prefix's " - ": `cont` an empty message continued on the next line; `gs`
# grad stats (coalesced: the last one); `lowv` a Hydra low-variance warning (coalesced per horizon:
# the last one sets the horizon's flag, a later healthy metrics line clears it); `ev` a line to
# parse (an event start, any wrapper-format line `X - `, an ERROR/CRITICAL line); `W` a plain Hydra
# WARNING prefix (counted; the last one's line parsed), `Wp` a WARNING [progress] line (counted).
# `gs`, `lowv` and `ev` consume the rest of their line (an `ev` line is parsed whole). A message
# that starts like the bulk of a log's lines, which make no event, is rejected first: our INFO
# [progress] lines (`O] - `); in SCAN_BULK_RE, used while WARNING lines are too many to match one
# by one (bytes.count counts their prefixes), also the original pipeline's per-step INFO and
# WARNING lines (`[OG]] - `). Wrapper and ERROR lines are never rejected.
_GROUPS = (
    rb"(?P<cont>\n" + _WS + rb"(?:" + _STARTS + rb"))"
    rb"|(?:(?P<gs>\[GRAD-MONITOR\] step=)"
    rb"|(?P<lowv>(?<=\]\[WARNING\] - )Low prediction variance for horizon (?P<h>\d+): scale_ratio=[^,\s])"
    rb"|(?P<ev>" + _WS + rb"(?:" + _STARTS + rb")|(?<=[A-Z] - )|(?<=[RL]\] - ))"
)
_BULK = (rb"\[(?:progress|EDGE-TS|edges-fallback|DEBUG-EDGE|DEBUG-KEYS|GAT-GRAD|GUARD)\] "
         rb"|Built correlation graph: |GraphBuilder ")
SCAN_RE = re.compile(rb" - (?!(?<=O\] - )\[progress\] )(?:" + _GROUPS
                     + rb")[^\n]*|(?<=\]\[WARNING\] - )(?:(?P<Wp>\[progress\] )|(?P<W>)))")
SCAN_BULK_RE = re.compile(rb" - (?!(?<=[OG]\] - )(?:" + _BULK + rb"))(?:" + _GROUPS + rb")[^\n]*)")
W_NEEDLE = b"][WARNING] - "  # a Hydra WARNING prefix
BULK_WARNINGS = 1 / 16  # WARNING lines per line above which the next segment counts them in bulk
_TB = TRACEBACK.encode()  # bare lines: no prefix to anchor on
_COALESCED = (b"[progress] ", b"Epoch ")  # the last Progress per read (ours, tqdm)
_PROGRESS_WINDOW = 1 << 16  # the last Progress is looked for in growing windows from the end


CONT, GS, LOWV, EV = range(4)  # the match codes of `py_matches` / `c_matches`
_CODES = {"cont": CONT, "gs": GS, "lowv": LOWV, "ev": EV}
_HORIZON_RE = re.compile(rb"\d+")
_LOWV_H = len(b" - Low prediction variance for horizon ")


def py_matches(buf: Bytes, start: int, end: int, bulk: bool) -> Matches:
    """The prefilter's matches in buf[start:end]: ([(code, start, end)], newlines, Hydra WARNING
    prefixes (counted in bulk mode only, else 0), W / Wp matches, the last W match's start).

    SCAN_RE (or SCAN_BULK_RE) run by `finditer`; `c_matches` is the same function compiled, one
    pass over the bytes instead of a regex at every ` - ` and a count per needle.
    """
    out: list[tuple[int, int, int]] = []
    nw, last_w = 0, -1
    for m in (SCAN_BULK_RE if bulk else SCAN_RE).finditer(buf, start, end):
        g = m.lastgroup
        if g == "W" or g == "Wp":
            nw += 1
            if g == "W":
                last_w = m.start()
            continue
        out.append((_CODES[g or ""], m.start(), m.end()))
    return out, buf.count(b"\n", start, end), buf.count(W_NEEDLE, start, end) if bulk else 0, nw, last_w


def scan_matches(buf: Bytes, start: int, end: int, bulk: bool) -> Matches:
    """`c_matches` when it is built, else `py_matches`."""
    if c_matches is not None:
        return c_matches(buf, start, end, bulk)
    return py_matches(buf, start, end, bulk)


def _decode(b: Bytes) -> str:
    return b.decode("utf-8", "replace")


def parse_at(buf: Bytes, ls: int, le: int) -> tuple[str | None, evt.Event | None]:
    """parse_full of the line buf[ls:le]; a plain Hydra or wrapper prefix at its start is split by
    `c_prefix` (the same result as split_prefix's, without decoding the prefix)."""
    if c_prefix is not None:
        r = c_prefix(buf, ls, le)
        if r is not None:
            lv, ev, _ = after_prefix(r[0], r[1], r[2], "", r[3])
            return lv, ev
    return parse_full(_decode(buf[ls:le]))


def _line_at(buf: Bytes, pos: int) -> tuple[int, int]:
    """(start, end) of the line holding byte `pos` (end: index of its \n)."""
    return buf.rfind(b"\n", 0, pos) + 1, buf.find(b"\n", pos)


class RegionScanner:
    """Whole lines -> events, fast (prefilter) or plain (every line); keeps the cross-line context."""

    def __init__(self, fast: bool = True) -> None:
        self.fast = fast
        self.bulk_warnings = False  # count Hydra WARNING lines with bytes.count (many of them)
        self.seen_time = False
        self.parser = LineParser()  # in_traceback / cont shared by both paths

    def scan(self, seg: Segment) -> list[evt.Event]:
        """Events of the segment's lines, in line order, closed by one Activity."""
        buf, start, end = seg
        if end <= start:
            return []
        return self._scan_fast(buf, start, end) if self.fast else self._scan_plain(buf, start, end)

    def _scan_plain(self, buf: Bytes, start: int, end: int) -> list[evt.Event]:
        events = parse_lines(_decode(buf[start : end - 1]).split("\n"), self.parser)
        act = events[-1]
        assert isinstance(act, evt.Activity)
        if self.seen_time:
            events[-1] = evt.Activity(act.lines, act.warnings, act.errors, None, t=act.t)
        self.seen_time = self.seen_time or act.t is not None
        return events

    def _scan_fast(self, buf: Bytes, start: int, end: int) -> list[evt.Event]:
        found: dict[int, evt.Event] = {}
        levels: dict[int, str | None] = {}  # level of every line parsed for its level (line start -> level)
        parse: dict[int, None] = {}  # line starts to parse, in order (a set that keeps order)
        conts: list[int] = []
        lowvar: dict[bytes, list[int]] = {}  # horizon -> its low-variance lines
        grad: list[int] = []  # grad-stats lines
        errors = 0  # of the lines matched but not parsed for their level
        if self.parser.cont is not None:  # the previous read ended with an empty message
            conts.append(start - 1)
        rfind = buf.rfind
        count = buf.count
        bulk = self.bulk_warnings
        hot = b""
        if c_hot_matches is not None:
            ms, lines, w_total, w_matches, last_w, hot = c_hot_matches(buf, start, end, bulk)
        else:
            ms, lines, w_total, w_matches, last_w = scan_matches(buf, start, end, bulk)
        # bulk: every Hydra WARNING prefix (lines parsed below count by their own level instead);
        # else each W / Wp match, as bytes.count counts them
        warnings = w_total if bulk else w_matches
        for code, ms_, me in ms:
            ls = rfind(b"\n", 0, ms_) + 1
            if code == CONT:  # counted by its WARNING prefixes, as a W match would have counted it
                if not bulk:  # at the end of a segment, where the next line is not there to see
                    warnings += buf.startswith(W_NEEDLE, ms_ - 10) if ms_ >= 10 else 0
            elif not bulk and code != LOWV and (code != GS or not buf.endswith(b"]", 0, ms_)):
                warnings -= count(W_NEEDLE, ls, ms_ + 2)  # W matches of a line parsed below
            if code == EV:
                parse[ls] = None
            elif code == LOWV:
                if not bulk:
                    warnings += 1 + count(W_NEEDLE, ms_ + 3, me)
                h = _HORIZON_RE.match(buf, ms_ + _LOWV_H)
                assert h is not None
                lowvar.setdefault(h.group(), []).append(ls)
            elif code == CONT:
                conts.append(ls)
            else:  # gs: its level from the Hydra prefix right before; any other prefix is parsed
                grad.append(ls)
                if not buf.endswith(b"]", 0, ms_):
                    parse[ls] = None
                elif buf.endswith((b"][ERROR]", b"][CRITICAL]"), 0, ms_):
                    errors += 1
                if not bulk and ls not in parse:
                    warnings += count(W_NEEDLE, ms_ - 10, me)
        if rfind(_TB, start, end) >= 0:  # rare: a reverse search is the cheap way to rule it out
            i = buf.find(_TB, start, end)
            while i >= 0:
                ls, le = _line_at(buf, i)
                if ls not in parse:
                    parse[ls] = None
                    if not bulk:  # its WARNING prefixes were counted as a W/lowv/gs line's
                        warnings -= count(W_NEEDLE, ls, le)
                i = buf.find(_TB, le, end)
        for ls in parse:
            lv, ev = parse_at(buf, ls, buf.find(b"\n", ls))
            levels[ls] = lv
            if ev is not None and not isinstance(ev, evt.Progress):
                found[ls] = ev
        for starts in [*lowvar.values(), grad]:  # the last line of each that makes its event
            for ls in reversed(starts):
                if ls in levels:
                    break  # parsed above (a prefix of another shape)
                _, ev = parse_at(buf, ls, buf.find(b"\n", ls))
                if ev is not None and not isinstance(ev, evt.Progress):
                    found[ls] = ev
                if isinstance(ev, (evt.LowVariance, evt.GradMonitor)):
                    break
        self._continuations(buf, start, conts, found, levels)
        self._last_warning(buf, start, end, last_w, bulk, found, levels)
        self._last_progress(buf, start, end, found)
        self._tracebacks(buf, start, end, found)
        self.parser.cont = None
        if buf.endswith(b" - ", start, end - 1):  # the last line's message may be on the next
            ls = buf.rfind(b"\n", start, end - 1) + 1 or start
            self.parser.cont = parse_prefixed(_decode(buf[ls : end - 1]))[2]
        keys = sorted(found)
        if hot and c_blocks is not None:  # the epoch lines the C scan took: one HotRun per run
            for ls, blocks in c_blocks(buf, hot, keys):  # of them between two other events
                found[ls] = evt.HotRun(blocks)
            keys = sorted(found)
        events = [found[k] for k in keys]
        cont_lines = set(conts)
        for ls, lv in levels.items():
            errors += lv == "ERROR"
            if ls in cont_lines and ls not in parse:
                continue  # its WARNING prefixes counted above (or in bulk)
            warnings += lv == "WARNING"
            if bulk and ls >= start:
                warnings -= count(W_NEEDLE, ls, buf.find(b"\n", ls))
        if lines >= 1024:  # a chunk's first line (its own segment) says nothing
            self.bulk_warnings = warnings >= lines * BULK_WARNINGS
        events.append(evt.Activity(lines, warnings, errors, self._first_time(buf, start, end),
                                   t=self._last_time(buf, start, end)))
        return events

    def _continuations(self, buf: Bytes, start: int, conts: list[int], found: dict[int, evt.Event],
                       levels: dict[int, str | None]) -> None:
        """Lines whose (empty) message went on the next line: parse that line as the message."""
        for ls in conts:
            if ls < start:
                cont = self.parser.cont
            else:
                lv, _, cont = parse_prefixed(_decode(buf[ls : buf.find(b"\n", ls)]))
                levels[ls] = lv
            nxt = buf.find(b"\n", ls) + 1 if ls >= start else start
            line = _decode(buf[nxt : buf.find(b"\n", nxt)])
            if cont is None or split_prefix(line)[2] is not None:
                continue
            ev = parse_continuation(line, cont)
            if ev is not None and not isinstance(ev, evt.Progress):
                found[nxt] = ev

    @staticmethod
    def _last_warning(buf: Bytes, start: int, end: int, last_w: int, bulk: bool,
                      found: dict[int, evt.Event], parsed: dict[int, str | None]) -> None:
        """The segment's last plain Hydra WARNING line: its Warning event. That is the last `W`
        match's line; in bulk mode, or when that line makes another event (or none: an empty
        message), the WARNING lines are walked back, parsing those not parsed yet (rare: the last
        plain warning is near the end)."""
        if last_w >= 0:
            ls, le = _line_at(buf, last_w)
        elif bulk and (i := buf.rfind(W_NEEDLE, start, end)) >= 0:
            ls, le = _line_at(buf, i)
        else:
            return
        while True:
            ev = found.get(ls)
            if isinstance(ev, evt.Warning):
                return
            if ev is None and ls not in parsed:
                _, ev = parse_at(buf, ls, le)
                if isinstance(ev, evt.Warning):
                    found[ls] = ev
                    return
            while (i := buf.rfind(W_NEEDLE, start, ls)) >= 0 and buf.startswith(b"[progress] ", i + 13):
                ls = i  # our progress lines make Progress events
            if i < 0:
                return
            ls, le = _line_at(buf, i)

    def _last_progress(self, buf: Bytes, start: int, end: int, found: dict[int, evt.Event]) -> None:
        """Add the segment's last Progress event (ours or tqdm) to `found`: the needles are looked
        for in windows growing back from the end, so a log of one kind never scans for the other."""
        hi, width = end, _PROGRESS_WINDOW
        while hi > start:
            lo = max(start, hi - width)
            best: tuple[int, evt.Event] | None = None
            for needle in _COALESCED:
                stop = hi
                while True:
                    i = buf.rfind(needle, lo if best is None else max(lo, best[0]), stop)
                    if i < 0:
                        break
                    ls, le = _line_at(buf, i)
                    _, ev = parse_at(buf, ls, le)
                    if isinstance(ev, evt.Progress):
                        if best is None or ls > best[0]:
                            best = (ls, ev)
                        break
                    stop = ls
            if best is not None:
                if best[0] not in found:
                    found[best[0]] = best[1]
                return
            hi, width = lo + max(len(n) for n in _COALESCED) - 1 if lo > start else start, width * 2

    def _tracebacks(self, buf: Bytes, start: int, end: int, found: dict[int, evt.Event]) -> None:
        """Find each traceback's error line (it may come in a later read)."""
        starts = sorted(k for k, ev in found.items() if isinstance(ev, evt.TracebackStart))
        pending = self.parser.in_traceback
        if pending:
            pending = self._tb_end(buf, start, end, found)
        for ls in starts:
            pending = self._tb_end(buf, buf.find(b"\n", ls) + 1, end, found)
        self.parser.in_traceback = pending

    @staticmethod
    def _tb_end(buf: Bytes, pos: int, end: int, found: dict[int, evt.Event]) -> bool:
        """Scan from `pos` for the error line; True when the segment ended first."""
        while pos < end:
            e = buf.find(b"\n", pos)
            line = _decode(buf[pos:e])
            if is_traceback_error(line):
                found[pos] = evt.TracebackEnd(line.strip())
                return False
            pos = e + 1
        return True

    def _first_time(self, buf: Bytes, start: int, end: int) -> float | None:
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
    def _last_time(buf: Bytes, start: int, end: int) -> float | None:
        stop = end - 1
        while stop >= start:
            s = buf.rfind(b"\n", 0, stop) + 1
            t = line_time(_decode(buf[s:stop]))
            if t is not None:
                return t
            stop = s - 1
        return None
