"""Launcher: pid verification, kill escalation, the lock, detachment, autopilot policy; lifecycle
with the real engine (slow)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from tui.errors import RunctlError
from tui.presets.preset import PresetError
from tui.presets.registry import PresetRegistry
from tui.runs import procs
from tui.runs import tail as watch
from tui.runs.autopilot import Autopilot, decide
from tui.runs.launcher import Launcher
from tui.runs.lock import LockTimeout, controller_lock
from tui.runs.store import Manifest, RunStore
from tui.state.follow import LogFollower
from tui.state.run import RunState


def make_launcher(logs_dir: Path, presets_dir: Path, **kw) -> Launcher:
    return Launcher(RunStore(logs_dir), PresetRegistry(presets_dir), **kw)


def spawn(reaper, *argv: str, ready: bool = False) -> psutil.Process:
    """A detached helper process (its group dies at teardown)."""
    p = subprocess.Popen(list(argv), start_new_session=True, stdout=subprocess.PIPE, text=True)
    reaper.add(p.pid)
    if ready:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return psutil.Process(p.pid)


def adopt(store: RunStore, proc: psutil.Process, run: str = "tiny_20261124_042151", **kw) -> Manifest:
    """A manifest claiming `proc` as the run's engine (fields overridable)."""
    fields = {"pid": proc.pid, "create_time": proc.create_time(), "cmdline": tuple(proc.cmdline())}
    fields.update(kw)
    m = Manifest(run=run, name="tiny", preset="tiny", log=str(store.log_path(run)),
                 run_dir=str(store.run_dir(run)), pid_file=str(store.pid_path("tiny")),
                 created_at=time.time(), host="box", state="running", **fields)
    store.save(m)
    return m


IGNORE_TERM = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
               "print('ready', flush=True); time.sleep(60)")


# ------------------------------------------------------------------------------- pid reuse
@pytest.mark.parametrize("wrong", ["create_time", "cmdline"])
def test_kill_refuses_a_reused_pid(logs_dir, presets_dir, reaper, runctl, wrong) -> None:
    store = RunStore(logs_dir)
    sleeper = spawn(reaper, "sleep", "60")
    bad = ({"create_time": sleeper.create_time() - 3600} if wrong == "create_time"
           else {"cmdline": (sys.executable, "-m", "engine", "train", "--run-dir", "x")})
    m = adopt(store, sleeper, **bad)
    with pytest.raises(RunctlError, match=rf"refusing to signal pid {sleeper.pid}: it is not run "):
        make_launcher(logs_dir, presets_dir).kill(m.run, grace=1)
    r = runctl("kill", m.run, "--grace", "1")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"runctl: refusing to signal pid {sleeper.pid}")
    assert "pid was reused" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert sleeper.is_running() and sleeper.status() != psutil.STATUS_ZOMBIE  # untouched
    assert store.get(m.run) == m  # nothing recorded
    assert store.state(m).state == "crashed"  # not our process: the run itself is gone


def test_kill_sigterm_then_gone(logs_dir, presets_dir, reaper) -> None:
    store = RunStore(logs_dir)
    m = adopt(store, spawn(reaper, "sleep", "60"))
    said: list[str] = []
    summary = make_launcher(logs_dir, presets_dir).kill(m.run, grace=10, say=said.append)
    assert summary.startswith(f"SIGTERM -> process group {m.pid}") and "exited after SIGTERM" in summary
    assert "waiting up to 10s" in said[0]
    after = store.get(m.run)
    assert after.state == "killed" and after.history[-1]["event"] == "kill"
    assert after.history[-1]["signals"] == ["SIGTERM"]
    assert store.state(after).state == "killed"
    with pytest.raises(RunctlError, match="is not running"):
        make_launcher(logs_dir, presets_dir).kill(m.run)


