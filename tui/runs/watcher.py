"""`python -m tui.runs.watcher --logs DIR [--presets DIR]`: the runs of one logs folder watched with
no runctl window open, and their notifications sent (docs/cli.md, *Notifications*).

One watcher per logs folder, detached in its own session like the queue runner: it holds an
exclusive flock on `training/.watcher.lock` for its whole life (a second one exits at once, and a
`runctl` command knows it is alive from one failed flock, no process table), records its identity
in `training/watcher.json` and writes what it does to `training/watcher.log`. `wake_watcher` starts
it after a launch or resume when notifications are configured (the user's notify.toml, or the
run's preset's `[notify]`), and every `runctl` command restarts one that died with work left (its
record is still there) or that should run (notify.toml exists and a run's pid is alive). It ends
when no run has been active, and no notification waiting for a retry, for `IDLE_S` (checked under
the controller lock, so a run launched meanwhile is always seen by it or starts a new one).

Each poll it follows every active run incrementally (one `tui.runs.tail.RunTail` each: the bytes
appended since the last poll), judges it with its preset (`tui.judge.evaluate`: the checkpoints
decided), sees it stalled (the store's judgement, `tui.state.stall`), requeued or ended, and offers
each event to the `tui.runs.notify.Notifier`, which sends it once. Which runs: those alive, and
those whose current attempt started after notifications began in this folder (the record's
`since`) and whose end it has not handled yet, so a run that ended while no watcher looked (a
crash in its first second, a watcher killed) is still told, once. Nothing here signals a run, and
no error of a send, a preset or a record stops the loop.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import glob
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui.errors import RunctlError
from tui.runs import procs
from tui.runs.lock import controller_lock
from tui.runs.notify import (
    Note,
    Notifier,
    NotifyError,
    Route,
    dest_id,
    destinations,
    load_user_config,
    message,
    routes,
    user_config_path,
)
from tui.runs.store import (
    ATTEMPT_EVENTS,
    DAMAGED,
    NOT_RUNS,
    TERMINAL,
    Manifest,
    RunStore,
    atomic_write_json,
)
from tui.runs.tail import RunTail
from tui.state.run import RunState

WATCHER_FILE = "watcher.json"  # training/watcher.json: the watcher's identity (removed when it ends)
WATCHER_LOG = "watcher.log"  # training/watcher.log: what it did (rotated to .1 past LOG_MAX)
WATCHER_LOCK = ".watcher.lock"  # held by the live watcher
LOG_MAX = 1 << 20
POLL_S = 1.0  # each followed run: read what its log gained, judge it
SCAN_S = 5.0  # the logs folder: which runs to follow
IDLE_S = 60.0  # nothing to follow or retry for this long: the watcher ends ($RUNCTL_WATCHER_IDLE_S)
ENV_IDLE = "RUNCTL_WATCHER_IDLE_S"
MAX_FAILURES = 60  # polls in a row that raised: the run is let go (a bug must not keep the watcher)
Say = Callable[[str], None]


def manifest_fields(preset: Any) -> dict[str, Any]:
    """What a run's manifest keeps of its preset for the stall and the watcher: `stall_after`
    (seconds, 0: never, None: the default) and the presets folder it came from (never the
    notification URLs: those stay in the files the user wrote them in)."""
    return {"stall_after": preset.stall_after, "presets_dir": str(Path(preset.path).resolve().parent)}


# ----------------------------------------------------------------------------- starting it
def watcher_alive(training_dir: Path) -> bool:
    """A watcher holds the lock (one non-blocking flock, released at once when free; no lock file:
    no watcher ever ran here, and a reading command creates nothing)."""
    try:
        fd = os.open(training_dir / WATCHER_LOCK, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing drops a lock this process took
    return False


def _live_pids(training_dir: Path) -> bool:
    """Some run's pid file names a live process (cheap: no manifest read; the watcher checks
    each run's identity itself)."""
    import psutil

    for p in glob.glob(os.path.join(glob.escape(str(training_dir)), "*.pid")):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if psutil.pid_exists(int(Path(p).read_text().split()[0])):
                return True
    return False


