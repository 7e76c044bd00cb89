"""Issue 20: notifications sent by the detached watcher, and stalled runs.

Real runs (the torch-free stand-in trainer tests/scripts/stepped_train.py: one epoch per go-file,
so a test decides when it writes and when it goes silent), launched by `runctl` in a fresh
interpreter, followed by the real detached watcher it starts, which sends through apprise to a
real HTTP endpoint on 127.0.0.1 that the test runs in a thread: apprise's JSON POST
(`json://127.0.0.1:PORT/hook`) and its ntfy form (`ntfy://127.0.0.1:PORT/runs`). No TUI and no
`status --watch` is open while a run is followed: what arrives is the watcher's doing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.waiting import wait_until
from tui.runs import procs
from tui.runs.notify import (
    Note,
    Notifier,
    Route,
    dest_id,
    dest_name,
    destinations,
    routes,
    sweep_note,
)
from tui.runs.store import RunStore
from tui.runs.watcher import watcher_alive, watcher_identity
from tui.state.records import EpochRecord
from tui.state.run import RunState
from tui.state.stall import EARLY_S, FLOOR_S, apply_stall, default_stall_after

SCRIPTS = Path(__file__).resolve().parent / "scripts"
HOST = socket.gethostname()
CHECKPOINT = """
[[checkpoints]]
epoch = 1
title = "Epoch 1 check"
rules = [
  { when = [{ metric = "sharpe", op = ">", value = 0.05 }], verdict = "good_start", level = "good", say = "Sharpe above 0.05" },
  { verdict = "weak", level = "bad", say = "weak start" },
]
"""
STEPPED = """description = "stand-in trainer: one epoch per go-file"
command = ["{python}", "stepped_train.py", "{run_dir}", "3"]
resume_args = ["--resume", "{ckpt}"]
max_epochs = 3
stall_after = "3s"
""" + CHECKPOINT
BOOM = """description = "crashes at once"
command = ["{python}", "-c", "import sys; print('loading the data', flush=True); sys.exit('boom: no data')"]
"""
REQUEUE = """description = "requeued once, then finishes"
command = ["{python}", "requeue_train.py", "{run_dir}"]
max_epochs = 2
"""


# ------------------------------------------------------------------------------- the endpoint
class Endpoint:
    """An HTTP server on 127.0.0.1 that records every POST (answering 500 to the first `fail`)."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.fail = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.lock:
                    code = 500 if outer.fail > 0 else 200
                    outer.fail -= code == 500
                    data = json.loads(body or b"{}")
                    outer.posts.append({"path": self.path, "code": code, "data": data,
                                        "form": "ntfy" if "topic" in data else "json"})
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def notes(self, run: str, event: str, delivered: bool = True) -> list[dict[str, Any]]:
        """The messages about `event` of `run` (answered 200 only, unless `delivered` is False)."""
        with self.lock:
            posts = list(self.posts)
        return [p for p in posts if p["data"].get("title") == f"runctl: {run} {event}"
                and (p["code"] == 200 or not delivered)]

    def forms(self, run: str, event: str) -> list[str]:
        return sorted(p["form"] for p in self.notes(run, event))


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    ep = Endpoint()
    yield ep
    ep.server.shutdown()
    ep.server.server_close()


@pytest.fixture
def presets(tmp_path: Path) -> Path:
    d = tmp_path / "presets"
    d.mkdir()
    shutil.copy(SCRIPTS / "stepped_train.py", d)
    shutil.copy(SCRIPTS / "requeue_train.py", d)
    shutil.copy(SCRIPTS.parent.parent / "presets" / "baselines.toml", d)
    (d / "stepped.toml").write_text(STEPPED)
    (d / "boom.toml").write_text(BOOM)
    (d / "requeue.toml").write_text(REQUEUE)
    return d


@pytest.fixture
def notify_toml(tmp_path: Path, endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's notify.toml ($RUNCTL_NOTIFY, set for every test by conftest): both forms, every
    event; retries fast and a watcher that ends 1.5 s after its last run."""
    path = Path(os.environ["RUNCTL_NOTIFY"])
    path.write_text(f'urls = ["json://127.0.0.1:{endpoint.port}/hook", '
                    f'"ntfy://127.0.0.1:{endpoint.port}/runs"]\n')
    monkeypatch.setenv("RUNCTL_NOTIFY_RETRY_S", "0.2")
    monkeypatch.setenv("RUNCTL_WATCHER_IDLE_S", "1.5")
    return path


@pytest.fixture
def ctl(logs_dir: Path, presets: Path, tmp_path: Path):  # noqa: ANN201
    """`runctl ARGS...` on the test's logs and presets (a fresh interpreter each time)."""

    def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "tui.cli", "--logs", str(logs_dir), "--presets", str(presets), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp_path,
                              env=dict(os.environ))

    return run


