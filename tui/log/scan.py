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

import itertools
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
from tui.log.sources import LINE_SOURCES, LineSet, ends_bare
from tui.log.sources.values import is_evaluation

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



def factor(alternatives: tuple[bytes, ...]) -> bytes:
    """Regex alternatives -> one alternation factored by first atom (a byte, an escaped byte or a
    character class), in first-seen order: sre tries a factored alternation's branches by their
    first byte instead of one by one."""
    groups: dict[bytes, list[bytes]] = {}
    for alt in alternatives:
        if alt.startswith(b"\\"):
            n = 2
        elif alt.startswith(b"["):
            n = alt.index(b"]") + 1
        else:
            n = 1
        groups.setdefault(alt[:n], []).append(alt[n:])
    out = []
    for head, rests in groups.items():
        rest = b"|".join(r for r in rests if r)
        out.append(head + (b"(?:" + rest + b")" if rest else b""))
    return b"|".join(out)


# Message starts that can make an event, as the prefixed formats declare them (their source
# modules' STARTS; tui/log/_scanc.c has the same list compiled, tests/test_scanc.py checks it).
_STARTS = factor(tuple(s for src in LINE_SOURCES if src.prefixed for s in src.starts))
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
# The bare sources' line templates (RegionScanner._bare_picks): every digit a `#`; a letter or `_`
# right before one may be a name's digit (`top1`, `ic_h20`).
_DIGITS = bytes.maketrans(b"0123456789", b"##########")
_NAME_DIGIT = re.compile(rb"[A-Za-z_]#")
# Where a line may have a time (tui.log.prefix.line_time): a Hydra prefix's `[time][` anywhere in it,
# or the wrapper's `time - ` (found from its `,mmm - `); both start on a literal byte, so a log of
# plain prints is searched at C speed.
_STAMPS = (re.compile(rb"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\]\["), re.compile(rb",\d{3} - "))
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

    def __init__(self, fast: bool = True, lines: LineSet | None = None) -> None:
        self.fast = fast
        self.bulk_warnings = False  # count Hydra WARNING lines with bytes.count (many of them)
        self.seen_time = False
        self.parser = LineParser()  # in_traceback / cont shared by both paths
        self.lines = lines if lines is not None and lines.active else None  # other line sources
        self.bare_on = lines is not None and lines.bare_on  # they read unprefixed lines (yet)

    def other_event(self, line: str, level: str | None, ev: evt.Event | None) -> evt.Event | None:
        """The plain loop's question (tui.log.parse.Others): a line's event from the other line
        sources when the prefixed formats made none; a `Start` ends the unprefixed ones."""
        if self.lines is None:
            return ev
        if ev is not None:
            if self.bare_on and ends_bare(ev):
                self.bare_on = False
            return ev
        return self.lines.event(line, self.bare_on and level is None)

    def scan(self, seg: Segment) -> list[evt.Event]:
        """Events of the segment's lines, in line order, closed by one Activity."""
        buf, start, end = seg
        if end <= start:
            return []
        return self._scan_fast(buf, start, end) if self.fast else self._scan_plain(buf, start, end)

    def _scan_plain(self, buf: Bytes, start: int, end: int) -> list[evt.Event]:
        events = parse_lines(_decode(buf[start : end - 1]).split("\n"), self.parser,
                             self if self.lines is not None else None)
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
        if self.lines is not None and (self.bare_on or self.lines.any_find is not None):
            self._others(buf, start, end, found)
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

    def _others(self, buf: Bytes, start: int, end: int, found: dict[int, evt.Event]) -> None:
        """The other line sources' events (tui.log.sources.LineSet): the lines their prefilters
        pick (the bare ones only before the log's first `Start`, and only lines with no prefix)
        that the prefixed formats make no event of; then only the last Progress of the segment
        is kept, as the prefixed formats' are."""
        lines = self.lines
        assert lines is not None
        cut = end
        if self.bare_on:
            starts = [ls for ls, ev in found.items() if ends_bare(ev)]
            if starts:
                cut = min(starts)
        picked: dict[int, int] = {}
        if self.bare_on and lines.bare_find is not None and cut > start:
            self._bare_picks(buf, start, cut, found, picked)
        find = lines.any_find
        pos = start
        while find is not None and pos < end:
            m = find.search(buf, pos, end)
            if m is None:
                break
            ls = buf.rfind(b"\n", 0, m.start()) + 1
            le = buf.find(b"\n", m.start())
            picked[max(ls, start)] = le
            pos = le + 1
        progress = any(type(ev) is evt.Progress for ev in found.values())
        for ls in sorted(picked):
            if ls in found:
                continue
            le = picked[ls]
            lv, ev = parse_at(buf, ls, le)
            if ev is not None:
                continue
            ev = lines.event(_decode(buf[ls:le]), self.bare_on and ls < cut and lv is None)
            if ev is not None:
                found[ls] = ev
                progress = progress or type(ev) is evt.Progress
        if progress:
            last = max((ls for ls, ev in found.items() if type(ev) is evt.Progress), default=-1)
            for ls in [ls for ls, ev in found.items() if type(ev) is evt.Progress and ls != last]:
                del found[ls]
        if cut < end:
            self.bare_on = False

    def _bare_picks(self, buf: Bytes, lo: int, hi: int, found: dict[int, evt.Event],
                    picked: dict[int, int]) -> None:
        """The unprefixed lines of buf[lo:hi] the bare sources must read, by template: lines that
        differ only in their numbers (`iter 10: loss 3.9012, ...`, `iter 20: ...`) read alike, so
        one line of each template says what its lines give. A template of per-step numbers (a
        Scalars at a step, no epoch, no evaluation: only each metric's latest value and the latest
        step are kept) or of progress bars needs only its first and last lines (what the fold takes
        from the first: the source, the lifecycle; from the last: the values, the step, the
        progress); any other (evaluations, epochs, values with no position) every line, and so
        does a template whose names may hold digits (a letter before a digit). A log of a million
        `iter` lines is a few C-level passes per read instead of a parse per line."""
        lines = self.lines
        assert lines is not None and lines.bare_find is not None
        seg = bytes(buf[lo:hi]).translate(_DIGITS)  # each digit a `#`: same length, same shape
        norm = seg.split(b"\n")  # seg ends with a newline: a last empty piece
        n = len(norm) - 1
        last = dict(zip(norm, range(n + 1), strict=True))
        first = dict(zip(reversed(norm), range(n, -1, -1), strict=True))
        cum = list(itertools.accumulate(map(len, norm), initial=0))  # line i starts at lo + cum[i] + i
        every: list[bytes] = []
        for t, i in last.items():
            if i >= n:
                continue
            ls = lo + cum[i] + i
            le = ls + len(t)
            if not lines.bare_find.search(buf, ls, le):
                continue
            if ls in found or _NAME_DIGIT.search(t):
                every.append(t)  # a line another reader took, or names with digits (`top1`, `top5`
                continue  # read alike): look at each of them
            lv, ev = parse_at(buf, ls, le)
            if ev is not None or lv is not None:
                continue  # the prefixed formats' (a bar of theirs, a traceback), or a logged line
            ev = lines.event(_decode(buf[ls:le]), True)
            if ev is None:
                continue
            if type(ev) is evt.Progress or (type(ev) is evt.Scalars and ev.step is not None
                                            and ev.epoch is None and not is_evaluation(ev)):
                j = first[t]
                js = lo + cum[j] + j
                picked[js] = js + len(t)
                picked[ls] = le
            else:
                every.append(t)
        if every:  # their lines, found in the translated bytes (whose offsets are the log's)
            whole = b"\n" + seg  # every line between two newlines
            for t in every:
                needle = b"\n" + t + b"\n"
                pos = whole.find(needle)
                while pos >= 0:
                    picked[lo + pos] = lo + pos + len(t)
                    pos = whole.find(needle, pos + len(t) + 1)

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
        """The first line time of the log (once): the lines with a timestamp in them, in order."""
        if self.seen_time:
            return None
        pos = start
        while pos < end:
            hits = [m.start() for r in _STAMPS if (m := r.search(buf, pos, end)) is not None]
            if not hits:
                return None
            s, e = _line_at(buf, min(hits))
            t = line_time(_decode(buf[max(s, start):e]))
            if t is not None:
                self.seen_time = True
                return t
            pos = e + 1
        return None

    @staticmethod
    def _last_time(buf: Bytes, start: int, end: int) -> float | None:
        """The segment's last line time: the lines with a timestamp in them, from the end (a
        log with none, a script's plain prints, costs one regex pass, not a parse per line)."""
        s = buf.rfind(b"\n", start, end - 1) + 1 or start  # most logs stamp their last line
        t = line_time(_decode(buf[s : end - 1]))
        if t is not None:
            return t
        hi, width = s - 1, 1 << 9
        while hi > start:
            lo = max(start, hi - width)
            lo = buf.rfind(b"\n", 0, lo) + 1 if lo > start else start
            seen = hi
            for pos in sorted((m.start() for r in _STAMPS for m in r.finditer(buf, lo, hi)), reverse=True):
                s, e = _line_at(buf, pos)
                if s >= seen:
                    continue
                seen = s
                t = line_time(_decode(buf[max(s, start):min(e, end)]))
                if t is not None:
                    return t
            hi, width = lo - 1, width * 4
        return None
