"""`runctl sweep PRESET` (queue a preset's [sweep] points) and `runctl sweep status NAME` (rank them)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from tui.cli.textview import num, say
from tui.errors import RunctlError

if TYPE_CHECKING:
    from tui.cli.context import Context


def cmd_sweep(ctx: Context, a: argparse.Namespace) -> int:
    """`runctl sweep PRESET [--name N] [--backend B] [--parallel N]` | `runctl sweep status NAME`."""
    from tui.runs.hosts import LOCAL, split_target
    from tui.runs.sweeps import load, rank, start_sweep

    if a.target == "status":
        if not a.sweep_name:
            raise RunctlError("sweep status: name the sweep (its id, or its name for the newest)")
        host, name = split_target(a.sweep_name)
        if host is not None and host != LOCAL:
            data = ctx.remote().sweep_status(host, name)
            if a.json:
                say(json.dumps(data, allow_nan=False, default=_json_safe))
            else:
                _text(_Far(data), data["points"])
            return 0
        sweep = load(ctx.store, name)
        rows = rank(ctx.store, sweep)
        if a.json:
            say(json.dumps({"sweep": sweep.id, "preset": sweep.preset, "method": sweep.method,
                            "objective": sweep.metric, "direction": sweep.direction, "size": sweep.size,
                            "done": sweep.done_at is not None, "best": sweep.best, "points": rows},
                           allow_nan=False, default=_json_safe))
            return 0
        _text(sweep, rows)
        return 0
    if a.sweep_name:
        raise RunctlError(f"sweep {a.target} {a.sweep_name}: one preset at a time (`runctl sweep status "
                          f"NAME` ranks a sweep)")
    if getattr(a, "host", None):
        started = ctx.remote().sweep(a.host, a.target, name=a.name, backend=a.backend, parallel=a.parallel,
                                     send=ctx.registry if a.send else None,
                                     say=lambda t: print(f"runctl: {t}", file=sys.stderr))
        if a.json:
            say(json.dumps(started))
        else:
            say(f"sweep {started['host']}:{started['sweep']}: {started.get('points')} run(s) queued on "
                f"{started['host']}\n  status: runctl sweep status {started['host']}:{started['sweep']}")
        return 0
    if getattr(a, "send", False):
        raise RunctlError("--send goes with --host HOST: the preset is sent to that host")
    sweep = start_sweep(ctx.store, ctx.launcher(), a.target, ctx.presets_dir, name=a.name,
                        backend=a.backend, parallel=a.parallel, say=lambda _t: None)
    if a.json:
        say(json.dumps({"sweep": sweep.id, "points": len(sweep.points),
                        "items": [p.item for p in sweep.points], "objective": sweep.metric,
                        "direction": sweep.direction, "parallel": sweep.parallel}))
    else:
        say(f"sweep {sweep.id}: {len(sweep.points)} run(s) queued"
            + (f" ({sweep.size} trials in all)" if sweep.method == "optuna" else "")
            + (f", {sweep.parallel} at a time" if sweep.parallel else "")
            + f"; objective {sweep.metric} ({sweep.direction})\n  status: runctl sweep status {sweep.id}")
    return 0


class _Far:
    """A host's sweep status, as `_text` reads a local sweep."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.id = f"{data['host']}:{data.get('sweep')}"
        self.preset, self.method = data.get("preset"), data.get("method")
        self.metric, self.direction = data.get("objective"), data.get("direction")
        self.done_at = 1.0 if data.get("done") else None


def _json_safe(x: Any) -> Any:
    return None if isinstance(x, float) else str(x)


def _text(sweep: Any, rows: list[dict[str, Any]]) -> None:
    keys = list(dict.fromkeys(k for r in rows for k in r["values"]))
    done = "done" if sweep.done_at is not None else "running"
    say(f"sweep {sweep.id}  preset {sweep.preset}  {sweep.method}  {done}  "
        f"objective {sweep.metric} ({sweep.direction})")
    width = {k: max(len(k), *(len(str(r["values"].get(k, ""))) for r in rows)) for k in keys}
    say(f"  {'rank':>4} {'#':>3} {sweep.metric:>12} {'state':<10} {'run':<34}"
        + "".join(f" {k:>{width[k]}}" for k in keys))
    for r in rows:
        rk = str(r["rank"]) if r["rank"] is not None else "—"
        say(f"  {rk:>4} {r['index']:>3} {num(r['objective']):>12} {r['state']:<10} {str(r['run'] or '—'):<34}"
            + "".join(f" {str(r['values'].get(k, '')):>{width[k]}}" for k in keys)
            + (f"  ({r['note']})" if r["note"] else ""))
