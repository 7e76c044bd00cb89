"""Runs on other hosts over ssh, against two real sshd servers on 127.0.0.1 (tests/sshd.py):
launch on each host, every command across them, one connection per host, the log followed live
through one ssh stream (the feed's and `runctl log --follow`'s) and resumed after a dropped
connection without a lost or doubled byte, a host that stops answering. `make test-ssh` runs
them (it installs openssh-server if sshd is missing); inside `make test` they skip."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import runctl_cmd
from tests.sshd import ENABLED, SSHD, Hosts, Sshd
from tests.waiting import wait_until
from tui.runs.remote import Remote
from tui.runs.tail import RunTail

pytestmark = [pytest.mark.ssh,
              pytest.mark.skipif(not (ENABLED and SSHD), reason="no sshd servers (make test-ssh starts them)")]

MINE = """description = "a preset of this machine only"
extends = "mybase"
max_epochs = 2
"""
MYBASE = """description = "its parent"
max_epochs = 3
gpus = 0
cwd = "{root}"
command = ["{{python}}", "tests/scripts/stepped_train.py", "{{run_dir}}", "{{max_epochs}}"]
resume_args = ["--resume", "{{ckpt}}"]
"""


@pytest.fixture
def presets_dir(tmp_path: Path) -> Path:
    """This machine's presets: one that no host has (for --send), extending another."""
    from tests.sshd import ROOT

    d = tmp_path / "local-presets"
    d.mkdir()
    (d / "mine.toml").write_text(MINE)
    (d / "mybase.toml").write_text(MYBASE.format(root=ROOT))
    return d


@pytest.fixture
def hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reaper) -> Iterator[Hosts]:  # noqa: ANN001
    """Two hosts, h1 and h2, each with the stepped stand-in preset `step`; the controller's
    environment points at their hosts file."""
    h = Hosts(tmp_path)
    try:
        for s in h.servers.values():
            s.preset("step")
            s.preset("step1", gpus=1)
        h.start()
        for k, v in h.env().items():
            monkeypatch.setenv(k, v)
        yield h
    finally:
        h.close()


