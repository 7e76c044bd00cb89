"""Run manifests under `_logs/training` and the RunStore: which runs exist and how they stand.

Layout (the seed's): `training/<run>.log`, `training/<run>.json` (this manifest),
`training/<name>.pid`, engine checkpoints in `runs/<run>/`; run id = `<name>_<YYYYmmdd_HHMMSS>`;
`training/<run>.exit` how the run's current attempt ended, written by its own process
(`engine.runfiles`); `training/.cache/<run>.json` an ended run's listing row (`RunStore.listing`).

A manifest that cannot be read is not skipped: the run is listed as damaged (the file and why),
its process found from the log's pid line and the pid file (checked: it writes this run's log, or
its environment names the run), so it can still be followed and killed, and its name stays taken.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from engine.runfiles import read_exit
from tui.errors import RunctlError, write_error
from tui.log.sources import SourceConfig
from tui.presets.backends import BACKENDS, DEFAULT_BACKEND
from tui.runs import procs
from tui.runs.backend import Backend, JobCache, backend_named
from tui.runs.checkpoints import newest_checkpoint, resume_point
from tui.state.run import RunState
from tui.state.stall import apply_stall

MANIFEST_VERSION = 1
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}$")
RUN_ID_RE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*?)_(?P<t>\d{8}_\d{6})(?:_\d+)?$")
TERMINAL = ("finished", "crashed", "killed")
NO_FINAL_LINE = "process exited without a final line"
DAMAGED = "damaged"  # a run whose manifest cannot be read (the listing's state)
EXIT_SUFFIX = ".exit"  # training/<run>.exit: the current attempt's end (JSON, not named *.json: not a manifest)
NOT_RUNS = ("queue", "queue_runner", "watcher", "notified")  # other JSON files of training/ (issue 20: the last two)
EXIT_FRESH_S = 0.05  # an exit record stat'ed this recently (in the same state read) is not stat'ed again
ATTEMPT_EVENTS = ("launch", "submit", "resume")  # history events that start an attempt
LISTING_VERSION = 3  # of the cached listing rows (`RunStore.listing`)
HEADLINE = ("sharpe", "val_loss", "ic_h1", "ic_h20", "scale_min")  # a listing's numbers of a run
_LISTED = ("state", "epoch", "max_epochs", "error", "exit_reason", "exit_status", "source_format", "log_event")
_EXIT_STATES = {"finished": "finished", "terminated": "killed", "requeued": "launching"}


class UnknownRun(RunctlError):
    """No manifest for the run the user named."""


@dataclass(frozen=True)
class Manifest:
    """One run as the controller launched it (docs/cli.md lists every field)."""

    run: str
    name: str
    preset: str
    log: str
    run_dir: str
    pid_file: str
    created_at: float
    host: str
    argv: tuple[str, ...] = ()  # the command of the first launch (no --resume / resume_args)
    sets: tuple[str, ...] = ()  # --set as typed
    envs: tuple[str, ...] = ()  # --env as typed
    env: dict[str, str] = field(default_factory=dict)  # resolved preset env (+ --env)
    overrides: dict[str, Any] = field(default_factory=dict)  # resolved dotted overrides
    pid: int | None = None  # the current (latest) engine process
    create_time: float | None = None
    cmdline: tuple[str, ...] = ()
    state: str = "running"  # controller's last action: running | killing | killed
    history: tuple[dict[str, Any], ...] = ()  # launch / resume / kill / autopilot events
    parent: str | None = None  # autopilot: the run whose verdict launched this one
    children: tuple[str, ...] = ()
    autopilot: dict[str, Any] | None = None
    version: int = MANIFEST_VERSION
    # A preset's own command (kind "command"; "engine": the bundled engine), docs/presets.md.
    kind: str = "engine"
    cwd: str | None = None  # the folder the command runs in
    resume_args: tuple[str, ...] = ()  # the preset's resume_args, placeholders unexpanded
    placeholders: dict[str, str] = field(default_factory=dict)  # {python} {run_dir} {run} {max_epochs}
    log_format: str = "auto"
    metrics_csv: str | None = None  # a Lightning CSVLogger metrics.csv (a glob) read beside the log
    gpus: tuple[int, ...] = ()  # the GPUs this run's current process holds (CUDA_VISIBLE_DEVICES)
    gpus_requested: int | None = None  # what its preset asked for (a resume asks again; None: the default)
    backend: str = DEFAULT_BACKEND  # where it runs: a name of tui.presets.backends.BACKENDS
    backend_data: dict[str, Any] = field(default_factory=dict)  # what its backend keeps (Slurm: its jobs)
    checkpoint_files: str | None = None  # a command's checkpoints (a glob, expanded); None: the default
    damaged: str | None = None  # not from the file: why the manifest file could not be read
    sources: dict[str, Any] | None = None  # the run's metric sources (tui.log.sources.SourceConfig)
    stall_after: float | None = None  # its preset's stall_after (s; 0: never; None: tui.state.stall's)
    presets_dir: str | None = None  # the folder of the preset it was launched from (the watcher's)
    sweep: dict[str, Any] | None = None  # a sweep's run: {id, index, values} (tui.runs.sweeps)

    @functools.cached_property
    def source_config(self) -> SourceConfig:
        """What the run's metrics are read from: its `sources`, or (a manifest written before
        them) the runctl stream for the engine, a command's log format and metrics CSV."""
        if self.sources is not None:
            return SourceConfig.from_json(self.sources)
        if self.kind == "engine":
            return SourceConfig(log_format="runctl")
        return SourceConfig(log_format=self.log_format,
                            files=(("csv", self.metrics_csv),) if self.metrics_csv else ())

    @property
    def reads_files(self) -> bool:
        """Metrics come from files beside the log too (they may grow while the log does not)."""
        return bool(self.source_config.files)

    @property
    def attempt(self) -> int:
        """Which attempt the current process is (1: the launch; each resume adds one)."""
        return max(1, sum(1 for h in self.history if h.get("event") in ATTEMPT_EVENTS))

    @property
    def resumed(self) -> bool:
        """The current attempt is a resume."""
        starts = [h for h in self.history if h.get("event") in ATTEMPT_EVENTS]
        return bool(starts) and starts[-1].get("event") == "resume"

    @property
    def identity(self) -> procs.Identity | None:
        """The recorded engine process."""
        if self.pid is None or self.create_time is None:
            return None
        return procs.Identity(self.pid, self.create_time, self.cmdline)

    @property
    def killed(self) -> bool:
        """The controller stopped this run (its latest attempt)."""
        return self.state in ("killing", "killed")

    def with_event(self, event: str, **data: Any) -> Manifest:
        """A copy with one history entry appended."""
        entry = {"event": event, "at": round(time.time(), 3), **data}
        return replace(self, history=(*self.history, entry))

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (lists for tuples)."""
        out = asdict(self)
        for k in ("argv", "sets", "envs", "cmdline", "history", "children", "resume_args", "gpus"):
            out[k] = list(out[k])
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        """Parse a manifest; unknown keys are ignored (newer writers); TypeError / ValueError when
        a key the controller relies on is missing or of the wrong type, or its backend is unknown.
        A manifest written before `backend_data` has its backend's keys at the top (a Slurm run's
        `job_id`, `job_ids`, `slurm`): they are read into `backend_data`."""
        kw = {k: v for k, v in data.items() if k in _FIELDS and k != "damaged"}
        entry = BACKENDS.get(kw.get("backend", DEFAULT_BACKEND))
        if entry is None:
            raise ValueError(f"backend {kw.get('backend')!r} is not one of {', '.join(BACKENDS)}")
        if "backend_data" not in kw:
            kw["backend_data"] = {new: data[old] for old, new in entry.legacy if data.get(old)}
        elif not isinstance(kw["backend_data"], dict):
            raise ValueError("'backend_data' is not a table")
        for k in ("argv", "sets", "envs", "cmdline", "history", "children", "resume_args", "gpus"):
            if k in kw:
                if kw[k] is not None and not isinstance(kw[k], list | tuple):
                    raise ValueError(f"{k!r} is not a list")
                kw[k] = tuple(kw[k] or ())
        for k in ("run", "name", "preset", "log", "run_dir", "pid_file"):
            if not isinstance(kw.get(k), str):
                raise ValueError(f"{k!r} is missing or not a string")
        if not isinstance(kw.get("created_at"), int | float) or isinstance(kw.get("created_at"), bool):
            raise ValueError("'created_at' is missing or not a number")
        if kw.get("pid") is not None and not isinstance(kw["pid"], int):
            raise ValueError("'pid' is not a number")
        if not all(isinstance(g, int) for g in kw.get("gpus", ())) or \
                not all(isinstance(h, dict) for h in kw.get("history", ())):
            raise ValueError("'gpus' or 'history' is malformed")
        return cls(**kw)


_FIELDS = frozenset(f.name for f in fields(Manifest))  # the file's keys


def atomic_write_json(path: Path, data: Any, durable: bool = True) -> None:
    """Write JSON to `path` via a temp file + rename (readers never see half a file); `durable`:
    fsync'd first (a manifest; a cache need not be). A failed write (a full disk) is a one-line
    RunctlError naming the file and the free space; the file is left as it was."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=False)
            f.write("\n")
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise write_error(path, e) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


