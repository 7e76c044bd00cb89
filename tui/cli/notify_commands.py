"""`runctl notify [test]`, and what every command does for notifications (docs/cli.md,
*Notifications*): check the settings before a launch, and keep the watcher alive."""

from __future__ import annotations

import argparse
import json
import socket
import time
from typing import TYPE_CHECKING, Any

from tui.cli.textview import clock, say
from tui.errors import RunctlError
from tui.runs.hosts import LOCAL, split_target
from tui.runs.notify import (
    Note,
    NotifyError,
    Route,
    check_urls,
    dest_name,
    load_user_config,
    routes,
    send,
    user_config_path,
)
from tui.runs.watcher import WATCHER_LOG, wake_watcher, watcher_alive, watcher_identity

if TYPE_CHECKING:
    from tui.cli.context import Context


def _preset_routes(ctx: Context, user: Route | None, preset_name: str | None,
                   folder: str | None = None) -> list[Route]:
    """The routes of a run of `preset_name` (from `folder`, else the command's presets; the
    user's alone when it names none); a preset that cannot be read is the command's own error to
    tell, not this check's."""
    if not preset_name:
        return [user] if user is not None else []
    try:
        from tui.presets.registry import PresetRegistry

        p = (PresetRegistry(folder) if folder else ctx.registry).get(preset_name)
    except RunctlError:
        return [user] if user is not None else []
    return routes(user, p.notify, str(p.path))


def check_before(ctx: Context, a: argparse.Namespace) -> None:
    """Before a launch, a resume or a queued launch: the user's notify.toml and the preset's
    `[notify]` must be right (NotifyError: one line naming the file and key; nothing starts)."""
    cmd = a.cmd or "tui"
    folder: str | None = None
    if cmd == "launch" or (cmd == "queue" and getattr(a, "qcmd", None) == "add"):
        preset: str | None = a.preset
    elif cmd == "resume":
        host, run = split_target(a.run)
        if host not in (None, LOCAL):
            return  # a host's run: its runctl checks its own settings
        try:
            m = ctx.store.get(run)
        except RunctlError:
            return  # the command says it
        preset, folder = m.preset, m.presets_dir
    else:
        return
    user = load_user_config()
    check_urls(_preset_routes(ctx, user, preset, folder))


def wake(ctx: Context, a: argparse.Namespace) -> None:
    """Every `runctl` command: check notification settings before a start, and restart the
    logs folder's watcher when it died with work left (tui.runs.watcher.wake_watcher)."""
    check_before(ctx, a)
    wake_watcher(ctx.store, presets_dir=ctx.presets_dir)


def cmd_notify(ctx: Context, a: argparse.Namespace) -> int:
    """`runctl notify` (the settings, the watcher, the latest notifications) and `notify test`."""
    path = user_config_path()
    error: str | None = None
    try:
        user = load_user_config(path)
    except NotifyError as bad:
        if a.ncmd == "test":
            raise
        user, error = None, str(bad)
    rts = _preset_routes(ctx, user, getattr(a, "preset_name", None))
    if a.ncmd == "test":
        return _test(rts, path)
    training = ctx.store.training_dir
    ident = watcher_identity(training)
    alive = training.is_dir() and watcher_alive(training)
    from tui.runs.notify import Notifier

    record = Notifier(training).load() if training.is_dir() else {"events": {}}
    recent = sorted(((e.get("at") or 0, s, k, e) for s, evs in record["events"].items() for k, e in evs.items()),
                    key=lambda x: x[0], reverse=True)[:a.last]
    if a.json:
        say(json.dumps({
            "config": str(path), "exists": path.is_file(), "error": error,
            "routes": [{"origin": r.origin, "urls": [dest_name(u) for u in r.urls], "on": list(r.on)}
                       for r in rts],
            "watcher": {"alive": alive, "pid": ident.pid if ident and alive else None,
                        "log": str(training / WATCHER_LOG)},
            "recent": [{"subject": s, "key": k, "event": e.get("event"), "at": e.get("at"),
                        "status": e.get("status"),
                        "to": [{k2: d.get(k2) for k2 in ("dest", "ok", "tries", "error")}
                               for d in (e.get("to") or {}).values()]} for _, s, k, e in recent],
        }))
        return 0
    if error:
        say(f"config   {error}")
    elif not rts:
        say(f"config   none: write {path} (urls = [...], on = [...]) or a preset's [notify] (docs/cli.md)")
    for r in rts:
        say(f"route    {r.origin}: {', '.join(r.on) or 'no event'}")
        for u in r.urls:
            say(f"           {dest_name(u)}")
    say(f"watcher  {'alive (pid ' + str(ident.pid) + ')' if alive and ident else 'not running'}; "
        f"log {training / WATCHER_LOG}")
    for at, s, k, ev in recent:
        to = ", ".join(f"{d.get('dest')}{'' if d.get('ok') else ' (' + str(d.get('error') or 'waiting') + ')'}"
                       for d in (ev.get("to") or {}).values()) or "nobody"
        say(f"{clock(at)}  {s}  {k}  {ev.get('status')} -> {to}")
    return 0


def _test(rts: list[Route], path: Any) -> int:
    """Send a test note to every URL of the routes now; 0 when each took it, else 1."""
    urls = list(dict.fromkeys(u for r in rts for u in r.urls))
    if not urls:
        raise RunctlError(f"no notification URL: write {path} (urls = [\"ntfy://ntfy.sh/TOPIC\"]) or give "
                          f"--preset NAME with a [notify] table")
    check_urls(rts)
    host = socket.gethostname()
    note = Note("test", "test", f"test:{time.time()}", "runctl: test notification",
                f"host: {host}\nevent: test (runctl notify test)\nact: nothing to do", "info")
    bad = 0
    for u in urls:
        error = send(u, note)
        bad += error is not None
        say(f"{'sent  ' if error is None else 'failed'} {dest_name(u)}" + (f": {error}" if error else ""))
    return 1 if bad else 0