def test_kill_escalates_to_sigkill_after_grace(logs_dir, presets_dir, reaper, runctl) -> None:
    store = RunStore(logs_dir)
    proc = spawn(reaper, sys.executable, "-c", IGNORE_TERM, ready=True)
    m = adopt(store, proc)
    t0 = time.monotonic()
    r = runctl("kill", m.run, "--grace", "0.5")
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 20
    assert "SIGTERM -> process group" in r.stdout
    assert "still alive after 0.5s: SIGKILL -> process group" in r.stdout
    assert not procs.is_running(m.identity)
    assert store.get(m.run).history[-1]["signals"] == ["SIGTERM", "SIGKILL"]


def test_resume_refuses_a_live_run_and_a_run_without_checkpoint(logs_dir, presets_dir, reaper) -> None:
    store = RunStore(logs_dir)
    m = adopt(store, spawn(reaper, "sleep", "60"))
    launcher = make_launcher(logs_dir, presets_dir)
    with pytest.raises(RunctlError, match=rf"still running \(pid {m.pid}\); kill it first"):
        launcher.resume(m.run)
    store.save(replace(m, pid=None, create_time=None))
    with pytest.raises(RunctlError, match="no checkpoint to resume from"):
        launcher.resume(m.run)


# ------------------------------------------------------------------------------------ lock
HOLD = ("import sys, time; from tui.runs.lock import controller_lock\n"
        "with controller_lock(sys.argv[1], 'test holder'):\n"
        "    print('ready', flush=True); time.sleep(60)")


def test_lock_held_elsewhere_times_out_cleanly(logs_dir, presets_dir, reaper, runctl) -> None:
    holder = spawn(reaper, sys.executable, "-c", HOLD, str(logs_dir), ready=True)
    launcher = make_launcher(logs_dir, presets_dir, lock_timeout=0.3)
    with pytest.raises(LockTimeout, match=rf"another runctl holds .*pid={holder.pid} test holder"):
        launcher.launch("tiny")
    assert sorted(p.name for p in (logs_dir / "training").iterdir()) == [".runctl.lock"]
    r = runctl("launch", "tiny", env={"RUNCTL_LOCK_TIMEOUT": "0.3"})
    assert r.returncode == 2 and r.stderr.startswith("runctl: another runctl holds")
    assert "gave up after 0.3s" in r.stderr and "Traceback" not in r.stderr
    assert not (logs_dir / "runs").exists()


SECTION = ("import os, sys, time; from tui.runs.lock import controller_lock\n"
           "for _ in range(3):\n"
           "    with controller_lock(sys.argv[1], 'section'):\n"
           "        open(sys.argv[2], 'a').write(f'start {os.getpid()}\\n'); time.sleep(0.1)\n"
           "        open(sys.argv[2], 'a').write(f'end {os.getpid()}\\n')\n")


def test_lock_serialises_processes(logs_dir, tmp_path) -> None:
    out = tmp_path / "sections.txt"
    ps = [subprocess.Popen([sys.executable, "-c", SECTION, str(logs_dir), str(out)]) for _ in range(3)]
    assert [p.wait(timeout=60) for p in ps] == [0, 0, 0]
    lines = out.read_text().splitlines()
    assert len(lines) == 18
    for start, end in zip(lines[::2], lines[1::2], strict=True):
        assert start.startswith("start ") and end == "end " + start.split()[1]  # never interleaved


def test_lock_is_reentrant_across_calls(logs_dir) -> None:
    for _ in range(2):
        with controller_lock(logs_dir, "a", timeout=0.5):
            pass


