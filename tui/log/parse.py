"""Log line -> typed event, for both our engine's log and the original ATFT pipeline's log.

Pure: no I/O, no state beyond `LineParser`'s traceback context. `tui.log.scan` feeds it the
lines worth parsing; `tui.state` folds the events (docs/log-format.md, shared atft-pipeline.md).
This module is the dispatcher (a line's prefix, then its message, with the context of the lines
before it); the prefix and number fields are `tui.log.prefix`, the message recognisers and their
regex table `tui.log.recognise`, the event types `tui.log.events`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from tui.log.events import (
    Activity,
    Error,
    Event,
    TracebackEnd,
    TracebackStart,
    Warning,
)
from tui.log.prefix import line_time, split_prefix
from tui.log.recognise import TRACEBACK, bare_event, message_event, tqdm_progress

Continuation = tuple[float | None, str]  # (t, level) of a prefix whose message is empty


def parse_prefixed(line: str) -> tuple[str | None, Event | None, Continuation | None]:
    """line -> (level, event, continuation); continuation: the message went on the next line."""
    t, _logger, lv, msg, frag = split_prefix(line)
    if lv is None:
        return None, bare_event(line), None
    return after_prefix(t, lv, msg, frag, line.startswith("[") or bool(frag))


def after_prefix(t: float | None, lv: str, msg: str, frag: str,
                 hydra: bool) -> tuple[str, Event | None, Continuation | None]:
    """A prefixed line's message (and the fragment before its prefix) -> (level, event, continuation)."""
    if not msg.strip():
        return lv, None, (t, lv)  # logger.info("\n=== Training Complete ===")
    ev = message_event(msg, t, lv, "hydra" if hydra else "wrapper")
    if ev is None:
        if lv == "WARNING":
            ev = Warning(msg.strip(), t=t, level=lv)
        elif lv == "ERROR":
            ev = Error(msg.strip(), t=t, level=lv)
        elif frag:
            ev = tqdm_progress(frag, t, lv)
    return lv, ev, None


def parse_continuation(line: str, cont: Continuation) -> Event | None:
    """The bare line after an empty-message log line: that line's message."""
    return message_event(line, cont[0], cont[1], "hydra") or bare_event(line)


def parse_full(line: str) -> tuple[str | None, Event | None]:
    """line -> (level, event); the level also for lines that make no event."""
    lv, ev, _ = parse_prefixed(line)
    return lv, ev


def parse_line(line: str) -> Event | None:
    """One log line (no newline) -> its event, or None for noise."""
    return parse_full(line)[1]


def is_traceback_error(line: str) -> bool:
    """Inside a traceback: is this the non-indented last line that names the error?"""
    if not line or line[0] in " \t" or not line.strip():
        return False
    s = line.lstrip()
    if s.startswith((TRACEBACK, "Traceback", "During handling of the above", "The above exception")):
        return False
    if split_prefix(line)[2] is not None:
        return False
    return tqdm_progress(s) is None


class LineParser:
    """Lines -> events with the context a line lacks: a traceback, a message on the next line."""

    def __init__(self) -> None:
        self.in_traceback = False
        self.cont: Continuation | None = None

    def feed(self, line: str) -> tuple[str | None, Event | None]:
        """One line -> (level, event)."""
        if self.in_traceback and is_traceback_error(line):
            self.in_traceback = False
            self.cont = None
            return None, TracebackEnd(line.strip())
        cont, self.cont = self.cont, None
        lv, ev, self.cont = parse_prefixed(line)
        if cont is not None and lv is None:
            ev = parse_continuation(line, cont)
        if isinstance(ev, TracebackStart):
            self.in_traceback = True
        return lv, ev


class Others(Protocol):
    """The line sources beyond the prefixed formats, as the line loop asks them (tui.log.scan)."""

    def other_event(self, line: str, level: str | None, ev: Event | None) -> Event | None:
        """The event of a line the prefixed formats made `ev` of (kept when not None)."""
        ...


def parse_lines(lines: Iterable[str], parser: LineParser | None = None,
                others: Others | None = None) -> list[Event]:
    """The plain line loop: every line's event plus one closing Activity (the reference reader).
    With `others`, a line the prefixed formats leave may make another source's event."""
    parser = parser or LineParser()
    out: list[Event] = []
    n = warnings = errors = 0
    first: float | None = None
    last: float | None = None
    for line in lines:
        n += 1
        lv, ev = parser.feed(line)
        if others is not None:
            ev = others.other_event(line, lv, ev)
        if lv is not None:
            if lv == "WARNING":
                warnings += 1
            elif lv == "ERROR":
                errors += 1
            t = line_time(line)
            if t is not None:
                last = t
                if first is None:
                    first = t
        if ev is not None:
            out.append(ev)
    out.append(Activity(n, warnings, errors, first, t=last))
    return out
