"""Log line prefixes, timestamps and number fields: the lexical layer under `tui.log.parse`.

Both formats put a prefix before the message: hydra `[YYYY-mm-dd HH:MM:SS,mmm][logger][LEVEL] - `
and the wrapper's `YYYY-mm-dd HH:MM:SS,mmm - logger - LEVEL - ` (docs/log-format.md). Pure.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time

# ---------------------------------------------------------------- prefixes and timestamps

_TS = r"(\d{4}-\d\d-\d\d \d\d:\d\d):(\d\d),(\d{3})"
HYDRA_RE = re.compile(r"\[" + _TS + r"\]\[([^\]\[\n]{1,200})\]\[([A-Z]{3,8})\] - ")
WRAPPER_RE = re.compile(_TS + r" - (\S{1,200}) - ([A-Z]{3,8}) - ")
_MINUTES: dict[str, float] = {}


def _unix(minute: str, sec: str, ms: str) -> float | None:
    """'YYYY-mm-dd HH:MM', 'SS', 'mmm' (local time) -> unix seconds, cached per minute."""
    base = _MINUTES.get(minute)
    if base is None:
        try:  # = mktime(strptime(minute, "%Y-%m-%d %H:%M")), at a twentieth of its cost
            d = dt.datetime(int(minute[:4]), int(minute[5:7]), int(minute[8:10]), int(minute[11:13]),
                            int(minute[14:16]))
            base = time.mktime(d.timetuple())
        except (ValueError, OverflowError):
            return None
        if len(_MINUTES) > 4096:
            _MINUTES.clear()
        _MINUTES[minute] = base
    return base + int(sec) + int(ms) / 1000.0


def split_prefix(line: str) -> tuple[float | None, str | None, str | None, str, str]:
    """line -> (t, logger, level, message, fragment before the prefix); level None: no prefix."""
    m = HYDRA_RE.match(line) or WRAPPER_RE.match(line)
    if m is None and "][" in line:
        m = HYDRA_RE.search(line)
    if m is None:
        return None, None, None, line, ""
    minute, sec, ms, logger, level = m.groups()
    if level == "CRITICAL":
        level = "ERROR"
    return _unix(minute, sec, ms), logger, level, line[m.end():], line[: m.start()]


def line_time(line: str) -> float | None:
    """The timestamp of a log line, None when it has no prefix."""
    return split_prefix(line)[0]


# ---------------------------------------------------------------- numbers


def num(text: str | None) -> float | None:
    """'0.35' -> 0.35; 'nan' (or unparsable) -> None; inf stays inf."""
    if text is None:
        return None
    try:
        x = float(text.rstrip(",);s%"))
    except ValueError:
        return None
    return None if math.isnan(x) else x


def to_int(text: str | None) -> int | None:
    """'12' -> 12; None or unparsable -> None."""
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def hms_seconds(text: str | None) -> float | None:
    """'01:02:03' / '02:03' -> seconds."""
    if not text or "?" in text:
        return None
    try:
        parts = [int(p) for p in text.split(":")]
    except ValueError:
        return None
    secs = 0
    for p in parts:
        secs = secs * 60 + p
    return float(secs)
