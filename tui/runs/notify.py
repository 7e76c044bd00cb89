"""Notifications: what is sent, to where, once (docs/cli.md, *Notifications*).

A long run needs a person at a few moments only: a checkpoint decided, the end, a crash, a silent
hang, a Slurm requeue (and, for sweeps, the sweep's end). Each is a `Note`: the event, the run (or
sweep) it is about, a `key` that makes it *that* event (`finished:2`: the end of attempt 2;
`decided:Epoch 5 Validation`), and the message: the run, its host, the event, the verdict or the
error, and the command to act on it.

Where they go: apprise URLs (Slack, ntfy, email, Telegram, a plain JSON POST, ...), from the user's
`notify.toml` (`$RUNCTL_NOTIFY`, else `~/.config/runctl/notify.toml`) and a run's preset's
`[notify]` table, each a *route*: its `urls` get the events in its `on`. The routes add up (an event
goes to every URL of every route that wants it, each URL once); a preset's `on` without `urls`
sends those events of its runs to the user's URLs. URLs stay where the user wrote them: never in a
manifest, a record or a log line (those name a URL by its scheme and host, `dest_name`, and a
record by a hash of it).

`Notifier` sends them: once per (subject, key), recorded in `training/notified.json` (written
atomically under its own lock, before each try and after it) so a restarted sender never sends an
event twice; a failed send is retried with backoff (`TRIES` tries, `RETRY_S` doubling) and logged,
and nothing here ever raises into its caller's loop. The watcher (`tui.runs.watcher`) is the sender
for runs; a sweep runner sends `sweep_done` through the same `Notifier` and record.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui.errors import RunctlError
from tui.presets.parse import notify_table
from tui.presets.preset import NOTIFY_EVENTS
from tui.presets.schema import Where, read_toml
from tui.runs.store import atomic_write_json

ENV_CONFIG = "RUNCTL_NOTIFY"  # the user's notify.toml, where it is not ~/.config/runctl/notify.toml
ENV_RETRY = "RUNCTL_NOTIFY_RETRY_S"  # the first retry's delay (seconds; each next one doubles)
RECORD = "notified.json"  # training/notified.json: what was sent (or is being sent), per subject
RECORD_LOCK = ".notified.lock"
TRIES = 6  # tries per destination: the first send and five retries
RETRY_S = 5.0  # the first retry's delay; 5, 10, 20, 40, 80 s: an endpoint down for ~2.5 min
KEEP_SUBJECTS = 2000  # the record keeps the events of this many runs / sweeps (the newest)
LEVELS = ("info", "success", "warning", "failure")  # apprise's NotifyType values
Say = Callable[[str], None]


class NotifyError(RunctlError):
    """A notification setting the user wrote is wrong (one line naming the file and key)."""


# ---------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Route:
    """Some URLs and the events they get (`on`); where it came from, for messages."""

    urls: tuple[str, ...]
    on: tuple[str, ...]
    origin: str


def user_config_path() -> Path:
    """`$RUNCTL_NOTIFY`, else `~/.config/runctl/notify.toml`."""
    env = os.environ.get(ENV_CONFIG)
    return Path(env).expanduser() if env else Path.home() / ".config" / "runctl" / "notify.toml"


def load_user_config(path: Path | None = None) -> Route | None:
    """The user's route (None: no file). A file that is not TOML, has an unknown key, a URL that
    is not one, or an unknown event is a NotifyError naming the file and the key."""
    path = user_config_path() if path is None else path
    if not path.is_file():
        return None
    try:
        raw = read_toml(path)
        t = notify_table(Where(path), raw, "")
    except RunctlError as e:
        raise NotifyError(str(e)) from None
    return Route(tuple(t.get("urls", ())), tuple(t.get("on", NOTIFY_EVENTS)), str(path))


def routes(user: Route | None, preset_notify: dict[str, Any] | None, preset_path: str = "") -> list[Route]:
    """The routes of one run: the user's, and its preset's `[notify]` added to it (its `urls` get
    its `on`, default the user's; its `on` alone sends those events to the user's URLs)."""
    out = [user] if user is not None else []
    t = preset_notify or {}
    if t.get("urls") or t.get("on") is not None:
        on = tuple(t["on"]) if t.get("on") is not None else (user.on if user else NOTIFY_EVENTS)
        urls = tuple(t.get("urls") or (user.urls if user else ()))
        if urls:
            out.append(Route(urls, on, preset_path or "preset"))
    return out


def destinations(rts: Sequence[Route], event: str) -> list[str]:
    """Every URL that wants `event`, each once, in order."""
    return list(dict.fromkeys(u for r in rts if event in r.on for u in r.urls))


def check_urls(rts: Sequence[Route]) -> None:
    """Each URL is one apprise can send to (its scheme known, its parts complete); NotifyError
    naming the file, the URL's position and its scheme (never the URL: it may hold a token)."""
    for r in rts:
        for i, url in enumerate(r.urls, 1):
            problem = url_problem(url)
            if problem is not None:
                raise NotifyError(f"{r.origin}: urls #{i} ({dest_name(url)}): {problem}")


