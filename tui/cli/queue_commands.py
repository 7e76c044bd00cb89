"""`runctl queue [add PRESET ... | rm ITEM]` and `runctl launch --queue` (docs/cli.md)."""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any

from tui.cli.textview import clock, say
from tui.errors import RunctlError
from tui.runs.gpus import box_gpus, held
from tui.runs.queue import QueueItem, RunQueue, gpus_needed

if TYPE_CHECKING:
    from tui.cli.context import Context


def enqueue(ctx: Context, preset: str, sets: list[str], envs: list[str], name: str | None) -> QueueItem:
    """Validate exactly like a launch (nothing queued on an error), then queue and wake the runner."""
    need = gpus_needed(ctx.launcher(), preset, sets, envs, name)
    queue = RunQueue(ctx.store)
    item = queue.add(preset, ctx.presets_dir, sets, envs, name=name, gpus=need)
    queue.ensure_runner()
    return item


def _item_json(item: QueueItem, position: int | None) -> dict[str, Any]:
    return {**item.to_json(), "position": position}


def cmd_queue(ctx: Context, a: argparse.Namespace) -> int:
    """`runctl queue` (list), `queue add`, `queue rm`."""
    queue = RunQueue(ctx.store)
    if a.qcmd == "add":
        item = enqueue(ctx, a.preset, a.sets, a.envs, a.name)
        pos = next((n for n, w in enumerate(queue.load().waiting, 1) if w.id == item.id), None)
        if a.json:
            say(json.dumps(_item_json(item, pos)))
        else:
            say(f"queued {item.id}: {item.preset} (waits for {item.gpus} GPU(s))"
                + (f", position {pos}" if pos else ""))
        return 0
    if a.qcmd == "rm":
        item = queue.remove(a.item)
        say(f"removed {item.id} ({item.preset}) from the queue")
        return 0
    q = queue.load()
    box = box_gpus()
    taken = held(ctx.store)
    free = [g for g in box if g not in taken]
    if a.json:
        say(json.dumps({
            "waiting": [_item_json(i, n) for n, i in enumerate(q.waiting, 1)],
            "started": [i.to_json() for i in q.started[-10:]],
            "failed": [i.to_json() for i in q.failed[-10:]],
            "gpus": box, "free": free, "held": {str(k): v for k, v in sorted(taken.items())},
            "runner": queue.runner_alive(),
        }))
        return 0
    say(f"GPUs {len(box)}: free {free or 'none'}"
        + "".join(f", {g} held by {r}" for g, r in sorted(taken.items()))
        + f"; runner {'alive' if queue.runner_alive() else 'not running'}")
    if not q.waiting:
        say("the queue is empty")
    else:
        say(f"{'pos':>3} {'item':<6} {'preset':<18} {'name':<18} {'gpus':>4}  waiting since")
        for n, i in enumerate(q.waiting, 1):
            wait = f"{clock(i.added_at)} ({(time.time() - i.added_at) / 60:.0f} min)"
            say(f"{n:>3} {i.id:<6} {i.preset:<18} {(i.name or '—'):<18} {i.gpus:>4}  {wait}")
            if i.waiting_for:
                say(f"      waits: {i.waiting_for}")
    for i in q.started[-5:]:
        say(f"started {i.id} {i.preset} -> {i.run} at {clock(i.started_at)}")
    for i in q.failed[-5:]:
        say(f"failed  {i.id} {i.preset}: {i.error}")
    return 0


def wake_runner(ctx: Context) -> None:
    """Every `runctl` command: restart the queue runner if items wait and none is alive."""
    queue = RunQueue(ctx.store)
    if not queue.path.exists():
        return
    try:
        if queue.load().waiting and not queue.runner_alive():
            queue.ensure_runner()
    except RunctlError:
        pass  # a damaged queue file is reported by `runctl queue`, not by every command
