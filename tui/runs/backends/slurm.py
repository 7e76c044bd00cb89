"""The slurm backend: a run as a Slurm batch job on the shared filesystem (docs/cli.md, "Slurm").

Each attempt is one job (`job-N.sbatch` in the run folder, submitted with sbatch through the
Slurm client tui.runs.slurm); the manifest's `backend_data` keeps the current job (`job_id`),
every job of the run (`job_ids`, oldest first) and the `[slurm]` settings it was submitted with
(`settings`). The manifest is written before the submit (no job is ever left without one) and
removed again with the script when sbatch refuses a new run. The job is alive while Slurm says it
is queued or running; its state comes from scontrol, then sacct, asked through the caller's
`JobCache`; a controller that does not answer leaves the log's state standing.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.runfiles import ATTEMPT_ENV, EXIT_FILE_ENV, placeholder, write_record
from tui.errors import RunctlError, write_error
from tui.presets.backends import SlurmSpec
from tui.presets.preset import expand
from tui.runs import slurm
from tui.runs.backend import Attempt, Backend, Job, JobCache, Say, Scheduled, actor, asked
from tui.runs.slurm import JobInfo
from tui.runs.store import Manifest, RunStore


def job_id(m: Manifest) -> str | None:
    """A Slurm run's current job (None: not submitted yet)."""
    job = m.backend_data.get("job_id")
    return str(job) if job else None


def job_ids(m: Manifest) -> list[str]:
    """Every job of a Slurm run, oldest first."""
    return [str(j) for j in m.backend_data.get("job_ids") or ()]


def _job(job: str) -> Job:
    return Job(job, slurm.job_info)