def url_problem(url: str) -> str | None:
    """Why apprise cannot send to `url` (None: it can)."""
    try:
        import apprise
    except ImportError as e:  # a broken install: said where it matters, never a traceback
        return f"the notification library apprise is not installed ({e})"
    try:
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    except Exception as e:  # noqa: BLE001 - apprise's own parsing: any failure is "not a URL"
        return f"not a notification URL apprise can use ({type(e).__name__})"
    if plugin is None:
        return ("not a notification URL apprise can use (unknown scheme, or a part missing); "
                "see https://github.com/caronc/apprise/wiki")
    return None


_HOSTNAME = re.compile(r"(localhost|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+|\[[0-9A-Fa-f:.]+\])(:\d+)?")


def dest_name(url: str) -> str:
    """A URL as logs and records show it: its scheme and host, no user, password, path or query;
    a host part that is not a host name (a Slack or Discord token, an ntfy.sh topic, a Telegram
    bot token) keeps its first 3 characters only."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    if not _HOSTNAME.fullmatch(host):
        host = (host[:3] + "…") if len(host) > 3 else "…"
    return f"{scheme}://{host}"


def dest_id(url: str) -> str:
    """How the record names a destination: a hash, so that no secret in a URL is written there."""
    return hashlib.sha256(url.encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------------- notes
@dataclass(frozen=True)
class Note:
    """One notification: `event` about `subject` (a run id, or `sweep:ID`), unique by `key`."""

    event: str
    subject: str
    key: str
    title: str
    body: str
    level: str = "info"  # info | success | warning | failure


def message(event: str, subject: str, host: str, what: str, detail: tuple[str, str] | None,
            act: str, preset: str | None = None) -> tuple[str, str]:
    """(title, body) of a note, the same shape for every event: the run and its preset, the host,
    the event, the verdict or error (`detail`: its label and text), the command to act on it."""
    name = "sweep" if subject.startswith("sweep:") else "run"
    lines = [f"{name}: {subject.removeprefix('sweep:')}" + (f" (preset {preset})" if preset else ""),
             f"host: {host}", f"event: {what}"]
    if detail is not None:
        lines.append(f"{detail[0]}: {detail[1]}")
    lines.append(f"act: {act}")
    return f"runctl: {subject.removeprefix('sweep:')} {event}", "\n".join(lines)


def sweep_note(sweep: str, host: str, what: str, best: str | None, act: str) -> Note:
    """The `sweep_done` note of a sweep, for the sweep runner to `Notifier.offer` to
    `destinations(routes(load_user_config(), its preset's notify), "sweep_done")`: keyed once per
    sweep, its subject `sweep:ID` in the same record as the runs' notes."""
    title, body = message("sweep_done", f"sweep:{sweep}", host, what, ("best", best) if best else None, act)
    return Note("sweep_done", f"sweep:{sweep}", "sweep_done", title, body, "success")


def _scrub(text: str, url: str) -> str:
    """An error text with every longer part of `url` (a token, a password, a path) blanked."""
    for part in sorted(set(re.split(r"[/:@?&=#]+", url.partition("://")[2])), key=len, reverse=True):
        if len(part) >= 4:
            text = text.replace(part, "…")
    return text


def send(url: str, note: Note) -> str | None:
    """Send one note to one URL now: None when it went, else why not (one line, no secret)."""
    try:
        import apprise

        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        if plugin is None:
            return "not a notification URL apprise can use"
        kind = apprise.NotifyType(note.level if note.level in LEVELS else "info")
        with apprise.LogCapture(level=apprise.logging.WARNING) as out:
            ok = plugin.notify(body=note.body, title=note.title, notify_type=kind)
        if ok:
            return None
        lines = [ln.split(" - ", 2)[-1].strip() for ln in out.getvalue().splitlines() if ln.strip()]
        return _scrub(lines[-1] if lines else "the service refused it", url)
    except Exception as e:  # noqa: BLE001 - a send never raises into the watcher's loop
        return _scrub(f"{type(e).__name__}: {e}", url)


