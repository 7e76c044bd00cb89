"""The preset and baseline-table subcommands: `runctl presets ...` and `runctl baseline RUN`."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tui.cli.textview import say
from tui.errors import RunctlError, write_error

if TYPE_CHECKING:
    from tui.cli.context import Context

MAX_RECEIVE = 4 << 20  # `presets receive` reads at most this much of stdin
_FILE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.toml$")


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
    if a.pcmd == "export":
        return _export(ctx, a.name)
    if a.pcmd == "receive":
        return _receive(ctx, a)
    path = derive(reg, a.name, a.sets, a.envs, a.new_name)
    say(f"wrote {path}")
    return 0


def _export(ctx: Context, name: str) -> int:
    """`presets export NAME`: the preset's file, those of its `extends` chain and
    baselines.toml as one JSON object (`{preset, files: {FILE: text}}`): what another host's
    runctl copies to judge this host's run of it as this host does."""
    from tui.presets.baselines import BASELINES_FILE

    reg = ctx.registry
    p = reg.get(name)
    files = {f"{n}.toml": reg.path(n).read_text(encoding="utf-8") for n in p.chain}
    base = reg.directory / BASELINES_FILE
    if base.is_file():
        files[BASELINES_FILE] = base.read_text(encoding="utf-8")
    say(json.dumps({"preset": p.name, "files": files}))
    return 0


def _receive(ctx: Context, a: argparse.Namespace) -> int:
    """`presets receive`: preset files sent by `runctl launch --send` from another host (a JSON
    `{files: {NAME.toml: text}}` on stdin), written into the presets folder (`--presets`, else
    ./presets, created). A file already there with the same text is left; one with other text
    is refused (one line, nothing written); the files written are checked, and removed again
    when one is wrong. Prints `{written, same, dir}`."""
    from tui.presets.baselines import BASELINES_FILE
    from tui.presets.registry import PresetRegistry
    from tui.presets.schema import atomic_write

    try:
        data = json.loads(sys.stdin.buffer.read(MAX_RECEIVE + 1)[:MAX_RECEIVE] or b"{}")
    except ValueError as e:
        raise RunctlError(f"presets receive: stdin is not JSON ({e})") from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict) or not files:
        raise RunctlError("presets receive: give {\"files\": {\"NAME.toml\": \"...\"}} on stdin")
    folder = Path(a.presets) if getattr(a, "presets", None) else Path.cwd() / "presets"
    same, new = [], []
    for fname, text in files.items():
        if (not isinstance(fname, str) or not _FILE.match(fname) or fname == BASELINES_FILE
                or not isinstance(text, str)):
            raise RunctlError(f"presets receive: {str(fname)[:60]!r} is not a preset file name "
                              f"(NAME.toml)")
        path = folder / fname
        if path.is_file():
            if path.read_text(encoding="utf-8") != text:
                raise RunctlError(f"{path} exists here with other content; rename the preset, or "
                                  f"remove or update it here")
            same.append(fname)
        else:
            new.append(fname)
    written: list[Path] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for fname in new:
            atomic_write(folder / fname, files[fname], overwrite=False)
            written.append(folder / fname)
        reg = PresetRegistry(folder)
        for path in written:
            errors = [p for p in reg.check_file(path) if not p.startswith("warning: ")]
            if errors:
                raise RunctlError(errors[0])
    except (OSError, RunctlError) as e:
        for path in written:
            path.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise write_error(folder, e) from None
        raise
    say(json.dumps({"written": new, "same": same, "dir": str(folder.resolve())}))
    return 0


def cmd_baseline(ctx: Context, a: argparse.Namespace) -> int:
    """`runctl baseline RUN`: a finished run becomes a row of the baseline table (`HOST:RUN`:
    of the host's baselines.toml, where its runs are judged)."""
    from tui.cli.host_commands import baseline, resolve
    from tui.judge.conditions import summary_metrics
    from tui.presets.baselines import BASELINES_FILE, add_baseline

    host, run = resolve(ctx, a.run)
    if host is not None:
        return baseline(ctx, a, host, run)
    m = ctx.store.get(run)
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