def launch(ctl: Any, preset: str) -> dict[str, Any]:
    r = ctl("launch", preset, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[0])


def go(logs: Path, run: str, epoch: int) -> None:
    """Let the stand-in run epoch `epoch`, and wait until it wrote it."""
    run_dir = logs / "runs" / run
    (run_dir / f"go{epoch}").touch()
    assert wait_until(lambda: (run_dir / f"done{epoch}").exists(), 20, 0.02), epoch


def state(ctl: Any, run: str) -> dict[str, Any]:
    r = ctl("status", run, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def check_message(note: dict[str, Any], run: str, *needles: str) -> None:
    """Each message says the run, the host, the event, and the command to act on it."""
    text = note["data"]["message"]
    assert f"run: {run}" in text and f"host: {HOST}" in text and "event: " in text, text
    assert "act: runctl " in text, text
    for n in needles:
        assert n in text, text


# ---------------------------------------------------------------------------- the watcher
def test_decided_stalled_cleared_finished_each_notified_once_with_no_window_open(
        logs_dir: Path, ctl: Any, endpoint: Endpoint, notify_toml: Path) -> None:
    """A checkpoint decided, a silence (`stalled` in status and runs, then cleared by the next
    output), the end: each reaches both forms exactly once, from the detached watcher alone."""
    run = launch(ctl, "stepped")["run"]
    training = logs_dir / "training"
    assert wait_until(lambda: watcher_alive(training), 10, 0.05), "the launch starts the watcher"
    go(logs_dir, run, 1)
    assert wait_until(lambda: endpoint.forms(run, "decided") == ["json", "ntfy"], 15, 0.1), endpoint.posts
    check_message(endpoint.notes(run, "decided")[0], run, "Epoch 1 check",
                  "verdict: ✅ good_start: Sharpe above 0.05")
    assert endpoint.notes(run, "decided")[0]["data"]["type"] == "success"

    # silent after epoch 1 (the stand-in waits for go2): stalled after stall_after = 3s
    assert wait_until(lambda: len(endpoint.notes(run, "stalled")) >= 2, 20, 0.1)
    st = state(ctl, run)
    assert st["state"] == "stalled" and st["stall_after"] == 3.0
    assert st["stalled_since"] is not None and time.time() - st["stalled_since"] >= 3
    rows = json.loads(ctl("runs", "--json").stdout)
    row = next(r for r in rows if r["run"] == run)
    assert row["state"] == "stalled" and row["stalled_since"] == pytest.approx(st["stalled_since"], abs=0.01)
    note = endpoint.notes(run, "stalled")[-1]
    check_message(note, run, "stalled: alive", "stall_after 3s", f"runctl kill {run}")
    assert "stalled" in ctl("status", run).stdout.lower()

    go(logs_dir, run, 2)  # output again: it clears
    st = state(ctl, run)
    assert st["state"] in ("training", "validating") and st["stalled_since"] is None, st["state"]

    go(logs_dir, run, 3)
    assert wait_until(lambda: endpoint.forms(run, "finished") == ["json", "ntfy"], 15, 0.1)
    check_message(endpoint.notes(run, "finished")[0], run, "finished (epoch 3/3)", "verdict: ",
                  f"runctl report {run}")
    time.sleep(1.5)  # a few more polls: nothing is sent again
    assert endpoint.forms(run, "decided") == ["json", "ntfy"]
    assert endpoint.forms(run, "finished") == ["json", "ntfy"]
    silences: dict[str, list[str]] = {}
    for n in endpoint.notes(run, "stalled"):
        silences.setdefault(n["data"]["message"].split("since ")[1][:19], []).append(n["form"])
    assert silences and all(sorted(f) == ["json", "ntfy"] for f in silences.values()), silences
    # the watcher ends once nothing is active, and says so in its log
    assert wait_until(lambda: not watcher_alive(training), 15, 0.1)
    assert not (training / "watcher.json").exists()
    log = (training / "watcher.log").read_text()
    assert f"sent finished of {run} to json://127.0.0.1:{endpoint.port}" in log
    assert "/hook" not in log and "/runs" not in log  # a URL's path is never logged


def test_a_crash_in_the_first_second_is_notified_with_its_error(
        logs_dir: Path, ctl: Any, endpoint: Endpoint, notify_toml: Path) -> None:
    run = launch(ctl, "boom")["run"]
    assert wait_until(lambda: endpoint.forms(run, "crashed") == ["json", "ntfy"], 15, 0.1), endpoint.posts
    note = endpoint.notes(run, "crashed")[0]
    check_message(note, run, "crashed at", "error: ")
    assert note["data"]["type"] == "failure"
    assert state(ctl, run)["state"] == "crashed"
    assert wait_until(lambda: not watcher_alive(logs_dir / "training"), 15, 0.1)
    assert endpoint.forms(run, "crashed") == ["json", "ntfy"]


def test_a_requeue_is_notified_once(logs_dir: Path, ctl: Any, endpoint: Endpoint, notify_toml: Path) -> None:
    run = launch(ctl, "requeue")["run"]
    assert wait_until(lambda: endpoint.forms(run, "requeued") == ["json", "ntfy"], 15, 0.1), endpoint.posts
    check_message(endpoint.notes(run, "requeued")[0], run, "requeued at", "exit: requeued (status 75)",
                  f"runctl status {run} --watch")
    (logs_dir / "runs" / run / "go").touch()
    assert wait_until(lambda: endpoint.forms(run, "finished") == ["json", "ntfy"], 15, 0.1)
    assert endpoint.forms(run, "requeued") == ["json", "ntfy"]


def test_a_failing_endpoint_is_retried_logged_and_never_harms_the_run(
        logs_dir: Path, ctl: Any, endpoint: Endpoint, notify_toml: Path) -> None:
    """The endpoint answers 500 three times, then takes them: each note arrives once; a URL where
    nothing listens is given up after its tries; the run finishes as if nothing happened."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # closed again: connection refused
    notify_toml.write_text(f'urls = ["json://127.0.0.1:{endpoint.port}/hook", "json://127.0.0.1:{dead}/x"]\n'
                           f'on = ["decided", "finished"]\n')
    endpoint.fail = 3
    os.environ["RUNCTL_NOTIFY_RETRY_S"] = "0.1"  # (monkeypatched by notify_toml: restored after)
    run = launch(ctl, "stepped")["run"]
    for e in (1, 2, 3):
        go(logs_dir, run, e)
    assert wait_until(lambda: endpoint.forms(run, "finished") == ["json"], 20, 0.1), endpoint.posts
    assert wait_until(lambda: endpoint.forms(run, "decided") == ["json"], 20, 0.1)
    assert len(endpoint.notes(run, "decided", delivered=False) + endpoint.notes(run, "finished", delivered=False)) == 5
    st = state(ctl, run)
    assert st["state"] == "finished" and st["exit_status"] == 0
    training = logs_dir / "training"
    assert wait_until(lambda: (training / "watcher.log").read_text().count("gave up sending") == 2, 30, 0.1)
    log = (training / "watcher.log").read_text()
    assert "(try 1/6)" in log and "error=500" in log.replace(" ", ""), log
    assert f"json://127.0.0.1:{dead}" in log and "/x" not in log
    assert not any(r["state"] == "stalled" for r in json.loads(ctl("runs", "--json").stdout))
    record = json.loads((training / "notified.json").read_text())
    statuses = {k: e["status"] for k, e in record["events"][run].items()}
    assert statuses == {"decided:Epoch 1 check": "partly", "finished:1": "partly"}, statuses
    assert "/hook" not in (training / "notified.json").read_text()  # no URL is ever recorded


def test_a_restarted_watcher_sends_nothing_twice(
        logs_dir: Path, ctl: Any, endpoint: Endpoint, notify_toml: Path) -> None:
    """The watcher is killed (SIGKILL) after it sent the decision: the next runctl command
    restarts it, it reads the run from its start again, and sends only what is new."""
    notify_toml.write_text(f'urls = ["json://127.0.0.1:{endpoint.port}/hook"]\non = ["decided", "finished"]\n')
    run = launch(ctl, "stepped")["run"]
    training = logs_dir / "training"
    go(logs_dir, run, 1)
    assert wait_until(lambda: endpoint.forms(run, "decided") == ["json"], 15, 0.1)
    first = watcher_identity(training)
    assert first is not None and procs.is_running(first)
    os.kill(first.pid, signal.SIGKILL)
    assert wait_until(lambda: not procs.is_running(first), 10, 0.05)
    go(logs_dir, run, 2)
    assert ctl("runs").returncode == 0  # any command: a watcher died with work left
    assert wait_until(lambda: (w := watcher_identity(training)) is not None and w.pid != first.pid
                      and procs.is_running(w), 10, 0.05)
    go(logs_dir, run, 3)
    assert wait_until(lambda: endpoint.forms(run, "finished") == ["json"], 15, 0.1)
    time.sleep(1.0)
    assert endpoint.forms(run, "decided") == ["json"], endpoint.posts


def test_a_preset_notify_table_adds_its_urls_and_events(
        logs_dir: Path, ctl: Any, endpoint: Endpoint, presets: Path, tmp_path: Path) -> None:
    """No notify.toml at all: a preset's [notify] alone starts the watcher and gets its events."""
    (presets / "mine.toml").write_text(STEPPED.replace(CHECKPOINT, "") + "[notify]\n"
                                       f'urls = ["ntfy://127.0.0.1:{endpoint.port}/mine"]\n'
                                       'on = ["finished"]\n')
    assert not Path(os.environ["RUNCTL_NOTIFY"]).exists()
    run = launch(ctl, "mine")["run"]
    for e in (1, 2, 3):
        go(logs_dir, run, e)
    assert wait_until(lambda: endpoint.forms(run, "finished") == ["ntfy"], 15, 0.1), endpoint.posts
    assert endpoint.notes(run, "finished")[0]["data"]["topic"] == "mine"
    manifest = (logs_dir / "training" / f"{run}.json").read_text()
    assert str(endpoint.port) not in manifest  # the URL stays in the preset file


# ------------------------------------------------------------------- stalled, with no watcher
def test_a_stalled_run_is_active_kill_works_resume_refuses(logs_dir: Path, ctl: Any) -> None:
    """Stall detection needs no watcher: the state is judged where it is read."""
    run = launch(ctl, "stepped")["run"]
    go(logs_dir, run, 1)
    assert not watcher_alive(logs_dir / "training")  # no notify.toml, no [notify]: no watcher
    assert wait_until(lambda: state(ctl, run)["state"] == "stalled", 20, 0.3)
    r = ctl("resume", run)
    assert r.returncode == 2 and "still running" in r.stderr
    r = ctl("kill", run, "--grace", "5")
    assert r.returncode == 0, r.stderr
    assert state(ctl, run)["state"] == "killed"


def test_the_tui_follower_shows_a_stall_and_its_end(logs_dir: Path, presets: Path) -> None:
    """The app's follower judges a silent run again each tick: `stalled` in its snapshot and one
    notice (the header's line and a toast), gone at the next output."""
    from tui.app.messages import RunNotice, RunSnapshot
    from tui.app.view import ACTIVE, ProcView
    from tui.app.widgets.run_watch import RunWatch, default_follower
    from tui.presets.registry import PresetRegistry
    from tui.runs.launcher import Launcher

    store = RunStore(logs_dir)
    m = Launcher(store, PresetRegistry(presets)).launch("stepped")
    log = store.log_path(m.run)
    posted: list[Any] = []
    probe = lambda man: ProcView(pid=man.pid, alive=procs.is_running(man.identity))  # noqa: E731
    watch = RunWatch(posted.append, log, default_follower(log), run=m.run, manifest=m, store=store, probe=probe)
    go(logs_dir, m.run, 1)

    def snapshot_state() -> str:
        watch.step()
        snaps = [p for p in posted if isinstance(p, RunSnapshot)]
        return snaps[-1].view.state.state if snaps else ""

    assert wait_until(lambda: snapshot_state() == "stalled", 20, 0.2)
    assert "stalled" in ACTIVE
    notices = [p.text for p in posted if isinstance(p, RunNotice) and p.text]
    assert len(notices) == 1 and notices[0].startswith("stalled: alive, but no output since"), notices
    go(logs_dir, m.run, 2)
    assert wait_until(lambda: snapshot_state() in ("training", "validating"), 10, 0.1)
    assert wait_until(lambda: watch.step() is not None and watch.notice is None, 5, 0.1)  # next tick
    assert [p.text for p in posted if isinstance(p, RunNotice)][-1] is None


# ------------------------------------------------------------------------------- user errors
def test_a_bad_notify_toml_or_preset_key_is_one_line_and_nothing_starts(
        logs_dir: Path, ctl: Any, presets: Path) -> None:
    cfg = Path(os.environ["RUNCTL_NOTIFY"])
    for text, needle in (('urls = ["bogus://x"]', "urls #1 (bogus://…): not a notification URL"),
                         ('on = ["finish"]', "on: unknown event 'finish'"),
                         ('urls = "json://h/x"', "urls: expected a list of strings"),
                         ('url = [', "invalid TOML"), ("urlz = []", "unknown key 'urlz'")):
        cfg.write_text(text + "\n")
        r = ctl("launch", "stepped")
        assert r.returncode == 2 and r.stderr.startswith(f"runctl: {cfg}: "), r.stderr
        assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "Traceback" not in r.stderr
    assert not list(logs_dir.glob("training/*.json")) and not list(logs_dir.glob("runs/*"))
    assert ctl("runs").returncode == 0  # reading commands do not care
    cfg.unlink()
    (presets / "late.toml").write_text(STEPPED.replace('"3s"', '"3 minutes"'))
    (presets / "loud.toml").write_text(STEPPED + '[notify]\non = ["everything"]\n')
    for name, needle in (("late", "stall_after: '3 minutes' is not a duration"),
                         ("loud", "notify.on: unknown event 'everything'")):
        r = ctl("launch", name)
        assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        r = ctl("presets", "check", str(presets / f"{name}.toml"))
        assert r.returncode == 2 and needle in r.stdout
    r = ctl("launch", "stepped", "--set", "stall_after=soon")
    assert r.returncode == 2 and "--set stall_after=soon: 'soon' is not a duration" in r.stderr


def test_notify_test_sends_to_each_url_and_says_which_failed(ctl: Any, endpoint: Endpoint,
                                                              notify_toml: Path) -> None:
    r = ctl("notify", "test")
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(p["form"] for p in endpoint.posts) == ["json", "ntfy"]
    endpoint.fail = 1
    r = ctl("notify", "test")
    assert r.returncode == 1 and "failed json://127.0.0.1" in r.stdout, r.stdout
    shown = json.loads(ctl("notify", "--json").stdout)
    assert shown["routes"][0]["urls"] == [f"json://127.0.0.1:{endpoint.port}", f"ntfy://127.0.0.1:{endpoint.port}"]


# ---------------------------------------------------------------------------- pure parts
def _rec(epoch: int, start: float | None, end: float | None) -> EpochRecord:
    return EpochRecord(epoch=epoch, started_at=start, ended_at=end, validated=end is not None)


def test_default_stall_after_is_three_typical_epochs_at_least_five_minutes() -> None:
    st = RunState()
    assert default_stall_after(st) == EARLY_S  # nothing completed yet: start-up may be long
    st.epochs = [_rec(1, 0, 600), _rec(2, 600, 1300), _rec(3, 1300, 1800)]
    assert default_stall_after(st) == 3 * 600
    st.epochs = [_rec(1, 0, 10), _rec(2, 10, 20)]
    assert default_stall_after(st) == FLOOR_S
    st.axis = "step"  # evaluations by step: the intervals between them
    st.epochs = [_rec(100, None, 1000), _rec(200, None, 1400), _rec(300, None, 1800)]
    assert default_stall_after(st) == 3 * 400
    st.epochs = [_rec(1, None, None)]  # a log without timestamps
    assert default_stall_after(st) == EARLY_S


def test_apply_stall_looks_at_the_log_metric_files_and_checkpoints(tmp_path: Path) -> None:
    log, run_dir = tmp_path / "run.log", tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "logs").mkdir()
    metrics = run_dir / "logs" / "metrics.csv"
    for p in (log, metrics):
        p.write_text("x\n")
    now = time.time()
    old = now - 100
    for p in (log, metrics, run_dir / "logs", run_dir / "checkpoints", run_dir):
        os.utime(p, (old, old))
    files = (("csv", f"{run_dir}/**/metrics.csv"),)

    def judged(**kw: Any) -> RunState:
        st = RunState(state="training")
        apply_stall(st, str(log), str(run_dir), files=files, stall_after=kw.pop("stall_after", 60), now=now, **kw)
        return st

    st = judged()
    assert st.state == "stalled" and st.stalled_since == pytest.approx(old, abs=0.01) and st.stall_after == 60
    assert judged(stall_after=0).state == "training"  # off
    assert judged(stall_after=200).state == "training"
    os.utime(metrics, (now - 5, now - 5))  # a metric file changed: not silent
    assert judged().state == "training"
    os.utime(metrics, (old, old))
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"x")  # a checkpoint: not silent
    assert judged().state == "training"
    st = RunState(state="finished")
    apply_stall(st, str(log), str(run_dir), stall_after=1, now=now)
    assert st.state == "finished"  # only a live state can stall


