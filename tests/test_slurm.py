"""The Slurm backend against a real one-node cluster (`make test-cluster` starts one and sets
SLURM_CONF; without it these tests skip). The bad-input tests that need no cluster always run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.waiting import wait_until
from tui.presets.registry import PresetRegistry
from tui.runs.backends.slurm import job_id, job_ids
from tui.runs.launcher import Launcher
from tui.runs.store import Manifest, RunStore

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


def _cluster_up() -> bool:
    if not os.environ.get("SLURM_CONF") or shutil.which("sinfo") is None:
        return False
    r = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30)
    return r.returncode == 0 and bool(r.stdout.strip())


cluster = pytest.mark.skipif(not _cluster_up(), reason="no Slurm cluster (make test-cluster starts one)")

SL_TINY = """extends = "tiny"
backend = "slurm"
[slurm]
partition = "debug"
time = "10"
{extra}
"""

SL_USER = """description = "a user script on Slurm"
max_epochs = {epochs}
cwd = "{root}"
backend = "slurm"
command = ["{{python}}", "tests/scripts/user_train.py", "--run-dir", "{{run_dir}}", "--max-epochs", "{{max_epochs}}",
           "--sleep", "{sleep}"]
resume_args = ["--ckpt", "{{ckpt}}"]
[slurm]
time = "{time}"
signal_before = {before}
"""


@pytest.fixture
def presets(tmp_path: Path) -> Path:
    d = tmp_path / "presets"
    shutil.copytree(ROOT / "presets", d)
    (d / "sl_tiny.toml").write_text(SL_TINY.format(extra=""))
    (d / "sl_ddp.toml").write_text(SL_TINY.format(extra="ntasks_per_node = 2"))
    (d / "sl_nopart.toml").write_text(SL_TINY.format(extra="").replace('"debug"', '"nope"'))
    (d / "sl_refused.toml").write_text(SL_TINY.format(extra='extra = ["--mem=99999999"]'))
    (d / "sl_user.toml").write_text(SL_USER.format(root=ROOT, epochs=4, sleep=0.25, time="10", before=60))
    (d / "sl_limit.toml").write_text(SL_USER.format(root=ROOT, epochs=8, sleep=0.3, time="2", before=100))
    (d / "sl_sweep.toml").write_text("gpus = 1\n" + SL_USER.format(root=ROOT, epochs=2, sleep=0.1, time="10",
                                                                    before=60) + "[sweep]\nobjective = \"val_loss\"\nmax_epochs = [2, 3]\n")
    return d


def _wait(cond, timeout: float, step: float = 0.5) -> bool:  # noqa: ANN001
    return wait_until(cond, timeout, step)


def _state(store: RunStore, run: str) -> str:
    return store.state(store.get(run)).state


def _scontrol(*args: str) -> str:
    return subprocess.run(["scontrol", *args], capture_output=True, text=True, timeout=30).stdout


def _metrics_epochs(text: str) -> list[int]:
    return [int(line.split("epoch=")[1].split()[0]) for line in text.splitlines() if "[metrics] epoch=" in line]


# ------------------------------------------------------------------ no cluster needed
def test_slurm_commands_missing(presets: Path, logs_dir: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "tui.cli", "--logs", str(logs_dir), "--presets", str(presets),
                        "launch", "sl_tiny"], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PATH": str(logs_dir / "no-bin")})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == ("runctl: Slurm command 'sbatch' not found on PATH; install the Slurm client "
                                "(slurm-client) or use backend = \"local\"")
    assert not logs_dir.exists() or not any(logs_dir.rglob("*.json"))


def test_a_sweep_on_slurm_without_sbatch_is_one_line_and_queues_nothing(presets: Path, logs_dir: Path) -> None:
    # the sweep checks the backend before anything is queued, as a launch does; and this box's
    # GPUs (none here) are not what a Slurm job waits for
    r = subprocess.run([sys.executable, "-m", "tui.cli", "--logs", str(logs_dir), "--presets", str(presets),
                        "sweep", "sl_sweep"], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PATH": str(logs_dir / "no-bin"), "RUNCTL_GPUS": ""})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().startswith("runctl: Slurm command 'sbatch' not found on PATH"), r.stderr
    assert not logs_dir.exists() or not any(logs_dir.rglob("*.json"))


def test_a_job_that_vanished(logs_dir: Path, runctl) -> None:  # noqa: ANN001
    store = RunStore(logs_dir)
    run = "sl_tiny_20261201_000000"
    store.save(Manifest(run=run, name="sl_tiny", preset="tiny", log=str(store.log_path(run)),
                        run_dir=str(store.run_dir(run)), pid_file=str(store.pid_path("sl_tiny")),
                        created_at=time.time(), host="h", backend="slurm",
                        backend_data={"job_id": "999999", "job_ids": ["999999"]}))
    r = runctl("status", run, "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["state"] == "crashed" and data["slurm"]["job_id"] == "999999"
    assert "Slurm job 999999" in data["error"]  # vanished, or Slurm could not be asked: said
    kill = runctl("kill", run)
    assert kill.returncode == 2 and kill.stderr.startswith("runctl: run ") and "Slurm job 999999" in kill.stderr


def test_bad_slurm_tables(tmp_path: Path) -> None:
    from tui.presets.preset import PresetError

    for text, msg in [('[slurm]\ntime = "soon"\n', "slurm.time: 'soon'"),
                      ('[slurm]\nnodes = 0\n', "slurm.nodes: 0 must be >= 1"),
                      ('[slurm]\nextra = ["exclusive"]\n', "slurm.extra: 'exclusive'"),
                      ('[slurm]\nqueue = "x"\n', "slurm: unknown key 'queue'"),
                      ('backend = "k8s"\n', "backend: 'k8s' is not one of local, slurm")]:
        (tmp_path / "b.toml").write_text(text)
        with pytest.raises(PresetError, match=msg):
            PresetRegistry(tmp_path).get("b")


def test_nvml_failing_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import pynvml

    from tui.runs.gpus import GpuError, box_gpus

    def broken() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_UNKNOWN)

    monkeypatch.setattr(pynvml, "nvmlInit", broken)
    with pytest.raises(GpuError) as e:
        box_gpus({})
    assert str(e.value).startswith("NVML failed (") and "RUNCTL_GPUS" in str(e.value) and "\n" not in str(e.value)


# ------------------------------------------------------------------ against the cluster


@pytest.mark.slurm
@cluster
def test_bad_inputs_write_nothing(presets: Path, logs_dir: Path) -> None:
    launcher = Launcher(RunStore(logs_dir), PresetRegistry(presets))
    with pytest.raises(Exception, match=r"unknown Slurm partition 'nope'; partitions: debug"):
        launcher.launch("sl_nopart")
    with pytest.raises(Exception, match=r"^sbatch refused the job: Batch job submission failed: "):
        launcher.launch("sl_refused")
    assert not any(logs_dir.rglob("*.json")) and not any((logs_dir / "runs").glob("*")) \
        if logs_dir.exists() else True


@pytest.mark.slurm
@pytest.mark.slow
@cluster
def test_submit_follow_kill_resume(presets: Path, logs_dir: Path, runctl) -> None:  # noqa: ANN001
    store = RunStore(logs_dir)
    launcher = Launcher(store, PresetRegistry(presets))
    m = launcher.launch("sl_user")
    assert m.backend == "slurm" and job_id(m) and m.pid is None
    script = (Path(m.run_dir) / "slurm" / "job-1.sbatch").read_text()
    assert "#SBATCH --open-mode=append" in script and "#SBATCH --requeue" in script
    assert "exec srun --unbuffered" in script and f"#SBATCH --output={m.log}" in script
    log = store.log_path(m.run)
    assert _wait(lambda: "[progress] epoch=2/4" in (log.read_text() if log.exists() else ""), 120)
    data = json.loads(runctl("--presets", str(presets), "status", m.run, "--json").stdout)
    assert data["slurm"]["state"] == "RUNNING" and data["slurm"]["node"] and data["process"] is None
    assert data["slurm"]["time_limit"] == "00:10:00" and data["state"] in ("training", "validating")
    runs = json.loads(runctl("--presets", str(presets), "runs", "--json").stdout)
    assert runs[0]["job_id"] == job_id(m) and runs[0]["slurm_state"] == "RUNNING"
    said = launcher.kill(m.run, grace=60)
    assert f"SIGTERM -> Slurm job {job_id(m)}" in said and "exited after SIGTERM" in said
    ck = Path(m.run_dir) / "checkpoints"
    st = store.state(store.get(m.run))
    assert st.state == "killed" and st.exit_status == 143 and (ck / "interrupted.ckpt").is_file()
    m2 = launcher.resume(m.run)
    assert job_id(m2) != job_id(m) and tuple(job_ids(m2)) == (job_id(m), job_id(m2))
    assert _wait(lambda: _state(store, m.run) == "finished", 180), log.read_text()[-3000:]
    assert _metrics_epochs(log.read_text()) == [1, 2, 3, 4]  # every epoch validated once
    text = runctl("--presets", str(presets), "status", m.run).stdout
    assert f"slurm    job {job_id(m2)}" in text and "finished" in text.lower()


@pytest.mark.slurm
@pytest.mark.slow
@cluster
def test_scancel_from_outside_slurm_is_killed_with_its_checkpoint_and_resumes(presets: Path, logs_dir: Path) -> None:
    """Issue 18's survivor, kept so: a job cancelled by hand (`scancel JOB`, not runctl) reads
    killed, its checkpoint saved on SIGTERM, and a resume finishes it with each epoch once."""
    store = RunStore(logs_dir)
    launcher = Launcher(store, PresetRegistry(presets))
    m = launcher.launch("sl_user")
    log = store.log_path(m.run)
    assert _wait(lambda: "[progress] epoch=2/4" in (log.read_text() if log.exists() else ""), 120)
    subprocess.run(["scancel", job_id(m)], check=True, timeout=30)
    assert _wait(lambda: _state(store, m.run) in ("killed", "crashed", "finished"), 120), log.read_text()[-2000:]
    st = store.state(store.get(m.run))
    assert st.state == "killed", (st.state, st.error, st.exit_reason)
    assert (Path(m.run_dir) / "checkpoints" / "interrupted.ckpt").is_file()  # saved on scancel's SIGTERM
    launcher.resume(m.run)
    assert _wait(lambda: _state(store, m.run) == "finished", 180), log.read_text()[-3000:]
    assert _metrics_epochs(log.read_text()) == [1, 2, 3, 4]  # every epoch validated once


@pytest.mark.slurm
@pytest.mark.slow
@cluster
def test_a_sweep_on_slurm_from_a_box_with_no_gpus(presets: Path, logs_dir: Path, runctl) -> None:  # noqa: ANN001
    env = {"RUNCTL_GPUS": "", "RUNCTL_SWEEP_POLL_S": "0.3"}  # `gpus = 1` is Slurm's to hand out
    r = runctl("--presets", str(presets), "sweep", "sl_sweep", "--backend", "slurm", "--json", env=env)
    assert r.returncode == 0, r.stderr
    sweep = json.loads(r.stdout)["sweep"]
    got: dict = {}

    def done() -> bool:
        got.update(json.loads(runctl("--presets", str(presets), "sweep", "status", sweep, "--json",
                                     env=env).stdout))
        return bool(got["done"])

    assert _wait(done, 240), got
    assert sorted((p["values"]["max_epochs"], p["state"]) for p in got["points"]) == [
        ("2", "finished"), ("3", "finished")], got["points"]
    store = RunStore(logs_dir)
    for p in got["points"]:
        m = store.get(p["run"])
        assert m.backend == "slurm" and job_id(m) and m.sweep["values"] == p["values"]


@pytest.mark.slurm
@pytest.mark.slow
@cluster
def test_time_limit_requeues_and_continues(presets: Path, logs_dir: Path) -> None:
    """SIGUSR1 near the time limit: checkpoint, `scontrol requeue`, the restarted job resumes."""
    store = RunStore(logs_dir)
    m = Launcher(store, PresetRegistry(presets)).launch("sl_limit")
    log = store.log_path(m.run)
    assert _wait(lambda: "[exit] reason=requeued status=75" in (log.read_text() if log.exists() else ""), 150), \
        log.read_text()[-3000:] if log.exists() else "no log"
    requeued_at = time.monotonic()
    text = log.read_text()
    assert "[signal] Slurm time limit near (" in text and "interrupted.ckpt" in text
    # the test stands in for time: Slurm holds a requeued job ~2 minutes (BeginTime); release it
    # now, with more time, as an admin would (again until it runs: an update can land early).
    # Only once the old instance is gone: no slurmstepd of the job left, and not in the second of
    # the requeue (slurmd refuses a credential issued in the second its job's was revoked:
    # "Job credential revoked", the job FAILED); the node's "idle" alone comes too early.
    def old_instance_gone() -> bool:
        tag = f"slurmstepd: [{job_id(m)}."
        return (time.monotonic() - requeued_at > 3
                and not any(tag in " ".join(p.info["cmdline"] or ()) for p in psutil.process_iter(["cmdline"])))

    def released() -> bool:
        job = _scontrol("show", "job", job_id(m))
        idle = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True,
                              timeout=30).stdout.split() == ["idle"]
        if "JobState=PENDING" in job and idle and old_instance_gone():
            _scontrol("update", f"JobId={job_id(m)}", "TimeLimit=10")
            _scontrol("update", f"JobId={job_id(m)}", "StartTime=now")
        return _state(store, m.run) == "finished"

    assert _wait(released, 240, step=2.0), log.read_text()[-3000:]
    text = log.read_text()
    assert "restarted (restart 1), resuming from" in text and "interrupted.ckpt" in text
    assert _metrics_epochs(text) == list(range(1, 9))  # no completed epoch lost, none twice
    assert "Restarts=1" in _scontrol("show", "job", job_id(m))


@pytest.mark.slurm
@pytest.mark.slow
@cluster
def test_two_task_ddp_on_cpu(presets: Path, logs_dir: Path) -> None:
    store = RunStore(logs_dir)
    m = Launcher(store, PresetRegistry(presets)).launch("sl_ddp")
    assert "train.trainer.strategy=ddp" in m.argv and "train.trainer.devices=2" in m.argv
    script = (Path(m.run_dir) / "slurm" / "job-1.sbatch").read_text()
    assert "#SBATCH --ntasks-per-node=2" in script
    log = store.log_path(m.run)
    assert _wait(lambda: _state(store, m.run) in ("finished", "crashed"), 300), log.read_text()[-3000:]
    st = store.state(store.get(m.run))
    assert st.state == "finished", log.read_text()[-3000:]
    assert [r.epoch for r in st.epochs if r.validated] == [1, 2]


def test_the_tui_probe_shows_a_slurm_job(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A Slurm run has no local pid: the process panel shows its job, and says when Slurm can't."""
    from tui.app import proc_probe
    from tui.runs.slurm import JobInfo

    m = Manifest(run="r", name="r", preset="tiny", log="l", run_dir="d", pid_file="p", created_at=0.0,
                 host="h", backend="slurm", backend_data={"job_id": "42", "job_ids": ["42"]})
    monkeypatch.setattr(proc_probe._jobs, "info", lambda job: JobInfo(job, "RUNNING", None, "node7",
                                                                         "00:01:02", "00:10:00", 0))
    p = proc_probe.sample_process(m)
    assert p is not None and p.alive and p.pid is None
    assert p.status == "Slurm job 42 RUNNING on node7 00:01:02/00:10:00"
    monkeypatch.setattr(proc_probe._jobs, "info", lambda job: JobInfo(job, "PENDING", "Resources"))
    p = proc_probe.sample_process(m)
    assert p is not None and p.alive and "PENDING (Resources)" in p.status
    monkeypatch.setattr(proc_probe._jobs, "info", lambda job: None)
    p = proc_probe.sample_process(m)
    assert p is not None and not p.alive and "unknown to Slurm" in p.status


