"""TOML schema helpers shared by preset files and the baseline table.

`Where` checks tables, types and string lists and builds `PresetError`s that name the file (and
the key); `read_toml` reads a file with errors naming it; `atomic_write` replaces or creates a file
without a half-written state.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine import config as ec
from tui.presets.preset import PresetError


class Where:
    """Error context: the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.warnings: list[str] = []  # what is worth saying but not refusing

    def err(self, where: str, msg: str) -> PresetError:
        return PresetError(f"{self.path}: {where}: {msg}" if where else f"{self.path}: {msg}")

    def warn(self, where: str, msg: str) -> None:
        self.warnings.append(str(self.err(where, msg)))

    def table(self, v: Any, where: str, allowed: Iterable[str]) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise self.err(where, f"expected a table, got {tname(v)}")
        allowed = tuple(allowed)
        for k in v:
            if k not in allowed:
                raise self.err(where, f"unknown key {k!r}; allowed: {', '.join(allowed)}")
        return v

    def typed(self, v: Any, kind: type | tuple[type, ...], where: str, what: str) -> Any:
        ok = isinstance(v, kind) and not (isinstance(v, bool) and kind in (int, float, (int, float)))
        if not ok:
            raise self.err(where, f"expected {what}, got {tname(v)} {v!r}")
        return v

    def strings(self, v: Any, where: str) -> tuple[str, ...]:
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            raise self.err(where, "expected a list of strings")
        return tuple(v)


def tname(v: Any) -> str:
    """The TOML name of a value's type, for error messages."""
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "table"}.get(type(v), type(v).__name__)


def read_toml(path: Path) -> dict[str, Any]:
    """The file's TOML; errors name the file (and the line and column of a syntax error)."""
    try:
        return ec.load_config_file(path)
    except ec.ConfigError as e:
        raise PresetError(str(e)) from None


_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*([smhd]))+\s*$|^\s*(\d+(?:\.\d+)?)\s*$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration_seconds(v: Any) -> float | None:
    """A duration as a user writes it, in seconds: a number of seconds (`600`), or a text of
    number-unit parts (`"90s"`, `"10m"`, `"1h30m"`, units s m h d); None when it is neither.
    Shared by every key that takes a duration (a preset's `stall_after`), so each reads alike."""
    if is_num(v):
        return float(v)
    if not isinstance(v, str) or not _DURATION.match(v):
        return None
    if not any(c in v for c in _UNIT_S):
        return float(v)
    return sum(float(n) * _UNIT_S[u] for n, u in _DURATION_PART.findall(v))


def is_num(x: Any) -> bool:
    """An int or float, not a bool."""
    return isinstance(x, int | float) and not isinstance(x, bool)


def atomic_write(path: Path, text: str, overwrite: bool) -> None:
    """Write `text` to `path` through a temporary file; without `overwrite`, never replace it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if path exists: no race with a concurrent writer
    except FileExistsError:
        raise PresetError(f"{path}: already exists; choose another name") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
