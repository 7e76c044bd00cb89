"""Issue 18: the faults a long run meets, each on real files and processes.

A stand-in trainer (tests/scripts/stepped_train.py: one epoch per go-file, the engine's lines, zip
checkpoints, no torch) runs as a preset's command under the real supervise shim, so each fault is
timed exactly: the log rotated, deleted or truncated mid-run, a garbage manifest, a full disk, a
damaged checkpoint, a resume (and one that crashes the same way), the queue (an item waiting for
its name, one whose preset broke), the GPU slots, the exit record on a full disk, a scheduler that
does not answer (the CLI and the TUI). The real engine's own part (its exit record,
`reason=disk_full` mid-checkpoint on a tiny tmpfs, picking an intact checkpoint) is in
test_faults_engine.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.waiting import wait_until
from tui.presets.registry import PresetRegistry
from tui.runs import procs
from tui.runs.launcher import Launcher
from tui.runs.store import Manifest, RunStore
from tui.runs.tail import RunTail

SCRIPTS = Path(__file__).resolve().parent / "scripts"
STEPPED = """description = "stand-in trainer: one epoch per go-file"
command = ["{python}", "stepped_train.py", "{run_dir}", "3"]
resume_args = ["--resume", "{ckpt}"]
max_epochs = 3
"""


@pytest.fixture
def presets(tmp_path: Path) -> Path:
    """A presets folder with the stand-in trainer (`stepped`, and `quiet`: a script whose log says
    nothing runctl folds; `gpu`: holds one GPU)."""
    d = tmp_path / "presets"
    d.mkdir()
    shutil.copy(SCRIPTS / "stepped_train.py", d)
    shutil.copy(SCRIPTS.parent.parent / "presets" / "baselines.toml", d)
    (d / "stepped.toml").write_text(STEPPED)
    (d / "quiet.toml").write_text(STEPPED.replace('"3"]', '"3", "--quiet"]'))
    (d / "gpu.toml").write_text(STEPPED + "gpus = 1\n")
    return d


@pytest.fixture
def ctl(logs_dir: Path, presets: Path, tmp_path: Path):  # noqa: ANN201
    """`runctl ARGS...` on the test's logs and presets (a fresh interpreter each time)."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60,
            logs: Path | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "tui.cli", "--logs", str(logs or logs_dir), "--presets", str(presets), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp_path,
                              env={**os.environ, **(env or {})})

    return run


def launcher(logs: Path, presets: Path) -> Launcher:
    return Launcher(RunStore(logs), PresetRegistry(presets))


def go(m: Manifest, epoch: int, wait: bool = True) -> None:
    """Let the stand-in run epoch `epoch` (and wait until it wrote it)."""
    (Path(m.run_dir) / f"go{epoch}").touch()
    if wait:
        assert wait_until(lambda: (Path(m.run_dir) / f"done{epoch}").exists(), 30, 0.02), epoch


def gone(m: Manifest, timeout: float = 30) -> bool:
    return wait_until(lambda: not procs.is_running(m.identity), timeout, 0.05)


def validated(st: Any) -> list[int]:
    return [r.epoch for r in st.epochs if r.validated]


