"""The preset and baseline-table subcommands: `runctl presets ...` and `runctl baseline RUN`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from tui.cli.textview import say
from tui.errors import RunctlError, write_error

if TYPE_CHECKING:
    from tui.cli.context import Context


def cmd_presets(ctx: Context, a: argparse.Namespace) -> int:
    """`runctl presets list | show | check | derive`."""
    from tui.presets.preset import value_text
    from tui.presets.registry import derive

    reg = ctx.registry
    if a.pcmd == "list":
        for name in reg.names():
            try:
                p = reg.get(name)
                desc, ep = p.description.splitlines()[0] if p.description else "", p.max_epochs
            except RunctlError as e:
                desc, ep = f"(invalid: {e})", None
            say(f"{name:<16} {str(ep or '?') + ' ep':>6}  {desc[:90]}")
        return 0
    if a.pcmd == "show":
        p = reg.get(a.name)
        say(f"{p.name}  ({' -> '.join(p.chain)})  {p.path}\n{p.description}\n")
        say(f"max_epochs {p.max_epochs}  data_path {p.data_path or '(default synthetic market)'}")
        for k, v in p.env.items():
            say(f"env       {k}={v}")
        for k, v in p.overrides.items():
            say(f"override  {k}={value_text(v)}")
        say(f"{'engine' if p.is_engine else 'command':<9} {p.command_text()}")
        if p.resume_args:
            say(f"resume    + {' '.join(p.resume_args)}")
        if not p.is_engine:
            say(f"log       {p.log_format}" + (f", metrics {p.metrics_csv}" if p.metrics_csv else ""))
        for c in p.criteria:
            say(f"criterion {c.label}")
        for cp in p.checkpoints:
            say(f"checkpoint {cp.title} ({cp.where}): "
                + "; ".join(f"{r.verdict}" + (f" if {', '.join(c.describe() for c in r.when)}"
                                              if r.when else "") for r in cp.rules))
        for verdict, act in p.next.items():
            say(f"next      {verdict} -> {act.preset or '(no launch)'}: {act.why}")
        if p.stall_after is not None:
            say(f"stall     {'never' if p.stall_after == 0 else f'after {p.stall_after:g}s without output'}")
        if p.notify:
            from tui.runs.notify import dest_name

            on = ", ".join(p.notify.get("on") or ["notify.toml's events"])
            to = ", ".join(dest_name(u) for u in p.notify.get("urls", ())) or "notify.toml's URLs"
            say(f"notify    {on} -> {to}")
        return 0
    if a.pcmd == "check":
        bad = 0
        for f in a.files:
            problems = reg.check_file(f)
            errors = [p for p in problems if not p.startswith("warning: ")]
            bad += bool(errors)
            for line in problems if problems else [f"{f}: ok"]:
                say(line)
            if problems and not errors:
                say(f"{f}: ok")
        return 2 if bad else 0
    path = derive(reg, a.name, a.sets, a.envs, a.new_name)
    say(f"wrote {path}")
    return 0


def cmd_baseline(ctx: Context, a: argparse.Namespace) -> int:
    """`runctl baseline RUN`: a finished run becomes a row of the baseline table."""
    from tui.judge.conditions import summary_metrics
    from tui.presets.baselines import BASELINES_FILE, add_baseline

    m = ctx.store.get(a.run)
    st = ctx.store.state(m)
    if st.state != "finished":
        raise RunctlError(f"run {m.run} is {st.state}; only a finished run can become a baseline")
    metrics = summary_metrics(st)
    if not metrics:
        raise RunctlError(f"run {m.run} has no validated epoch to record")
    path = ctx.presets_dir / BASELINES_FILE
    name = a.as_name or m.run
    preset = ctx.preset(m.preset)
    config = preset.description if preset is not None else (m.preset or "")
    try:
        add_baseline(path, name, config, metrics, status=a.status, preset=m.preset)
    except OSError as e:  # the table is written whole or not at all (atomic_write)
        raise write_error(path, e) from None
    say(f"added baseline {name!r} to {path}")
    return 0
