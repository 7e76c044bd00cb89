"""Metric sources, declared in one place: where a run's metrics come from.

`SOURCES` lists every source, one module each (its `SOURCE` entry; the HF module has two), in the
documented order that decides a metric name two sources carry (docs/log-format.md, *Metric
sources*): the runctl stream and the original pipeline's format first (the run's own report),
then what the user configured (explicit patterns), then the files a logger writes at full
precision (CSVLogger, TensorBoard, JSON lines, the HF Trainer's state), then what a script prints
(dicts, then the zero-configuration shapes). Adding a source is one module plus one entry here;
the fast attach path (`tui.log.scan`) finds lines from the same declarations.

`SourceConfig` is what one run reads (from its preset, recorded in its manifest); `LineSet` the
line sources of a config as the scanner uses them; `file_readers(config)` the readers of its
files.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tui.log.events import Event, Start
from tui.log.sources import atft, csvlogger, hf, jsonl, patterns, runctl, stdout, tensorboard
from tui.log.sources.base import FileSource, LineSource, Reader

SOURCES: tuple[LineSource | FileSource, ...] = (
    runctl.SOURCE,
    atft.SOURCE,
    patterns.SOURCE,
    csvlogger.SOURCE,
    tensorboard.SOURCE,
    jsonl.SOURCE,
    hf.STATE_SOURCE,
    hf.SOURCE,
    stdout.SOURCE,
)
RANK = {s.name: i for i, s in enumerate(SOURCES)}
FILE_SOURCES = tuple(s for s in SOURCES if isinstance(s, FileSource))
LINE_SOURCES = tuple(s for s in SOURCES if isinstance(s, LineSource))
LOG_FORMATS = ("auto", "runctl", "atft")  # what a run's log is; auto: told from its first lines
DEFAULT_LOG_FORMAT_RANK = -1  # the fold's rank of the built-in events (the runctl stream's)


def rank(source: str) -> int:
    """A source's place in the documented order (unknown names last)."""
    return RANK.get(source, len(RANK))


def file_source(name: str) -> FileSource:
    """The file source of that name (KeyError if none)."""
    for s in FILE_SOURCES:
        if s.name == name:
            return s
    raise KeyError(name)


