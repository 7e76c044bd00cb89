"""The log pane: a bounded live tail with a regex filter and the seed's quick filters."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from rich.segment import Segment
from textual import events, on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.markup import escape
from textual.message import Message
from textual.strip import Strip
from textual.widgets import Input, Log, Static

MAX_LINES = 5000
SLACK = 4  # rows from the end that still count as "following" (the filter input takes 3)
# `[2026-11-24 04:21:51,473][engine][INFO] - msg` and `2025-10-28 23:54:09,473 - x - INFO - msg`
_PREFIX = re.compile(
    r"^\[?\d{4}-\d\d-\d\d (\d\d:\d\d:\d\d),\d{3}(?:\]\[[^\]]*\]\[(\w+)\] - | - \S+ - (\w+) - )"
)

# The seed's greps, one key each (label, regex).
QUICK_FILTERS: dict[str, tuple[str, str]] = {
    "1": ("epochs", r"Epoch [0-9]+/"),
    "2": ("losses", r"Epoch|train/total_loss|val/loss|SCALE|Sharpe"),
    "3": ("SCALE", r"SCALE\(yhat/y\)"),
    "4": ("Sharpe", r"Sharpe:"),
    "5": ("Val metrics", r"Val metrics"),
    "6": ("warnings/errors", r"\]\[(WARNING|ERROR)\]|WARNING|ERROR|Traceback|Error"),
}
# The same keys in the status line, short enough that all of them fit in 80 columns.
QUICK_SHORT = {"1": "epochs", "2": "losses", "3": "SCALE", "4": "Sharpe", "5": "val", "6": "warn"}
EPOCH_START = re.compile(r"Epoch \d+/\d+\s*$")  # `[main] Epoch 4/10`, the engine's epoch banner


class TailLog(Log):
    """Textual's Log, whose lines cut at the right edge end in an ellipsis."""

    def _render_line(self, y: int, scroll_x: int, width: int) -> Strip:
        strip = super()._render_line(y, scroll_x, width)
        shown = min(width, self.scrollable_content_region.width)  # the scrollbar takes the rest
        if y < len(self._lines) and shown > 1:
            full = self._render_line_strip(y, self.rich_style)
            if full.cell_length > scroll_x + shown:
                cut = Strip.join([strip.crop(0, shown - 1), Strip([Segment("…", self.rich_style)])])
                strip = cut.extend_cell_length(width, self.rich_style).apply_offsets(scroll_x, y)
        return strip


def compact(line: str) -> str:
    """`04:21:51 msg` (level shown unless INFO) instead of the full log prefix."""
    m = _PREFIX.match(line)
    if m is None:
        return line
    level = m.group(2) or m.group(3) or "INFO"
    return f"{m.group(1)} {'' if level == 'INFO' else level + ' '}{line[m.end():]}"