def notifies(m: Manifest | None) -> bool:
    """Whether notifications are configured for this run (or, None, for any run): the user's
    notify.toml exists, or the run's preset has a `[notify]` table."""
    if user_config_path().is_file():
        return True
    if m is None or not m.presets_dir:
        return False
    try:
        from tui.presets.registry import PresetRegistry

        return bool(PresetRegistry(m.presets_dir).get(m.preset).notify)
    except RunctlError:
        return False


def wake_watcher(store: RunStore, m: Manifest | None = None, presets_dir: Path | None = None) -> bool:
    """Start the logs folder's watcher if it should run and none is alive; True when started.

    After a launch or resume (`m`): when notifications are configured for the run. From any
    `runctl` command (no `m`): when a watcher died with work left (its record is still there), or
    notify.toml exists and some run's process is alive. Never raises: a watcher that cannot start
    costs notifications, never a run or a command."""
    try:
        training = store.training_dir
        if not training.is_dir() or watcher_alive(training):
            return False
        if m is not None:
            wanted = notifies(m)
        else:
            wanted = (training / WATCHER_FILE).exists() or (notifies(None) and _live_pids(training))
        if not wanted:
            return False
        start_watcher(store, presets_dir, since=_attempt_start(m) if m is not None else None)
        return True
    except Exception:  # noqa: BLE001 - see above
        return False


def _attempt_start(m: Manifest) -> float:
    """When the run's current attempt started (its launch, submit or latest resume)."""
    at = next((h.get("at") for h in reversed(m.history) if h.get("event") in ATTEMPT_EVENTS), None)
    return float(at) if isinstance(at, int | float) else m.created_at


def start_watcher(store: RunStore, presets_dir: Path | None = None, since: float | None = None) -> procs.Identity:
    """Start a watcher detached (own session, no stdin, output appended to watcher.log). If
    another one is alive it exits at once (the lock). `since`: the start of the run that asked
    for it, where notifications begin in this folder when they had not (so that run is told
    even if it ended before the watcher looked)."""
    cmd = [sys.executable, "-m", "tui.runs.watcher", "--logs", str(store.logs_dir.resolve())]
    if presets_dir is not None:
        cmd += ["--presets", str(Path(presets_dir).resolve())]
    if since is not None:
        cmd += ["--since", f"{since:.3f}"]
    log = store.training_dir / WATCHER_LOG
    with contextlib.suppress(OSError):
        if log.stat().st_size > LOG_MAX:
            os.replace(log, log.with_name(WATCHER_LOG + ".1"))
    return procs.spawn_detached(cmd, log)