# ---------------------------------------------------------------------------- validation
@pytest.mark.parametrize(("preset", "sets", "envs", "message"), [
    ("nope", [], [], r"unknown preset 'nope' .*presets: atft_pipeline, baseline, "),
    ("tiny", ["model.no_such_key=1"], [], r"--set model.no_such_key=1"),
    ("tiny", ["model.hidden_size=abc"], [], r"--set model.hidden_size=abc"),
    ("tiny", [], ["SHARPE_WEIGHT=abc"], r"--env SHARPE_WEIGHT=abc"),
    ("tiny", [], ["lower=1"], r"--env lower=1"),
])
def test_bad_launch_writes_nothing(logs_dir, presets_dir, preset, sets, envs, message) -> None:
    with pytest.raises(PresetError, match=message):
        make_launcher(logs_dir, presets_dir).launch(preset, sets, envs)
    assert not logs_dir.exists()


def test_bad_name_writes_nothing(logs_dir, presets_dir) -> None:
    with pytest.raises(RunctlError, match="--name '../x'"):
        make_launcher(logs_dir, presets_dir).launch("tiny", name="../x")
    assert not logs_dir.exists()


# ------------------------------------------------------------------------------- autopilot
def verdicts(action: str, preset: str | None, source: str | None, level: str | None):
    rec = SimpleNamespace(action=action, preset=preset, verdict="v", source=source, why="because")
    cps = [SimpleNamespace(title="Epoch 1", status="decided", level=level)] if level else []
    return SimpleNamespace(recommendation=rec, checkpoints=cps)


@pytest.mark.parametrize(("state", "v", "action"), [
    ("training", verdicts("wait", None, None, None), "wait"),
    ("training", verdicts("launch", "next", "Epoch 1", "good"), "wait"),  # good: let it finish
    ("training", verdicts("launch", "next", "Epoch 1", "bad"), "stop_and_launch"),
    ("finished", verdicts("launch", "next", "Epoch 1", "good"), "launch"),
    ("finished", verdicts("done", None, "success criteria", None), "done"),
    ("crashed", verdicts("investigate", None, "crash", None), "halt"),
    ("killed", verdicts("resume", None, "killed", None), "halt"),
])
def test_autopilot_policy(state, v, action) -> None:
    d = decide(RunState(state=state), v)
    assert d.action == action
    if action in ("launch", "stop_and_launch"):
        assert d.preset == "next"


DATA = Path(__file__).resolve().parent / "data"
TINY_LINES = (DATA / "app_tiny_finished.log").read_text().splitlines(keepends=True)
# The tiny run up to epoch 1's training (cut inside a line: a partial last line waits), then epoch
# 1's validation, whose SCALE makes the shipped `tiny` preset's epoch-1 checkpoint decide
# `collapsed` (level bad, next preset `smoke`): stop now and launch.
TINY_A = "".join(TINY_LINES[:24]) + TINY_LINES[24][:30]
TINY_B = TINY_LINES[24][30:] + "".join(TINY_LINES[25:38])
GONE = procs.Identity(999_999, 1.0, ("python",))  # a process that is long gone


def put_manifest(store: RunStore, run: str, preset: str, ident: procs.Identity, **kw) -> Manifest:
    m = Manifest(run=run, name=preset, preset=preset, log=str(store.log_path(run)),
                 run_dir=str(store.run_dir(run)), pid_file=str(store.pid_path(preset)),
                 created_at=time.time(), host="test", pid=ident.pid, create_time=ident.create_time,
                 cmdline=ident.cmdline, **kw)
    store.save(m)
    return m


class ChainLauncher:
    """Stands in for Launcher: `kill` marks the run gone, `launch` writes a crashed child run."""

    def __init__(self, store: RunStore, registry: PresetRegistry) -> None:
        self.store, self.registry = store, registry
        self.calls: list[tuple[str, ...]] = []

    def _lock(self, what: str) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()

    def kill(self, run: str, grace: float, by: str = "") -> str:
        self.calls.append(("kill", run, by))
        put_manifest(self.store, run, self.store.get(run).preset, GONE, state="killed")
        return f"{run}: stopped"

    def prepare(self, preset: str, sets=(), envs=()):  # noqa: ANN001, ANN201
        return self.registry.get(preset)

    def launch(self, preset: str, sets=(), envs=(), name=None, parent: str | None = None,  # noqa: ANN001
               presets_dir=None, backend=None, sweep=None) -> Manifest:  # noqa: ANN001
        self.calls.append(("launch", preset, parent or ""))
        child = "smoke_20261123_220000"
        self.store.log_path(child).write_bytes((DATA / "app_smoke_crashed.log").read_bytes())
        return put_manifest(self.store, child, preset, GONE, parent=parent)