class SlurmBackend(Backend[Manifest, RunStore]):
    """A Slurm batch job per attempt (sbatch), signalled and cancelled with scancel."""

    name = "slurm"
    title = "Slurm"

    # ------------------------------------------------------------------------- launching
    def check(self, settings: Mapping[str, Any]) -> None:
        """Every Slurm command is there, and the partition exists."""
        spec = SlurmSpec.from_json(dict(settings))
        slurm.check_available()
        if spec.partition:
            slurm.check_partition(spec.partition)

    def engine_args(self, settings: Mapping[str, Any]) -> list[str]:
        """More than one task: Lightning DDP across the job's tasks."""
        spec = SlurmSpec.from_json(dict(settings))
        if not spec.distributed:
            return []
        return [f"train.trainer.num_nodes={spec.nodes}", f"train.trainer.devices={spec.ntasks_per_node}",
                "train.trainer.strategy=ddp"]

    def start(self, store: RunStore, run: Manifest, attempt: Attempt) -> Manifest:
        """Launch: the first job; resume: a new job on the same run folder and log."""
        if attempt.event == "launch":
            spec = SlurmSpec.from_json(dict(attempt.settings))
            m = replace(run, backend_data={"settings": spec.to_json()}, state="submitting")
            return self._submit(store, m, spec, resume_now=[])
        spec = SlurmSpec.from_json(run.backend_data.get("settings"))
        slurm.check_available()
        return self._submit(store, replace(run, state="running"), spec, resume_now=list(attempt.resume))

    def _submit(self, store: RunStore, m: Manifest, spec: SlurmSpec, resume_now: list[str]) -> Manifest:
        """Write the batch script and submit it; the manifest is written first (no job is ever left
        without one) and, if sbatch refuses, removed again with the script (a new run) or left as
        it was (a resume)."""
        run_dir = Path(m.run_dir)
        new_run = not store.manifest_path(m.run).exists()
        if m.kind == "command":
            restart = [expand(a, {**m.placeholders, "ckpt": slurm.CKPT_MARK}) for a in m.resume_args]
            resume_on_restart: list[str] | None = restart or None
        else:
            resume_on_restart = ["--resume"]
        exit_file = store.exit_path(m.run)
        attempt = m.attempt + (0 if new_run else 1)
        env = {**m.env, EXIT_FILE_ENV: str(exit_file.resolve()), ATTEMPT_ENV: str(attempt)}
        job = slurm.BatchJob(run=m.run, run_dir=run_dir, log=Path(m.log),
                             cwd=Path(m.cwd) if m.cwd else run_dir, argv=list(m.argv), env=env,
                             spec=spec, resume_now=resume_now, resume_on_restart=resume_on_restart)
        scripts = run_dir / "slurm"
        created_dir = not run_dir.exists()
        try:
            scripts.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise write_error(scripts, e, "create") from None
        ids = job_ids(m)
        script = scripts / f"job-{len(ids) + 1}.sbatch"
        if new_run:
            store.save(m)
        try:
            write_record(exit_file, placeholder(attempt), reserve=True)
            script.write_text(slurm.batch_script(job), encoding="utf-8")
            submitted = slurm.submit(script)
        except (RunctlError, OSError) as e:
            script.unlink(missing_ok=True)
            if new_run:
                store.manifest_path(m.run).unlink(missing_ok=True)
                if created_dir:
                    shutil.rmtree(run_dir, ignore_errors=True)
            if isinstance(e, OSError):
                raise write_error(getattr(e, "filename", None) or script, e) from None
            raise
        store.jobs.forget(_job(submitted))
        data = {**m.backend_data, "job_id": submitted, "job_ids": [*ids, submitted]}
        m = replace(m, backend_data=data, state="running", pid=None, create_time=None, cmdline=())
        m = m.with_event("submit" if new_run else "resume", job_id=submitted, script=str(script), by=actor())
        store.save(m)
        return m

    def kill(self, store: RunStore, run: Manifest, grace: float, say: Say, by: str) -> str:
        """`scancel --signal=TERM` (the program checkpoints), `scancel` after the grace; a job
        not yet running is cancelled at once."""
        m, steps = self._kill_job(store, run, grace, say, by)
        m = replace(m, state="killed", history=(*m.history[:-1], {**m.history[-1],
                    "done_at": round(time.time(), 3)}))
        store.save(m)
        job = job_id(m)
        if job:
            store.jobs.forget(_job(job))
        return "; ".join(steps)

    def _kill_job(self, store: RunStore, m: Manifest, grace: float, say: Say,
                  by: str) -> tuple[Manifest, list[str]]:
        info, _ = self._ask(m, store.jobs, store.job_errors)
        job = job_id(m)
        if info is None or not info.active:
            state = info.state if info is not None else "unknown to Slurm"
            raise RunctlError(f"run {m.run} is not running (Slurm job {job}: {state})")
        assert job is not None
        m = replace(m.with_event("kill", job_id=job, grace=grace, by=by), state="killing")
        store.save(m)
        if info.state != "RUNNING":
            slurm.cancel(job)
            steps = [f"scancel {job} ({info.state.lower()})"]
            say(steps[0])
            return m, steps
        slurm.signal_job(job, "TERM")
        steps = [f"SIGTERM -> Slurm job {job} (run {m.run})"]
        say(f"{steps[0]}; waiting up to {grace:g}s for checkpoint-and-exit")
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            store.jobs.forget(_job(job))
            now, _ = self._ask(m, store.jobs, store.job_errors)
            if now is None or not now.active:
                steps.append("exited after SIGTERM")
                say(f"run {m.run} exited after SIGTERM")
                return m, steps
            time.sleep(0.5)
        slurm.cancel(job)
        steps.append(f"still running after {grace:g}s: scancel {job}")
        say(steps[-1])
        return m, steps

    # --------------------------------------------------------------------------- reading
    def _ask(self, m: Manifest, jobs: JobCache,
             errors: dict[str, str] | None) -> tuple[JobInfo | None, str | None]:
        """The run's job as Slurm tells it now (None: Slurm forgot it, or could not be asked:
        then why, also kept in `errors`; a state read never fails on Slurm's errors)."""
        def ask() -> JobInfo | None:
            job = job_id(m) or slurm.find_by_name(f"runctl-{m.run}")  # submitted, not yet recorded
            return jobs.info(_job(job)) if job else None

        return asked(m.run, errors, ask)

    def alive(self, store: RunStore, run: Manifest) -> bool:
        """The job is queued or running."""
        info, _ = self._ask(run, store.jobs, store.job_errors)
        return info is not None and info.active

    def executing(self, store: RunStore, run: Manifest) -> bool:
        """The job is running (a pending one writes nothing yet)."""
        info, _ = self._ask(run, store.jobs, store.job_errors)
        return info is not None and info.state == "RUNNING"

    def ending(self, store: RunStore, run: Manifest) -> bool:
        """The job is COMPLETING (cancelled or ended; Slurm still cleaning up its processes), or
        still listed while its attempt's own exit record says the program ended (not requeued)."""
        job = job_id(run)
        if job:
            store.jobs.forget(_job(job))
        info, _ = self._ask(run, store.jobs, store.job_errors)
        if info is None or not info.active:
            return False
        rec = store.exit_record(run)
        return info.state == "COMPLETING" or rec is not None and rec.get("reason") != "requeued"

    def where(self, run: Manifest) -> str:
        return f"Slurm job {job_id(run)}"

    def label(self, run: Manifest) -> str | None:
        job = job_id(run)
        return f"job {job}" if job else None

    def started_json(self, run: Manifest) -> dict[str, Any]:
        return {"job_id": job_id(run)}

    def scheduled(self, run: Manifest, jobs: JobCache, errors: dict[str, str] | None) -> Scheduled:
        """The job: `status --json`'s `slurm` block `{job_id, job_ids, state, reason, node, elapsed,
        time_limit, restarts, exit_code, source}`; state `unknown` when Slurm did not answer."""
        info, error = self._ask(run, jobs, errors)
        job, ids = job_id(run), job_ids(run)
        fields: dict[str, Any] = {
            "job_id": job, "job_ids": ids, "state": None, "reason": None, "node": None,
            "elapsed": None, "time_limit": None, "restarts": None, "exit_code": None, "source": None}
        if info is None and error is not None:  # Slurm did not answer: the log answered alone
            fields |= {"state": "unknown", "reason": error, "source": "unanswered"}
        fields = {**fields, **(info.to_json() if info is not None else {}), "job_ids": ids}
        if error is not None:
            text = f"Slurm job {job}: {error}"
        elif info is None:
            text = f"Slurm job {job}: unknown to Slurm"
        else:
            where = f" on {info.node}" if info.node else ""
            why = f" ({info.reason})" if info.reason else ""
            limit = f"/{info.time_limit}" if info.time_limit else ""
            text = f"Slurm job {job} {info.state}{why}{where} {info.elapsed or ''}{limit}".strip()
        return Scheduled(job_id=job, state=fields["state"], alive=info is not None and info.active,
                         executing=info is not None and info.state == "RUNNING", text=text,
                         fields=fields, unanswered=error is not None and "did not answer" in error)

    def why_gone(self, store: RunStore, run: Manifest) -> str:
        info, error = self._ask(run, store.jobs, store.job_errors)
        job = job_id(run)
        if info is None and error is not None:
            return f"Slurm job {job}: state unknown ({error})"
        if info is None:
            return (f"Slurm job {job} vanished (not in scontrol or sacct) and the log has no "
                    f"final line")
        code = f" (exit {info.exit_code})" if info.exit_code else ""
        return f"Slurm job {job} ended {info.state}{code} without a final line"


BACKEND = SlurmBackend()
