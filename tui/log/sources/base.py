"""What a metric source is: the two kinds a run's metrics can come from (tui.log.sources lists them).

A **line source** reads the run's log (the script's stdout and stderr, as runctl appends them to the
run's log) one line at a time: `parse(line)` turns one whole line into an event or None. It
declares how the fast attach path finds its lines (`tui.log.scan`): `prefixed` sources (the runctl
stream, the original pipeline's format) are found by the compiled prefix scanner from their
`starts`; the others by their `prefilter`, a bytes regex that must match every line `parse` makes
an event of (tests/test_sources.py feeds each source's `examples` through both paths).

A **file source** reads files the script writes beside its log (a glob, by default under the run's
folder): `reader(glob)` is an object whose `poll()` returns the events of what those files gained
since the last poll (only the new bytes, where the format allows it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from tui.log.events import Event


class Reader(Protocol):
    """A file source's reader of one glob: each poll, the events the matching files gained."""

    def poll(self) -> Sequence[Event]:
        """Events of what the files gained since the last poll (oldest first)."""
        ...


@dataclass(frozen=True)
class LineSource:
    """A source read from the run's log lines."""

    name: str
    title: str  # one line for docs and `runctl metrics test`
    parse: Callable[[str], Event | None]  # one whole line (an `anyline` one with its log prefix) -> event
    examples: tuple[str, ...]  # documented example lines (docs/log-format.md), each makes an event
    prefixed: bool = False  # read by the compiled prefix scanner (Hydra / wrapper-prefixed lines)
    starts: tuple[bytes, ...] = ()  # prefixed: regex alternatives of the messages it reads
    prefilter: re.Pattern[bytes] | None = None  # not prefixed: picks every line it may read
    anyline: bool = False  # reads prefixed lines too, in any log (else: bare lines, and only
    # until the log turns out to be the runctl stream or the pipeline's: tui.log.scan)


@dataclass(frozen=True)
class FileSource:
    """A source read from files beside the log."""

    name: str
    title: str
    preset_key: str  # the preset key that sets its glob (docs/presets.md)
    default_glob: str  # where it looks when the preset says nothing; may use {run_dir} and {run}
    reader: Callable[[str], Reader]  # a glob (placeholders expanded) -> its reader
    append_only: bool = False  # its files only grow (a copy can take just their new bytes)
