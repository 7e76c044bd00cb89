"""The ssh backend: a run on another host, owned by runctl there (docs/cli.md, *Hosts*).

Its manifests are the mirror's (tui.runs.remote: `_logs/hosts/HOST/training/RUN.json`, written
from what the host's runctl says); `backend_data` holds the host, the run's id there, its log
there and its backend there. Every change goes to the far runctl over ssh (tui.runs.ssh): a kill is
`runctl kill` there (its verified process group, its lock), a resume `runctl resume` there (its
checks, its checkpoints); whether the run is alive is its host's answer to `runctl status --json`
(asked at most every few seconds per run, through the caller's JobCache). The far runctl keeps its
own queue and GPU slots (`holds_box_gpus` False); its runs live on whatever happens to this
controller or the ssh connection, as local runs do.

Its log is a copy here (`log_feed`, `SshLogFeed`): the bytes the far log gained, appended as they
come through one streaming ssh process (`runctl log RUN --from N --follow` there), so every local
reader (the store, RunTail, the TUI's follower) reads the copy unchanged. After a dropped
connection the stream starts again from the copy's size: no byte is lost or written twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import threading
import time
from collections.abc import Mapping
from typing import IO, Any

from tui.errors import RunctlError, write_error
from tui.runs import ssh
from tui.runs.backend import Attempt, Backend, JobCache, Say, Scheduled, asked
from tui.runs.hosts import Host, get_host
from tui.runs.remote import BACKEND as NAME
from tui.runs.remote import KILL_EXTRA_S, far, far_resume, far_status, mirror, status_job
from tui.runs.ssh import Stream
from tui.runs.store import Manifest, RunStore

TRUNCATED = 3  # `runctl log --from N` exit status: the log there is shorter than N bytes
RETRY_S = (0.5, 1.0, 2.0, 5.0)  # a dropped stream is started again after these waits (then 5 s)
RECHECK_S = 5.0  # an ended stream asks again this often whether the run lives again (a resume)


def host_of(m: Manifest) -> Host:
    """The host the run is on (from the hosts file: a host removed from it is an error)."""
    return get_host(str(m.backend_data.get("host")))


def far_run(m: Manifest) -> str:
    """The run's id on its host."""
    return str(m.backend_data.get("run") or m.run)


def _job(m: Manifest) -> Any:
    """The Job of the run's status on its host (by the host's name: no file read)."""
    return status_job(str(m.backend_data.get("host")), far_run(m))