class RunStore:
    """The runs of one `_logs` directory."""

    def __init__(self, logs_dir: Path | str) -> None:
        self.logs_dir = Path(logs_dir)
        self.training_dir = self.logs_dir / "training"
        self.runs_dir = self.logs_dir / "runs"
        self.jobs = JobCache()  # what schedulers said about this store's runs' jobs (tui.runs.backend)
        self.job_errors: dict[str, str] = {}  # run -> why its scheduler could not be asked about it
        self._exits: dict[str, tuple[Any, dict[str, Any] | None, float]] = {}  # run -> (file key, record, when)
        self._training = str(self.training_dir)
        self._logs: dict[str, _ReadLog] = {}  # run -> its log as read so far (`log_state`)
        self._marks: dict[str, Any] = {}  # run -> its log's read mark as this store last saw it (`seen_read`)
        self._logs_lock = threading.Lock()

    # ------------------------------------------------------------------------------ paths
    def manifest_path(self, run: str) -> Path:
        """`training/<run>.json`."""
        return self.training_dir / f"{run}.json"

    def log_path(self, run: str) -> Path:
        """`training/<run>.log`."""
        return self.training_dir / f"{run}.log"

    def pid_path(self, name: str) -> Path:
        """`training/<name>.pid` (the seed's pid file: the latest run of that name)."""
        return self.training_dir / f"{name}.pid"

    def run_dir(self, run: str) -> Path:
        """`runs/<run>/` (engine checkpoints)."""
        return self.runs_dir / run

    def exit_path(self, run: str) -> Path:
        """`training/<run>.exit`: how the run's current attempt ended (engine.runfiles)."""
        return self.training_dir / f"{run}{EXIT_SUFFIX}"

    def new_run_id(self, name: str, when: float | None = None) -> str:
        """`<name>_<YYYYmmdd_HHMMSS>` (local time), `_2`, `_3`... if that second is taken."""
        base = f"{name}_{time.strftime('%Y%m%d_%H%M%S', time.localtime(when))}"
        run, n = base, 1
        while self.manifest_path(run).exists() or self.log_path(run).exists():
            n += 1
            run = f"{base}_{n}"
        return run

    # --------------------------------------------------------------------------- manifests
    def runs(self) -> list[Manifest]:
        """Every run, newest first: each manifest, and each run whose manifest cannot be read
        (`damaged`)."""
        out = []
        if self.training_dir.is_dir():
            for p in self.training_dir.glob("*.json"):
                if p.stem in NOT_RUNS:
                    continue
                m = self._read(p)
                if m is not None:
                    out.append(m)
        return sorted(out, key=lambda m: (m.created_at, m.run), reverse=True)

    def _read(self, path: Path) -> Manifest | None:
        """The manifest in `path`; a damaged one (unreadable, not JSON, malformed) as a `damaged`
        Manifest when the file is a run's (its name a run id, or a log beside it); else None."""
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except OSError as e:
            why = f"cannot be read ({e.strerror or e})"
        except ValueError as e:
            why = f"not valid JSON ({e})"
        else:
            if isinstance(data, dict) and "run" in data:
                try:
                    return Manifest.from_json(data)
                except (TypeError, ValueError) as e:
                    why = f"malformed ({e})"
            else:
                why = "not a run manifest (no \"run\" key)"
        if not (RUN_ID_RE.match(path.stem) or self.log_path(path.stem).exists()):
            return None
        return self._damaged(path, why)

    def _damaged(self, path: Path, why: str) -> Manifest:
        """A run whose manifest `path` cannot be read: what its file name, its log and its
        process tell (the process verified: it writes the run's log, or its environment names it)."""
        run = path.stem
        mt = RUN_ID_RE.match(run)
        name = mt["name"] if mt else run
        created: float
        try:
            created = time.mktime(time.strptime(mt["t"], "%Y%m%d_%H%M%S")) if mt else path.stat().st_mtime
        except (OSError, ValueError):
            created = 0.0
        m = Manifest(run=run, name=name, preset="", log=str(self.log_path(run).absolute()),
                     run_dir=str(self.run_dir(run).absolute()), pid_file=str(self.pid_path(name).absolute()),
                     created_at=created, host="", damaged=why)
        ident = self._log_identity(m)
        if ident is not None:
            m = replace(m, pid=ident.pid, create_time=ident.create_time, cmdline=ident.cmdline)
        return m

    def _log_identity(self, m: Manifest) -> procs.Identity | None:
        """The live process of a run known only from its log: the pid file's pid and the log's
        latest pid line, each verified (`procs.identify_run`); a group leader first."""
        pids: list[int] = []
        with contextlib.suppress(OSError, ValueError):
            pids.append(int(Path(m.pid_file).read_text().split()[0]))
        with contextlib.suppress(OSError, RunctlError):
            pid = self.log_state(m).pid
            if pid is not None:
                pids.append(pid)
        found = [i for p in dict.fromkeys(pids) if (i := procs.identify_run(p, m.log, m.run)) is not None]
        leaders = [i for i in found if procs.leads_group(i.pid)]
        return leaders[0] if leaders else found[0] if found else None

    def get(self, run: str) -> Manifest:
        """A run by id, or by name (its newest run); UnknownRun listing recent runs."""
        m = self._read(self.manifest_path(run)) if NAME_RE.match(run) else None
        if m is not None:
            return m
        all_runs = self.runs()
        for m in all_runs:
            if m.name == run:
                return m
        recent = ", ".join(m.run for m in all_runs[:8]) or "(none)"
        raise UnknownRun(f"unknown run {run!r} in {self.training_dir}; recent runs: {recent}")

    def for_log(self, log: Path | str) -> Manifest | None:
        """The manifest beside a log file (same stem), if any."""
        p = Path(log)
        return self._read(p.with_suffix(".json"))

    def save(self, m: Manifest) -> None:
        """Write the manifest atomically (a damaged one is left as it is: nothing is recorded)."""
        if m.damaged is not None:
            return
        try:
            self.training_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise write_error(self.training_dir, e, "create") from None
        data = m.to_json()
        data.pop("damaged", None)
        atomic_write_json(self.manifest_path(m.run), data)

    def write_pid(self, m: Manifest) -> None:
        """The seed's pid file, atomically."""
        path = Path(m.pid_file)
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            with os.fdopen(fd, "w") as f:
                f.write(f"{m.pid}\n")
            os.replace(tmp, path)
        except OSError as e:
            raise write_error(path, e) from None
        finally:
            if tmp is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    def exit_record(self, m: Manifest) -> dict[str, Any] | None:
        """How the run's current attempt ended, as its process recorded it (None: not ended, not
        recorded, or another attempt's record). Read again only when the file changed."""
        now = time.monotonic()
        hit = self._exits.get(m.run)
        if hit is None or now - hit[2] > EXIT_FRESH_S:  # asked again within a state read: reused
            path = f"{self._training}/{m.run}{EXIT_SUFFIX}"  # a string: this runs per run per listing
            try:
                fs = os.stat(path)
            except OSError:
                hit = (None, None, now)
            else:
                key = (fs.st_ino, fs.st_size, fs.st_mtime_ns)
                hit = (key, hit[1] if hit is not None and hit[0] == key else read_exit(path), now)
            self._exits[m.run] = hit
        rec = hit[1]
        if rec is None or (rec.get("attempt") is not None and rec.get("attempt") != m.attempt):
            return None
        return rec

    def writer_file(self, m: Manifest) -> str | None:
        """The file the run's output now goes to when its log path does not name it (renamed
        away or deleted): what its backend says its live process writes (a local process's
        `/proc/PID/fd/1`, the process verified), else where its stdout was when it ended (the
        exit record), if that file is still there. None: the log path is the file."""
        log = self.log_path(m.run)
        try:
            pst: os.stat_result | None = os.stat(log)
        except OSError:
            pst = None
        here = (pst.st_dev, pst.st_ino) if pst is not None else None
        given = self._given_log(m)
        if here is not None and given == here:
            return None  # the path still names the file the run was given
        live = self.backend(m).live_writer(m, log, here, given)
        if live is not None:
            return None if live == str(log) else live
        rec = self.exit_record(m)
        where = rec.get("log") if rec is not None else None
        if not isinstance(where, dict) or where.get("deleted") or not where.get("path"):
            return None
        if given is not None and (where.get("dev"), where.get("ino")) != given:
            return None
        try:
            rst = os.stat(where["path"])
        except OSError:
            return None
        if (rst.st_dev, rst.st_ino) != (where.get("dev"), where.get("ino")) or (rst.st_dev, rst.st_ino) == here:
            return None
        return str(where["path"])

    @staticmethod
    def _given_log(m: Manifest) -> tuple[int, int] | None:
        """The (device, inode) of the log file the current attempt was started with (None: not
        recorded)."""
        start = next((h for h in reversed(m.history) if h.get("event") in ATTEMPT_EVENTS), None)
        ino = start.get("log_ino") if start is not None else None
        if isinstance(ino, list | tuple) and len(ino) == 2:
            return int(ino[0]), int(ino[1])
        return None

    # ------------------------------------------------------------------------------- state
    @staticmethod
    def backend(m: Manifest) -> Backend[Manifest, RunStore]:
        """Where the run runs (tui.runs.backend): what starts, kills and watches it."""
        return backend_named(m.backend)

    def is_running(self, m: Manifest) -> bool:
        """The run's current attempt is alive, as its backend tells (a local run: the recorded
        process is alive and still the same process; a Slurm run: its job is queued or running)."""
        return self.backend(m).alive(self, m)

    def state(self, m: Manifest, resume: bool = True) -> RunState:
        """The run's state: its log combined with process liveness and the manifest (`resume`:
        also what a resume would continue from, see `judge`)."""
        return self.judge(m, self.log_state(m), resume=resume)

    def log_state(self, m: Manifest) -> RunState:
        """The state of the run's log alone, read incrementally: a log this store read before is
        read on from where it stopped (nothing at all if its size and mtime did not change). A
        truncated, rotated or deleted log is followed where the run writes it (`writer_file`),
        keeping what was read (`log_event` says what happened). The same state as reading the
        whole log.

        Returns a `snapshot()`: later reads never change it (they copy a shared epoch record
        before writing to it).
        """
        feed = self.backend(m).log_feed(self, m)  # a log its backend copies here (ssh): brought up to date
        if feed is not None:
            with contextlib.closing(feed):
                feed.poll()
        path = self.log_path(m.run)
        alt = self.writer_file(m)
        try:
            st = os.stat(alt or path)
        except OSError:
            with self._logs_lock:
                read = self._logs.get(m.run)
                return read.follower.state.snapshot() if read is not None else RunState()
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        with self._logs_lock:
            read = self._logs.get(m.run)
            sources = m.source_config
            fresh = read is None or read.sources != sources
            if fresh:
                from tui.state.follow import LogFollower

                read = _ReadLog(LogFollower(path, sources=sources), sources)
                self._logs[m.run] = read
            assert read is not None
            if read.key != key or sources.files:  # grown (or files beside it that may have)
                read.follower.writer = lambda: alt
                read.follower.catch_up()
                read.follower.close()  # no handle kept per run (a logs folder may hold thousands)
                if read.key != key and feed is None:
                    self.seen_read(m, read.follower.state, fresh, Path(alt or path), st)
                read.key = key
            return read.follower.state.snapshot()

    def seen_read(self, m: Manifest, st: RunState, fresh: bool, path: Path | None = None,
                  stat: os.stat_result | None = None, alive: bool | None = None) -> None:
        """After a read of the run's log into `st` (mutated): its read mark and epoch journal
        (tui.runs.seen). A log read afresh (`fresh`: this reader's first read) that was cut since
        the mark gets back the epochs it no longer holds (`log_event` truncated); a live run's
        read is recorded (an ended one's log is what it is: nothing written). `path`, `stat`: the
        file read (default: where the run writes, else its log); `alive`: the run's liveness where
        the caller just sampled it (default: asked here). Never raises for the files."""
        from tui.runs import seen

        if path is None or stat is None:
            alt = self.writer_file(m)
            path = Path(alt or self.log_path(m.run))
            try:
                stat = os.stat(path)
            except OSError:
                return
        cache = self.training_dir / ".cache"
        mark = None if fresh else self._marks.get(m.run)
        if mark is None:
            mark = seen.load(cache, m.run)
        # epochs the readers before saw that the file no longer holds: it was cut (then, or now)
        if fresh and mark is not None and seen.same_file(mark, stat) and (
                seen.restore(st, cache, m.run, mark) or seen.truncated(mark, path, stat)):
            st.log_event = st.log_event or "truncated"
        if m.damaged is None and self.exit_record(m) is None and (
                alive if alive is not None else self.is_running(m)):
            mark = seen.record(st, cache, m.run, path, stat, mark)
        self._marks[m.run] = mark

    def listing(self, m: Manifest) -> tuple[RunState, dict[str, float | None]]:
        """What a runs listing shows of a run: its judged state (the log's scalar fields only, no
        timeline) and its headline numbers (`HEADLINE`: its last Sharpe and validation loss; the
        latest validated epoch's IC at horizons 1 and 20 and its lowest SCALE).

        An ended run's log does not change, so what its log gave is kept in
        `training/.cache/<run>.json`, keyed by the log's (device, inode, size, mtime) and reused
        while they match: `runctl runs` costs a stat and a small read per ended run instead of
        reading its log whole. The manifest, the exit record and liveness are applied afresh every
        time; a cache that cannot be read or written is only a miss.
        """
        path = self.log_path(m.run)
        try:
            fs = os.stat(path)
        except OSError:
            fs = None
        key = [LISTING_VERSION, fs.st_dev, fs.st_ino, fs.st_size, fs.st_mtime_ns] if fs is not None else None
        cache = self.training_dir / ".cache" / f"{m.run}.json"
        row: dict[str, Any] | None = None
        if not m.reads_files and key is not None:  # files beside it may grow while the log does not
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(cache.read_text(encoding="utf-8"))
                if isinstance(data, dict) and data.get("key") == key and isinstance(data.get("row"), dict):
                    row = data["row"]
        fresh = row is None
        if row is None:
            full = self.log_state(m)
            row = {k: getattr(full, k) for k in _LISTED}
            row["sharpe"] = next((r.sharpe for r in reversed(full.epochs) if r.sharpe is not None), None)
            row["val_loss"] = next((r.val_loss for r in reversed(full.epochs) if r.val_loss is not None), None)
            last = next((r for r in reversed(full.epochs) if r.validated), None)
            h1, h20 = (last.horizons.get(1), last.horizons.get(20)) if last is not None else (None, None)
            scales = [x.scale for x in last.horizons.values() if x.scale is not None] if last is not None else []
            row |= {"ic_h1": h1.ic if h1 else None, "ic_h20": h20.ic if h20 else None,
                    "scale_min": min(scales) if scales else None}
        st = RunState()
        for k in _LISTED:
            setattr(st, k, row.get(k, getattr(st, k)))
        if fresh:  # issue 20: a live run's default stall_after is its own pace (its epochs' times)
            st.epochs, st.axis = full.epochs, full.axis
        st = self.judge(m, st, resume=False)
        if fresh and key is not None and st.state in TERMINAL and not m.reads_files and m.damaged is None:
            with contextlib.suppress(OSError, TypeError, ValueError, RunctlError):
                cache.parent.mkdir(exist_ok=True)
                atomic_write_json(cache, {"key": key, "row": row}, durable=False)
        numbers = {k: row.get(k) for k in HEADLINE}
        return st, {k: v if isinstance(v, float) and v == v else None for k, v in numbers.items()}

    def judge(self, m: Manifest, st: RunState, alive: bool | None = None, resume: bool = True) -> RunState:
        """Apply liveness, the manifest and the exit record to a state read from the log (mutates
        and returns it; `started_at` is the manifest's launch time). `resume`: also say what a
        resume of an ended run would continue from (`resume_from`, `resume_blocked`: a look at its
        checkpoints), and a command's newest checkpoint file where its log names none
        (`checkpoint_file`: its checklist's "Checkpoint saved")."""
        st.run = m.run
        st.kind = m.kind
        if m.damaged is None:
            st.started_at = m.created_at  # when runctl started it (the log's first time may be its end)
        st.pid = m.pid if m.pid is not None or m.damaged is None else st.pid
        if st.source_format is None and m.log_format != "auto":
            st.source_format = m.log_format  # the preset says what the log is, before it says it
        b = self.backend(m)
        if b.log_at_start and st.log_event is None and not self.log_path(m.run).exists():
            st.log_event = "deleted"
        if alive is None:
            alive = self.is_running(m)
        unknown = False
        if not alive:  # a scheduler that did not answer (its job cached; why kept in job_errors)
            s = b.scheduled(m, self.jobs, self.job_errors)
            unknown = s is not None and s.unanswered  # the log's state stands
        rec = self.exit_record(m)
        if rec is not None and rec.get("reason") == "requeued" and (alive or unknown):
            rec = None  # Slurm restarted the job: the attempt goes on (its log says how far)
        if alive or unknown:
            if rec is None and st.state in TERMINAL and m.resumed:
                # the log's end is an earlier attempt's: this one runs and has not ended
                st.state = "training" if self._wrote_since_resume(m) else "launching"
                st.error = st.exit_reason = st.exit_status = None
            elif rec is not None:
                self._apply_exit(st, rec)
        elif rec is not None:
            self._apply_exit(st, rec)
        elif st.exit_reason is not None and st.exit_reason != "requeued" or st.state in ("finished", "crashed"):
            pass
        elif st.state == "killed" or m.killed:
            st.state = "killed"
        else:
            st.state = "crashed"
            st.error = st.error or b.why_gone(self, m)
        # issue 20: a live run silent for its stall_after is `stalled` (a queued job is not)
        if alive and m.damaged is None and b.executing(self, m):
            apply_stall(st, str(self.log_path(m.run)), m.run_dir, b.local_pid(m),
                        m.source_config.files, m.checkpoint_files, m.stall_after)
        elif alive and m.damaged is None and (far := b.stall(self, m)) is not None:
            st.state, st.stalled_since, st.stall_after = "stalled", far[0], far[1]  # its host's say
        if resume and not alive and st.state in ("killed", "crashed"):
            self._resume_info(m, st)
        if resume and m.kind == "command" and not st.checkpoints and m.damaged is None and b.resume_hints \
                and not st.engine_phases:  # "Checkpoint saved": the script's own files, its log naming none
            found = st.resume_from or newest_checkpoint(m)
            st.checkpoint_file = str(found) if found is not None else None
        if m.damaged is not None:
            st.error = f"manifest {self.manifest_path(m.run)} is damaged: {m.damaged}" + (
                f"; {st.error}" if st.error else "")
            st.resume_blocked = f"its manifest is damaged ({m.damaged})"
            st.state = DAMAGED
        return st

    @staticmethod
    def _apply_exit(st: RunState, rec: dict[str, Any]) -> None:
        """The process's own record of how the attempt ended: the state, whatever the log says."""
        reason, status = str(rec.get("reason")), rec.get("status")
        st.exit_reason, st.exit_status = reason, status if isinstance(status, int) else None
        st.state = _EXIT_STATES.get(reason, "crashed")
        if st.state == "finished":
            st.error = None
        elif st.state == "crashed":
            why = rec.get("error") if isinstance(rec.get("error"), str) else None
            if reason == "disk_full":
                st.error = why or "disk full"
            else:
                st.error = st.error or why or f"[exit] reason={reason} status={status}"

    def _wrote_since_resume(self, m: Manifest) -> bool:
        last: dict[str, Any] = next((h for h in reversed(m.history) if h.get("event") == "resume"), {})
        try:
            fs = self.log_path(m.run).stat()
        except OSError:
            return True
        ino = last.get("log_ino")
        if isinstance(ino, list) and tuple(ino) != (fs.st_dev, fs.st_ino):
            return True
        return fs.st_size > int(last.get("log_offset", -1))

    def _resume_info(self, m: Manifest, st: RunState) -> None:
        """`resume_from`: the checkpoint `runctl resume` would continue from (None: none);
        `resume_blocked`: why a resume would not help."""
        if not self.backend(m).resume_hints or m.damaged is not None:
            return
        if m.kind == "command" and not m.resume_args:
            st.resume_blocked = f"its preset {m.preset!r} has no resume_args"
            return
        point = resume_point(m)
        st.resume_from = str(point.path) if point.path is not None else None
        if point.path is None:
            bad = "; ".join(f"{p.name}: {why}" for p, why in point.damaged)
            st.resume_blocked = (f"no intact checkpoint ({bad})" if bad else "no checkpoint to resume from")
            return
        prev = next((h for h in reversed(m.history) if h.get("event") == "resume"), None)
        before = prev.get("after") if prev is not None else None
        if (st.state == "crashed" and isinstance(before, dict) and before.get("error")
                and before.get("error") == st.error):
            st.resume_blocked = f"the resumed run crashed the same way ({st.error})"