def test_autopilot_follows_each_log_incrementally(tmp_path: Path, presets_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """One LogFollower per run of the chain, reading each byte once; appended lines are seen."""
    made: list[LogFollower] = []
    reads: dict[int, list[int]] = {}

    class CountingFollower(LogFollower):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)
            reads[id(self)] = []

        def poll(self):
            before = self.offset
            out = super().poll()
            reads[id(self)].append(self.offset - before)
            return out

    def no_whole_log_reads(*args, **kwargs):
        raise AssertionError("the autopilot re-read a whole log")

    monkeypatch.setattr(watch, "LogFollower", CountingFollower)
    monkeypatch.setattr("tui.runs.store.read_log_state", no_whole_log_reads)
    store = RunStore(tmp_path / "_logs")
    store.training_dir.mkdir(parents=True)
    root = "tiny_20261124_031005"
    log = store.log_path(root)
    log.write_text(TINY_A, encoding="utf-8")
    me = procs.identify(os.getpid())
    assert me is not None
    put_manifest(store, root, "tiny", me)  # "the engine" is this live process

    def append_b(_: float) -> None:
        assert made and reads[id(made[0])] == [len(TINY_A.encode())], "no poll before the sleep"
        with log.open("a", encoding="utf-8") as f:
            f.write(TINY_B)

    sleeps = [append_b]
    launcher = ChainLauncher(store, PresetRegistry(presets_dir))
    said: list[str] = []
    pilot = Autopilot(launcher, None, steps=1, say=said.append, poll_s=2.0,
                      sleep=lambda s: sleeps.pop(0)(s))
    assert pilot.run(root) == 0
    assert not sleeps  # waited once (epoch 1 still training), then saw the appended validation
    child = store.get(root).children[0]
    assert launcher.calls == [("kill", root, "autopilot"), ("launch", "smoke", root)]
    assert [d["action"] for d in store.get(root).autopilot["decisions"]] == ["stop_and_launch"]
    assert [d["action"] for d in store.get(child).autopilot["decisions"]] == ["halt"]
    assert [f.path for f in made] == [log, store.log_path(child)]  # one follower per run...
    assert reads[id(made[0])] == [len(TINY_A.encode()), len(TINY_B.encode())]  # ...each byte once
    assert reads[id(made[1])] == [store.log_path(child).stat().st_size]
    assert all(f._fh is None for f in made)  # both closed