class SshBackend(Backend[Manifest, RunStore]):
    """A run of another host's runctl, reached with ssh; its log copied here as it grows."""

    name = NAME
    title = "SSH"

    # ------------------------------------------------------------------------- launching
    def check(self, settings: Mapping[str, Any]) -> None:
        """A run goes to a host with `--host`: the host's runctl launches it."""
        raise RunctlError("a run on another host is launched with `runctl launch PRESET --host "
                          "HOST` (hosts.toml), not with backend = \"ssh\"")

    def start(self, store: RunStore, run: Manifest, attempt: Attempt) -> Manifest:
        """A resume: `runctl resume RUN --json` on the host (its own checks), then the mirror
        refreshed. A launch is the host's runctl's (`tui.runs.remote.Remote.launch`)."""
        if attempt.event != "resume":
            self.check(attempt.settings)
        host = host_of(run)
        m = far_resume(host, store, far_run(run))
        store.jobs.forget(status_job(host.name, far_run(run)))
        return m

    def kill(self, store: RunStore, run: Manifest, grace: float, say: Say, by: str) -> str:
        """`runctl kill RUN --grace S` on the host (SIGTERM to its verified process group, for
        good after the grace), its steps said; the mirror refreshed."""
        host, rid = host_of(run), far_run(run)
        answer = ssh.call(host, ["kill", far(rid), f"--grace={grace:g}"],
                          timeout=grace + KILL_EXTRA_S)
        summary = ""
        for line in ssh.clean(answer.out.decode("utf-8", "replace")).splitlines():
            if line.startswith("killed: "):
                summary = line[len("killed: "):]
            elif line.strip():
                say(f"{host.name}: {line.strip()}")
        store.jobs.forget(status_job(host.name, rid))
        with contextlib.suppress(RunctlError):
            mirror(host, store, far_status(host, rid))
        return f"on {host.name}: {summary or 'killed'}"

    # --------------------------------------------------------------------------- reading
    def _ask(self, m: Manifest, jobs: JobCache,
             errors: dict[str, str] | None) -> tuple[dict[str, Any] | None, str | None]:
        """The host's status of the run (None and why: it could not be asked; kept in `errors`)."""
        return asked(m.run, errors, lambda: jobs.info(_job(m)))

    def alive(self, store: RunStore, run: Manifest) -> bool:
        """The host says the run is alive (never raises: a host that does not answer says no).
        A manifest the host changed meanwhile (a kill, a resume from elsewhere) is mirrored."""
        info, _ = self._ask(run, store.jobs, store.job_errors)
        if info is None:
            return False
        far_m = info.get("manifest")
        if isinstance(far_m, dict) and (far_m.get("state") != run.state
                                        or len(far_m.get("history") or ()) != len(run.history)):
            with contextlib.suppress(RunctlError):
                mirror(host_of(run), store, info)
        return _live(info)

    def executing(self, store: RunStore, run: Manifest) -> bool:
        """Its host judges a silence (a stall); this machine sees only the copy of its log."""
        return False

    def stall(self, store: RunStore, run: Manifest) -> tuple[float, float | None] | None:
        """The host's judgement of a silence, from its last answer (no call of its own)."""
        info = store.jobs.seen(_job(run))
        if not isinstance(info, dict) or info.get("state") != "stalled":
            return None
        since, after = info.get("stalled_since"), info.get("stall_after")
        if not isinstance(since, int | float):
            return None
        return float(since), float(after) if isinstance(after, int | float) else None

    def where(self, run: Manifest) -> str:
        pid = f" pid {run.pid}" if run.pid is not None else ""
        return f"{run.backend_data.get('host')}{pid}"

    def label(self, run: Manifest) -> str | None:
        return str(run.backend_data.get("host"))

    def started_json(self, run: Manifest) -> dict[str, Any]:
        return {"host": run.backend_data.get("host")}

    def scheduled(self, run: Manifest, jobs: JobCache,
                  errors: dict[str, str] | None) -> Scheduled:
        """What the host says: its state, process and error (`fields`: `{host, run, state, pid,
        error, process}`); `unanswered` while it does not answer (the copy's state stands)."""
        info, error = self._ask(run, jobs, errors)
        host = run.backend_data.get("host")
        fields: dict[str, Any] = {"host": host, "run": far_run(run), "state": None, "pid": None,
                                  "error": error, "process": None}
        if info is None:
            return Scheduled(job_id=None, state="unknown", alive=False, executing=False,
                             text=ssh.clean(error or f"{host}: no answer"), fields=fields,
                             unanswered=True)
        proc = info.get("process") if isinstance(info.get("process"), dict) else None
        fields |= {"state": info.get("state"), "pid": info.get("pid"), "error": info.get("error"),
                   "process": proc}
        text = f"{host}: {info.get('state')}"
        if proc:
            text += (f" · pid {proc.get('pid')} · CPU {proc.get('cpu_percent')}% · "
                     f"RSS {proc.get('rss_mb')} MB")
        alive = _live(info)
        return Scheduled(job_id=None, state=str(info.get("state")), alive=alive, executing=alive,
                         text=ssh.clean(text), fields=fields)

    def process(self, run: Manifest) -> dict[str, Any] | None:
        return None  # its host's (`runctl status HOST:RUN --json` says it)

    def why_gone(self, store: RunStore, run: Manifest) -> str:
        info, error = self._ask(run, store.jobs, store.job_errors)
        if info is None:
            return f"state unknown ({error})"
        host = run.backend_data.get("host")
        return str(info.get("error") or f"ended on {host} ({info.get('state')})")

    def log_feed(self, store: RunStore, run: Manifest) -> SshLogFeed:
        """The copy of its log kept growing: see SshLogFeed."""
        return SshLogFeed(store, run)


def _live(info: dict[str, Any]) -> bool:
    """A far status's run is alive (launching, initializing, training, validating, stalled)."""
    from tui.runs.store import TERMINAL

    state = info.get("state")
    return isinstance(state, str) and state not in (*TERMINAL, "damaged")


