"""Explicit patterns: a preset's `[metrics] patterns`, for lines the zero-config shapes do not read.

Each pattern is a regular expression searched in every log line (prefixed or not); every match
gives values:

- a group named `key` and one named `value`: one value named by the text `key` matched
  (`(?P<key>\\w+)=(?P<value>\\S+)`);
- any other named group: a value of that name (`acc=(?P<val_acc>[0-9.]+)` -> `val_acc`);
- groups named `step` / `epoch`: the line's position (an epoch as printed, 0- or 1-based).

guild's macros are accepted: `\\key` (`[^ \\t]+`), `\\value` (a number), `\\step` (`[0-9]+`), and
`\\epoch` (`[0-9]+`); in a group of their own they name it (`(\\key): (\\value)`). Besides a list, a
table maps a name to a pattern whose one group (or `value` group) is that metric's value (guild's
map form: `loss = 'loss=(\\value)'`). Patterns are ASCII regexes (`re.ASCII`): the fast attach path
finds their lines with the same pattern over the log's bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tui.log.events import Event, Scalars
from tui.log.sources.base import LineSource
from tui.log.sources.values import number

MACROS = {
    "key": r"[^ \t]+",
    "value": r"[-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|nan|inf)",
    "step": r"[0-9]+",
    "epoch": r"[0-9]+",
}
_GROUPED = re.compile(r"\(\\(key|value|step|epoch)\)")
_BARE = re.compile(r"\\(key|value|step|epoch)(?![A-Za-z])")
_SPECIAL = ("key", "value", "step", "epoch")
_UNNAMED = re.compile(rb"\(\?P<\w+>")
_STRING_ENDS = re.compile(rb"\\[AZ]")  # `\A` / `\Z` (or a literal backslash before A / Z: harmless)
_EVERY_LINE = re.compile(rb"[^\n]")


class PatternError(ValueError):
    """A pattern that does not compile or names nothing; the message says which and why."""


@dataclass(frozen=True)
class Pattern:
    """One compiled pattern: the str regex that reads a line and the bytes one that finds it."""

    text: str
    regex: re.Pattern[str]
    find: re.Pattern[bytes]
    name: str | None = None  # the map form: the metric its value group is


def expand_macros(text: str) -> str:
    """guild's `\\key` `\\value` `\\step` (and `\\epoch`) as regex (a group of their own: named)."""
    text = _GROUPED.sub(lambda m: f"(?P<{m.group(1)}>{MACROS[m.group(1)]})", text)
    return _BARE.sub(lambda m: f"(?:{MACROS[m.group(1)]})", text)


def compile_pattern(text: str, name: str | None = None) -> Pattern:
    """One pattern (macros expanded) -> Pattern; PatternError saying what is wrong."""
    if not isinstance(text, str) or not text:
        raise PatternError(f"{text!r}: a pattern is a non-empty string")
    if not text.isascii():
        raise PatternError(f"{text!r}: patterns are ASCII regular expressions")
    src = expand_macros(text)
    try:
        regex = re.compile(src, re.ASCII)
        find = re.compile(src.encode(), re.MULTILINE)  # `^` / `$`: a line's ends in a read buffer
    except (re.error, ValueError) as e:
        raise PatternError(f"{text!r}: not a regular expression ({e})") from None
    groups = set(regex.groupindex)
    if name is not None:
        if "value" not in groups and regex.groups != 1:
            raise PatternError(f"{name} = {text!r}: needs one group, or a group named value, "
                               f"for {name}'s value")
    elif ("key" in groups) != ("value" in groups):
        raise PatternError(f"{text!r}: a key group needs a value group and the other way round")
    elif not groups:
        raise PatternError(f"{text!r}: names nothing: use (?P<name>...) groups, (\\key) and "
                           f"(\\value), or (\\step)")
    return Pattern(text, regex, find, name)


def compile_patterns(spec: Sequence[str] | Mapping[str, str]) -> tuple[Pattern, ...]:
    """A preset's `patterns`: a list of patterns, or a table metric name -> pattern."""
    if isinstance(spec, Mapping):
        return tuple(compile_pattern(v, k) for k, v in spec.items())
    return tuple(compile_pattern(t) for t in spec)


def read(patterns: Sequence[Pattern], line: str) -> Event | None:
    """Every match of every pattern in one line -> one Scalars (None: no value matched)."""
    values: list[tuple[str, float | None]] = []
    step = epoch = None
    for p in patterns:
        for m in p.regex.finditer(line):
            g = m.groupdict()
            if g.get("step") is not None:
                step = _count(g["step"], step)
            if g.get("epoch") is not None:
                epoch = _count(g["epoch"], epoch)
            if p.name is not None:
                v = g.get("value") if "value" in g else m.group(1)
                if v is not None:
                    values.append((p.name, number(v)))
                continue
            if g.get("key") is not None and g.get("value") is not None:
                values.append((g["key"].rstrip(":=,"), number(g["value"])))
            for k, v in g.items():
                if k not in _SPECIAL and v is not None:
                    values.append((k, number(v)))
    if not values and step is None and epoch is None:
        return None
    return Scalars(tuple(values), step=step, epoch=epoch, source="patterns", printed=epoch is not None)


def _count(text: str, old: int | None) -> int | None:
    """A step / epoch group's text as a count (`\\step` matches only digits; a group of the user's
    may match `1.5` or `inf`: then the position stays as it was)."""
    try:
        return int(text)
    except ValueError:
        return old


def source(spec: Sequence[str] | Mapping[str, str]) -> LineSource:
    """The line source of a preset's patterns (PatternError if one is wrong)."""
    compiled = compile_patterns(spec)
    return LineSource(
        name="patterns",
        title="the preset's [metrics] patterns",
        parse=lambda line: read(compiled, line),
        examples=(),
        prefilter=_finder(compiled),
        anyline=True,
    )


def _finder(compiled: Sequence[Pattern]) -> re.Pattern[bytes]:
    """One bytes regex finding every line any of the patterns matches in a buffer of many lines
    (multi-line: `^` and `$` are each line's start and end, as in the line a pattern reads; group
    names dropped, so that two patterns may name the same group). A pattern that needs its names
    (a backreference `(?P=name)`), or anchored at the string's ends (`\\A`, `\\Z`: a buffer's,
    not a line's), makes every line a candidate."""
    if any(_STRING_ENDS.search(p.find.pattern) for p in compiled):
        return _EVERY_LINE
    try:
        return re.compile(b"|".join(b"(?:" + _UNNAMED.sub(b"(?:", p.find.pattern) + b")" for p in compiled),
                          re.MULTILINE)
    except re.error:
        return _EVERY_LINE


EXAMPLE_PATTERNS = (r"(\key): (\value)", r"acc@1 (?P<top1>[0-9.]+)", r"global step (\step)",
                    r"^lr (?P<lr>\value)$")
EXAMPLES = ("loss: 0.5", "eval acc@1 71.2 acc@5 90.1", "global step 120 loss: 3.2", "lr 0.0003")
_EXAMPLE = source(EXAMPLE_PATTERNS)
SOURCE = LineSource(  # the documented example; a run's own is `source(its preset's patterns)`
    name="patterns",
    title="the preset's [metrics] patterns (regexes with named groups; guild's \\key \\value \\step)",
    parse=_EXAMPLE.parse,
    examples=EXAMPLES,
    prefilter=_EXAMPLE.prefilter,
    anyline=True,
)