@dataclass(frozen=True)
class SourceConfig:
    """What one run's metrics are read from (docs/presets.md, `[metrics]`).

    `log_format`: auto (the zero-configuration stdout sources read the log's unprefixed lines
    until it turns out to be the runctl stream or the pipeline's), runctl or atft (they never do);
    `stdout`: False switches those sources off; `patterns`: the preset's explicit patterns;
    `files`: (file source name, glob with placeholders expanded), in SOURCES order.
    """

    log_format: str = "auto"
    stdout: bool = True
    patterns: tuple[str, ...] | tuple[tuple[str, str], ...] = ()
    files: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The manifest's `sources`."""
        pats: Any = list(self.patterns)
        if self.patterns and isinstance(self.patterns[0], tuple):
            pats = dict(self.patterns)
        return {"log_format": self.log_format, "stdout": self.stdout, "patterns": pats,
                "files": dict(self.files)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> SourceConfig:
        """Parse a manifest's `sources` (unknown keys and file sources ignored)."""
        if not isinstance(data, Mapping):
            return cls()
        pats = data.get("patterns") or ()
        patterns_: tuple[Any, ...] = (tuple(pats.items()) if isinstance(pats, Mapping)
                                      else tuple(str(p) for p in pats))
        files = data.get("files") or {}
        names = [s.name for s in FILE_SOURCES]
        return cls(
            log_format=str(data.get("log_format", "auto")),
            stdout=bool(data.get("stdout", True)),
            patterns=patterns_,
            files=tuple((k, str(files[k])) for k in names if isinstance(files, Mapping) and k in files),
        )

    def pattern_spec(self) -> Sequence[str] | Mapping[str, str]:
        """The patterns as `patterns.compile_patterns` takes them."""
        if self.patterns and isinstance(self.patterns[0], tuple):
            return dict(self.patterns)
        return [str(p) for p in self.patterns]


@dataclass(frozen=True)
class LineSet:
    """The line sources beyond the prefixed formats that one log is read with, in rank order.

    `bare` sources read lines with no log prefix, only while `bare_on` (a scanner's flag: off
    from the start for a runctl / atft log, and from the first `Start` line of an auto one);
    `anyline` sources read every line. A line that a prefixed format makes an event of is theirs.
    """

    bare: tuple[LineSource, ...] = ()
    anyline: tuple[LineSource, ...] = ()
    bare_on: bool = True  # the initial value of a scanner's flag
    bare_find: re.Pattern[bytes] | None = field(default=None, compare=False)
    any_find: re.Pattern[bytes] | None = field(default=None, compare=False)
    _order: tuple[tuple[LineSource, bool], ...] = field(default=(), compare=False)

    @classmethod
    def of(cls, sources: Sequence[LineSource], bare_on: bool = True) -> LineSet:
        """The set of these (non-prefixed) sources, ordered by rank."""
        ordered = sorted(sources, key=lambda s: rank(s.name))
        bare = tuple(s for s in ordered if not s.anyline and not s.prefixed)
        anyline = tuple(s for s in ordered if s.anyline)
        return cls(bare, anyline, bare_on and bool(bare), _find(bare), _find(anyline),
                   tuple((s, s.anyline) for s in ordered if not s.prefixed))

    @property
    def active(self) -> bool:
        """Whether it reads anything at all."""
        return bool(self.anyline) or self.bare_on

    def event(self, line: str, bare: bool) -> Event | None:
        """The first source's event of one line the prefixed formats left (`bare`: the line has no
        log prefix and the bare sources are on)."""
        for src, anyline in self._order:
            if anyline or bare:
                ev = src.parse(line)
                if ev is not None:
                    return ev
        return None


_SCOPED_FLAGS = ((re.IGNORECASE, b"i"), (re.MULTILINE, b"m"), (re.DOTALL, b"s"), (re.VERBOSE, b"x"))


def _find(sources: Sequence[LineSource]) -> re.Pattern[bytes] | None:
    """One regex finding every line any of the sources' prefilters finds: each prefilter in a group
    of its own flags (`(?im:...)`), so that one source's flags neither get lost nor apply to the
    others'."""
    pats = []
    for s in sources:
        if s.prefilter is None:
            continue
        flags = b"".join(c for f, c in _SCOPED_FLAGS if s.prefilter.flags & f)
        end = b"\n)" if s.prefilter.flags & re.VERBOSE else b")"  # a verbose one's last comment ends
        pats.append(b"(?" + flags + b":" + s.prefilter.pattern + end)
    return re.compile(b"|".join(pats)) if pats else None


def ends_bare(ev: Event) -> bool:
    """A line that says the log is the runctl stream or the pipeline's (its `Start`)."""
    return type(ev) is Start


def zero_config_sources() -> tuple[LineSource, ...]:
    """The line sources a run reads with no configuration (`stdout = false` switches them off):
    every declared one but the prefixed formats (the scanner's own) and the explicit patterns
    (whose entry is the documented example: a run reads its preset's, `patterns.source`)."""
    return tuple(s for s in LINE_SOURCES if not s.prefixed and s.name != patterns.SOURCE.name)


@functools.lru_cache(maxsize=256)
def line_set(config: SourceConfig | None) -> LineSet | None:
    """The line sources a run's config reads beside the prefixed formats (None: none); one per
    config (a listing of a thousand runs shares a few)."""
    if config is None:
        config = SourceConfig()
    if config.log_format != "auto" and not config.patterns:
        return None  # a prefixed format's log: the printed shapes never read it
    srcs: list[LineSource] = []
    if config.patterns:
        srcs.append(patterns.source(config.pattern_spec()))
    if config.stdout:
        srcs += zero_config_sources()
    if not srcs:
        return None
    return LineSet.of(srcs, bare_on=config.log_format == "auto")


def file_readers(config: SourceConfig | None) -> list[tuple[str, Reader]]:
    """(source name, reader) of each file glob of a run's config, in rank order."""
    if config is None:
        return []
    out = []
    for name, pattern in config.files:
        try:
            out.append((name, file_source(name).reader(pattern)))
        except KeyError:
            continue
    return sorted(out, key=lambda x: rank(x[0]))