@dataclass
class _ReadLog:
    """One log as `RunStore.log_state` read it: its follower (closed between reads) and the
    (device, inode, size, mtime) it had then."""

    follower: Any
    sources: SourceConfig
    key: tuple[int, ...] = ()


def live_state(
    st: RunState, store: RunStore | None, manifest: Manifest | None, alive: bool | None,
    run: str | None = None,
) -> RunState:
    """A snapshot of a follower's folded state with the manifest and liveness applied.

    The one fold of the TUI's follower worker and `runctl status --watch` / `--follow`: the
    follower's own state is never mutated, and its later folds never change the snapshot. Without
    a store, a manifest or a liveness sample, only the run id is filled in.
    """
    out = st.snapshot()
    if store is not None and manifest is not None and alive is not None:
        return store.judge(manifest, out, alive=alive)
    if run is not None:
        out.run = out.run or run
    return out


def read_log_state(path: Path, sources: SourceConfig | None = None) -> RunState:
    """`tui.state.follow.read_state`, imported lazily (an empty state while it is missing)."""
    try:
        from tui.state.follow import read_state
    except ImportError:
        return RunState()
    if not Path(path).exists():
        return RunState()
    return read_state(path, sources=sources)


def sources_of_log(log: Path | str) -> SourceConfig | None:
    """The metric sources recorded in the manifest beside `log` (None: no manifest)."""
    m = RunStore(Path(log).parent.parent).for_log(log)
    return m.source_config if m is not None else None
