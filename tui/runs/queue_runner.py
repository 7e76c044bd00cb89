"""`python -m tui.runs.queue_runner --logs DIR`: start the queue's items as their GPUs free up.

One runner per logs folder (tui.runs.queue.RunQueue.ensure_runner starts it; its identity is in
`training/queue_runner.json`). Each poll, under the controller lock, the head item is launched
like `runctl launch` would (re-validated: a preset that became invalid fails the item, with the
reason, and the next one is tried) when the GPUs it needs are free; items start strictly in order,
so a big item at the head is never overtaken (only a sweep's point that waits for its own sweep's
`parallel` steps aside: the items behind it are not the sweep's to hold). An item never fails for what passes: GPUs that are
taken, its run name held by a live run, a full disk; it waits, and says what for (`waiting_for`).
The runner ends when the queue is empty, dropping its record under the lock, so a concurrent
`queue add` always finds a runner or starts one.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from tui.errors import DiskFull, RunctlError
from tui.runs import procs
from tui.runs.launcher import GpusBusy, Launcher, NameBusy
from tui.runs.lock import LockTimeout
from tui.runs.queue import QueueItem, RunQueue
from tui.runs.store import RunStore

POLL_S = 1.0


def start_head(queue: RunQueue, launcher_for: Callable[[QueueItem], Launcher],
               say: Callable[[str], None] = print) -> str:
    """One step: 'empty', 'waiting' (the head's GPUs are taken), 'started' or 'failed'."""
    with queue.lock("queue runner"):
        q = queue.load()
        if not q.waiting:
            return "empty"
        head = None
        for item in q.waiting:  # a point held back by its own sweep's `parallel` lets the rest go
            busy = sweep_busy(queue.store, item)
            if busy is None:
                head = item
                break
            queue.waiting_for(item, busy)
        if head is None:
            return "waiting"
        try:
            launcher = launcher_for(head)
            point = {k: v for k, v in (head.sweep or {}).items() if k != "parallel"} or None
            m = launcher.launch(head.preset, head.sets, head.envs, name=head.name, parent=head.parent,
                                presets_dir=Path(head.presets_dir), backend=head.backend, sweep=point)
        except (GpusBusy, NameBusy, DiskFull, LockTimeout) as e:  # passes: the item waits for it
            queue.waiting_for(head, str(e))
            return "waiting"
        except RunctlError as e:
            queue.mark(head, error=str(e))
            say(f"{head.id} {head.preset}: cannot start: {e}")
            return "failed"
        if head.autopilot is not None:
            launcher.store.save(replace(m, autopilot=head.autopilot))
        queue.mark(head, run=m.run)
        say(f"{head.id} {head.preset}: started {m.run} (pid {m.pid}, GPUs {list(m.gpus) or 'none'})")
        return "started"


def sweep_busy(store: RunStore, item: QueueItem) -> str | None:
    """Why a sweep's point must wait for its sweep's runs (its `parallel`), else None."""
    sweep = item.sweep or {}
    limit = sweep.get("parallel")
    if not limit:
        return None
    live = [m.run for m in store.runs() if (m.sweep or {}).get("id") == sweep.get("id") and store.is_running(m)]
    if len(live) < int(limit):
        return None
    return f"{len(live)} run(s) of sweep {sweep.get('id')} running, parallel = {limit}"


def run(queue: RunQueue, launcher_for: Callable[[QueueItem], Launcher], poll_s: float = POLL_S,
        sleep: Callable[[float], None] = time.sleep, say: Callable[[str], None] = print) -> int:
    """Start items until the queue is empty."""
    me = procs.identify(os.getpid())
    while True:
        outcome = start_head(queue, launcher_for, say)
        if outcome in ("started", "failed"):
            continue  # the next item may fit at once
        if outcome == "empty":
            with queue.lock("queue runner"):
                if not queue.load().waiting:  # nothing was added meanwhile
                    if me is not None:
                        queue.forget_runner(me)
                    return 0
            continue
        sleep(poll_s)


def main(argv: list[str] | None = None) -> int:
    """The runner process."""
    from tui.presets.registry import PresetRegistry

    p = argparse.ArgumentParser(prog="python -m tui.runs.queue_runner")
    p.add_argument("--logs", type=Path, required=True)
    a = p.parse_args(argv)
    store = RunStore(a.logs)
    registries: dict[str, Any] = {}

    def launcher_for(item: QueueItem) -> Launcher:
        reg = registries.setdefault(item.presets_dir, PresetRegistry(item.presets_dir))
        return Launcher(store, reg)

    def say(text: str) -> None:
        print(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {text}", flush=True)

    try:
        return run(RunQueue(store), launcher_for, say=say)
    except RunctlError as e:
        say(f"queue runner: {e}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
