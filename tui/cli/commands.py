"""The `runctl` subcommands (parsed by tui.cli.main); each returns an exit status."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from tui.cli import host_commands
from tui.cli.compare_commands import cmd_compare
from tui.cli.context import Context
from tui.cli.follow import follow_run
from tui.cli.metrics_commands import cmd_metrics
from tui.cli.notify_commands import cmd_notify, wake
from tui.cli.preset_commands import cmd_baseline, cmd_presets
from tui.cli.queue_commands import cmd_queue, enqueue, wake_runner
from tui.cli.sweep_commands import cmd_sweep
from tui.cli.textview import clock, num, render_status, say
from tui.errors import RunctlError, write_error
from tui.runs.hosts import LOCAL
from tui.runs.launcher import GpusBusy
from tui.runs.store import DAMAGED, TERMINAL, Manifest, RunStore
from tui.runs.sweeps import wake_sweeps
from tui.runs.tail import RunTail
from tui.state.run import RunState

WATCH_EVERY_S = 2.0
SERVE_HOST, SERVE_PORT = "localhost", 8000  # `runctl tui --serve` defaults (textual-serve's)


# ---------------------------------------------------------------------------------- launch
def cmd_launch(ctx: Context, a: argparse.Namespace) -> int:
    """`runctl launch` (`--queue`: wait in the queue when the GPUs are taken; `--host`: on a
    host of hosts.toml, by its runctl)."""
    if getattr(a, "host", None):
        return host_commands.launch(ctx, a)
    if getattr(a, "send", False):
        raise RunctlError("--send goes with --host HOST: the preset is sent to that host")
    for w in ctx.registry.get(a.preset).warnings:  # said, not refused (a script's own metric name)
        print(f"runctl: warning: {w}", file=sys.stderr)
    try:
        m = ctx.launcher().launch(a.preset, a.sets, a.envs, name=a.name, autopilot=a.autopilot,
                                  presets_dir=ctx.presets_dir, backend=getattr(a, "backend", None))
    except GpusBusy as e:
        if not getattr(a, "queue", False):
            raise RunctlError(f"{e} (runctl launch {a.preset} --queue)") from None
        if a.autopilot:
            raise RunctlError("--queue with --autopilot: queue the run, then start the autopilot "
                              "once it runs") from None
        item = enqueue(ctx, a.preset, a.sets, a.envs, a.name)
        if a.json:
            say(json.dumps({"queued": item.id, "preset": item.preset, "gpus": item.gpus}))
        else:
            say(f"{e}\nqueued {item.id}: {item.preset} starts when {item.gpus} GPU(s) are free "
                f"(runctl queue)")
        return 0
    _started(m, a.json, "launched")
    return follow(ctx, m) if a.follow else 0


def cmd_resume(ctx: Context, a: argparse.Namespace) -> int:
    """`runctl resume` (a damaged checkpoint passed over is said in one line on stderr)."""
    host, run = host_commands.resolve(ctx, a.run)
    if host is not None:
        return host_commands.resume(ctx, a, host, run)
    m = ctx.launcher().resume(run, say=lambda text: print(f"runctl: {text}", file=sys.stderr, flush=True))
    _started(m, a.json, "resumed")
    return follow(ctx, m) if a.follow else 0


def _started(m: Manifest, as_json: bool, what: str) -> None:
    if as_json:
        out: dict[str, Any] = {"run": m.run, "pid": m.pid, "log": m.log}
        say(json.dumps(out | RunStore.backend(m).started_json(m)))
    else:
        say(f"{what} {m.run} ({RunStore.backend(m).where(m)})\n  log {m.log}\n  follow: runctl status {m.run} --watch")
        if m.autopilot:
            say(f"  autopilot: up to {m.autopilot['steps']} next run(s), "
                f"supervisor pid {m.autopilot['supervisor']['pid']}")


def follow(ctx: Context, m: Manifest, interval: float = 1.0) -> int:
    """Print the run's progress until its process ends; 0 only if it finished."""
    preset = ctx.run_preset(m)
    return follow_run(ctx.store, m, lambda st: ctx.judge(preset, st), say,
                      preset.default_horizon if preset is not None else 20, interval, preset=preset)