def test_routes_add_up_and_urls_never_show_their_secrets() -> None:
    user = Route(("json://h.example/a", "ntfy://ntfy.sh/t"), ("finished", "crashed"), "notify.toml")
    rts = routes(user, {"urls": ("slack://TOKENA/TOKENB/TOKENC",), "on": ("decided",)}, "p.toml")
    assert destinations(rts, "finished") == ["json://h.example/a", "ntfy://ntfy.sh/t"]
    assert destinations(rts, "decided") == ["slack://TOKENA/TOKENB/TOKENC"]
    assert destinations(routes(user, {"on": ("stalled",)}), "stalled") == list(user.urls)  # on alone
    assert destinations(routes(user, {"urls": ("json://x.example/b",)}), "crashed")[-1] == "json://x.example/b"
    assert destinations(routes(None, None), "finished") == []
    assert dest_name("slack://TOKENA/TOKENB/TOKENC") == "slack://TOK…"
    assert dest_name("ntfys://user:secret@ntfy.example.com/topic?x=1") == "ntfys://ntfy.example.com"
    assert dest_name("tgram://123456789:AAHsecret/42") == "tgram://123…"


def test_the_record_keeps_each_note_once_across_senders(tmp_path: Path) -> None:
    """Two notifiers on one record (a restarted watcher, a sweep runner): a key offered by one is
    never sent by the other; a failure is retried until its tries run out."""
    sent: list[tuple[str, str]] = []
    answers = iter([None, "HTTP 500", None])

    def sender(url: str, note: Note) -> str | None:
        sent.append((url, note.key))
        return next(answers, None)

    a = Notifier(tmp_path, say=lambda _: None, retry_s=0.0, sender=sender)
    b = Notifier(tmp_path, say=lambda _: None, retry_s=0.0, sender=sender)
    note = sweep_note("s1", HOST, "sweep_done: 8 runs, 7 finished, 1 crashed", "s1_lr3 (val_loss 0.31)",
                      "runctl runs")
    assert note.title == "runctl: s1 sweep_done" and note.body.startswith(f"sweep: s1\nhost: {HOST}\n")
    assert "best: s1_lr3 (val_loss 0.31)" in note.body and note.body.endswith("act: runctl runs")
    assert a.offer(note, ["json://h.example/1"])
    assert b.offer(note, ["json://h.example/1"]) and sent == [("json://h.example/1", "sweep_done")]
    other = Note("finished", "r1", "finished:1", "t", "b")
    assert a.offer(other, ["json://h.example/1"]) and a.pending() == 1  # HTTP 500: waits for its retry
    assert a.load()["events"]["r1"]["finished:1"]["to"][dest_id("json://h.example/1")]["error"] == "HTTP 500"
    c = Notifier(tmp_path, say=lambda _: None, retry_s=0.0, sender=sender)  # a restarted sender
    assert c.recover() == ["r1"] and c.pending() == 1
    c.urls[dest_id("json://h.example/1")] = "json://h.example/1"  # its route, known again
    c.pump()
    assert c.pending() == 0 and sent[-1] == ("json://h.example/1", "finished:1") and len(sent) == 3
    entry = c.load()["events"]["r1"]["finished:1"]
    assert entry["status"] == "sent" and "body" not in entry  # settled: the text is not kept
    d = Notifier(tmp_path, say=lambda _: None, retry_s=0.0, sender=sender, tries=2)
    assert d.offer(Note("crashed", "r2", "crashed:1", "t", "b"), ["json://h.example/1"])  # answered None
    e = Notifier(tmp_path, say=lambda _: None, retry_s=0.0, sender=lambda u, n: "down", tries=2)
    assert e.offer(Note("crashed", "r3", "crashed:1", "t", "b"), ["json://h.example/1"]) and e.pending() == 1
    e.pump()
    assert e.pending() == 0 and e.load()["events"]["r3"]["crashed:1"]["status"] == "failed"
