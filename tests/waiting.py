"""Polling a condition until it holds or a deadline passes (the tests that drive real processes)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(cond: Callable[[], Any], timeout: float, step: float) -> bool:
    """True as soon as `cond()` is truthy, else its value once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())