def retry_base() -> float:
    """`$RUNCTL_NOTIFY_RETRY_S`, else RETRY_S."""
    try:
        return max(0.0, float(os.environ.get(ENV_RETRY, RETRY_S)))
    except ValueError:
        return RETRY_S


# ------------------------------------------------------------------------------ the sender
class Notifier:
    """Sends notes once each, with retries, recording each try in `training/notified.json`.

    `offer` records a note (with the destinations that want it) and sends it at once; `pump`
    retries what failed when its time comes. The record is read again before every change (under
    its lock), so two senders (the watcher, a sweep runner) never undo each other's entries.
    """

    def __init__(self, training_dir: Path, say: Say = print, tries: int = TRIES,
                 retry_s: float | None = None, sender: Callable[[str, Note], str | None] = send) -> None:
        self.training_dir = Path(training_dir)
        self.path = self.training_dir / RECORD
        self.say = say
        self.tries = tries
        self.retry_s = retry_base() if retry_s is None else retry_s
        self.sender = sender
        self.urls: dict[str, str] = {}  # dest_id -> URL (known from the routes offered; never written)
        self._notes: dict[tuple[str, str], Note] = {}  # (subject, key) -> the note, while it waits
        self._waiting: dict[tuple[str, str, str], tuple[int, float]] = {}  # (.., dest) -> tries, next
        self._failed: tuple[str, float] = ("", 0.0)  # the last record write that failed, and when

    # ---------------------------------------------------------------------------- the record
    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """The record, to change and write back, under its flock."""
        self.training_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.training_dir / RECORD_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            data = self.load()
            yield data
            subjects = data["events"]
            if len(subjects) > KEEP_SUBJECTS:  # the oldest subjects' events go (their `done`
                # stays: a few bytes a run, and what keeps an ended run from being followed again)
                order = sorted(subjects, key=lambda s: max((e.get("at") or 0 for e in subjects[s].values()),
                                                           default=0))
                for s in order[:len(subjects) - KEEP_SUBJECTS]:
                    subjects.pop(s, None)
            atomic_write_json(self.path, data)
        finally:
            os.close(fd)

    def load(self) -> dict[str, Any]:
        """The record as it is on disk (a fresh one if missing or unreadable)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except (OSError, ValueError):
            data = {}
        data.setdefault("version", 1)
        data.setdefault("since", None)
        for k in ("events", "done"):
            if not isinstance(data.get(k), dict):
                data[k] = {}
        return data

    def handled(self, subject: str, key: str) -> bool:
        """Whether a note of this key was offered before (sent, sending, or wanted by nobody)."""
        return key in self.load()["events"].get(subject, {})

    def update(self, change: Callable[[dict[str, Any]], None]) -> bool:
        """Apply `change` to the record under its lock; False when it could not be written
        (logged: a full disk must not stop the watcher)."""
        try:
            with self._locked() as data:
                change(data)
            return True
        except (OSError, RunctlError) as e:
            text = f"cannot record notifications in {self.path}: {e}"
            if text != self._failed[0] or time.monotonic() - self._failed[1] > 60:  # said once a minute
                self._failed = (text, time.monotonic())
                self.say(text + "; nothing is sent until it can be recorded")
            return False

    # ---------------------------------------------------------------------------- sending
    def offer(self, note: Note, urls: Sequence[str]) -> bool:
        """Record `note` for `urls` and send it now, unless its key was offered before. True when
        it is in the record (now or before); False when the record could not be written (it is
        offered again later). With no URL it is recorded as `none`: nobody wanted it."""
        for u in urls:
            self.urls[dest_id(u)] = u
        now = round(time.time(), 3)
        fresh = False

        def add(data: dict[str, Any]) -> None:
            nonlocal fresh
            events = data["events"].setdefault(note.subject, {})
            if note.key in events:
                return
            fresh = True
            events[note.key] = {
                "event": note.event, "at": now, "status": "pending" if urls else "none",
                "title": note.title, "body": note.body, "level": note.level,
                "to": {dest_id(u): {"dest": dest_name(u), "ok": False, "tries": 0, "error": None,
                                    "next_at": now} for u in urls},
            }

        if not self.update(add):
            return False
        if fresh:
            self.say(f"{note.subject}: {note.event} ({note.key})"
                     + (f" -> {', '.join(dest_name(u) for u in urls)}" if urls else ": no destination wants it"))
            if urls:
                self._notes[(note.subject, note.key)] = note
                for u in urls:
                    self._waiting[(note.subject, note.key, dest_id(u))] = (0, now)
                self.pump(only=(note.subject, note.key))
        return True

    def recover(self) -> list[str]:
        """A restarted sender takes over what its predecessor left waiting in the record (the
        subjects it concerns: their routes must be known again, `urls`, for the retries to go)."""
        subjects = []
        for subject, events in self.load()["events"].items():
            for key, e in events.items():
                if e.get("status") != "pending" or not isinstance(e.get("to"), dict):
                    continue
                self._notes[(subject, key)] = Note(str(e.get("event")), subject, key, str(e.get("title") or ""),
                                                   str(e.get("body") or ""), str(e.get("level") or "info"))
                for did, d in e["to"].items():
                    if not d.get("ok") and int(d.get("tries") or 0) < self.tries:
                        self._waiting[(subject, key, did)] = (int(d.get("tries") or 0), float(d.get("next_at") or 0))
                        subjects.append(subject)
        return list(dict.fromkeys(subjects))

    def pending(self) -> int:
        """How many destinations still wait for a (re)try."""
        return len(self._waiting)

    def pump(self, only: tuple[str, str] | None = None) -> None:
        """Send every note whose (re)try is due (`only`: that one note's). A destination whose URL
        no route names any more (a note left by a predecessor) is given up; nothing here raises."""
        now = time.time()
        for (subject, key, did), (tries, next_at) in list(self._waiting.items()):
            if (only is not None and (subject, key) != only) or next_at > now:
                continue
            url = self.urls.get(did)
            note = self._notes.get((subject, key))
            if url is None or note is None:
                self._waiting.pop((subject, key, did), None)
                self._mark(subject, key, did, tries, False, "its URL is no longer configured", final=True)
                continue
            try:
                self._try(note, did, url, tries + 1)
            except Exception as e:  # noqa: BLE001 - the loop goes on, whatever happened
                self._waiting.pop((subject, key, did), None)
                self.say(f"notifications: {note.event} of {subject}: {type(e).__name__}: {e}")

    def _mark(self, subject: str, key: str, did: str, tries: int, ok: bool | None, error: str | None,
              final: bool = False) -> bool:
        """Record one try of one destination (`ok` None: about to try, counted first, so that a
        sender killed mid-send does not send it again; `final`: no try follows)."""
        def change(data: dict[str, Any]) -> None:
            ev = data["events"].get(subject, {}).get(key)
            if ev is None or did not in ev.get("to", {}):
                return
            d = ev["to"][did]
            d["tries"] = tries
            if ok is None:
                d["next_at"] = round(time.time() + self.retry_s * 2 ** (tries - 1), 3)
                return
            d["ok"], d["error"], d["at"] = ok, error, round(time.time(), 3)
            if ok or final:
                d.pop("next_at", None)
            dests = ev["to"].values()
            if all(x.get("next_at") is None for x in dests):  # every destination settled
                ev["status"] = ("sent" if all(x.get("ok") for x in dests)
                                else "partly" if any(x.get("ok") for x in dests) else "failed")
                ev.pop("body", None)  # settled: the text is only kept for a retry
                ev.pop("title", None)

        return self.update(change)

    def _try(self, note: Note, did: str, url: str, tries: int) -> None:
        subject, key = note.subject, note.key
        if not self._mark(subject, key, did, tries, None, None):
            return  # not recorded: not sent either (tried again at the next pump)
        error = self.sender(url, note)
        where = dest_name(url)
        last = error is None or tries >= self.tries
        if last:
            self._waiting.pop((subject, key, did), None)
        else:
            self._waiting[(subject, key, did)] = (tries, time.time() + self.retry_s * 2 ** (tries - 1))
        self._mark(subject, key, did, tries, error is None, error, final=last)
        if error is None:
            self.say(f"sent {note.event} of {subject} to {where}" + (f" (try {tries})" if tries > 1 else ""))
        elif not last:
            self.say(f"failed to send {note.event} of {subject} to {where} (try {tries}/{self.tries}): "
                     f"{error}; retry in {self.retry_s * 2 ** (tries - 1):g}s")
        else:
            self.say(f"gave up sending {note.event} of {subject} to {where} after {tries} tries: {error}")