# ----------------------------------------------------------------- real engine (slow tests)
def wait_for(cond, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return False


@pytest.mark.slow
def test_launch_is_detached_with_the_preset_env(logs_dir, presets_dir) -> None:
    store = RunStore(logs_dir)
    m = make_launcher(logs_dir, presets_dir).launch("tiny", ["model.hidden_size=8"],
                                                     ["SHARPE_WEIGHT=0.5"], name="det")
    assert m.run.startswith("det_") and m.preset == "tiny" and m.sets == ("model.hidden_size=8",)
    assert store.get(m.run) == m and store.pid_path("det").read_text() == f"{m.pid}\n"
    assert m.argv[1:4] == ("-m", "engine", "train") and "--run-dir" in m.argv
    assert m.argv[m.argv.index("--run-dir") + 1] == str(store.run_dir(m.run).resolve())
    assert "model.hidden_size=8" in m.argv and m.env == {"SHARPE_WEIGHT": "0.5"}
    assert m.history[0]["event"] == "launch" and m.created_at > 0 and m.host
    p = psutil.Process(m.pid)
    assert os.getsid(m.pid) == m.pid and os.getpgid(m.pid) == m.pid  # own session: no SIGHUP
    assert os.readlink(f"/proc/{m.pid}/fd/0") == "/dev/null"
    assert os.readlink(f"/proc/{m.pid}/fd/1") == str(store.log_path(m.run).resolve())
    env = p.environ()
    assert env["SHARPE_WEIGHT"] == "0.5" and env["PYTHONUNBUFFERED"] == "1"
    assert tuple(p.cmdline()) == m.cmdline and abs(p.create_time() - (m.create_time or 0)) < 0.01


@pytest.mark.slow
def test_concurrent_launches_are_serialised(logs_dir, presets_dir, tmp_path) -> None:
    def launch(*extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "tui.cli", "--logs", str(logs_dir), "--presets",
                                 str(presets_dir), "launch", "tiny", "--json", *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)

    same = [launch() for _ in range(2)]
    results = [p.communicate(timeout=60) for p in same]
    codes = sorted(p.returncode for p in same)
    assert codes == [0, 2], results  # one launched; the other saw it alive under the lock
    refused = next(err for (out, err), p in zip(results, same, strict=True) if p.returncode == 2)
    assert "named 'tiny' is still running" in refused
    other = [launch("--name", f"n{i}") for i in range(2)]
    runs = [json.loads(p.communicate(timeout=60)[0].splitlines()[0])["run"] for p in other]
    assert len(set(runs)) == 2
    assert len(RunStore(logs_dir).runs()) == 3


@pytest.mark.slow
def test_launch_follow_finishes(runctl, logs_dir) -> None:
    r = runctl("launch", "tiny", "--json", "--follow", timeout=300)
    first = json.loads(r.stdout.splitlines()[0])
    assert set(first) == {"run", "pid", "log"}
    assert r.returncode == 0, r.stdout + r.stderr
    for needle in ("Epoch 1/2 started", "Epoch 1/2: train_loss=", "Epoch 2/2: train_loss=",
                   "Epoch 1 Validation:", f"run {first['run']} finished: 2 epoch(s) validated"):
        assert needle in r.stdout
    rows = json.loads(runctl("runs", "--json").stdout)
    assert rows[0]["run"] == first["run"] and rows[0]["state"] == "finished"
    assert rows[0]["epoch"] == 2 and rows[0]["max_epochs"] == 2


@pytest.mark.slow
def test_run_survives_its_controller_sigkill(logs_dir, presets_dir, tmp_path, reaper) -> None:
    ctl = subprocess.Popen([sys.executable, "-m", "tui.cli", "--logs", str(logs_dir), "--presets",
                            str(presets_dir), "launch", "tiny", "--json", "--follow"],
                           stdout=subprocess.PIPE, text=True, cwd=tmp_path, start_new_session=True)
    reaper.add(ctl.pid)
    assert ctl.stdout is not None
    run = json.loads(ctl.stdout.readline())["run"]
    os.killpg(ctl.pid, signal.SIGKILL)  # the controller and its whole group, like a dropped SSH
    ctl.wait(timeout=10)
    store = RunStore(logs_dir)
    m = store.get(run)
    assert store.is_running(m)
    assert wait_for(lambda: not store.is_running(m), 240)
    st = store.state(m)
    assert st.state == "finished" and [r.epoch for r in st.epochs if r.validated] == [1, 2]


@pytest.mark.slow
def test_kill_mid_epoch_then_resume_finishes(runctl, logs_dir) -> None:
    """Killed in epoch 2 (epoch 1 validated), resumed from the checkpoint, every epoch validated."""
    r = runctl("launch", "tiny", "--json", "--set", "train.trainer.limit_train_batches=40",
               "--set", "train.trainer.progress_every=2")
    assert r.returncode == 0, r.stderr
    run = json.loads(r.stdout)["run"]
    store = RunStore(logs_dir)
    log = store.log_path(run)
    # generous: a loaded 2-core box can be several times slower than a quiet one
    assert wait_for(lambda: "[progress] epoch=2/2" in log.read_text(errors="replace"), 240)
    r = runctl("kill", run, "--grace", "30")
    assert r.returncode == 0, r.stderr
    assert "SIGTERM -> process group" in r.stdout and "exit status 143 (terminated)" in r.stdout
    m = store.get(run)
    assert store.state(m).state == "killed"
    ckpts = Path(m.run_dir) / "checkpoints"
    assert (ckpts / "last.ckpt").is_file() or (ckpts / "interrupted.ckpt").is_file()
    first_pid = m.pid
    r = runctl("resume", run, "--json", "--follow", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    m = store.get(run)
    assert [h["event"] for h in m.history] == ["launch", "kill", "resume"]
    assert m.pid != first_pid and store.pid_path("tiny").read_text() == f"{m.pid}\n"
    assert "--resume" in m.cmdline
    text = log.read_text()
    assert text.count("runctl engine") == 2 and "Resuming" in text  # one log, two attempts
    st = store.state(m)
    assert st.state == "finished"
    assert [r.epoch for r in st.epochs if r.validated] == [1, 2]


AUTO_FIRST = """description = "autopilot test, first"
max_epochs = 1
[overrides]
model.hidden_size = 8
model.attention_heads = 2
data.seq_len = 10
"train.trainer.limit_train_batches" = 4
"train.trainer.limit_val_batches" = 2
"train.trainer.precision" = "32-true"
[[checkpoints]]
epoch = 1
rules = [{ verdict = "go", level = "good", say = "always" }]
[next.go]
preset = "auto_second"
why = "chain on"
"""


@pytest.mark.slow
def test_autopilot_launches_the_next_preset_after_the_run(runctl, logs_dir, tmp_path) -> None:
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "auto_first.toml").write_text(AUTO_FIRST)
    (presets / "auto_second.toml").write_text('extends = "auto_first"\ndescription = "second"\n')
    r = runctl("--presets", str(presets), "launch", "auto_first", "--json", "--autopilot", "1")
    assert r.returncode == 0, r.stderr
    store = RunStore(logs_dir)
    first = store.get(json.loads(r.stdout)["run"])
    assert first.autopilot and first.autopilot["steps"] == 1

    def chain_done() -> bool:
        m = store.get(first.run)
        if not m.children:
            return False
        child = store.get(m.children[0])
        return bool(child.autopilot and child.autopilot.get("decisions"))

    assert wait_for(chain_done, 100, 0.5), (logs_dir / "training").iterdir()
    m = store.get(first.run)
    child = store.get(m.children[0])
    assert child.parent == first.run and child.preset == "auto_second"
    assert store.state(m).state == "finished"  # waited for the end (level good)
    assert m.autopilot["decisions"][0]["action"] == "launch"
    assert m.autopilot["decisions"][0]["child"] == child.run
    assert child.autopilot["decisions"][0]["action"] == "steps_exhausted"
    assert store.state(child).state == "finished"


def test_escalation_rechecks_identity_before_signalling() -> None:
    """A pid reused between SIGTERM and the SIGKILL escalation is never signalled."""
    import dataclasses

    from tui.runs import procs

    sleeper = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        real = procs.identify(sleeper.pid)
        assert real is not None
        impostor = dataclasses.replace(real, create_time=real.create_time - 1000.0)
        said = procs.signal_group(impostor, signal.SIGKILL)
        assert said.startswith("nothing") and "no longer the run's engine" in said
        assert sleeper.poll() is None  # untouched
        assert procs.signal_group(real, signal.SIGTERM) == f"process group {sleeper.pid}"
        assert sleeper.wait(timeout=10) == -signal.SIGTERM
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