# ------------------------------------------------------------------------------ kill / runs
def cmd_kill(ctx: Context, a: argparse.Namespace) -> int:
    """`runctl kill`."""
    if a.grace < 0:
        raise RunctlError(f"--grace {a.grace:g}: must be >= 0")
    host, run = host_commands.resolve(ctx, a.run)
    if host is not None:
        return host_commands.kill(ctx, host, run, a.grace)
    summary = ctx.launcher().kill(run, a.grace, say=say)
    say(f"killed: {summary}")
    return 0


def run_row(ctx: Context, m: Manifest) -> dict[str, Any]:
    """One `runs --json` object (`job_id`, `slurm_state`: what the run's scheduler says)."""
    st, numbers = ctx.store.listing(m)
    job = ctx.store.backend(m).scheduled(m, ctx.store.jobs, ctx.store.job_errors)
    return {
        "run": m.run, "name": m.name, "state": st.state, "pid": m.pid, "log": m.log,
        "damaged": damaged_json(ctx, m), "log_event": st.log_event,
        "preset": m.preset, "epoch": st.epoch, "max_epochs": st.max_epochs,
        **numbers,  # sharpe, val_loss, ic_h1, ic_h20, scale_min
        "started_at": m.created_at, "error": st.error, "parent": m.parent,
        "stalled_since": st.stalled_since, "sweep": m.sweep,  # issue 20
        "children": list(m.children), "autopilot": bool(m.autopilot),
        "backend": m.backend, "job_id": job.job_id if job is not None else None, "gpus": list(m.gpus),
        "slurm_state": job.state if job is not None else None,
        "host": LOCAL,  # issue 19: a host's runs carry its name (`runctl runs` across hosts)
    }


def damaged_json(ctx: Context, m: Manifest | None) -> dict[str, Any] | None:
    """A run whose manifest cannot be read: the file and why (None: not damaged)."""
    if m is None or m.damaged is None:
        return None
    return {"file": str(ctx.store.manifest_path(m.run)), "reason": m.damaged}


def cmd_runs(ctx: Context, a: argparse.Namespace) -> int:
    """`runctl runs` (and every host's of hosts.toml, asked in parallel: a host that does not
    answer is one line; `--host NAME`: that host's only, `local`: this machine's)."""
    host = getattr(a, "host", None)
    runs = ctx.store.runs() if host in (None, LOCAL) else []
    listed = [(run_row(ctx, m), ctx.store.backend(m).label(m)) for m in runs]
    far, down, with_hosts = host_commands.runs(ctx, host)
    mine = {m.log for m in runs}  # a host that is this machine (one hosts file in a shared home)
    far = [r for r in far if r.get("log") not in mine]  # lists its runs once, as this machine's
    if far:
        listed += [(r, f"job {r['job_id']}" if r.get("job_id") else None) for r in far]
        listed.sort(key=lambda x: x[0].get("started_at") or 0, reverse=True)
    rows = [r for r, _ in listed]
    if a.json:
        say(json.dumps(rows))
        for line in down:
            print(f"runctl: {line}", file=sys.stderr, flush=True)
        return 0
    if not rows:
        say(f"no runs in {ctx.store.training_dir}"
            + (" or on its hosts" if with_hosts and host is None else ""))
    else:
        say(("host     " if with_hosts else "")
            + f"{'run':<36} {'state':<12} {'pid':>8} {'epoch':>7} {'sharpe':>8}  started")
    for r, label in listed:
        ep = f"{r['epoch'] or 0}/{r['max_epochs'] or '?'}"
        where = label or r["pid"] or "—"
        say((f"{r['host']:<8} " if with_hosts else "") + f"{r['run']:<36} {r['state']:<12} "
            f"{where:>8} {ep:>7} {num(r['sharpe']):>8}  {clock(r['started_at'])}")
    for line in down:
        say(line)
    return 0