@pytest.mark.slurm
@cluster
def test_a_controller_that_does_not_answer_costs_a_bounded_wait(logs_dir: Path, runctl) -> None:  # noqa: ANN001
    """slurmctld stopped (SIGSTOP: it holds its port and answers nothing, as a hung controller
    does): `status` and `runs` answer from the log within the state timeout, Slurm's state unknown."""
    import signal

    store = RunStore(logs_dir)
    run = "sl_tiny_20261201_000001"
    store.save(Manifest(run=run, name="sl_tiny", preset="tiny", log=str(store.log_path(run)),
                        run_dir=str(store.run_dir(run)), pid_file=str(store.pid_path("sl_tiny")),
                        created_at=time.time(), host="h", backend="slurm",
                        backend_data={"job_id": "999998", "job_ids": ["999998"]}))
    store.log_path(run).write_text((DATA / "app_tiny_finished.log").read_text().split("=== Training")[0])
    ctld = int((Path(os.environ["SLURM_CONF"]).parent / "run" / "slurmctld.pid").read_text().split()[0])
    os.kill(ctld, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        r = runctl("status", run, "--json")
        took = time.monotonic() - t0
        assert r.returncode == 0, r.stderr
        data = json.loads(r.stdout)
        assert data["slurm"]["state"] == "unknown" and data["epochs"], data["slurm"]
        assert took < 15, took  # the 4 s state timeout, plus the interpreter, not Slurm's own 40 s
        t0 = time.monotonic()
        r = runctl("runs", "--json")
        assert r.returncode == 0 and time.monotonic() - t0 < 15
        assert json.loads(r.stdout)[0]["slurm_state"] == "unknown"
    finally:
        os.kill(ctld, signal.SIGCONT)