class LogPane(Vertical):
    """Last MAX_LINES lines; autoscroll pauses while scrolled up (Log does it at the end only)."""

    @dataclass
    class FilterChanged(Message):
        """The filter changed (pattern None: show everything)."""

        pattern: str | None

    def __init__(self, max_lines: int = MAX_LINES, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._lines: deque[str] = deque(maxlen=max_lines)
        self._max = max_lines
        self._regex: re.Pattern[str] | None = None
        self._label = "all lines"
        self._status_text = ""
        self._following = True
        self.total = 0

    def compose(self) -> ComposeResult:
        yield Static("", id="log-status")
        yield Input(placeholder="regex, Enter to apply, empty for all, Esc to close", id="log-filter")
        yield TailLog(max_lines=self._max, id="log")

    def on_mount(self) -> None:
        """Start with the filter input hidden."""
        self.query_one("#log-filter", Input).display = False
        self.watch(self.query_one(Log), "scroll_y", self._scrolled, init=False)
        self._status()

    def _scrolled(self, old: float, new: float) -> None:
        """Scrolled by keys, wheel or a jump: up pauses following, down to the end resumes it (a
        resize only moves the end, never the scroll position up, so it changes nothing)."""
        log = self.query_one(Log)
        if new >= log.max_scroll_y - SLACK:
            self._following = True
        elif new < old:
            self._following = False
        self._status()

    @property
    def pattern(self) -> str | None:
        """The active regex, if any."""
        return self._regex.pattern if self._regex else None

    @property
    def shown(self) -> list[str]:
        """The lines the pane shows now."""
        return list(self.query_one(Log).lines)

    def status_text(self, width: int) -> str:
        """The pane's first line: the filter, whether it follows the tail, the keys that fit."""
        what = escape(self._label)
        head = f"[b]{what}[/b]"
        used = len(self._label)
        if not self.following:
            head += " [reverse] paused · End follows [/reverse]"
            used += 22
        hints = ["/ regex", *(f"{k} {v}" for k, v in QUICK_SHORT.items()), "0 all", "g epoch"]
        shown: list[str] = []
        for h in hints:
            if used + 3 + len(h) + 1 > width:
                break
            shown.append(h)
            used += 1 + len(h)
        return head + (f" [dim]│ {escape(' '.join(shown))}[/dim]" if shown else "")

    def _status(self) -> None:
        text = self.status_text(self.size.width or 80)
        if text != self._status_text:
            self._status_text = text
            self.query_one("#log-status", Static).update(text)

    def _match(self, lines: Iterable[str]) -> list[str]:
        """The lines the filter keeps, compacted for display (the filter sees the raw line)."""
        rx = self._regex
        return [compact(ln) for ln in lines if rx is None or rx.search(ln)]

    def append(self, lines: list[str], reset: bool = False, skipped: int = 0) -> None:
        """Add a chunk of raw lines (one write for the whole chunk); `skipped` older ones were dropped."""
        log = self.query_one(Log)
        if reset:
            self._lines.clear()
            log.clear()
        self._lines.extend(lines)
        self.total += len(lines) + skipped
        shown = self._match(lines[-self._max:])
        following = self._following = self._following or reset
        if shown:
            log.write_lines(shown, scroll_end=False)
            if following:
                log.scroll_end(animate=False, immediate=True, x_axis=False)
        if reset:  # the first layout may come after this write: keep the tail in view
            self.call_after_refresh(log.scroll_end, animate=False, immediate=True, x_axis=False)
        self._status()

    @property
    def following(self) -> bool:
        """The log follows its tail (False: the user scrolled up or jumped; autoscroll pauses)."""
        return self._following

    def on_resize(self) -> None:
        """A pane that was following the tail keeps following it when its size changes."""
        if self._following:
            log = self.query_one(Log)
            self.call_after_refresh(log.scroll_end, animate=False, immediate=True, x_axis=False)
        self._status()

    def follow(self) -> None:
        """Show the tail again and keep following it (`End`)."""
        log = self.query_one(Log)
        self._following = True
        log.scroll_end(animate=False, immediate=True, x_axis=False)
        self.call_after_refresh(log.scroll_end, animate=False, immediate=True, x_axis=False)
        self.call_after_refresh(self._status)
        self._status()

    def jump_to_epoch(self) -> bool:
        """Scroll so that the latest epoch's start line is at the top (following pauses);
        False when the shown lines hold none."""
        log = self.query_one(Log)
        lines = log.lines
        for i in range(len(lines) - 1, -1, -1):
            if EPOCH_START.search(lines[i]):
                self._following = False
                log.scroll_to(y=i, animate=False, immediate=True)
                self._status()
                return True
        return False


    def set_filter(self, pattern: str | None, label: str | None = None) -> bool:
        """Show only lines matching `pattern` (None/empty: all); False if the regex is invalid."""
        if pattern:
            try:
                rx = re.compile(pattern)
            except re.error as e:
                self.app.notify(f"bad regex {pattern!r}: {e}", severity="error")
                return False
            self._regex, self._label = rx, label or f"/{pattern}/"
        else:
            self._regex, self._label = None, "all lines"
        log = self.query_one(Log)
        log.clear()
        self._following = True
        log.write_lines(self._match(self._lines), scroll_end=True)
        self._status()
        self.post_message(self.FilterChanged(self.pattern))
        return True

    def quick(self, key: str) -> None:
        """Apply quick filter `key` (`0`: none)."""
        if key in QUICK_FILTERS:
            label, rx = QUICK_FILTERS[key]
            self.set_filter(rx, label)
        else:
            self.set_filter(None)

    def open_filter(self) -> None:
        """Show and focus the regex input."""
        box = self.query_one("#log-filter", Input)
        box.display = True
        box.value = self.pattern or ""
        box.focus()

    def close_filter(self) -> None:
        """Hide the regex input and give focus back to the log."""
        box = self.query_one("#log-filter", Input)
        box.display = False
        self.query_one(Log).focus()

    @on(Input.Submitted, "#log-filter")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.set_filter(event.value.strip() or None):
            self.close_filter()

    def on_key(self, event: events.Key) -> None:
        """Esc closes the filter input."""
        box = self.query_one("#log-filter", Input)
        if event.key == "escape" and box.display:
            event.stop()
            self.close_filter()
