"""The cyclic garbage collector paused while a long read builds its events (tui.log.tail for a log,
tui.log.sources.tensorboard for an event file)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused(pause: bool = True) -> Iterator[None]:
    """No cyclic garbage collection inside (when `pause`): reading a long log builds a state of
    millions of objects, none of them in a cycle, and each collection on the way walks the young
    ones again (a third to a half of an attach to a log of 85,000 epochs, bench/bench_attach.py).
    After it, what was built goes straight to the oldest generation (`gc.freeze()` then
    `gc.unfreeze()`: a move, not a walk; skipped if something else froze objects), where a later
    full collection sees it as it would have anyway. The collector is process-wide: another
    thread's allocations wait for it too, for one read."""
    was = pause and gc.isenabled()
    if was:
        gc.disable()
    try:
        yield
    finally:
        if was:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()
