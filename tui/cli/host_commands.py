"""The commands across hosts (docs/cli.md, *Hosts*): `launch --host`, `runs` of every host,
`HOST:RUN` for status / kill / resume / report / baseline, and `runctl log`, which streams a
run's log from a byte offset (what the ssh backend's feed reads on the far side).

A run argument is `HOST:RUN`, `local:RUN` (this machine's, whatever the hosts file says) or a
bare RUN: this machine's when it has it, else the one host that has it (every host asked).
What a host's runctl answers is printed as data: JSON re-encoded, text cleaned of control
characters (tui.runs.ssh.clean).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui.cli.textview import say
from tui.errors import RunctlError
from tui.runs.hosts import ANY, LOCAL, split_target
from tui.runs.store import TERMINAL, UnknownRun

if TYPE_CHECKING:
    from tui.cli.context import Context

LOG_CHUNK = 1 << 20  # `runctl log` copies at most this many bytes per read
LOG_POLL_S = 0.2  # ...and looks for more this often while it follows
ALIVE_EVERY_S = 1.0  # ...asking whether the run still lives this often
TRUNCATED = 3  # `runctl log --from N` exit status: the log is shorter than N bytes
WATCH_EVERY_S = 2.0
_STATE = re.compile(r"\bstate (\S+)")


def _err(text: str) -> None:
    print(f"runctl: {text}", file=sys.stderr, flush=True)


def resolve(ctx: Context, spec: str) -> tuple[str | None, str]:
    """(host or None for this machine, run) of a RUN argument (docstring of the module)."""
    host, run = split_target(spec)
    if host == LOCAL:
        return None, run
    if host is not None:
        ctx.remote().host(host)  # an unknown host: one line naming the file's hosts
        return host, run
    try:
        ctx.store.get(run)
        return None, run
    except UnknownRun:
        if not ctx.remote().hosts:
            raise
    return ctx.remote().find(run), run


# ------------------------------------------------------------------------------------ launch
def launch(ctx: Context, a: argparse.Namespace) -> int:
    """`runctl launch PRESET --host HOST|any [--send]`: the host's runctl launches it."""
    remote = ctx.remote()
    kw: dict[str, Any] = {"sets": a.sets, "envs": a.envs, "name": a.name, "queue": a.queue,
                          "autopilot": a.autopilot, "send": ctx.registry if a.send else None,
                          "say": _err}
    if getattr(a, "backend", None):
        kw["backend"] = a.backend  # the host's runctl starts it there with that backend
    if a.host == ANY:
        if a.queue:
            raise RunctlError("--host any --queue: name the host whose queue the run waits in")
        started, m = remote.launch_any(a.preset, **kw)
    else:
        started, m = remote.launch(a.host, a.preset, **kw)
    host = started["host"]
    if a.json:
        say(json.dumps(started))
    elif "queued" in started:
        say(f"queued {started['queued']} on {host}: {started.get('preset')} starts when "
            f"{started.get('gpus')} GPU(s) are free there (runctl queue on {host})")
    else:
        run = started["run"]
        say(f"launched {host}:{run} (pid {started.get('pid')} on {host})\n"
            f"  log {started.get('log')} (on {host})\n  follow: runctl status {host}:{run} --watch")
    if a.follow and m is not None:
        return follow(ctx, host, m)
    return 0


def follow(ctx: Context, host: str, m: Any) -> int:
    """`--follow` of a run on a host: its log copied here as it grows, judged with the host's
    preset (copied from there), printed as a local run's progress."""
    from tui.cli.follow import follow_run
    from tui.judge.evaluate import evaluate
    from tui.presets.baselines import BASELINES_FILE, load_baselines
    from tui.presets.registry import resolve as resolve_preset

    remote = ctx.remote()
    preset, baselines = None, None
    try:
        registry = remote.presets(host, m.preset)
        preset = resolve_preset(registry.get(m.preset), m.sets, m.envs)
        baselines = load_baselines(Path(registry.directory) / BASELINES_FILE)
    except RunctlError as e:
        _err(f"{host}: judged without its preset ({e})")

    def judge(st: Any) -> dict[str, Any] | None:
        return evaluate(preset, st, baselines).to_json() if preset is not None else None

    return follow_run(remote.store(host), m, judge, say,
                      preset.default_horizon if preset is not None else 20, 1.0, preset=preset)


# -------------------------------------------------------------------------------------- runs
def runs(ctx: Context, host: str | None) -> tuple[list[dict[str, Any]], list[str], bool]:
    """The rows of every host's runs (or `host`'s), the hosts that did not answer (one line
    each), and whether hosts are listed at all (the text's host column)."""
    if host == LOCAL:
        return [], [], True
    remote = ctx.remote()
    if host is None and not remote.hosts:
        return [], [], False
    answers = remote.listing([host] if host is not None else None)
    rows = [r for ans in answers for r in ans.rows]
    return rows, [ans.error for ans in answers if ans.error], True


