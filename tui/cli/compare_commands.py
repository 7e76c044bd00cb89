"""`runctl compare RUN RUN [RUN...] [--json]` (docs/cli.md): runs side by side, as the TUI's
compare screen shows them (tui.judge.compare): one column per run; its state and epoch (or step),
the config keys whose values differ (for the runs of one sweep: its swept values), and the latest
validated value of each metric the runs carry.

Each RUN is this machine's run (id or name), `HOST:RUN`, or a run a host of hosts.toml has
(tui.cli.host_commands.resolve). A host's run is read as the TUI reads it before comparing: its
mirror refreshed from the host, its log copied, its preset copied from there
(tui.runs.remote.Remote.prepared). Every text shown or printed as JSON is cleaned of control
characters (a host's is data).
"""

from __future__ import annotations

import argparse
import json
import math
from typing import TYPE_CHECKING, Any

from tui.cli.host_commands import resolve
from tui.cli.textview import num, say
from tui.errors import RunctlError
from tui.judge.compare import MISSING, Compared, config_diff, metric_rows, sweep_point
from tui.runs.hosts import LOCAL
from tui.runs.ssh import clean

if TYPE_CHECKING:
    from tui.cli.context import Context

CELL = 36  # a column's widest cell (longer text ends in `…`)
KEY = 40  # the key column's widest cell


def load(ctx: Context, spec: str) -> Compared:
    """One RUN argument's run, read whole (a host's: through its host, as the TUI compares it)."""
    host, run = resolve(ctx, spec)
    if host is None:
        m = ctx.store.get(run)
        return Compared(m.run, ctx.store.state(m, resume=False), ctx.run_preset(m), m)
    remote = ctx.remote()
    m, preset, _ = remote.prepared(host, run)
    st = remote.store(host).state(m, resume=False)
    return Compared(f"{host}:{m.run}", st, preset, m, host)


def cmd_compare(ctx: Context, a: argparse.Namespace) -> int:
    """`runctl compare RUN RUN [RUN...] [--json]`."""
    if len(a.runs) < 2:
        raise RunctlError(f"compare needs two runs or more (got {len(a.runs)}): "
                          f"runctl compare RUN RUN [RUN...]")
    runs = [load(ctx, spec) for spec in a.runs]
    data = compare_json(runs)
    say(json.dumps(data) if a.json else render(data))
    return 0


def _text(value: Any) -> str:
    """A string as one cleaned line."""
    return " ".join(clean(str(value)).split())


def _number(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def compare_json(runs: list[Compared]) -> dict[str, Any]:
    """The `--json` object (docs/cli.md, `runctl compare`)."""
    out_runs = []
    for r in runs:
        sweep = sweep_point(r)
        out_runs.append({
            "run": _text(r.run), "host": _text(r.host) if r.host is not None else LOCAL,
            "preset": _text(r.preset.name) if r.preset is not None else None,
            "state": _text(r.state.state), "axis": r.state.axis,
            "at": r.state.epoch, "of": r.max_epochs, "error": _text(r.state.error)
            if r.state.error else None,
            "sweep": {"id": _text(sweep[0]), "index": sweep[1]} if sweep is not None else None,
        })
    return {
        "runs": out_runs,
        "config": [{"key": _text(k), "values": [None if v == MISSING else _text(v) for v in values]}
                   for k, values in config_diff(runs)],
        "metrics": [{"metric": _text(k), "values": [_number(v) for v in values]}
                    for k, values in metric_rows(runs)],
    }


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def render(data: dict[str, Any]) -> str:
    """The text table: one column per run; the runs' state and progress, then the config that
    differs, then the latest metrics."""
    runs = data["runs"]
    rows: list[tuple[str, list[str]] | str] = []  # a row, or a section's title line
    if any(r["host"] != LOCAL for r in runs):
        rows.append(("host", [r["host"] for r in runs]))
    rows.append(("state", [r["state"] for r in runs]))
    axes = {r["axis"] for r in runs}
    label = axes.pop() if len(axes) == 1 else "epoch/step"
    rows.append((label, [(f"{r['axis']} " if label == "epoch/step" else "")
                         + f"{r['at'] or 0}/{r['of'] or '?'}" for r in runs]))
    if any(r["sweep"] for r in runs):
        rows.append(("sweep", [f"{r['sweep']['id']} #{r['sweep']['index']}" if r["sweep"] else "—"
                               for r in runs]))
    if data["config"]:
        rows.append("config (only what differs)")
        rows += [("  " + c["key"], [MISSING if v is None else v for v in c["values"]])
                 for c in data["config"]]
    else:
        rows.append("config: the same")
    if data["metrics"]:
        rows.append("metrics (latest validated epoch)")
        rows += [("  " + m["metric"], [num(v) for v in m["values"]]) for m in data["metrics"]]
    else:
        rows.append("metrics: none validated yet")
    cells = [(_fit(k, KEY), [_fit(v, CELL) for v in vs]) for k, vs in
             (row for row in rows if isinstance(row, tuple))]
    heads = [_fit(r["run"], CELL) for r in runs]
    key_w = max([len(k) for k, _ in cells] + [3])
    widths = [max([len(h)] + [len(vs[i]) for _, vs in cells]) for i, h in enumerate(heads)]

    def line(key: str, values: list[str]) -> str:
        return "  ".join([key.ljust(key_w), *(v.ljust(w) for v, w in zip(values, widths,
                                                                          strict=True))]).rstrip()

    out = [line("run", heads)]
    it = iter(cells)
    for row in rows:
        out.append(line(*next(it)) if isinstance(row, tuple) else row)
    return "\n".join(out)