def watcher_identity(training_dir: Path) -> procs.Identity | None:
    """The recorded watcher (None: none recorded)."""
    try:
        return procs.identity_from(json.loads((training_dir / WATCHER_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------------- notes
def _dur(s: float) -> str:
    """`45s`, `12m`, `2h05m`."""
    s = max(0, int(round(s)))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _clock(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t is not None else "?"


def _where(st: RunState, preset: Any) -> str:
    budget = st.budget or (getattr(preset, "max_steps" if st.axis == "step" else "max_epochs", None)
                           if preset is not None else None)
    return f"{st.axis} {st.epoch if st.epoch is not None else 0}/{budget or '?'}"


def run_note(event: str, key: str, m: Manifest, st: RunState, verdicts: Any, preset: Any,
             cp: Any = None) -> Note:
    """The note of one event of a run: the run, host, event, verdict or error, the command."""
    run, rec = m.run, getattr(verdicts, "recommendation", None)
    host = m.host or socket.gethostname()
    level = "info"
    detail: tuple[str, str] | None = None
    if event == "decided":
        from tui.presets.preset import LEVELS

        what = f"decided {cp.title} ({cp.where})"
        detail = ("verdict", f"{LEVELS.get(cp.level or '', '')} {cp.verdict}: {cp.say}".strip())
        level = {"good": "success", "warn": "warning", "bad": "failure"}.get(cp.level or "", "info")
        action = preset.next.get(cp.verdict or "") if preset is not None else None
        nxt = f"runctl launch {action.preset}" if action is not None and action.preset else None
        act = (f"runctl kill {run}" + (f"; {nxt}" if nxt else "")) if cp.level == "bad" \
            else nxt or f"runctl status {run}"
    elif event == "finished":
        what = f"finished ({_where(st, preset)})"
        if rec is not None:
            detail = ("verdict", f"{rec.verdict or rec.action}: {rec.why}")
        level = "warning" if rec is not None and rec.verdict == "failure" else "success"
        act = (rec.command if rec is not None and rec.command else None) or f"runctl report {run}"
    elif event == "crashed":
        what = f"crashed at {_where(st, preset)}"
        detail = ("error", st.error or (f"exit {st.exit_reason} (status {st.exit_status})"
                                        if st.exit_reason else "the process is gone"))
        level = "failure"
        if rec is not None and rec.command:
            act = rec.command
        elif st.resume_from and not st.resume_blocked:
            act = f"runctl resume {run}"
        else:
            act = f"runctl status {run}"
    elif event == "stalled":
        silent = time.time() - (st.stalled_since or time.time())
        what = (f"stalled: alive (pid {st.pid or m.pid}) but silent for {_dur(silent)} at "
                f"{_where(st, preset)}")
        detail = ("silent", f"no log line, metric or checkpoint since {_clock(st.stalled_since)} "
                            f"(stall_after {_dur(st.stall_after or 0)})")
        level = "warning"
        act = f"runctl status {run}; runctl kill {run}"
    else:  # requeued
        what = f"requeued at {_where(st, preset)}: Slurm runs it again, from its checkpoint"
        detail = ("exit", f"{st.exit_reason} (status {st.exit_status})")
        act = f"runctl status {run} --watch"
    title, body = message(event, run, host, what, detail, act, m.preset or None)
    return Note(event, run, key, title, body, level)


# ------------------------------------------------------------------------------ the watcher
@dataclass
class _Followed:
    """One run followed: its tail, and its preset and baselines (None: none found)."""

    tail: RunTail
    preset: Any
    baselines: Any
    preset_path: str = ""


class Watcher:
    """The loop: follow, judge, notify; see the module's docstring."""

    def __init__(self, store: RunStore, notifier: Notifier, presets_dir: Path | None = None,
                 say: Say = print, poll_s: float = POLL_S, scan_s: float = SCAN_S, idle_s: float = IDLE_S,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.store, self.notifier, self.presets_dir = store, notifier, presets_dir
        self.say, self.poll_s, self.scan_s, self.idle_s, self.sleep = say, poll_s, scan_s, idle_s, sleep
        self.followed: dict[str, _Followed] = {}
        self.user: Route | None = None
        self._user_key: Any = ()
        self._known: set[tuple[str, str]] = set()  # (subject, key) offered: sent, sending or nobody's
        self._presets: dict[str, Any] = {}  # folder -> registry
        self._baselines: dict[str, Any] = {}  # folder -> table (None: unreadable)
        self._said: set[str] = set()  # problems said once
        self._since: float | None = None  # when notifications began in this folder (the record's)
        self._done: dict[str, int] = {}  # run -> the attempt whose end was handled (the record's)
        self._skip: dict[str, tuple[int, int]] = {}  # run -> its manifest's (mtime, size) not to follow
        self._failures: dict[str, int] = {}  # run -> polls in a row that raised

    def _once(self, text: str) -> None:
        if text not in self._said:
            self._said.add(text)
            self.say(text)

    # ------------------------------------------------------------------------------ config
    def load_user(self) -> None:
        """The user's notify.toml, read again when it changed (a broken one: said, and no user
        route until it is fixed)."""
        path = user_config_path()
        try:
            st = path.stat()
            key: Any = (str(path), st.st_mtime_ns, st.st_size)
        except OSError:
            key = (str(path), None)
        if key == self._user_key:
            return
        self._user_key = key
        try:
            self.user = load_user_config(path)
            self._urls(self.user)
            if self.user is not None:
                self.say(f"notify: {path}: {len(self.user.urls)} URL(s) on {', '.join(self.user.on)}")
        except NotifyError as e:
            self.user = None
            self.say(f"notify: {e}; nothing is sent to its URLs until it is fixed")

    def _urls(self, route: Route | None) -> None:
        """Let the notifier know a route's URLs (a retry after a restart finds them)."""
        if route is not None:
            for u in route.urls:
                self.notifier.urls[dest_id(u)] = u

    def _preset(self, m: Manifest) -> tuple[Any, Any, str]:
        """The run's preset as launched (its --set / --env), its baselines and its file; None
        when it cannot be read (said once: decisions are then not judged, ends still told)."""
        folder = m.presets_dir or (str(self.presets_dir) if self.presets_dir else None)
        if not folder or not m.preset:
            return None, None, ""
        from tui.presets.baselines import BASELINES_FILE, load_baselines
        from tui.presets.registry import PresetRegistry, resolve

        try:
            reg = self._presets.setdefault(folder, PresetRegistry(folder))
            preset = reg.get(m.preset)
        except RunctlError as e:
            self._once(f"{m.run}: preset {m.preset!r} not read ({e}); its checkpoints are not judged")
            return None, None, ""
        if m.sets or m.envs:
            with contextlib.suppress(RunctlError):
                preset = resolve(preset, m.sets, m.envs)
        if folder not in self._baselines:
            try:
                self._baselines[folder] = load_baselines(Path(folder) / BASELINES_FILE)
            except RunctlError:
                self._baselines[folder] = None
        return preset, self._baselines[folder], str(preset.path)

    # ------------------------------------------------------------------------------- runs
    def scan(self) -> None:
        """Follow every run that is alive, or whose current attempt started since notifications
        began here and whose end was not handled yet. A manifest unchanged since the last scan
        that was not to follow then is not read again (a logs folder may hold thousands): a run
        comes alive again only through a resume, which rewrites its manifest."""
        pattern = os.path.join(glob.escape(str(self.store.training_dir)), "*.json")
        for path in glob.glob(pattern):
            run = Path(path).stem
            if run in NOT_RUNS or run in self.followed:
                continue
            try:
                fs = os.stat(path)
            except OSError:
                continue
            key = (fs.st_mtime_ns, fs.st_size)
            if self._skip.get(run) == key:
                continue
            m = self.store.for_log(self.store.log_path(run))
            if m is None or m.damaged is not None or self._done.get(m.run, 0) >= m.attempt:
                self._skip[run] = key  # damaged, or this attempt's end was handled
                continue
            recent = isinstance(self._since, int | float) and _attempt_start(m) >= self._since
            if recent or self.store.is_running(m):
                self.follow(m)
            else:
                self._skip[run] = key

    def follow(self, m: Manifest) -> None:
        """Start following a run (its log read from the start: events already handled are known
        from the record and not sent again)."""
        preset, baselines, path = self._preset(m)
        if preset is not None:
            self._urls(next((r for r in routes(None, preset.notify, path)), None))
        tail = RunTail(self.store, self.store.log_path(m.run), m)
        self.followed[m.run] = _Followed(tail, preset, baselines, path)
        self.say(f"following {m.run} (attempt {m.attempt})")

    def poll(self, run: str) -> None:
        """Read what the run's log gained, judge it, offer its events; an ended run is let go."""
        f = self.followed[run]
        st = f.tail.poll()
        m = f.tail.manifest
        assert m is not None
        verdicts = None
        events: list[tuple[str, str, Any]] = []
        if f.preset is not None and st.state != DAMAGED:
            from tui.judge.evaluate import evaluate

            verdicts = evaluate(f.preset, st, f.baselines)
            events += [("decided", f"decided:{cp.title}", cp) for cp in verdicts.checkpoints
                       if cp.status == "decided"]
        if st.state == "stalled" and st.stalled_since is not None:
            events.append(("stalled", f"stalled:{m.attempt}:{int(st.stalled_since)}", None))
        if st.exit_reason == "requeued" and st.state not in TERMINAL:
            events.append(("requeued", f"requeued:{m.attempt}:{st.attempts}", None))
        if st.state in ("finished", "crashed"):
            events.append((st.state, f"{st.state}:{m.attempt}", None))
        for event, key, cp in events:
            if (run, key) in self._known:
                continue
            note = run_note(event, key, m, st, verdicts, f.preset, cp)
            rts = routes(self.user, f.preset.notify if f.preset is not None else None, f.preset_path)
            if self.notifier.offer(note, destinations(rts, event)):
                self._known.add((run, key))
        if not f.tail.alive:  # ended (a local process gone, a Slurm job no longer queued or running)
            attempt = m.attempt
            self._done[run] = attempt
            self.notifier.update(lambda data: data["done"].__setitem__(run, attempt))
            f.tail.close()
            del self.followed[run]
            self.say(f"{run} ended ({st.state}); no longer followed")

    # ------------------------------------------------------------------------------- loop
    def run(self, since: float | None = None) -> int:
        """Watch until idle for `idle_s`; 0. `since`: where notifications begin in this folder
        if they had not begun (default: now)."""
        record = self.notifier.load()
        self._known = {(s, k) for s, evs in record["events"].items() for k in evs}
        self._done = {k: v for k, v in record["done"].items() if isinstance(v, int)}
        self._since = record.get("since")
        if not isinstance(self._since, int | float):
            self._since = begin = round(min(time.time(), since or time.time()), 3)
            self.notifier.update(lambda data: data.__setitem__("since", data.get("since") or begin))
        self.load_user()
        for subject in self.notifier.recover():  # what a predecessor left waiting: its routes
            m = self.store.for_log(self.store.log_path(subject)) if ":" not in subject else None
            preset, _, path = self._preset(m) if m is not None else (None, None, "")
            for r in routes(self.user, preset.notify if preset is not None else None, path):
                self._urls(r)
        next_scan, idle_from = 0.0, None
        while True:
            try:
                self.load_user()
                if time.monotonic() >= next_scan:
                    self.scan()
                    next_scan = time.monotonic() + self.scan_s
                for run in list(self.followed):
                    try:
                        self.poll(run)
                        self._failures.pop(run, None)
                    except Exception as e:  # noqa: BLE001 - one run's trouble never stops the others
                        self._once(f"{run}: cannot follow ({type(e).__name__}: {e})")
                        self._failures[run] = self._failures.get(run, 0) + 1
                        if self._failures[run] >= MAX_FAILURES:  # let it go (a scan may take it up again)
                            self.followed.pop(run).tail.close()
                            self.say(f"{run}: no longer followed after {MAX_FAILURES} failed polls")
                self.notifier.pump()
                busy = bool(self.followed) or self.notifier.pending() > 0
            except Exception as e:  # noqa: BLE001 - the loop goes on (a full disk, a vanished folder)
                self._once(f"watcher: {type(e).__name__}: {e}")
                busy = True
            now = time.monotonic()
            if busy:
                idle_from = None
            elif idle_from is None:
                idle_from = now
            elif now - idle_from >= self.idle_s and self._may_end():
                return 0
            self.sleep(self.poll_s)

    def _may_end(self) -> bool:
        """Under the controller lock: nothing to follow even now (a launch holding the lock has
        saved its manifest, or starts a watcher of its own once this one is gone)."""
        try:
            with controller_lock(self.store.logs_dir, "watcher", timeout=2.0):
                self.scan()
                if self.followed or self.notifier.pending() > 0:
                    return False
                me = procs.identify(os.getpid())
                if me is not None and watcher_identity(self.store.training_dir) == me:
                    (self.store.training_dir / WATCHER_FILE).unlink(missing_ok=True)
                release()
                return True
        except RunctlError:
            return False


_lock_fd: int | None = None


def release() -> None:
    """Drop the watcher lock (before the controller lock: a launch waiting on it then finds no
    watcher and starts one)."""
    global _lock_fd
    if _lock_fd is not None:
        os.close(_lock_fd)
        _lock_fd = None


def main(argv: list[str] | None = None) -> int:
    """The watcher process."""
    global _lock_fd
    p = argparse.ArgumentParser(prog="python -m tui.runs.watcher")
    p.add_argument("--logs", type=Path, required=True)
    p.add_argument("--presets", type=Path, default=None)
    p.add_argument("--since", type=float, default=None)
    a = p.parse_args(argv)
    store = RunStore(a.logs)

    def say(text: str) -> None:
        print(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {text}", flush=True)

    store.training_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(store.training_dir / WATCHER_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return 0  # another watcher is alive: it does the work
    _lock_fd = fd
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    me = procs.identify(os.getpid())
    try:
        if me is not None:
            atomic_write_json(store.training_dir / WATCHER_FILE, me.to_json(), durable=False)
    except RunctlError as e:
        say(f"watcher: {e}")
    try:
        idle = float(os.environ.get(ENV_IDLE, IDLE_S))
    except ValueError:
        idle = IDLE_S
    say(f"watcher started (pid {os.getpid()}, logs {store.logs_dir.resolve()})")
    watcher = Watcher(store, Notifier(store.training_dir, say), a.presets, say=say, idle_s=idle)
    code = watcher.run(a.since)
    say("watcher ends: no run active")
    return code


if __name__ == "__main__":
    sys.exit(main())