# --------------------------------------------------------------------- one run on a host
def status(ctx: Context, a: argparse.Namespace, host: str, run: str) -> int:
    """`runctl status HOST:RUN`: the host's runctl's status, as it says it (`--watch`: again
    every 2 s until the run ends; a host that drops meanwhile is said and asked again)."""
    from tui.runs.remote import far

    remote = ctx.remote()
    args = [f"--preset={a.preset_name}"] if a.preset_name else []
    while True:
        try:
            if a.json:
                data = remote.status(host, run, args)
                state = str(data.get("state"))
                say(json.dumps(data))
            else:
                text = remote.text(host, ["status", far(run), f"--epochs={a.epochs}", *args])
                found = _STATE.search(text.split("\n", 1)[0])
                state = found.group(1).lower() if found else "?"
                if a.watch and sys.stdout.isatty():
                    sys.stdout.write("\x1b[H\x1b[2J")
                say(f"host     {host}\n{text.rstrip()}")
        except RunctlError as e:
            if not a.watch:
                raise
            _err(str(e))
            state = "?"
        if not a.watch or state in (*TERMINAL, "damaged"):
            return 0
        time.sleep(WATCH_EVERY_S)


def kill(ctx: Context, host: str, run: str, grace: float) -> int:
    """`runctl kill HOST:RUN`: the host's runctl kills it."""
    say(f"killed: {ctx.remote().kill(host, run, grace, say=say)}")
    return 0


def resume(ctx: Context, a: argparse.Namespace, host: str, run: str) -> int:
    """`runctl resume HOST:RUN`: the host's runctl resumes it (its checks, its checkpoints)."""
    m = ctx.remote().resume(host, run, say=_err)
    far_log = m.backend_data.get("log")
    if a.json:
        say(json.dumps({"run": m.run, "pid": m.pid, "log": far_log, "host": host}))
    else:
        say(f"resumed {host}:{m.run} (pid {m.pid} on {host})\n  log {far_log} (on {host})\n"
            f"  follow: runctl status {host}:{m.run} --watch")
    return follow(ctx, host, m) if a.follow else 0


def report(ctx: Context, a: argparse.Namespace, host: str, run: str) -> str:
    """`runctl report HOST:RUN`: the host's Markdown status page of the run."""
    from tui.runs.remote import far

    args = ["report", far(run)] + ([f"--preset={a.preset_name}"] if a.preset_name else [])
    return ctx.remote().text(host, args)


def baseline(ctx: Context, a: argparse.Namespace, host: str, run: str) -> int:
    """`runctl baseline HOST:RUN`: the row goes to the host's baselines.toml (where its runs
    are judged)."""
    from tui.runs.remote import far

    args = ["baseline", far(run)] + ([f"--as={a.as_name}"] if a.as_name else []) + (
        [f"--status={a.status}"] if a.status else [])
    for line in ctx.remote().text(host, args).splitlines():
        if line.strip():
            say(f"{host}: {line}")
    return 0


# --------------------------------------------------------------------------------------- log
def cmd_log(ctx: Context, a: argparse.Namespace) -> int:
    """`runctl log RUN [--from N] [--follow]`: the log's raw bytes from byte N on stdout;
    `--follow` goes on until the run ends (exit 0 once every byte is out), or until whoever
    reads it is gone. Exit 3: the log is shorter than N (truncated or replaced)."""
    if a.from_ < 0:
        raise RunctlError(f"--from {a.from_}: must be >= 0")
    host, run = resolve(ctx, a.run)
    if (a.files or a.file) and host is not None:
        raise RunctlError("--files / --file read this machine's runs (a host's runctl answers them)")
    if a.files:
        say(json.dumps(run_files(ctx.store.get(run))))
        return 0
    if a.file:
        return _file_bytes(ctx.store.get(run), a.file, a.from_, a.limit)
    if host is not None:
        return _remote_log(ctx, host, run, a.from_, a.follow)
    m = ctx.store.get(run)
    path = ctx.store.log_path(m.run)
    out = sys.stdout.buffer
    pos = a.from_
    gone = _reader_gone()
    alive = ctx.store.is_running(m)
    asked = time.monotonic()
    while True:
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            size = None
        if size is None and (pos > 0 or not alive):
            if pos > 0:
                _err(f"the log of {m.run} is gone (--from {pos})")
                return TRUNCATED
            raise RunctlError(f"run {m.run} has no log ({path})")
        if size is not None and size < pos:
            _err(f"the log of {m.run} has {size} bytes, fewer than --from {pos} "
                 f"(truncated or replaced)")
            return TRUNCATED
        if size is not None and size > pos:
            pos = _copy(path, pos, size, out)
        if not a.follow:
            return 0
        if not alive:
            return 0  # it had ended when its last bytes were read: all of them are out
        if gone():
            return 0
        time.sleep(LOG_POLL_S)
        if time.monotonic() - asked >= ALIVE_EVERY_S:
            alive, asked = ctx.store.is_running(m), time.monotonic()  # one more copy after it ends