FILES_S = 3.0  # a followed remote run's metric files are looked at this often
FILE_S = 60.0  # one piece of a metric file may take this long to come
FILE_CHUNK = 16 << 20  # ... and is at most this many bytes
_SAFE_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.,=+@ -]*(?:/[A-Za-z0-9_][A-Za-z0-9_.,=+@ -]*)*")  # fullmatch


class SshLogFeed:
    """The copy of a remote run's log (`training/RUN.log` of the mirror), kept growing.

    The first `poll` brings the copy up to date and returns (`runctl log RUN --from SIZE` there:
    what `RunStore.log_state` needs, one call); later polls keep one streaming ssh process going in
    a thread (`... --from SIZE --follow`), which appends every byte as it comes and ends when the
    run ends. A dropped connection starts it again from the copy's size, after a short wait, until
    `close`; `error` says why it is down meanwhile. A log there that became shorter than the copy
    (truncated, replaced) is copied again from its start. One writer per copy: the feed holds
    `training/.RUN.feed.lock` (flock) while it writes; another process's feed finding it held
    leaves the copy to that one.
    """

    def __init__(self, store: RunStore, m: Manifest) -> None:
        self.store, self.manifest = store, m
        self.path = store.log_path(m.run)
        self.lock_path = store.training_dir / f".{m.run}.feed.lock"
        self.error: str | None = None  # why the stream is down now (None: it runs or ended)
        self.ended = False  # the run ended and its log is copied whole
        self.streams = 0  # the streams started (more than one: it reconnected)
        self._polls = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._checked = 0.0  # when the host was last asked about the run (poll)
        self._lock_file: IO[bytes] | None = None
        self._closed = False
        self.files_dir = store.run_dir(m.run)  # the mirror's copy of the run folder's metric files
        self._files: dict[str, tuple[int, int]] = {}  # path -> (size, mtime_ns) there, as copied
        self._files_at = -FILES_S

    # ------------------------------------------------------------------------ the lock
    def _take(self) -> bool:
        try:
            self.store.training_dir.mkdir(parents=True, exist_ok=True)
            f = open(self.lock_path, "ab")  # noqa: SIM115 - kept while this feed writes
        except OSError as e:
            self.error = f"cannot write {self.lock_path}: {e.strerror or e}"
            return False
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            return False
        self._lock_file = f
        return True

    def _release(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing the file drops the flock
            self._lock_file = None

    def _size(self) -> int:
        try:
            return os.stat(self.path).st_size
        except FileNotFoundError:
            return 0

    # ------------------------------------------------------------------------ copying
    def _pull(self, follow: bool) -> int | None:
        """One stream from the copy's size, appended as it comes (the lock held); its exit
        status (None: stopped here)."""
        host, rid = host_of(self.manifest), far_run(self.manifest)
        args = ["log", far(rid), f"--from={self._size()}"] + (["--follow"] if follow else [])
        stream = Stream(host, args)
        self.streams += follow
        idle = ssh.query_timeout()
        last = time.monotonic()
        try:
            with open(self.path, "ab") as out:
                while not self._stop.is_set():
                    data = stream.read(0.25)
                    if data is None:
                        break
                    if data:
                        out.write(data)
                        out.flush()
                        last = time.monotonic()
                        self.error = None
                    elif not follow and time.monotonic() - last > idle:
                        raise ssh.Unreachable(host.name, f"no bytes within {idle:g}s")
        except OSError as e:  # the copy cannot be written (a full disk): said, the stream stopped
            stream.close()
            raise write_error(self.path, e) from None
        except BaseException:
            stream.close()
            raise
        if self._stop.is_set():
            stream.close()
            return None
        answer = stream.finish()
        if answer.rc == 255:
            raise ssh.Unreachable(host.name, ssh.ssh_failure(answer.err))
        if answer.rc not in (0, TRUNCATED):
            raise ssh.remote_error(host, answer)
        return answer.rc

    def _catch_up(self) -> None:
        """Bring the copy up to date once (no stream left running)."""
        if not self._take():
            return
        try:
            for _ in range(2):
                if self._pull(follow=False) != TRUNCATED:
                    break
                self._restart_copy()
        except RunctlError as e:
            self.error = str(e)
        finally:
            self._release()

    def _restart_copy(self) -> None:
        """The log there is shorter than the copy: copy it again from its start."""
        try:
            with open(self.path, "r+b") as f:
                f.truncate(0)
        except OSError as e:
            raise write_error(self.path, e) from None

    def _follow(self) -> None:
        """The stream thread: follow until the run ends or `close`; reconnect after a drop."""
        tries = 0
        while not self._stop.is_set():
            if not self._take():  # another feed writes the copy: let it
                self._stop.wait(1.0)
                continue
            try:
                rc = self._pull(follow=True)
                if rc is None:
                    return
                if rc == TRUNCATED:
                    self._restart_copy()
                    continue
                self.ended = True
                self.store.jobs.forget(_job(self.manifest))
                return
            except RunctlError as e:
                self.error = str(e)
            finally:
                self._release()
            self._stop.wait(RETRY_S[min(tries, len(RETRY_S) - 1)])
            tries += 1

    def _sync_files(self) -> None:
        """Copy what the run's metric files there gained (`runctl log RUN --files`, then `--file`):
        an append-only one (event files, JSON lines) from the copy's size, any other (a CSV the
        logger rewrites, trainer_state.json) whole, through a temporary file. Best effort: a host
        that does not answer leaves the copies as they are, the stream's error says why."""
        now = time.monotonic()
        if now - self._files_at < FILES_S or not self.manifest.source_config.files:
            return
        self._files_at = now
        host, rid = host_of(self.manifest), far_run(self.manifest)
        try:
            listed = ssh.call_json(host, ["log", far(rid), "--files"])
        except RunctlError:
            return
        for e in listed if isinstance(listed, list) else ():
            rel = e.get("path") if isinstance(e, dict) else None
            if not isinstance(rel, str) or not _SAFE_PATH.fullmatch(rel) or ".." in rel.split("/"):
                continue  # a host's answer is data: only a plain relative path is a file here
            key = (int(e.get("size") or 0), int(e.get("mtime_ns") or 0))
            if self._files.get(rel) == key:
                continue
            with contextlib.suppress(RunctlError, OSError):
                self._copy_file(host, rid, rel, key[0], bool(e.get("append_only")))
                self._files[rel] = key

    def _copy_file(self, host: Any, rid: str, rel: str, size: int, append_only: bool) -> None:
        dest = self.files_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        have = dest.stat().st_size if dest.exists() else 0
        append = append_only and 0 < have <= size
        start = have if append else 0
        tmp = dest.with_name(f".{dest.name}.part")
        with open(dest if append else tmp, "ab" if append else "wb") as out:
            while start < size:
                answer = ssh.call(host, ["log", far(rid), "--file", rel, f"--from={start}",
                                         f"--limit={FILE_CHUNK}"], timeout=FILE_S)
                if not answer.out:
                    break
                out.write(answer.out)
                start += len(answer.out)
        if not append:
            os.replace(tmp, dest)

    def poll(self) -> None:
        """First poll: the copy brought up to date. Later: the stream kept running, and every
        RECHECK_S the host asked about the run (a manifest it changed is mirrored; a stream that
        ended is started again if the run lives again: a resume). A caller that just saw the run
        ended (the host's answer, standing in the store's JobCache) gets the copy whole: the
        stream, which ends once the far log's last bytes are out, is waited for."""
        if self._closed:
            return
        self._polls += 1
        if self._polls == 1:
            self._checked = time.monotonic()
            self._catch_up()
            self._sync_files()
            return
        self._sync_files()
        live: bool | None = None
        if time.monotonic() - self._checked >= RECHECK_S:
            self._checked = time.monotonic()
            live = BACKEND.alive(self.store, self.manifest)  # mirrors what the host changed
            with contextlib.suppress(RunctlError):
                self.manifest = self.store.get(self.manifest.run)
        if self._thread is not None and self._thread.is_alive():
            info = self.store.jobs.seen(_job(self.manifest))
            if info is not None and not _live(info):  # the host said it ended: its last bytes
                self._thread.join(ssh.query_timeout())  # are on their way (not: it is down)
            return
        if self.ended and not live:
            return
        self.ended = False
        self._stop.clear()
        self._thread = threading.Thread(target=self._follow, name=f"ssh-feed {self.manifest.run}",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the stream (its ssh process group killed); the copy stays; polls do nothing."""
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


BACKEND = SshBackend()
