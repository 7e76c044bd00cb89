"""TOML schema helpers shared by preset files and the baseline table.

`Where` checks tables, types and string lists and builds `PresetError`s that name the file (and
the key); `read_toml` reads a file with errors naming it; `atomic_write` replaces or creates a file
without a half-written state.
"""

from __future__ import annotations

import os
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