# --------------------------------------------------------------------------- status / report
def _pick(ctx: Context, a: argparse.Namespace) -> tuple[Manifest | None, Path]:
    """The manifest (if any) and the log path of RUN, of --log FILE, or of the newest run."""
    if a.log is not None:
        if a.run is not None:
            raise RunctlError("give a RUN or --log FILE, not both")
        if not a.log.is_file():
            raise RunctlError(f"log file not found: {a.log}")
        return ctx.store.for_log(a.log), a.log
    if a.run is None:
        runs = ctx.store.runs()
        if not runs:
            raise RunctlError(f"no runs in {ctx.store.training_dir}; start one with "
                              f"`runctl launch PRESET` or read a log with --log FILE")
        m = runs[0]
    else:
        m = ctx.store.get(a.run)
    return m, ctx.store.log_path(m.run)


def _target(ctx: Context, a: argparse.Namespace) -> tuple[Manifest | None, Path, RunState]:
    """The manifest (if any), the log path and its state (liveness applied when managed)."""
    m, log = _pick(ctx, a)
    tail = RunTail(ctx.store, log, m)
    try:
        return tail.manifest, log, tail.poll()
    finally:
        tail.close()


def _preset_for(ctx: Context, a: argparse.Namespace, m: Manifest | None) -> Any:
    if a.preset_name:
        return ctx.registry.get(a.preset_name)  # named explicitly: unknown is an error
    return ctx.run_preset(m)


def status_json(ctx: Context, m: Manifest | None, log: Path, st: RunState, preset: Any) -> dict[str, Any]:
    """RunState.to_json() plus preset, log, verdicts, process and manifest (docs/cli.md)."""
    v = ctx.judge(preset, st) or {}
    out = st.to_json()
    if preset is not None:  # the run's budget: the log's, else its preset's (after --set)
        out["max_epochs"] = out["max_epochs"] or preset.max_epochs
        out["max_steps"] = out["max_steps"] or preset.max_steps
    out.update({
        "preset": preset.name if preset is not None else (m.preset if m else None),
        "log": str(log),
        "baseline": v.get("baseline"), "criteria": v.get("criteria", []),
        "checkpoints": v.get("checkpoints", []), "recommendation": v.get("recommendation"),
        "table": v.get("table", []), "variance_collapse": v.get("variance_collapse"),
        "process": process_json(m),
        "slurm": slurm_json(ctx, m),
        "manifest": m.to_json() if m is not None else None,
        "damaged": damaged_json(ctx, m),
        "resume": resume_json(m, st),
    })
    return out


def resume_json(m: Manifest | None, st: RunState) -> dict[str, Any] | None:
    """What a resume of this run continues from (`from`), or why it would not help (`blocked`),
    and what the latest resume did (`last`: its checkpoint and note). None without a manifest."""
    if m is None:
        return None
    last = next((h for h in reversed(m.history) if h.get("event") == "resume"), None)
    return {"from": st.resume_from, "blocked": st.resume_blocked,
            "last": {"at": last.get("at"), "ckpt": last.get("ckpt"), "note": last.get("note")}
            if last is not None else None}


def process_json(m: Manifest | None) -> dict[str, Any] | None:
    """The run's process on this machine: CPU, RSS, uptime... (None: no manifest, or it runs
    elsewhere: a Slurm job)."""
    return RunStore.backend(m).process(m) if m is not None else None


def slurm_json(ctx: Context, m: Manifest | None) -> dict[str, Any] | None:
    """What the run's scheduler says (a Slurm job: id, state, node, pending reason, elapsed, time
    limit, restarts; state `unknown` when it did not answer); None: it has none."""
    if m is None:
        return None
    job = ctx.store.backend(m).scheduled(m, ctx.store.jobs, ctx.store.job_errors)
    return job.fields if job is not None else None


def cmd_status(ctx: Context, a: argparse.Namespace) -> int:
    """`runctl status`; with --watch the log is followed incrementally until the run ends
    (`HOST:RUN`: the host's runctl's status)."""
    if a.run is not None and a.log is None:
        host, a.run = host_commands.resolve(ctx, a.run)
        if host is not None:
            return host_commands.status(ctx, a, host, a.run)
    m, log = _pick(ctx, a)
    preset = _preset_for(ctx, a, m)
    tail = RunTail(ctx.store, log, m)
    try:
        while True:
            st = tail.poll()
            m = tail.manifest
            if a.json:
                say(json.dumps(status_json(ctx, m, log, st, preset), allow_nan=False))
            else:  # judged once, and no JSON of the whole timeline only to read three keys of it
                if a.watch and sys.stdout.isatty():
                    sys.stdout.write("\x1b[H\x1b[2J")
                say(render_status(st, m.to_json() if m is not None else None, ctx.judge(preset, st),
                                  preset, process_json(m), str(log), slurm_json(ctx, m),
                                  a.epochs, reading=tail.follower.reading).rstrip("\n"))
            ended = (st.state in TERMINAL or (m is None and st.exit_reason is not None)
                     or (st.state == DAMAGED and not tail.alive))
            if not a.watch or ended:
                return 0
            time.sleep(WATCH_EVERY_S)
    finally:
        tail.close()


