"""The attach prefilter of tui.log.scan, compiled from _scanc.c (the same function as
tui.log.scan.py_matches)."""

def matches(buf: bytes, start: int, end: int, bulk: bool, /) -> tuple[list[tuple[int, int, int]], int, int, int, int]: ...
