"""A JSON-lines metrics file: one JSON object of numbers per line, appended as the run goes.

`{"step": 100, "loss": 2.31, "lr": 0.0006}` or `{"epoch": 2, "val_loss": 0.41}`: `step` (or
`global_step`, `iter`, `iteration`, `iter_num`) and `epoch` place the values (an integral epoch as
printed, 0- or 1-based: the run's first one says which), every other number is a value. The files
(a glob; by default `{run_dir}/**/metrics.jsonl`) are tailed: each poll reads only the lines
appended since the last one; a line that is not a JSON object is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence

from tui.log.events import Event
from tui.log.sources.base import FileSource
from tui.log.sources.files import GlobWatch, TailLines
from tui.log.sources.values import dict_scalars, parse_dict


class JsonLines:
    """Every JSON-lines file under a glob, tailed."""

    def __init__(self, pattern: str) -> None:
        self.watch = GlobWatch(pattern)
        self._tails: dict[str, TailLines] = {}

    def poll(self) -> Sequence[Event]:
        """Events of the lines appended since the last poll (oldest file first)."""
        out: list[Event] = []
        for name in self.watch.files():
            tail = self._tails.get(name)
            if tail is None:
                tail = self._tails[name] = TailLines(name)
            for line in tail.read():
                d = parse_dict(line)
                ev = dict_scalars(d, "jsonl") if d is not None else None
                if ev is not None:
                    out.append(ev)
        return out


SOURCE = FileSource(
    name="jsonl",
    title="a JSON-lines metrics file ({\"step\": N, \"name\": value, ...} per line)",
    preset_key="jsonl",
    default_glob="{run_dir}/**/metrics.jsonl",
    reader=JsonLines,
    append_only=True,
)
