"""`launch/resume --follow`: print one run's progress until its process ends."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tui.cli.textview import ProgressPrinter, Say
from tui.runs.store import Manifest, RunStore
from tui.runs.tail import RunTail
from tui.state.run import RunState


def follow_run(
    store: RunStore, m: Manifest, judge: Callable[[RunState], dict[str, Any] | None], say: Say,
    horizon: int = 20, interval: float = 1.0, sleep: Callable[[float], None] = time.sleep,
    preset: Any = None,
) -> int:
    """Print the run's progress until its process ends; 0 only if it finished."""
    printer = ProgressPrinter(say, horizon, preset=preset)
    tail = RunTail(store, store.log_path(m.run), m)
    try:
        while True:
            st = tail.poll()
            v = judge(st)
            printer.update(st, v)
            if not tail.alive:
                printer.end(st, v)
                return 0 if st.state == "finished" else 1
            sleep(interval)
    finally:
        tail.close()