def one_line_error(r: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("runctl: ")
    for n in needles:
        assert n in r.stderr, r.stderr


# --------------------------------------------------------------------------------- 1. the log
@pytest.mark.parametrize("how", ["rotated", "deleted", "truncated"])
def test_log_rotated_deleted_or_truncated_under_a_live_run(logs_dir: Path, presets: Path, ctl, how: str) -> None:
    """The run's log changes under it after epoch 1: every view goes on (the watch, a one-shot
    status, the TUI's follower with its notice), nothing read is dropped, and the finished run
    reads `finished` whatever its log says (the exit record)."""
    from tui.app.messages import RunNotice
    from tui.app.widgets.run_watch import RunWatch, default_follower

    m = launcher(logs_dir, presets).launch("stepped")
    store = RunStore(logs_dir)
    log = store.log_path(m.run)
    watch = RunTail(store, log, m)  # `status --watch`, `launch --follow`, the autopilot
    posted: list[Any] = []
    tui = RunWatch(posted.append, log, default_follower(log), run=m.run, manifest=m, store=store, probe=None)
    go(m, 1)
    assert wait_until(lambda: validated(watch.poll()) == [1], 10, 0.05)
    tui.step()
    if how == "rotated":  # `mv run.log run.log.1`, a new empty log
        log.rename(log.with_name(log.name + ".1"))
        log.touch()
    elif how == "deleted":
        log.unlink()
    else:  # `: > run.log`
        os.truncate(log, 0)
    go(m, 2)
    st = watch.poll()
    assert validated(st) == [1, 2] and st.state in ("training", "validating") and st.log_event == how
    shot = RunStore(logs_dir).state(RunStore(logs_dir).get(m.run))  # a one-shot `runctl status`
    assert shot.state in ("training", "validating"), shot.state
    # truncated: the file holds epoch 2 only, epoch 1 comes back from what the readers before saw
    assert validated(shot) == [1, 2] and shot.log_event == how, (validated(shot), shot.log_event)
    if how == "truncated":  # the checklist's ticks kept too; and so says a `runctl status` process
        assert [c[2] for c in shot.checklist()] == [c[2] for c in st.checklist()], shot.checklist()
        data = json.loads(ctl("status", m.run, "--json").stdout)
        assert [e["epoch"] for e in data["epochs"] if e["validated"]] == [1, 2] and data["log_event"] == how
        assert "the log was truncated" in ctl("status", m.run).stdout
    tui._next_manifest = 0.0
    tui.step()
    notices = [p.text for p in posted if isinstance(p, RunNotice) and p.text]
    word = {"rotated": "renamed away", "deleted": "deleted", "truncated": "truncated"}[how]
    assert notices and word in notices[-1], notices
    assert tui.view is not None and validated(tui.view.state) == [1, 2] and tui.view.notice

    go(m, 3)
    assert gone(m)
    st = watch.poll()
    assert st.state == "finished" and validated(st) == [1, 2, 3] and st.exit_reason == "finished"
    watch.close()
    r = ctl("status", m.run, "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["state"] == "finished" and data["exit_reason"] == "finished" and data["error"] is None
    if how == "rotated":  # the rotated file is read to its end (where the run's stdout was)
        assert [e["epoch"] for e in data["epochs"]] == [1, 2, 3] and data["log_event"] == "rotated"
        assert "[exit] reason=finished" in log.with_name(log.name + ".1").read_text()
    elif how == "deleted":
        assert data["log_event"] == "deleted"
    rows = json.loads(ctl("runs", "--json").stdout)
    assert [(r["run"], r["state"]) for r in rows] == [(m.run, "finished")]
    text = ctl("status", m.run).stdout
    assert "state FINISHED" in text and "process exited without a final line" not in text


# ------------------------------------------------------------------------- 1a. a resumed run
def test_a_resumed_run_reads_launching_then_training(logs_dir: Path, presets: Path, ctl) -> None:
    """A plain script (its log says nothing runctl folds) killed, then resumed: from the moment it
    is resumed it reads launching, then training, never killed; `started` is when runctl started it."""
    from tui.app.proc_probe import sample_process

    la = launcher(logs_dir, presets)
    m = la.launch("quiet")
    store = RunStore(logs_dir)
    go(m, 1)
    proc = sample_process(store.get(m.run))  # the trainer, not the supervise shim
    assert proc is not None and proc.alive and proc.pid != m.pid
    assert "stepped_train.py" in " ".join(psutil_cmdline(proc.pid))
    la.kill(m.run, grace=10)
    assert store.state(store.get(m.run)).state == "killed"
    m = la.resume(m.run)
    st = store.state(store.get(m.run))
    assert st.state == "launching" and st.error is None and st.exit_reason is None
    assert wait_until(lambda: "resumed from" in store.log_path(m.run).read_text(), 10, 0.05)
    st = store.state(store.get(m.run))
    assert st.state == "training", st.state
    data = json.loads(ctl("status", m.run, "--json").stdout)
    assert data["state"] == "training" and data["recommendation"]["action"] != "resume"
    assert data["resume"]["last"]["ckpt"].endswith("last.ckpt")
    again = ctl("resume", m.run)
    one_line_error(again, "is still running")
    text = ctl("status", m.run).stdout
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(store.get(m.run).created_at))
    assert f"started  {started}" in text
    go(m, 2)
    go(m, 3)
    assert gone(m)
    assert store.state(store.get(m.run)).state == "finished"


def psutil_cmdline(pid: int) -> list[str]:
    import psutil

    return psutil.Process(pid).cmdline()


# ------------------------------------------------------------------- 5. damaged checkpoints
def test_resume_skips_a_damaged_checkpoint_and_never_glues_a_line(logs_dir: Path, presets: Path, ctl) -> None:
    """last.ckpt corrupt: the resume names it (stderr, log, status) and continues from the newest
    intact epoch; a cut last line is ended first. None intact: it starts again, said, and the
    recommendation is not resume."""
    la = launcher(logs_dir, presets)
    m = la.launch("stepped")
    store = RunStore(logs_dir)
    go(m, 1)
    go(m, 2)
    la.kill(m.run, grace=10)
    ckpts = Path(m.run_dir) / "checkpoints"
    (ckpts / "last.ckpt").write_bytes(b"\x00garbage, not a zip")
    log = store.log_path(m.run)
    with log.open("a") as f:
        f.write("[2026-11-24 05:00:00,000][engine][INFO] - Checkpoint sa")  # cut by a full disk
    r = ctl("resume", m.run, "--json")
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("\n") == 1 and "last.ckpt is damaged" in r.stderr and "epoch=002.ckpt" in r.stderr
    assert wait_until(lambda: "resumed from" in log.read_text(), 10, 0.05)
    text = log.read_text()
    assert "Checkpoint sa\n" in text  # the cut line was ended before the new attempt wrote
    assert "[resume] last.ckpt is damaged" in text and f"resumed from {ckpts / 'epoch=002.ckpt'}" in text
    status = ctl("status", m.run).stdout
    assert "resumed " in status and "last.ckpt is damaged" in status
    m = store.get(m.run)
    go(m, 3)
    assert gone(m)
    st = store.state(store.get(m.run))
    assert st.state == "finished" and validated(st) == [1, 2, 3]

    # every checkpoint damaged: no resume is recommended, and a resume starts again from epoch 1
    m = la.launch("stepped", name="other")
    go(m, 1)
    la.kill(m.run, grace=10)
    for p in (Path(m.run_dir) / "checkpoints").glob("*.ckpt"):
        p.write_bytes(b"")
    data = json.loads(ctl("status", m.run, "--json").stdout)
    assert data["state"] == "killed" and data["resume"]["from"] is None
    assert "no intact checkpoint" in data["resume"]["blocked"]
    assert data["recommendation"]["action"] == "launch", data["recommendation"]
    r = ctl("resume", m.run)
    assert r.returncode == 0 and "starting again from epoch 1" in r.stderr, r.stderr
    m = store.get(m.run)
    (Path(m.run_dir) / "done1").unlink()
    go(m, 1)  # it starts at epoch 1 again (no --resume passed)
    log = store.log_path(m.run).read_text()
    assert "starting again from epoch 1" in log and "resumed from" not in log
    la.kill(m.run, grace=10)


CRASHY = """import logging, os, pathlib, sys, zipfile
logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="[%(asctime)s][engine][INFO] - %(message)s")
run_dir = pathlib.Path(sys.argv[1])
ckpts = run_dir / "checkpoints"
ckpts.mkdir(parents=True, exist_ok=True)
if "--resume" in sys.argv:
    print("resumed from " + sys.argv[sys.argv.index("--resume") + 1], flush=True)
else:
    logging.info("[main] Epoch 1/3")
    logging.info("[epoch-end] epoch=1/3 train_loss=1.0 val_loss=1.1 sharpe=0.1 sharpe_ann=0.0 time=0.1s")
    with zipfile.ZipFile(ckpts / "epoch=001.ckpt", "w") as z:
        z.writestr("archive/data.pkl", b"epoch 1")
    (ckpts / "last.ckpt").write_bytes((ckpts / "epoch=001.ckpt").read_bytes())
    logging.info("Checkpoint saved: %s (epoch=1)", ckpts / "epoch=001.ckpt")
raise RuntimeError((run_dir / "error").read_text() if (run_dir / "error").exists()
                   else "CUDA error: an illegal memory access was encountered")
"""


def test_a_resumed_run_that_crashes_the_same_way_is_not_sent_to_resume_again(
        logs_dir: Path, presets: Path, ctl) -> None:
    """A run crashes after epoch 1's checkpoint; the recommendation is resume. The resumed run
    crashes with the same error: `resume.blocked` says so and the recommendation is no longer
    resume. Resumed again, a different crash is resumable again."""
    (presets / "crashy.py").write_text(CRASHY)
    (presets / "crashy.toml").write_text('command = ["{python}", "crashy.py", "{run_dir}"]\n'
                                         'resume_args = ["--resume", "{ckpt}"]\nmax_epochs = 3\n')
    store = RunStore(logs_dir)

    def ended() -> dict[str, Any]:
        assert wait_until(lambda: store.exit_record(store.get(run)) is not None
                          and not store.is_running(store.get(run)), 30, 0.05)
        r = ctl("status", run, "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    r = ctl("launch", "crashy", "--json")
    assert r.returncode == 0, r.stderr
    run = json.loads(r.stdout)["run"]
    first = ended()
    assert first["state"] == "crashed" and "illegal memory access" in (first["error"] or ""), first["error"]
    assert first["resume"]["blocked"] is None and first["recommendation"]["action"] == "resume"
    assert f"runctl resume {run}" in ctl("status", run).stdout
    r = ctl("resume", run)
    assert r.returncode == 0, r.stderr
    assert wait_until(lambda: store.get(run).attempt == 2, 10, 0.05)
    second = ended()
    assert second["state"] == "crashed" and second["error"] == first["error"]
    assert second["resume"]["from"] is not None  # a checkpoint is there; resuming would not help
    assert second["resume"]["blocked"] == f"the resumed run crashed the same way ({first['error']})"
    assert second["recommendation"]["action"] != "resume", second["recommendation"]
    assert "crashed the same way" in second["recommendation"]["why"], second["recommendation"]
    text = ctl("status", run).stdout
    assert "crashed the same way" in text and f"runctl resume {run}" not in text, text

    (Path(store.get(run).run_dir) / "error").write_text("ValueError-like: another cause")
    r = ctl("resume", run)  # the user resumes anyway: it crashes differently
    assert r.returncode == 0, r.stderr
    assert wait_until(lambda: store.get(run).attempt == 3, 10, 0.05)
    third = ended()
    assert third["state"] == "crashed" and "another cause" in (third["error"] or "")
    assert third["resume"]["blocked"] is None and third["recommendation"]["action"] == "resume"


# ------------------------------------------------------------------------------ 2. the queue
def test_queue_items_of_one_name_wait_their_turn(logs_dir: Path, presets: Path, ctl) -> None:
    """Two concurrent `queue add gpu` while the one GPU is busy: both wait; each starts in its
    turn (the second waits for the name, and says so); none fails."""
    env = {"RUNCTL_GPUS": "0"}
    busy = ctl("launch", "gpu", "--name", "holder", "--json", env=env)
    assert busy.returncode == 0, busy.stderr
    holder = RunStore(logs_dir).get(json.loads(busy.stdout)["run"])
    adds = [subprocess.Popen([sys.executable, "-m", "tui.cli", "--logs", str(logs_dir), "--presets", str(presets),
                              "queue", "add", "gpu", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env={**os.environ, **env}) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in adds]
    assert [p.returncode for p in adds] == [0, 0], outs
    ids = sorted(json.loads(o)["id"] for o, _ in outs)
    assert ids == ["q1", "q2"]
    store = RunStore(logs_dir)
    from tui.runs.queue import RunQueue

    queue = RunQueue(store)
    go(holder, 1, wait=False)
    go(holder, 2, wait=False)
    go(holder, 3, wait=False)  # the holder ends: q1 gets the GPU
    assert wait_until(lambda: [i.id for i in queue.load().started] == ["q1"], 30, 0.1), queue.load()
    assert wait_until(lambda: (queue.load().waiting[0].waiting_for or "") != "", 10, 0.1)
    q = queue.load()
    assert [i.id for i in q.waiting] == ["q2"] and q.failed == []
    assert "named 'gpu' is still running" in (q.waiting[0].waiting_for or "")
    listing = ctl("queue", env=env).stdout
    assert "waits: run gpu_" in listing
    first = store.get(q.started[0].run or "")
    for e in (1, 2, 3):
        go(first, e, wait=False)
    assert wait_until(lambda: [i.id for i in queue.load().started] == ["q1", "q2"], 30, 0.1), queue.load()
    assert queue.load().failed == []
    second = store.get(queue.load().started[1].run or "")
    assert second.run != first.run and second.name == "gpu" and second.gpus == (0,)
    for e in (1, 2, 3):
        go(second, e, wait=False)
    assert gone(second)


@pytest.mark.parametrize("how", ["invalid", "removed"])
def test_a_queue_item_whose_preset_broke_fails_with_the_reason(logs_dir: Path, presets: Path, ctl, how: str) -> None:
    """An item waits for the busy GPU; meanwhile its preset is broken (invalid TOML) or removed.
    When the runner tries it, it lands in `failed` with the reason (the file, what is wrong), shown
    by `runctl queue` and its --json, and the item behind it still starts on the freed GPU."""
    env = {"RUNCTL_GPUS": "0"}
    (presets / "doomed.toml").write_text((presets / "gpu.toml").read_text())
    busy = ctl("launch", "gpu", "--name", "holder", "--json", env=env)
    assert busy.returncode == 0, busy.stderr
    holder = RunStore(logs_dir).get(json.loads(busy.stdout)["run"])
    added = [ctl("queue", "add", *args, "--json", env=env) for args in (["doomed"], ["gpu", "--name", "next"])]
    assert [a.returncode for a in added] == [0, 0], [a.stderr for a in added]
    assert [json.loads(a.stdout)["id"] for a in added] == ["q1", "q2"]
    from tui.runs.queue import RunQueue

    queue = RunQueue(RunStore(logs_dir))
    assert wait_until(lambda: "GPU" in (queue.load().waiting[0].waiting_for or ""), 10, 0.05), queue.load()
    if how == "invalid":
        (presets / "doomed.toml").write_text('command = ["{python}", "stepped_train.py"\n')  # unclosed
    else:
        (presets / "doomed.toml").unlink()
    for e in (1, 2, 3):  # the holder ends: its GPU is free
        go(holder, e, wait=False)
    assert wait_until(lambda: [i.id for i in queue.load().started] == ["q2"], 30, 0.1), queue.load()
    q = queue.load()
    assert q.waiting == [] and [(i.id, i.preset, i.run) for i in q.failed] == [("q1", "doomed", None)]
    error = q.failed[0].error or ""
    assert (f"{presets / 'doomed.toml'}: invalid TOML" if how == "invalid" else "unknown preset 'doomed'") in error
    listing = json.loads(ctl("queue", "--json", env=env).stdout)
    assert [(i["id"], i["error"]) for i in listing["failed"]] == [("q1", error)]
    assert [(i["id"], i["run"]) for i in listing["started"]] == [("q2", q.started[0].run)]
    text = ctl("queue", env=env).stdout
    assert f"failed  q1 doomed: {error}" in text, text
    nxt = RunStore(logs_dir).get(q.started[0].run or "")
    assert nxt.name == "next" and nxt.gpus == (0,)
    for e in (1, 2, 3):
        go(nxt, e, wait=False)
    assert gone(nxt)


# --------------------------------------------------------------------- 3. a damaged manifest
def test_a_damaged_manifest_keeps_the_run_visible_and_controlled(logs_dir: Path, presets: Path, ctl) -> None:
    env = {"RUNCTL_GPUS": "0"}
    r = ctl("launch", "gpu", "--json", env=env)
    assert r.returncode == 0, r.stderr
    store = RunStore(logs_dir)
    m = store.get(json.loads(r.stdout)["run"])
    go(m, 1)
    path = store.manifest_path(m.run)
    path.write_text('{"run": "gpu_2026', encoding="utf-8")  # garbage
    rows = json.loads(ctl("runs", "--json", env=env).stdout)
    assert [(x["run"], x["state"]) for x in rows] == [(m.run, "damaged")]
    assert rows[0]["damaged"]["file"] == str(path) and "not valid JSON" in rows[0]["damaged"]["reason"]
    assert rows[0]["pid"] == m.pid  # found from its log and pid file, verified
    st = json.loads(ctl("status", m.run, "--json", "--preset", "gpu", env=env).stdout)
    assert st["state"] == "damaged" and st["damaged"]["file"] == str(path) and validated_json(st) == [1]
    assert st["recommendation"]["action"] == "investigate"
    busy = ctl("launch", "gpu", "--name", "other", env=env)  # its GPU is not free
    one_line_error(busy, "0 of 1 free", m.run)
    same = ctl("launch", "gpu", env=env)  # its name is taken
    one_line_error(same, "named 'gpu' is still running")
    assert len(list((logs_dir / "training").glob("*.log"))) == 1  # nothing was launched
    resume = ctl("resume", m.run, env=env)
    one_line_error(resume, "manifest", "is damaged")
    k = ctl("kill", m.run, "--grace", "10", env=env)
    assert k.returncode == 0, k.stderr
    assert "SIGTERM -> process group" in k.stdout
    assert gone(m)
    assert path.read_text() == '{"run": "gpu_2026'  # left as it was, for the user to look at
    rows = json.loads(ctl("runs", "--json", env=env).stdout)
    assert rows[0]["state"] == "damaged" and rows[0]["error"] and "damaged" in rows[0]["error"]
    gone_run = ctl("kill", m.run, env=env)
    one_line_error(gone_run, "is not running")


def validated_json(data: dict[str, Any]) -> list[int]:
    return [e["epoch"] for e in data["epochs"]]


def test_gpu_slots_are_the_machines(logs_dir: Path, presets: Path, ctl, tmp_path: Path) -> None:
    """Two logs folders on one box never hand out the same GPU; concurrent launches on one slot
    start one run."""
    env = {"RUNCTL_GPUS": "0"}
    other = tmp_path / "other_project" / "_logs"
    starts = [subprocess.Popen([sys.executable, "-m", "tui.cli", "--logs", str(d), "--presets", str(presets),
                                "launch", "gpu", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, **env}) for d in (logs_dir, other)]
    outs = [p.communicate(timeout=60) for p in starts]
    codes = sorted(p.returncode for p in starts)
    assert codes == [0, 2], outs
    err = next(e for (_, e), p in zip(outs, starts, strict=True) if p.returncode == 2)
    assert "1 GPU(s) needed, 0 of 1 free" in err and "(in " in err and "Traceback" not in err
    won = next(d for d, p in zip((logs_dir, other), starts, strict=True) if p.returncode == 0)
    m = RunStore(won).runs()[0]
    assert m.gpus == (0,)
    for e in (1, 2, 3):
        go(m, e, wait=False)
    assert gone(m)
    r = ctl("launch", "gpu", "--json", env=env, logs=other if won == logs_dir else logs_dir)
    assert r.returncode == 0, r.stderr  # the GPU is free again once the run ended
    m2 = RunStore(other if won == logs_dir else logs_dir).get(json.loads(r.stdout)["run"])
    for e in (1, 2, 3):
        go(m2, e, wait=False)
    assert gone(m2)


# --------------------------------------------------------------------------- 4. a full disk
@contextlib.contextmanager
def tmpfs_at(mnt: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted on the folder `mnt` (made here; root only: the test is skipped
    where mount is not permitted); unmounted at the end."""
    mnt.mkdir(parents=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or r.returncode}); needs root")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path: Path):  # noqa: ANN201
    """A 4 MB tmpfs."""
    with tmpfs_at(tmp_path / "small", "4m") as mnt:
        yield mnt


def fill(where: Path) -> Path:
    """Fill the file system of `where` to its last byte."""
    filler = where / "filler"
    with open(filler, "wb", buffering=0) as f:
        for size in (1 << 16, 1):  # to the last byte
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                pass
    return filler


def test_disk_full_is_one_line_and_writes_nothing(small_disk: Path, presets: Path, tmp_path: Path, reaper) -> None:
    """Every write runctl makes on a full disk fails with one line naming the file and the free
    space, exit 2, and leaves nothing half-written; after space is freed, all of it works."""
    logs = small_disk / "_logs"
    shutil.copytree(presets, small_disk / "presets")
    presets = small_disk / "presets"

    def ctl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tui.cli", "--logs", str(logs), "--presets", str(presets), *args],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)

    r = ctl("launch", "stepped", "--json")
    assert r.returncode == 0, r.stderr
    store = RunStore(logs)
    m = store.get(json.loads(r.stdout)["run"])
    for e in (1, 2, 3):
        go(m, e)
    assert gone(m)
    assert store.state(store.get(m.run)).state == "finished"
    filler = fill(small_disk)
    before = sorted(str(p) for p in small_disk.rglob("*"))
    table = (presets / "baselines.toml").read_bytes()
    for args, needle in ((("launch", "stepped"), "disk full"), (("resume", m.run), "disk full"),
                         (("queue", "add", "stepped"), "disk full"),
                         (("report", m.run, "-o", str(small_disk / "r.md")), "r.md"),
                         (("baseline", m.run, "--as", "full"), "baselines.toml")):
        out = ctl(*args)
        one_line_error(out, needle, "free on ")
    assert sorted(str(p) for p in small_disk.rglob("*")) == before  # nothing new, no temp file left
    assert (presets / "baselines.toml").read_bytes() == table
    assert not any(procs.is_running(x.identity) for x in store.runs())  # nothing started
    filler.unlink()
    r = ctl("resume", m.run, "--json")  # space again: it works
    assert r.returncode == 0, r.stderr
    la = store.get(m.run)
    assert gone(la)
    assert store.state(store.get(m.run)).state == "finished"


def test_a_start_whose_manifest_cannot_be_written_is_rolled_back(logs_dir: Path, presets: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills between the process start and its manifest: the process is stopped and
    nothing of the run stays."""
    import errno

    from tui.errors import DiskFull
    from tui.runs import store as store_mod

    started: list[procs.Identity] = []
    real_start = Launcher._start

    def spy(self, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        ident = real_start(self, *a, **kw)
        started.append(ident)
        return ident

    def full(path, data, durable=True):  # noqa: ANN001, ANN202
        raise store_mod.write_error(path, OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr(Launcher, "_start", spy)
    monkeypatch.setattr(store_mod, "atomic_write_json", full)
    with pytest.raises(DiskFull, match=r"cannot write .*\.json: disk full \(.* free on "):
        launcher(logs_dir, presets).launch("stepped")
    # the process it started is not running (an exiting one, its command line already gone, is not)
    assert started and not procs.is_running(started[0])
    assert sorted(p.name for p in (logs_dir / "training").iterdir()) == [".runctl.lock"]
    assert not (logs_dir / "runs").exists() or not any((logs_dir / "runs").iterdir())


@pytest.fixture
def small_training(logs_dir: Path):  # noqa: ANN201
    """`_logs/training` (the logs, the exit records, the lock) on a 4 MB tmpfs (root only: skipped
    where mount is not permitted); unmounted at the end."""
    with tmpfs_at(logs_dir / "training", "4m") as training:
        yield training


def test_the_exit_record_lands_on_a_full_disk(small_training: Path, logs_dir: Path, presets: Path, ctl) -> None:
    """The disk holding the log and the exit record fills while the run is live (its checkpoints
    are elsewhere): the run's last epoch and its `[exit]` line cannot reach the log, yet the
    supervise shim's record is written over the placeholder's reserved bytes, so the run reads
    `finished` (docs/cli.md: the exit record)."""
    m = launcher(logs_dir, presets).launch("stepped")
    store = RunStore(logs_dir)
    exit_file = store.exit_path(m.run)
    assert exit_file.parent == small_training and exit_file.stat().st_size == 4096  # the placeholder
    go(m, 1)
    go(m, 2)
    log = store.log_path(m.run)
    with log.open("a") as f:  # to a page's end: tmpfs allocates pages, a partial one takes appends
        f.write("#" * (-(log.stat().st_size + 1) % 4096) + "\n")
    filler = fill(small_training)
    go(m, 3)  # epoch 3's lines are lost (the stand-in's checkpoints are not on the full disk)
    assert gone(m)
    text = log.read_text()
    assert "[exit]" not in text and "Epoch 3/3" not in text  # the disk was full when the run ended
    record = json.loads(exit_file.read_text())
    assert (record["reason"], record["status"], record["writer"], record["attempt"]) == ("finished", 0, "supervise", 1)
    assert exit_file.stat().st_size == 4096  # written in place, over the reserved bytes
    assert sorted(p.name for p in small_training.iterdir() if p.name.endswith(".tmp")) == []  # no temp file left
    st = RunStore(logs_dir).state(store.get(m.run))
    assert st.state == "finished" and st.exit_reason == "finished" and st.error is None
    assert validated(st) == [1, 2]  # what the log holds
    data = json.loads(ctl("status", m.run, "--json").stdout)  # still on the full disk
    assert data["state"] == "finished" and data["exit_reason"] == "finished" and data["error"] is None
    filler.unlink()


# ------------------------------------------------------------------ 6. Slurm does not answer
HANG = "#!/bin/sh\nexec sleep 1000\n"


def hanging_slurm(tmp_path: Path) -> Path:
    """A bin folder whose Slurm commands never answer (slurmctld stopped)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("scontrol", "squeue", "sacct", "sbatch", "scancel"):
        (bin_dir / name).write_text(HANG)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def slurm_runs(store: RunStore, jobs: tuple[str, ...]) -> list[Manifest]:
    """Slurm runs of `tiny` whose logs have epoch 1 validated and go on (job ids `jobs`)."""
    store.training_dir.mkdir(parents=True)
    data = Path(__file__).resolve().parent / "data" / "app_tiny_finished.log"
    out = []
    for i, job in enumerate(jobs):
        run = f"tiny_20261124_03100{i}"
        lines = data.read_text().splitlines(keepends=True)
        store.log_path(run).write_text("".join(lines[:40]))  # epoch 1 validated, still going
        m = Manifest(run=run, name="tiny", preset="tiny", log=str(store.log_path(run)),
                     run_dir=str(store.run_dir(run)), pid_file=str(store.pid_path("tiny")),
                     created_at=1.7e9 + i, host="h", backend="slurm",
                     backend_data={"job_id": job, "job_ids": [job]},
                     history=({"event": "submit", "at": 1.7e9, "job_id": job},))
        store.save(m)
        out.append(m)
    return out


def test_a_scheduler_that_does_not_answer_costs_a_bounded_wait(tmp_path: Path, logs_dir: Path, ctl) -> None:
    """slurmctld stopped (scontrol / squeue / sacct hang): `status` and `runs` answer from the log
    within the timeout, the scheduler's state marked unknown."""
    bin_dir = hanging_slurm(tmp_path)
    slurm_runs(RunStore(logs_dir), ("101", "102"))
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "RUNCTL_SLURM_TIMEOUT": "1"}
    t0 = time.monotonic()
    r = ctl("status", "tiny_20261124_031001", "--json", env=env)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["slurm"]["state"] == "unknown" and "did not answer" in out["slurm"]["reason"]
    assert out["state"] in ("training", "validating") and out["epochs"][0]["val_loss"] is not None
    assert took < 15, took
    t0 = time.monotonic()
    rows = json.loads(ctl("runs", "--json", env=env).stdout)
    assert time.monotonic() - t0 < 15  # one timeout, not one per run
    assert [x["slurm_state"] for x in rows] == ["unknown", "unknown"]
    assert all(x["state"] in ("training", "validating") for x in rows)


def test_the_tui_says_when_the_scheduler_does_not_answer(tmp_path: Path, logs_dir: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The TUI's follower (RunWatch, with the app's process probe) over a Slurm run whose
    scheduler hangs: its steps return within the bounded wait, the notice (header line and
    RunNotice) says Slurm did not answer, and the state is the log's."""
    from tui.app.messages import RunNotice
    from tui.app.proc_probe import sample_process
    from tui.app.widgets.run_watch import RunWatch, default_follower
    from tui.runs import slurm

    monkeypatch.setenv("PATH", f"{hanging_slurm(tmp_path)}:{os.environ['PATH']}")
    monkeypatch.setenv("RUNCTL_SLURM_TIMEOUT", "1")
    monkeypatch.setitem(slurm._down, "until", 0.0)  # this process has not found it down yet
    monkeypatch.setitem(slurm._down, "why", "")
    store = RunStore(logs_dir)
    m = slurm_runs(store, ("101",))[0]
    log = store.log_path(m.run)
    posted: list[Any] = []
    tui = RunWatch(posted.append, log, default_follower(log), run=m.run, manifest=m, store=store,
                   probe=sample_process)
    t0 = time.monotonic()
    steps = []
    while time.monotonic() - t0 < 15 and not (tui.notice or "").startswith("Slurm: "):
        tui._next_manifest = tui._next_proc = 0.0  # each step reads all (the app's does, once a second)
        s0 = time.monotonic()
        tui.step()
        steps.append(time.monotonic() - s0)
    assert (tui.notice or "").startswith("Slurm: ") and "did not answer" in (tui.notice or ""), tui.notice
    assert max(steps) < 5 and sum(steps) < 10, steps  # one timeout (1 s), then not asked again
    assert [p.text for p in posted if isinstance(p, RunNotice)][-1] == tui.notice
    assert tui.view is not None and tui.view.notice == tui.notice
    st = tui.view.state
    assert st.state in ("training", "validating") and validated(st) == [1], st.state
    assert store.job_errors.get(m.run) and "did not answer" in store.job_errors[m.run]


# --------------------------------------------------------------- 7. the TUI says what happened
def test_the_tui_says_when_a_run_turns_damaged_or_its_folder_goes(logs_dir: Path, presets: Path) -> None:
    from tui.app.messages import RunNotice
    from tui.app.proc_probe import sample_process
    from tui.app.widgets.run_watch import RunWatch, default_follower

    la = launcher(logs_dir, presets)
    m = la.launch("stepped")
    store = RunStore(logs_dir)
    go(m, 1)
    log = store.log_path(m.run)
    posted: list[Any] = []
    tui = RunWatch(posted.append, log, default_follower(log), run=m.run, manifest=m, store=store,
                   probe=sample_process)

    def step() -> str | None:
        tui._next_manifest = 0.0
        tui.step()
        return tui.notice

    assert step() is None
    shutil.rmtree(m.run_dir)
    assert "run folder" in (step() or "")
    time.sleep(0.01)
    store.manifest_path(m.run).write_text("garbage")
    note = step() or ""
    assert "damaged" in note and tui.view is not None and tui.view.state.state == "damaged"
    assert "damaged" in (tui.view.notice or "")
    store.manifest_path(m.run).unlink()
    assert "manifest" in (step() or "") and "gone" in (tui.notice or "")
    assert [p.text for p in posted if isinstance(p, RunNotice)][-1] == tui.notice
    os.killpg(m.pid, signal.SIGKILL)  # the test's own run (its group)
    assert gone(m)


# ------------------------------------------------------------------------------- survivors
def test_a_50mb_line_without_newline_keeps_memory_bounded(tmp_path: Path) -> None:
    import tracemalloc

    from tui.log import lines
    from tui.state.follow import LogFollower

    log = tmp_path / "run.log"
    with log.open("wb") as f:
        f.write(b"[2026-11-24 04:21:51,473][engine][INFO] - Sharpe: 0.2\n\xff\xfe\x00 bad bytes\n")
        for _ in range(50):
            f.write(b"x" * (1 << 20))
    follower = LogFollower(log)
    tracemalloc.start()
    follower.poll()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 24 << 20, peak  # a few read buffers, not the line
    assert len(follower._lines.partial) <= lines.LINE_CAP and follower.state.lines == 2
    follower.close()


def test_resume_args_may_leave_ckpt_out(tmp_path: Path) -> None:
    """`checkpoint_files` names what `{ckpt}` is; resume_args without it (nanoGPT's
    --init_from=resume) are accepted."""
    (tmp_path / "nano.toml").write_text('command = ["{python}", "x.py"]\nresume_args = ["--init_from=resume"]\n'
                                        'checkpoint_files = "{run_dir}/ckpt.pt"\n')
    p = PresetRegistry(tmp_path).get("nano")
    assert p.resume_args == ("--init_from=resume",) and p.checkpoint_files == "{run_dir}/ckpt.pt"


def test_a_process_killed_mid_checkpoint_is_said(logs_dir: Path, presets: Path) -> None:
    """Killed hard while writing epoch 2's checkpoint (no final line, no exit record): the status
    names the epoch and the incomplete file, not only "no final line"; resume uses epoch 1's."""
    la = launcher(logs_dir, presets)
    m = la.launch("stepped")
    go(m, 1)
    (Path(m.run_dir) / "checkpoints" / "epoch=002.ckpt").write_bytes(b"PK\x03\x04")  # cut mid-write
    os.killpg(m.pid, signal.SIGKILL)  # the test's own run (its group): no shim record either
    assert gone(m)
    store = RunStore(logs_dir)
    st = store.state(store.get(m.run))
    assert st.state == "crashed" and "while saving epoch 2" in (st.error or "")
    assert "epoch=002.ckpt" in (st.error or "") and "free on " in (st.error or "")
    assert st.resume_from is not None and st.resume_from.endswith("last.ckpt")


def test_checkpoint_files_pick_the_newest_complete_folder(tmp_path: Path, logs_dir: Path) -> None:
    """An HF-style `checkpoint-N/` glob: the newest complete folder is `{ckpt}`; an incomplete one
    is named and passed over; resume_args without `{ckpt}` still need a match."""
    from tui.runs.checkpoints import resume_point

    run_dir = tmp_path / "run"
    for n, files in ((100, {"model.safetensors": b"w", "trainer_state.json": b"{}"}),
                     (200, {"model.safetensors": b"", "trainer_state.json": b"{}"})):
        d = run_dir / f"checkpoint-{n}"
        d.mkdir(parents=True)
        for name, data in files.items():
            (d / name).write_bytes(data)
        os.utime(d, (1e9 + n, 1e9 + n))
    store = RunStore(logs_dir)
    m = Manifest(run="hf_20261124_010101", name="hf", preset="hf", log=str(store.log_path("hf_20261124_010101")),
                 run_dir=str(run_dir), pid_file=str(store.pid_path("hf")), created_at=1e9, host="h",
                 kind="command", resume_args=("--resume_from_checkpoint", "{ckpt}"),
                 checkpoint_files=str(run_dir / "checkpoint-*"), placeholders={"python": sys.executable})
    point = resume_point(m)
    assert point.path == run_dir / "checkpoint-100"
    assert [(p.name, why) for p, why in point.damaged] == [("checkpoint-200", "model.safetensors: empty (0 bytes)")]
    nano = Manifest(**{**m.__dict__, "resume_args": ("--init_from=resume",),
                       "checkpoint_files": str(run_dir / "ckpt.pt"), "damaged": None})
    store.save(nano)
    with pytest.raises(Exception, match=r"has no checkpoint to resume from \(nothing matches .*ckpt\.pt\)"):
        launcher(logs_dir, tmp_path).resume(nano.run)
