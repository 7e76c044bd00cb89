"""The log pane: a bounded live tail with a regex filter and the seed's quick filters."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from textual import events, on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.markup import escape
from textual.message import Message
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
        self.total = 0

    def compose(self) -> ComposeResult:
        yield Static("", id="log-status")
        yield Input(placeholder="regex, Enter to apply, empty for all, Esc to close", id="log-filter")
        yield Log(max_lines=self._max, id="log")

    def on_mount(self) -> None:
        """Start with the filter input hidden."""
        self.query_one("#log-filter", Input).display = False
        self._status()

    @property
    def pattern(self) -> str | None:
        """The active regex, if any."""
        return self._regex.pattern if self._regex else None

    @property
    def shown(self) -> list[str]:
        """The lines the pane shows now."""
        return list(self.query_one(Log).lines)

    def _status(self) -> None:
        keys = " ".join(f"{k} {label}" for k, (label, _) in QUICK_FILTERS.items())
        what = escape(self._label)
        paused = "" if self.following else "[reverse] paused: End to follow [/reverse] "
        text = f"[b]Log[/b] {paused}filter: [b]{what}[/b]  [dim]/ regex · {keys} · 0 all[/dim]"
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
        following = self.following or reset
        if shown:
            log.write_lines(shown, scroll_end=False)
            if following:
                log.scroll_end(animate=False, immediate=True, x_axis=False)
        if reset:  # the first layout may come after this write: keep the tail in view
            self.call_after_refresh(log.scroll_end, animate=False, immediate=True, x_axis=False)
        self._status()

    @property
    def following(self) -> bool:
        """The log shows its tail (False: the user scrolled up; autoscroll pauses)."""
        log = self.query_one(Log)
        return log.max_scroll_y - log.scroll_y <= SLACK

    def on_resize(self) -> None:
        """A pane that was following the tail keeps following it when its size changes."""
        log = self.query_one(Log)
        if log.max_scroll_y - log.scroll_y <= log.size.height:
            self.call_after_refresh(log.scroll_end, animate=False, immediate=True, x_axis=False)

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