def _launch(runctl, host: str, *args: str) -> dict:  # noqa: ANN001
    r = runctl("launch", args[0] if args else "step", "--host", host, "--json", *args[1:], timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


def _status(runctl, target: str) -> dict:  # noqa: ANN001
    r = runctl("status", target, "--json", timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _one_line(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("runctl: "), r.stderr
    return lines[0]


# ------------------------------------------------------------------ every command across hosts
def test_launch_list_kill_resume_across_two_hosts(hosts: Hosts, runctl, logs_dir: Path) -> None:  # noqa: ANN001
    a = _launch(runctl, "h1")
    b = _launch(runctl, "h2")
    assert a["host"] == "h1" and b["host"] == "h2" and a["pid"] and b["pid"]
    r1, r2 = a["run"], b["run"]
    assert hosts["h1"].log(r1).parent.is_dir() and hosts["h2"].log(r2).parent.is_dir()

    # runs: every host's, with a host column; --host filters; local has none
    rows = json.loads(runctl("runs", "--json").stdout)
    assert {("h1", r1), ("h2", r2)} <= {(r["host"], r["run"]) for r in rows}
    text = runctl("runs").stdout.splitlines()
    assert text[0].startswith("host ") and any(ln.startswith("h1 ") and r1 in ln for ln in text)
    assert any(ln.startswith("h2 ") and r2 in ln for ln in text)
    only = json.loads(runctl("runs", "--json", "--host", "h2").stdout)
    assert [r["run"] for r in only] == [r2] and only[0]["host"] == "h2"
    assert json.loads(runctl("runs", "--json", "--host", "local").stdout) == []
    # on the host itself, with the same hosts file (a shared home lists h2 there too), each run
    # is listed once: its own as its own
    far = subprocess.run(runctl_cmd(hosts["h2"].dir / "_logs", hosts["h2"].dir / "presets", "runs", "--json"),
                         capture_output=True, text=True, timeout=60)
    there = [(r["host"], r["run"]) for r in json.loads(far.stdout)]
    assert there.count(("local", r2)) == 1 and ("h2", r2) not in there and ("h1", r1) in there

    # status HOST:RUN and by a run id unique across hosts
    hosts["h2"].go(r2, 1)
    assert wait_until(lambda: _status(runctl, f"h2:{r2}")["epoch"] == 1, 30, 0.3)
    st = _status(runctl, r2)
    assert st["host"] == "h2" and st["state"] in ("training", "validating") and st["manifest"]["run"] == r2
    assert st["process"]["alive"]  # the host's process stats, from there
    assert "state" in runctl("status", f"h2:{r2}").stdout

    # kill and resume on the second host
    k = runctl("kill", f"h2:{r2}", "--grace", "10", timeout=60)
    assert k.returncode == 0, k.stderr
    assert "killed: on h2: SIGTERM -> process group" in k.stdout and "h2: run" in k.stdout
    assert _status(runctl, f"h2:{r2}")["state"] == "killed"
    assert _status(runctl, f"h1:{r1}")["state"] in ("launching", "training")  # the other host untouched
    res = runctl("resume", r2, "--json", timeout=60)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["host"] == "h2" and out["run"] == r2 and out["pid"] != b["pid"]
    watch = subprocess.Popen(runctl_cmd(logs_dir, logs_dir.parent / "local-presets", "status", f"h2:{r2}",
                                        "--watch", "--json"), stdout=subprocess.PIPE, text=True)
    hosts["h2"].go(r2, 2)
    hosts["h2"].go(r2, 3)
    out_watch, _ = watch.communicate(timeout=60)
    assert watch.returncode == 0 and json.loads(out_watch.splitlines()[-1])["state"] == "finished"
    assert json.loads(out_watch.splitlines()[-1])["epoch"] == 3

    # the log, raw, from a byte offset; the report; the baseline on the host's table
    far_log = hosts["h2"].log(r2).read_bytes()
    got = subprocess.run(runctl_cmd(logs_dir, logs_dir, "log", f"h2:{r2}", "--from", "10"),
                         capture_output=True, timeout=60)
    assert got.returncode == 0 and got.stdout == far_log[10:]
    rep = runctl("report", f"h2:{r2}", "-o", str(logs_dir.parent / "r.md"))
    assert rep.returncode == 0, rep.stderr
    assert r2 in (logs_dir.parent / "r.md").read_text()
    base = runctl("baseline", f"h2:{r2}", "--as", "from h2")
    assert base.returncode == 0 and base.stdout.startswith("h2: added baseline 'from h2'"), base.stderr
    assert "from h2" in (hosts["h2"].dir / "presets" / "baselines.toml").read_text()

    # mistakes: one line each
    assert "unknown host 'h9'" in _one_line(runctl("status", "h9:x"))
    assert _one_line(runctl("kill", f"h2:{r2}")).startswith(f"runctl: h2: run {r2} is not running")
    assert "unknown run 'nope' here or on h1, h2" in _one_line(runctl("status", "nope"))
    assert "unknown host 'h9'" in _one_line(runctl("runs", "--host", "h9"))


def test_follow_resumes_after_a_dropped_connection(hosts: Hosts, runctl, logs_dir: Path) -> None:  # noqa: ANN001
    """One streaming ssh process appends the far log to the copy here; the connection killed
    mid-run, the stream starts again from the copy's size: the copy is the far log, byte for
    byte; the far follower of the dropped connection does not stay behind."""
    h1 = hosts["h1"]
    run = _launch(runctl, "h1")["run"]
    remote = Remote(logs_dir)
    m = remote.refresh("h1", run)
    store = remote.store("h1")
    tail = RunTail(store, store.log_path(run), m)
    try:
        assert tail.feed is not None
        tail.poll()  # the copy brought up to date
        h1.go(run, 1)
        assert wait_until(lambda: tail.poll().epoch == 1, 30, 0.2)
        followers = _far_followers(run)
        assert len(followers) == 1  # one stream: one `runctl log --follow` there
        ours = [psutil.Process(), *(p for p in psutil.process_iter(["cmdline"])  # this controller and
                                    if any(str(hosts.sock_dir) in a for a in p.info["cmdline"] or ()))]
        assert len(ours) >= 2  # its ssh processes (the stream, the connection's master)
        for p in ours:  # nothing of runctl's listens on a port (a control socket is a file)
            assert not [c for c in p.net_connections("inet") if c.status == psutil.CONN_LISTEN]
        assert h1.drop_connections() >= 1
        assert wait_until(lambda: not any(p.is_running() for p in followers), 10, 0.2)  # none left behind
        h1.go(run, 2)
        assert wait_until(lambda: tail.poll().epoch == 2, 30, 0.2)
        assert tail.feed.streams >= 2  # it reconnected
        h1.go(run, 3)
        assert wait_until(lambda: tail.poll().state == "finished", 30, 0.2)
        assert store.log_path(run).read_bytes() == h1.log(run).read_bytes()
        assert wait_until(lambda: not _far_followers(run), 10, 0.2)  # the stream ended with the run
    finally:
        tail.close()

    # `launch --follow` on a host: its progress printed here, to its end
    p = subprocess.Popen(runctl_cmd(logs_dir, logs_dir.parent / "local-presets", "launch", "step", "--host",
                                    "h2", "--name", "followed", "--follow"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert wait_until(lambda: any(hosts["h2"].dir.glob("_logs/runs/followed_*")), 30, 0.2)
    (d,) = hosts["h2"].dir.glob("_logs/runs/followed_*")
    for e in (1, 2, 3):
        (d / f"go{e}").touch()
    out, err = p.communicate(timeout=90)
    assert p.returncode == 0, err
    assert "Epoch 3/3: train_loss=0.3333" in out and f"run {d.name} finished" in out


def _sessions(server: Sshd) -> tuple[int, int, int]:
    """How many connections the server has: (authenticated so far, TCP connections to it now,
    processes it forked for them now).

    The first is the count that matters, as it cannot miss a connection that came and went
    between two looks: sshd logs `Accepted publickey for USER` once per authenticated connection
    (at LogLevel INFO, `Sshd.accepted`), however many sessions that connection then carries (a
    multiplexed one: every command's). The other two say the one connection is up now: sshd's
    end of each connection is a socket whose local port is the server's (the client's end, on
    this machine too, has it as its remote port: not counted twice), ESTABLISHED while it lives;
    and the listener forks one child per accepted connection in every OpenSSH version (sshd
    itself, or `sshd-session` from 9.8), the sessions running under it."""
    conns = [c for c in psutil.net_connections("tcp")
             if c.laddr and c.laddr.port == server.port and c.status == psutil.CONN_ESTABLISHED]
    assert server.proc is not None
    return server.accepted(), len(conns), len(psutil.Process(server.proc.pid).children())


def test_one_connection_per_host(hosts: Hosts, runctl, logs_dir: Path) -> None:  # noqa: ANN001
    """Every runctl process asks a host through one multiplexed connection (ControlMaster, its
    socket in $RUNCTL_SSH_DIR, kept ControlPersist seconds): a launch, `runs`, `status HOST:RUN`
    (several) and a live `log HOST:RUN --follow` with a `status` beside it, each a process of its
    own, and the host's sshd has authenticated exactly one connection, which the follow's stream
    rides and which stays for the next command."""
    h1, h2 = hosts["h1"], hosts["h2"]
    assert _sessions(h1) == (0, 0, 0)
    run = _launch(runctl, "h1")["run"]
    assert runctl("runs", "--json").returncode == 0  # both hosts asked, in parallel
    h1.go(run, 1)
    assert wait_until(lambda: _status(runctl, f"h1:{run}")["epoch"] == 1, 30, 0.3)
    follow = subprocess.Popen(runctl_cmd(logs_dir, logs_dir, "log", f"h1:{run}", "--follow"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_until(lambda: len(_far_followers(run)) == 1, 30, 0.2)  # the stream is on
        assert _status(runctl, f"h1:{run}")["state"] in ("training", "validating")  # meanwhile
        assert _sessions(h1) == (1, 1, 1)
        assert _sessions(h2) == (1, 1, 1)  # `runs` asked it: its own one
        h1.go(run, 2)
        h1.go(run, 3)
        out, err = follow.communicate(timeout=60)
        assert follow.returncode == 0, err
        assert out == h1.log(run).read_bytes()
    finally:
        follow.kill()
        follow.wait()
    assert _status(runctl, f"h1:{run}")["state"] == "finished"
    assert _sessions(h1) == (1, 1, 1)  # still the one


def test_log_follow_reconnects_after_a_dropped_connection(hosts: Hosts, runctl, logs_dir: Path) -> None:  # noqa: ANN001
    """`runctl log HOST:RUN --follow` (what a user pipes to grep): its connection killed mid-run,
    and later its host gone while the run writes an epoch, it follows again from the byte it
    had each time: its output ends with the far log, every line of it exactly once."""
    h1 = hosts["h1"]
    run = _launch(runctl, "h1")["run"]
    follow = subprocess.Popen(runctl_cmd(logs_dir, logs_dir, "log", f"h1:{run}", "--follow"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    got, said = bytearray(), bytearray()

    def drain(pipe: Any, into: bytearray) -> None:
        while chunk := pipe.read1(1 << 16):
            into.extend(chunk)

    readers = [threading.Thread(target=drain, args=(follow.stdout, got), daemon=True),
               threading.Thread(target=drain, args=(follow.stderr, said), daemon=True)]
    for t in readers:
        t.start()
    try:
        h1.go(run, 1)
        assert wait_until(lambda: b"Epoch 1/3" in got and got == h1.log(run).read_bytes(), 30, 0.2)
        # dropped: its connections killed, the server still listens (it reconnects at once)
        assert h1.drop_connections() >= 1
        assert wait_until(lambda: b"connection lost; following again from byte" in said, 20, 0.2), said
        h1.go(run, 2)
        assert wait_until(lambda: b"Epoch 2/3" in got, 30, 0.2), said
        # gone while the run writes: what it wrote then comes once the host answers again
        h1.stop()
        h1.go(run, 3)
        assert wait_until(lambda: b"Epoch 3/3" in h1.log(run).read_bytes(), 30, 0.2)
        h1.start()
        follow.wait(timeout=60)
        for t in readers:
            t.join(timeout=10)
        assert follow.returncode == 0, bytes(said)
    finally:
        follow.kill()
        follow.wait()
    far_log = h1.log(run).read_bytes()
    assert bytes(got) == far_log
    for e in (1, 2, 3):
        assert got.count(f"Epoch {e}/3".encode()) == far_log.count(f"Epoch {e}/3".encode()) == 1
    assert said.count(b"connection lost; following again from byte") >= 2, said  # both times


def _far_followers(run: str) -> list[psutil.Process]:
    """The `runctl log local:RUN --follow` processes (the far side of a stream)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if "log" in cmd and f"local:{run}" in cmd and "--follow" in cmd:
            found.append(p)
    return found


# ------------------------------------------------------------------ a host that stops answering
def test_a_host_down_is_one_line_and_never_a_hang(hosts: Hosts, runctl) -> None:  # noqa: ANN001
    r1 = _launch(runctl, "h1")["run"]
    r2 = _launch(runctl, "h2")["run"]
    hosts["h2"].freeze()  # answers nothing: the listing waits its timeout (4 s here), no more
    t0 = time.monotonic()
    r = runctl("runs", timeout=30)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert took < 8, took
    assert r1 in r.stdout and r2 not in r.stdout
    assert r.stdout.strip().splitlines()[-1].startswith("h2: unreachable (ssh: ")

    hosts["h2"].stop()  # gone: refused at once
    # its run lives on: a detached process of its runctl, not of the ssh session
    assert [p for p in psutil.process_iter(["cmdline"]) if any(r2 in a for a in p.info["cmdline"] or ())]
    t0 = time.monotonic()
    r = runctl("runs", "--json", timeout=30)
    assert time.monotonic() - t0 < 4
    assert [x["run"] for x in json.loads(r.stdout)] == [r1]
    assert r.stderr.strip().startswith("runctl: h2: unreachable (ssh: ") and "refused" in r.stderr
    for args in (("status", f"h2:{r2}"), ("kill", f"h2:{r2}"), ("resume", f"h2:{r2}"),
                 ("launch", "step", "--host", "h2")):
        assert _one_line(runctl(*args, timeout=30)).startswith("runctl: h2: unreachable (ssh: ")
    assert _status(runctl, f"h1:{r1}")["state"] in ("launching", "training")  # h1 still answers


# ------------------------------------------------------------------ --host any, the queue, --send
def test_host_any_takes_a_free_slot(hosts: Hosts, runctl) -> None:  # noqa: ANN001
    """Each host declares one GPU (its sshd's RUNCTL_GPUS=0): two one-GPU runs go to two hosts,
    a third finds no slot; the queue stays the host's."""
    a = _launch(runctl, "any", "step1")
    b = _launch(runctl, "any", "step1")
    assert {a["host"], b["host"]} == {"h1", "h2"}
    line = _one_line(runctl("launch", "step1", "--host", "any"))
    assert "no host has a free slot for step1" in line and "h1: 0 of 1 GPU(s) free" in line
    q = _launch(runctl, "h1", "step1", "--queue", "--name", "waits")
    assert q["host"] == "h1" and q["queued"] == "q1"
    assert "--host any --queue" in _one_line(runctl("launch", "step1", "--host", "any", "--queue"))


def test_send_a_preset_of_this_machine(hosts: Hosts, runctl) -> None:  # noqa: ANN001
    assert "h2: unknown preset 'mine'" in _one_line(runctl("launch", "mine", "--host", "h2"))
    a = _launch(runctl, "h2", "mine", "--send")
    assert a["host"] == "h2"
    far = hosts["h2"].dir / "presets"
    assert (far / "mine.toml").read_text() == MINE and (far / "mybase.toml").is_file()
    assert _status(runctl, f"h2:{a['run']}")["preset"] == "mine"
    _launch(runctl, "h2", "mine", "--send", "--name", "again")  # the same files: left as they are
    (far / "mine.toml").write_text(MINE.replace("max_epochs = 2", "max_epochs = 5"))
    line = _one_line(runctl("launch", "mine", "--host", "h2", "--send"))
    assert "mine.toml exists here with other content" in line and line.startswith("runctl: h2: ")


SWEEP = """description = "a sweep sent to a host"
command = ["{{python}}", "{root}/tests/scripts/sweep_target.py", "--out", "{{run_dir}}",
           "--max-epochs", "{{max_epochs}}"]
override_format = ["--{{key}}", "{{value}}"]
max_epochs = 2
gpus = 0

[overrides]
sleep = 0.1

[[criteria]]
metric = "val_loss"
op = "<"
value = 1.0
label = "val_loss below 1"

[sweep]
x = [0.0, 0.3]
parallel = 1
"""


def test_a_sweep_on_a_host(hosts: Hosts, runctl, presets_dir: Path) -> None:  # noqa: ANN001
    """`runctl sweep PRESET --host HOST --send`: the host's queue and driver run it; `sweep status
    HOST:ID` ranks it from here."""
    from tests.sshd import ROOT

    (presets_dir / "swp.toml").write_text(SWEEP.format(root=ROOT))
    r = runctl("--presets", str(presets_dir), "sweep", "swp", "--host", "h2", "--send", "--json", timeout=60)
    assert r.returncode == 0, r.stderr
    started = json.loads(r.stdout)
    assert started["host"] == "h2" and started["points"] == 2
    got: dict = {}

    def done() -> bool:
        r = runctl("sweep", "status", f"h2:{started['sweep']}", "--json", timeout=60)
        assert r.returncode == 0, r.stderr
        got.update(json.loads(r.stdout))
        return got["done"]

    assert wait_until(done, 90, 1.0), got
    assert [p["values"]["x"] for p in got["points"]] == ["0.3", "0"] and got["points"][0]["rank"] == 1
    text = runctl("sweep", "status", f"h2:{started['sweep']}", timeout=60).stdout
    assert f"h2:{started['sweep']}" in text and "finished" in text


LIT = """description = "plain Lightning, its default logger: metrics only in its event files"
command = ["{{python}}", "{root}/tests/scripts/lightning_default.py", "--run-dir", "{{run_dir}}",
           "--max-epochs", "{{max_epochs}}"]
max_epochs = 2
gpus = 0
"""


def test_a_remote_runs_metric_files_are_mirrored(hosts: Hosts, runctl, logs_dir: Path) -> None:  # noqa: ANN001
    """A script whose metrics are only in files beside its log (Lightning's default TensorBoard
    logger; its rich bar prints nothing while the output is not a terminal), followed from here:
    the ssh feed copies its event files into the mirror, and the mirror's state has its epochs
    and metrics, as a local run's would."""
    from tests.sshd import ROOT

    (hosts["h1"].dir / "presets" / "lit.toml").write_text(LIT.format(root=ROOT))
    run = _launch(runctl, "h1", "lit")["run"]
    remote = Remote(logs_dir)
    m = remote.refresh("h1", run)
    store = remote.store("h1")
    assert all(g.startswith(str(store.run_dir(run).absolute())) for _, g in m.source_config.files)
    tail = RunTail(store, store.log_path(run), m)
    seen: dict = {}
    try:
        def done() -> bool:
            st = tail.poll()
            seen.update(state=st.state, epochs=[(r.epoch, sorted(r.metrics)) for r in st.epochs if r.validated])
            return st.state == "finished" and len(seen["epochs"]) == 2

        assert wait_until(done, 90, 0.5), seen
        assert all({"val_loss", "val_acc"} <= set(names) for _, names in seen["epochs"]), seen
        copies = list(store.run_dir(run).rglob("events.out.tfevents.*"))
        (far_file,) = hosts["h1"].run_dir(run).rglob("events.out.tfevents.*")
        assert copies and copies[0].read_bytes() == far_file.read_bytes()
    finally:
        tail.close()


def test_a_remote_run_stalled_there_is_stalled_here(hosts: Hosts, runctl, logs_dir: Path) -> None:  # noqa: ANN001
    """The host judges a silence; the mirror (the TUI, the runs screen) says what it says, and
    clears with it."""
    from tests.sshd import ROOT, STEP

    h1 = hosts["h1"]
    (h1.dir / "presets" / "quiet.toml").write_text(
        STEP.format(host="h1", epochs=2, root=ROOT, gpus=0) + 'stall_after = "2s"\n')
    run = _launch(runctl, "h1", "quiet")["run"]
    remote = Remote(logs_dir)
    m = remote.refresh("h1", run)
    store = remote.store("h1")
    tail = RunTail(store, store.log_path(run), m)
    try:
        assert wait_until(lambda: tail.poll().state == "stalled", 40, 0.5)
        st = tail.poll()
        assert st.stalled_since is not None and st.stall_after == 2.0
        since = st.stalled_since
        h1.go(run, 1)

        def moved() -> bool:  # output again: that stall is over (the script may fall silent again
            now = tail.poll()  # before the host is next asked: then a later stall has begun)
            return now.state != "stalled" or (now.stalled_since or 0) > since

        assert wait_until(moved, 30, 0.5)
        h1.go(run, 2)
        assert wait_until(lambda: tail.poll().state == "finished", 30, 0.5)
    finally:
        tail.close()
