"""The Slurm client: its commands, its jobs' states and the batch script (docs/cli.md, "Slurm").

The slurm backend (tui.runs.backends.slurm) runs a run as a batch job on the shared filesystem
through this module. runctl writes the batch script into the run's folder and submits it with
`sbatch --parsable`. The job appends its output to the run's log (`--output`, `--open-mode=append`, so one log spans every
requeue and resume), gets SIGUSR1 `signal_before` seconds before its time limit (`--signal`), may be
requeued (`--requeue`), and starts the program with `exec srun` so signals reach it (a plain child of
the batch shell never sees them). A restarted (requeued) job resumes from the run's checkpoint.
The job's state comes from `scontrol show job` while Slurm remembers it, then from `sacct`
(the job-completion records on a cluster without accounting), and the log's exit line otherwise.
Every Slurm command is run with arguments as a list, never through a shell.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tui.errors import RunctlError
from tui.presets.backends import SlurmSpec

ACTIVE = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD",
          "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD")
TIMEOUT_S = 30.0  # submitting, cancelling, checking the partition
STATE_TIMEOUT_ENV = "RUNCTL_SLURM_TIMEOUT"
STATE_TIMEOUT_S = 4.0  # asking a job's state (`status`, `runs`, the TUI): then the log answers alone
DOWN_S = 30.0  # after a state query timed out, Slurm is not asked again for this long (per process)
_down: dict[str, Any] = {"until": 0.0, "why": ""}  # the controller did not answer: until when, why
REQUEUE_FLAG = ".requeue"  # in the run folder: SIGUSR1 arrived (tui.runs.supervise writes it)


class SlurmError(RunctlError):
    """A Slurm command is missing or refused (one line, naming the command)."""


def sbatch_args(spec: SlurmSpec) -> list[str]:
    """The #SBATCH options a preset's `[slurm]` table stands for."""
    out = [f"--nodes={spec.nodes}", f"--ntasks-per-node={spec.ntasks_per_node}"]
    for flag, v in (("--partition", spec.partition), ("--time", spec.time),
                    ("--cpus-per-task", spec.cpus_per_task), ("--mem", spec.mem),
                    ("--account", spec.account), ("--qos", spec.qos)):
        if v is not None:
            out.append(f"{flag}={v}")
    if spec.gpus_per_node:
        out.append(f"--gres=gpu:{spec.gpus_per_node}")
    return out + list(spec.extra)


# ------------------------------------------------------------------------------ commands
def state_timeout() -> float:
    """Seconds a state query may take: $RUNCTL_SLURM_TIMEOUT, else STATE_TIMEOUT_S."""
    try:
        return max(0.1, float(os.environ.get(STATE_TIMEOUT_ENV, STATE_TIMEOUT_S)))
    except ValueError:
        return STATE_TIMEOUT_S