def run_files(m: Any) -> list[dict[str, Any]]:
    """The run's metric files under its run folder, as its sources find them (a CSVLogger's, the
    event files, JSON lines, the HF Trainer's state): `{path}` (relative to the run folder),
    `size`, `mtime_ns`, `source`, `append_only`. What a controller on another machine mirrors."""
    import glob

    from tui.log.sources import file_source

    run_dir = Path(m.run_dir).resolve()
    out: dict[str, dict[str, Any]] = {}
    for name, pattern in m.source_config.files:
        try:
            src = file_source(name)
        except KeyError:
            continue
        for f in glob.glob(pattern, recursive=True):
            p = Path(f).resolve()
            try:
                st = p.stat()
            except OSError:
                continue
            if not p.is_file() or not p.is_relative_to(run_dir):
                continue  # only what lies under the run's folder is mirrored
            rel = str(p.relative_to(run_dir))
            out.setdefault(rel, {"path": rel, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                 "source": name, "append_only": src.append_only})
    return sorted(out.values(), key=lambda e: str(e["path"]))


def _file_bytes(m: Any, rel: str, start: int, limit: int) -> int:
    """`runctl log RUN --file REL --from N`: one of the run's metric files (`run_files`), raw,
    from byte N, at most `limit` bytes. Exit 3: it is shorter than N."""
    known = {e["path"]: e for e in run_files(m)}
    if rel not in known:
        raise RunctlError(f"{rel!r} is not a metric file of run {m.run} (runctl log {m.run} --files "
                          f"lists them)")
    path = Path(m.run_dir).resolve() / rel
    size = path.stat().st_size
    if size < start:
        _err(f"{rel} of {m.run} has {size} bytes, fewer than --from {start}")
        return TRUNCATED
    _copy(path, start, min(size, start + limit) if limit > 0 else size, sys.stdout.buffer)
    return 0


def _copy(path: Path, pos: int, size: int, out: Any) -> int:
    """Copy bytes [pos, size) of the file to `out`; the new position."""
    with open(path, "rb") as f:
        f.seek(pos)
        while pos < size:
            chunk = f.read(min(LOG_CHUNK, size - pos))
            if not chunk:
                break
            out.write(chunk)
            pos += len(chunk)
        out.flush()
    return pos


def _reader_gone() -> Any:
    """A check that whoever reads our stdout is gone: the pipe or socket hung up, or the process
    that started us (over ssh: the session) ended. A follower never outlives its reader."""
    parent = os.getppid()
    poller = select.poll()
    try:
        poller.register(sys.stdout.fileno(), select.POLLERR | select.POLLHUP)
    except (OSError, ValueError):
        poller = None  # type: ignore[assignment]

    def gone() -> bool:
        if os.getppid() != parent:
            return True
        return bool(poller is not None and poller.poll(0))

    return gone


def _remote_log(ctx: Context, host: str, run: str, start: int, follow: bool) -> int:
    """`runctl log HOST:RUN`: the host's log streamed here; `--follow` reconnects after a drop
    from the byte it stopped at."""
    from tui.runs import ssh
    from tui.runs.remote import far

    h = ctx.remote().host(host)
    out = sys.stdout.buffer
    pos, waits = start, 0
    idle = ssh.query_timeout()
    while True:
        args = ["log", far(run), f"--from={pos}"] + (["--follow"] if follow else [])
        stream = ssh.Stream(h, args)
        last = time.monotonic()
        try:
            while (data := stream.read(0.5)) is not None:
                if data:
                    out.write(data)
                    out.flush()
                    pos += len(data)
                    waits, last = 0, time.monotonic()
                elif not follow and time.monotonic() - last > idle:  # a copy, not a follow: bounded
                    raise ssh.Unreachable(h.name, f"no bytes within {idle:g}s")
        except BaseException:
            stream.close()
            raise
        answer = stream.finish()
        if answer.rc == 0:
            return 0
        if answer.rc == TRUNCATED:
            _err(str(ssh.remote_error(h, answer)))
            return TRUNCATED
        if answer.rc != 255:
            raise ssh.remote_error(h, answer)
        if not follow:
            raise ssh.Unreachable(h.name, ssh.ssh_failure(answer.err))
        _err(f"{h.name}: connection lost; following again from byte {pos}")
        time.sleep(min(5.0, 0.5 * 2 ** waits))
        waits += 1