def cmd_report(ctx: Context, a: argparse.Namespace) -> int:
    """`runctl report` (`HOST:RUN`: the host's runctl's report, written here)."""
    from tui.judge.evaluate import evaluate
    from tui.judge.report import render_report

    host = None
    if a.run is not None and a.log is None:
        host, a.run = host_commands.resolve(ctx, a.run)
    if host is not None:
        text = host_commands.report(ctx, a, host, a.run)
    else:
        m, log, st = _target(ctx, a)
        preset = _preset_for(ctx, a, m)
        if preset is None:
            raise RunctlError(f"no preset known for {log}; name one with --preset NAME")
        verdicts = evaluate(preset, st, ctx.baselines())
        base = verdicts.baseline
        base_preset = ctx.preset(base.preset) if base is not None else None
        manifest = m.to_json() if m is not None else {"log": str(log)}
        text = render_report(preset, st, verdicts, manifest, baselines=ctx.baselines(),
                             baseline_preset=base_preset)
    if a.output is None:
        sys.stdout.write(text)
    else:
        write_text_atomic(a.output, text)
        say(f"wrote {a.output}")
    return 0


def write_text_atomic(path: Path, text: str) -> None:
    """Write a file whole or not at all (temp file + rename); a failure is one line naming it."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise write_error(path, e) from None


# -------------------------------------------------------------------------------------- tui
def cmd_tui(ctx: Context, a: argparse.Namespace) -> int:
    """`runctl tui` / bare `runctl`: the Textual app."""
    try:
        from tui.app.app import run_app
    except ImportError as e:
        raise RunctlError(f"the TUI is not available ({e}); use `runctl status --watch`") from None
    run, log, launch = getattr(a, "run", None), getattr(a, "log", None), getattr(a, "launch", None)
    if log is not None and not Path(log).is_file():
        raise RunctlError(f"log file not found: {log}")
    if run is not None:
        host, run = host_commands.resolve(ctx, run)
        run = f"{host}:{run}" if host is not None else ctx.store.get(run).run
    serve = bool(getattr(a, "serve", False))
    host, port = getattr(a, "host", None), getattr(a, "port", None)
    if not serve and (host is not None or port is not None):
        raise RunctlError("--host and --port need --serve")
    if port is not None and not 0 < port < 65536:
        raise RunctlError(f"--port {port}: must be 1..65535")
    readonly = bool(getattr(a, "readonly", False))
    if readonly and launch is not None:
        raise RunctlError("--launch and --readonly exclude each other")
    return int(run_app(ctx.store.logs_dir, ctx.presets_dir, run, log, launch, serve=serve,
                       host=host or SERVE_HOST, port=port or SERVE_PORT, readonly=readonly) or 0)


COMMANDS = {"launch": cmd_launch, "resume": cmd_resume, "kill": cmd_kill, "runs": cmd_runs,
            "status": cmd_status, "report": cmd_report, "presets": cmd_presets, "tui": cmd_tui,
            "baseline": cmd_baseline, "queue": cmd_queue, "metrics": cmd_metrics,
            "notify": cmd_notify, "sweep": cmd_sweep, "log": host_commands.cmd_log, "compare": cmd_compare}


def dispatch(a: argparse.Namespace) -> int:
    """Run the parsed command (no command: the TUI); restart the queue runner if it died."""
    ctx = Context(a)
    wake_runner(ctx)
    wake(ctx, a)  # issue 20: notification settings checked before a start; the watcher kept alive
    wake_sweeps(ctx.store)  # an unfinished sweep's driver that died is started again
    return COMMANDS[a.cmd or "tui"](ctx, a)