def _run(cmd: Sequence[str], timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run a Slurm command (its own process group, killed whole when it does not answer)."""
    if shutil.which(cmd[0]) is None:
        raise SlurmError(f"Slurm command {cmd[0]!r} not found on PATH; install the Slurm client "
                         f"(slurm-client) or use backend = \"local\"")
    p = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(p.pid, signal.SIGKILL)  # our own child's group (start_new_session above)
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.communicate(timeout=2)
        raise SlurmError(f"{cmd[0]} did not answer within {timeout:g}s (is slurmctld up?)") from None
    return subprocess.CompletedProcess(list(cmd), p.returncode, out, err)


def _query(cmd: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """A state query: a short timeout, and none at all for DOWN_S after one timed out."""
    now = time.monotonic()
    if now < _down["until"]:
        raise SlurmError(str(_down["why"]))
    try:
        return _run(cmd, state_timeout())
    except SlurmError as e:
        if "did not answer" in str(e):
            _down["until"], _down["why"] = now + DOWN_S, f"{e}; not asked again for {DOWN_S:g}s"
        raise


def _first_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return re.sub(r"^\w+: error: ", "", (errors or lines or ["(no message)"])[-1])


def check_available() -> None:
    """Every Slurm command the backend uses is on PATH."""
    for c in ("sbatch", "squeue", "scontrol", "scancel"):
        if shutil.which(c) is None:
            _run([c])  # raises the one-line error


def check_partition(name: str) -> None:
    """The partition exists on this cluster."""
    r = _run(["sinfo", "-h", "-o", "%P"])
    if r.returncode != 0:
        raise SlurmError(f"sinfo failed: {_first_error(r.stderr or r.stdout)}")
    known = [p.strip().rstrip("*") for p in r.stdout.split()]
    if name not in known:
        raise SlurmError(f"unknown Slurm partition {name!r}; partitions: {', '.join(known) or '(none)'}")


def submit(script: Path) -> str:
    """`sbatch --parsable SCRIPT` -> the job id; SlurmError with sbatch's reason when it refuses."""
    r = _run(["sbatch", "--parsable", str(script)])
    if r.returncode != 0:
        raise SlurmError(f"sbatch refused the job: {_first_error(r.stderr or r.stdout)}")
    job = r.stdout.strip().split(";")[0]
    if not job.isdigit():
        raise SlurmError(f"sbatch printed no job id: {r.stdout.strip()[:200]!r}")
    return job


def signal_job(job: str, sig: str = "TERM") -> None:
    """Send a signal to the job's steps (the program under srun)."""
    r = _run(["scancel", f"--signal={sig}", job])
    if r.returncode != 0:
        raise SlurmError(f"scancel --signal={sig} {job}: {_first_error(r.stderr)}")


def cancel(job: str) -> None:
    """Cancel the job (SIGTERM, then SIGKILL after the cluster's KillWait)."""
    r = _run(["scancel", job])
    if r.returncode != 0:
        raise SlurmError(f"scancel {job}: {_first_error(r.stderr)}")


# ------------------------------------------------------------------------------ job state
@dataclass
class JobInfo:
    """What Slurm says about one job (fields None where the source does not tell)."""

    job_id: str
    state: str
    reason: str | None = None
    node: str | None = None
    elapsed: str | None = None
    time_limit: str | None = None
    restarts: int | None = None
    exit_code: str | None = None
    source: str = "scontrol"  # scontrol | sacct

    @property
    def active(self) -> bool:
        """The job is queued or running (it may still write to the log)."""
        return self.state in ACTIVE

    def to_json(self) -> dict[str, Any]:
        """status --json form."""
        return asdict(self)


_KV = re.compile(r"(\w+)=(\S*)")


def show_job(job: str) -> JobInfo | None:
    """`scontrol show job ID` (None once Slurm has forgotten the job)."""
    r = _query(["scontrol", "show", "job", job])
    if r.returncode != 0:
        if "invalid job id" in (r.stderr + r.stdout).lower():
            return None
        raise SlurmError(f"scontrol show job {job}: {_first_error(r.stderr or r.stdout)}")
    kv = dict(_KV.findall(r.stdout))
    node = kv.get("NodeList")
    return JobInfo(job, kv.get("JobState", "UNKNOWN"), None if kv.get("Reason") in (None, "None") else kv["Reason"],
                   None if node in (None, "(null)", "") else node, kv.get("RunTime"), kv.get("TimeLimit"),
                   int(kv["Restarts"]) if kv.get("Restarts", "").isdigit() else None, kv.get("ExitCode"))


def accounting(job: str) -> JobInfo | None:
    """`sacct` (the job-completion records where accounting is off); the last record (requeues)."""
    if shutil.which("sacct") is None:
        return None
    for args in (["sacct", "-j", job, "-X", "-P", "-n", "-o", "JobID,State,ExitCode,Elapsed,NodeList"],
                 ["sacct", "-c", "-j", job, "-P", "-n", "-o", "JobID,State,ExitCode,Elapsed,NodeList"]):
        r = _query(args)
        rows = [ln.split("|") for ln in r.stdout.splitlines() if ln.strip()] if r.returncode == 0 else []
        rows = [row for row in rows if row and row[0].split(".")[0] == job]
        if rows:
            row = rows[-1] + [""] * 5
            return JobInfo(job, row[1].split()[0] if row[1] else "UNKNOWN", None, row[4] or None,
                           row[3] or None, None, None, row[2] or None, "sacct")
    return None


def find_by_name(name: str) -> str | None:
    """The newest queued or running job called `name` (a run whose submit was not recorded)."""
    r = _query(["squeue", "-h", "-n", name, "-o", "%i"])
    ids = [x for x in r.stdout.split() if x.isdigit()] if r.returncode == 0 else []
    return max(ids, key=int) if ids else None


def job_info(job: str) -> JobInfo | None:
    """The job now: scontrol while Slurm remembers it, then sacct; None: Slurm knows nothing
    (asked through a `tui.runs.backend.JobCache`, at most once a second per job and owner)."""
    info = show_job(job)
    return info if info is not None else accounting(job)


# ------------------------------------------------------------------------------ the script
@dataclass
class BatchJob:
    """Everything the batch script needs."""

    run: str
    run_dir: Path
    log: Path
    cwd: Path
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    spec: SlurmSpec = field(default_factory=SlurmSpec)
    resume_now: list[str] = field(default_factory=list)  # appended from the first start (resume)
    resume_on_restart: list[str] | None = None  # appended when Slurm restarts (requeues) the job;
    # may use $CKPT: interrupted.ckpt unless older than last.ckpt, else last.ckpt


def batch_script(job: BatchJob) -> str:
    """The bash batch script (every value shell-quoted)."""
    q = shlex.quote
    s = job.spec
    lines = ["#!/bin/bash", f"#SBATCH --job-name=runctl-{job.run}", f"#SBATCH --output={job.log}",
             "#SBATCH --open-mode=append", "#SBATCH --requeue",
             f"#SBATCH --signal=USR1@{s.signal_before}"]
    lines += [f"#SBATCH {a}" for a in sbatch_args(s)]
    lines += ["# written by runctl: the run's program under srun, so that signals reach it", "set -u",
              "export PYTHONUNBUFFERED=1", f"export RUNCTL_RUN={q(job.run)}",
              f"export RUNCTL_SLURM_SIGNAL_BEFORE={s.signal_before}",
              f"export RUNCTL_RUN_DIR={q(str(job.run_dir))}"]
    lines += [f"export {k}={q(v)}" for k, v in job.env.items()]
    ck = job.run_dir / "checkpoints"
    flag = job.run_dir / REQUEUE_FLAG
    shim = [sys.executable, "-m", "tui.runs.supervise", "--log", str(job.log), "--requeue-flag", str(flag), "--"]
    lines += [f"export RUNCTL_REQUEUE_FLAG={q(str(flag))}", f"rm -f {q(str(flag))}",
              f"cd {q(str(job.cwd))}",
              "ARGS=(" + " ".join(q(a) for a in [*shim, *job.argv, *job.resume_now]) + ")",
              'if [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ]; then',
              f"  CKPT={q(str(ck / 'last.ckpt'))}",
              f"  if [ -f {q(str(ck / 'interrupted.ckpt'))} ] && ! [ {q(str(ck / 'last.ckpt'))} -nt "
              f"{q(str(ck / 'interrupted.ckpt'))} ]; then CKPT={q(str(ck / 'interrupted.ckpt'))}; fi",
              '  echo "runctl: job $SLURM_JOB_ID restarted (restart $SLURM_RESTART_COUNT), resuming from $CKPT"']
    if job.resume_on_restart is not None:
        lines.append("  ARGS+=(" + " ".join(_with_ckpt(a) for a in job.resume_on_restart) + ")")
    lines += ["fi", 'exec srun --unbuffered --kill-on-bad-exit=1 "${ARGS[@]}"', ""]
    return "\n".join(lines)


def _with_ckpt(arg: str) -> str:
    """One argument for bash, `$CKPT` where the preset wrote {ckpt} (already a marker here)."""
    parts = arg.split("\0CKPT\0")
    return '"$CKPT"'.join(shlex.quote(p) for p in parts) if len(parts) > 1 else shlex.quote(arg)


CKPT_MARK = "\0CKPT\0"  # stands for {ckpt} in `resume_on_restart` until the script expands it
