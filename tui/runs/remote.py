"""Runs on other hosts, through runctl there (docs/design.md, *Backends*; docs/cli.md, *Hosts*).

The far runctl owns its runs: their manifests, logs, checkpoints, queue, GPU slots, watcher and
presets live on the host, and every change goes through it (`runctl launch|kill|resume ... --json`
over ssh, tui.runs.ssh), which does its own checks. So runs on hosts are listed **live from their
hosts** (`runctl runs --json --host local` there, every host asked in parallel, each bounded):
a host that is down is one line, not a stale list, and `runctl runs` on the host itself lists each
run once (its own `_logs`), whoever launched it.

What this machine keeps of a host's run is a **mirror**, a cache under `_logs/hosts/HOST/`: the
run's manifest as the host last told it (`training/RUN.json`, backend `ssh`: the host and the far
run in `backend_data`), the copy of its log the ssh backend's feed keeps growing
(`training/RUN.log`), and the files of its preset (`presets/`). The mirror is what lets every local
reader (the store's state, `RunTail`, the TUI's panels) follow a remote run unchanged; deleting it
loses nothing. It lives outside `_logs/training`, so it is never listed as a local run.

Everything a host answers is data: JSON parsed and checked (a run id must be a run id before it
names a file here; a listing's row has the keys of a row, each of its type: `sanitize_row`), text
cleaned before it is shown.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui.errors import RunctlError
from tui.runs import ssh
from tui.runs.hosts import LOCAL, Host, get_host, hosts_path, load_hosts
from tui.runs.ssh import RemoteError
from tui.runs.store import NAME_RE, Manifest, RunStore, UnknownRun

BACKEND = "ssh"  # the registry's name of the backend of mirrored runs (tui.runs.backends.ssh)
MIRROR_DIR = "hosts"  # _logs/hosts/HOST/: the mirror of that host's runs
LAUNCH_S = 120.0  # a launch or resume there (runctl validates, starts, writes)
KILL_EXTRA_S = 30.0  # a kill there may take its grace and this much more
STATUS_TTL_S = 5.0  # a host's answer about a run stands this long (tui.runs.backend.Job)
_FILE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.toml$")
Say = Callable[[str], None]


def _quiet(_: str) -> None:
    """Default `say`: nothing."""


def far(run: str) -> str:
    """How runctl on the host names its own run (never one of its hosts')."""
    return f"{LOCAL}:{run}"


def run_id(host: Host, value: Any) -> str:
    """A run id a host gave, checked before it names anything here (a file of the mirror)."""
    if not isinstance(value, str) or not NAME_RE.match(value):
        shown = ssh.clean(repr(value))[:80]
        raise RemoteError(f"{host.name}: runctl there answered a run id that is not one ({shown})")
    return value


def mirror_root(logs_dir: Path | str, host: str) -> Path:
    """`_logs/hosts/HOST`: what this machine keeps of the host's runs."""
    return Path(logs_dir) / MIRROR_DIR / host


def relay(host: Host, err: str, say: Say) -> None:
    """The far runctl's own lines on stderr (warnings, a checkpoint note), said here cleaned."""
    for line in err.splitlines():
        line = line.strip()
        if line.startswith("runctl: "):
            say(f"{host.name}: {line[len('runctl: '):]}")


# ------------------------------------------------------------------------- a host's listing
# A `runs --json` row (tui.cli.commands.run_row) and what each value of a host's must be to be
# kept: `word` one line of text, `text` text (newlines kept), `int` / `number` / `time` (seconds
# since the epoch) / `bool`, `ids` a list of run ids, `ints` a list of whole numbers, `damaged`
# / `sweep` their objects. Text is cleaned (tui.runs.ssh.clean), numbers finite.
ROW_KEYS: dict[str, str] = {
    "run": "id", "name": "word", "state": "word", "pid": "int", "log": "word",
    "damaged": "damaged", "log_event": "word", "preset": "word", "epoch": "int",
    "max_epochs": "int", "sharpe": "number", "val_loss": "number", "ic_h1": "number", "ic_h20": "number",
    "scale_min": "number", "started_at": "time",
    "error": "text", "parent": "word", "stalled_since": "time", "sweep": "sweep",
    "children": "ids", "autopilot": "bool", "backend": "word", "job_id": "word", "gpus": "ints",
    "slurm_state": "word", "host": "word",
}
UNKNOWN_STATE = "?"  # a row's state when its host gave none (a listing prints every row's)
_LAST_TIME = 253402300799.0  # 9999-12-31: a later "time" is not one (no clock formats it)
_WS = re.compile(r"[\t\n\r]+")


def _word(value: Any) -> str | None:
    return _WS.sub(" ", ssh.clean(value, 1000)).strip() if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and -2**63 <= value < 2**63
    return value if ok else None


def _number(value: Any) -> float | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except OverflowError:
        return None
    return x if math.isfinite(x) else None


def _value(kind: str, value: Any) -> Any:
    """A host's value of one kind of ROW_KEYS, or None when it is not one."""
    if kind == "word":
        return _word(value)
    if kind == "text":
        return ssh.clean(value) if isinstance(value, str) else None
    if kind == "int":
        return _int(value)
    if kind == "number":
        return _number(value)
    if kind == "time":
        t = _number(value)
        return t if t is not None and 0 <= t <= _LAST_TIME else None
    if kind == "bool":
        return value if isinstance(value, bool) else None
    if kind in ("ids", "ints"):
        if not isinstance(value, list):
            return None
        if kind == "ints":
            return [x for x in value if _int(x) is not None]
        return [x for x in value if isinstance(x, str) and NAME_RE.match(x)]
    if kind == "damaged":
        if not isinstance(value, dict):
            return None
        return {"file": _word(value.get("file")), "reason": _value("text", value.get("reason"))}
    if kind == "sweep":
        data = ssh.clean_data(value) if isinstance(value, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            return None
        return {**data, "id": _word(data["id"]), "index": _int(data.get("index"))}
    return None


def sanitize_row(host: Host, row: Any) -> dict[str, Any] | None:
    """One row of a host's `runs --json`, as this machine keeps it: the keys of ROW_KEYS only
    (one the host left out: None), each value of its kind or None, text cleaned, `state` always
    text (`?`: none given), `host` the host's name. None: not a row (no object, no run id)."""
    if not isinstance(row, dict) or not isinstance(row.get("run"), str) \
            or not NAME_RE.match(row["run"]):
        return None
    out = {key: _value(kind, row.get(key)) for key, kind in ROW_KEYS.items()}
    out["run"] = row["run"]
    out["state"] = out["state"] or UNKNOWN_STATE
    out["host"] = host.name
    return out


# --------------------------------------------------------------------------- one run's mirror
def far_status(host: Host, run: str, args: Sequence[str] = ()) -> dict[str, Any]:
    """`runctl status RUN --json` there (a dict, checked)."""
    data = ssh.call_json(host, ["status", far(run), "--json", *args])
    if not isinstance(data, dict) or not isinstance(data.get("state"), str):
        raise RemoteError(f"{host.name}: runctl there answered no status for {run}")
    return data


def mirror(host: Host, store: RunStore, status: dict[str, Any]) -> Manifest:
    """The host's run as this machine keeps it: its manifest there, with the log this mirror's
    copy and the backend `ssh` (the host, the far run, its log and backend there in
    `backend_data`); saved in the mirror."""
    data = status.get("manifest")
    if status.get("damaged") or not isinstance(data, dict):
        damaged = status.get("damaged")
        why = damaged.get("reason") if isinstance(damaged, dict) else None
        raise RemoteError(f"{host.name}: run {status.get('run')} has no readable manifest there"
                          + (f" ({ssh.clean(str(why))})" if why else ""))
    run = run_id(host, data.get("run"))
    name = run_id(host, data.get("name", run))
    history = data.get("history")
    if isinstance(history, list):  # the (device, inode) of the host's log file, not of the copy
        history = [{k: v for k, v in h.items() if k != "log_ino"} if isinstance(h, dict) else h
                   for h in history]
    local = {**data, "run": run, "name": name, "history": history,
             "sources": mirrored_sources(data, store.run_dir(run).absolute()),
             "log": str(store.log_path(run).absolute()),
             "pid_file": str(store.pid_path(name).absolute()), "backend": BACKEND,
             "backend_data": {"host": host.name, "run": run, "log": data.get("log"),
                              "backend": data.get("backend"), "data": data.get("backend_data")},
             "presets_dir": None}
    try:
        m = Manifest.from_json(local)
    except (TypeError, ValueError) as e:
        raise RemoteError(f"{host.name}: run {run}'s manifest there is not one this runctl reads "
                          f"({e})") from None
    store.save(m)
    return m


def mirrored_sources(data: dict[str, Any], here: Path) -> dict[str, Any] | None:
    """A far run's metric sources as its mirror reads them: each file glob under the run's folder
    there pointed at the mirror's copy of that folder (`here`, kept by the ssh feed); a glob
    elsewhere is left out (those files are not copied)."""
    sources = data.get("sources")
    if not isinstance(sources, dict):
        return None
    far_dir = str(data.get("run_dir") or "").rstrip("/")
    files: dict[str, Any] = sources["files"] if isinstance(sources.get("files"), dict) else {}
    mirrored = {name: str(here) + glob[len(far_dir):] for name, glob in files.items()
                if far_dir and isinstance(glob, str) and glob.startswith(far_dir + "/")}
    return {**sources, "files": mirrored}


def far_resume(host: Host, store: RunStore, run: str, say: Say = _quiet) -> Manifest:
    """`runctl resume RUN --json` there (its checks: alive, checkpoints, the log's cut line),
    its notes said; the mirror refreshed."""
    answer = ssh.call(host, ["resume", far(run), "--json"], timeout=LAUNCH_S)
    relay(host, answer.err, say)
    started = ssh.parse_json(host, answer.out)
    run = run_id(host, started.get("run") if isinstance(started, dict) else None)
    return mirror(host, store, far_status(host, run))


# ---------------------------------------------------------------------------- all the hosts
@dataclass(frozen=True)
class HostRuns:
    """One host's answer to a listing: its runs (`runs --json` rows, each with `host`), or why
    it gave none."""

    host: str
    rows: tuple[dict[str, Any], ...] = ()
    error: str | None = None


class Remote:
    """The hosts of the hosts file and their runs, as one controller sees them: listings, the
    mirror, and the changes it asks each host's runctl for (none when `readonly`)."""

    def __init__(self, logs_dir: Path | str, hosts: dict[str, Host] | None = None,
                 readonly: bool = False) -> None:
        self.logs_dir = Path(logs_dir)
        self._hosts = hosts
        self._given = hosts is not None
        self._read: tuple[Path, float | None] | None = None  # the file read, and its mtime then
        self.readonly = readonly
        self._stores: dict[str, RunStore] = {}

    @property
    def hosts(self) -> dict[str, Host]:
        """The hosts file's hosts (read again when it changed: a long-lived TUI sees an edit;
        HostsError on a mistake in it)."""
        if self._given:
            return self._hosts or {}
        path = hosts_path()
        try:
            mtime: float | None = path.stat().st_mtime
        except OSError:
            mtime = None
        if self._hosts is None or self._read != (path, mtime):
            self._hosts, self._read = None, None
            self._hosts = load_hosts(path)
            self._read = (path, mtime)
        return self._hosts

    def host(self, name: str) -> Host:
        """The host of that name (HostsError if the file has none)."""
        return get_host(name, self.hosts)

    def store(self, host: str) -> RunStore:
        """The mirror of the host's runs (one store per host: its caches are kept)."""
        store = self._stores.get(host)
        if store is None:
            store = self._stores[host] = RunStore(mirror_root(self.logs_dir, host))
        return store

    def _writable(self, what: str) -> None:
        if self.readonly:
            raise RunctlError(f"read-only: no {what} from here")

    # ------------------------------------------------------------------------ reading
    def listing(self, names: Sequence[str] | None = None) -> list[HostRuns]:
        """Every host's runs (or those of `names`), all asked at once, each within the query
        timeout: a host that does not answer is its error, never a wait for the others."""
        hosts = [self.host(n) for n in names] if names is not None else list(self.hosts.values())
        if not hosts:
            return []
        with ThreadPoolExecutor(max_workers=min(16, len(hosts))) as pool:
            return list(pool.map(self._host_runs, hosts))

    def _host_runs(self, host: Host) -> HostRuns:
        try:
            data = ssh.call_json(host, ["runs", "--json", "--host", LOCAL])
        except RunctlError as e:
            return HostRuns(host.name, error=str(e))
        if not isinstance(data, list):
            return HostRuns(host.name, error=f"{host.name}: runctl there answered no list of runs")
        rows = [r for r in (sanitize_row(host, row) for row in data) if r is not None]
        return HostRuns(host.name, tuple(rows))

    def status(self, host: str, run: str, args: Sequence[str] = ()) -> dict[str, Any]:
        """`runctl status RUN --json` there, as it answers (the mirror's manifest refreshed,
        and its liveness remembered, when the run has one)."""
        h = self.host(host)
        data = far_status(h, run, args)
        data["host"] = h.name
        if isinstance(data.get("manifest"), dict) and not data.get("damaged"):
            store = self.store(host)
            m = mirror(h, store, data)
            store.jobs.remember(status_job(h.name, m.run), data)
        return data

    def refresh(self, host: str, run: str) -> Manifest:
        """The run's mirror, as the host tells it now (RemoteError / Unreachable if it cannot)."""
        self.status(host, run)
        return self.store(host).get(run)

    def prepared(self, host: str, run: str) -> tuple[Manifest, Any, Any]:
        """A host's run made ready to follow or compare: its mirror refreshed from the host, and
        its preset (its `--set` / `--env` applied) and baselines copied from there (None, None:
        without them; no verdicts then). RemoteError / Unreachable if the run cannot be read."""
        from tui.presets.baselines import BASELINES_FILE, load_baselines
        from tui.presets.registry import resolve

        m = self.refresh(host, run)
        preset, baselines = None, None
        try:
            registry = self.presets(host, m.preset)
            base = registry.get(m.preset)
            try:
                preset = resolve(base, m.sets, m.envs)
            except RunctlError:
                preset = base
            baselines = load_baselines(Path(registry.directory) / BASELINES_FILE)
        except RunctlError:
            pass
        return m, preset, baselines

    def find(self, run: str) -> str:
        """The host of a run (id or name) this machine does not have: the one host that has it;
        an error when none or several do (HOST:RUN says which)."""
        if not self.hosts:
            raise UnknownRun(f"unknown run {run!r}")
        answers = self.listing()
        found = [a.host for a in answers
                 if any(r.get("run") == run or r.get("name") == run for r in a.rows)]
        if len(found) == 1:
            return found[0]
        if found:
            raise RunctlError(f"run {run!r} is on {', '.join(found)}; say which: {found[0]}:{run}")
        down = "; ".join(a.error for a in answers if a.error)
        raise UnknownRun(f"unknown run {run!r} here or on {', '.join(self.hosts)}"
                         + (f" ({down})" if down else ""))

    def presets(self, host: str, preset: str) -> Any:
        """The host's preset with its `extends` chain and baselines.toml, copied into the mirror
        (`runctl presets export NAME` there): a PresetRegistry over them, so a remote run is
        judged as its host judges it."""
        from tui.presets.registry import PresetRegistry
        from tui.presets.schema import atomic_write

        h = self.host(host)
        data = ssh.call_json(h, ["presets", "export", preset])
        files = data.get("files") if isinstance(data, dict) else None
        if not isinstance(files, dict):
            raise RemoteError(f"{h.name}: runctl there exported no preset files")
        d = mirror_root(self.logs_dir, host) / "presets"
        try:
            d.mkdir(parents=True, exist_ok=True)
            for name, text in files.items():
                if isinstance(name, str) and _FILE_RE.match(name) and isinstance(text, str):
                    atomic_write(d / name, text, overwrite=True)
        except OSError as e:
            raise RunctlError(f"cannot write {d}: {e.strerror or e}") from None
        return PresetRegistry(d)

    # ------------------------------------------------------------------------ changing
    def launch(self, host: str, preset: str, sets: Sequence[str] = (), envs: Sequence[str] = (),
               name: str | None = None, queue: bool = False, autopilot: int = 0,
               send: Any = None, backend: str | None = None,
               say: Say = _quiet) -> tuple[dict[str, Any], Manifest | None]:
        """`runctl launch PRESET --json ...` there (its preset, GPU slots and queue; `send`: a
        local PresetRegistry whose preset and `extends` chain are written there first). What it
        answered, with `host` (`run` and `pid`, or `queued` with `--queue`), and the run's mirror
        (None: queued, or the host did not answer for it). `backend`: where the host runs it
        (default: the preset's there)."""
        self._writable("launch")
        h = self.host(host)
        if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", preset):
            raise RunctlError(f"preset {preset!r}: not a preset name")
        if send is not None:
            self.send(h, send, preset, say)
        args = ["launch", preset, "--json", *(f"--set={s}" for s in sets),
                *(f"--env={e}" for e in envs)]
        if name:
            args.append(f"--name={name}")
        if queue:
            args.append("--queue")
        if autopilot:
            args.append(f"--autopilot={autopilot}")
        if backend:
            args.append(f"--backend={backend}")
        answer = ssh.call(h, args, timeout=LAUNCH_S)
        relay(h, answer.err, say)
        started = ssh.parse_json(h, answer.out)
        if not isinstance(started, dict):
            raise RemoteError(f"{h.name}: runctl there answered no launch")
        started = {**started, "host": h.name}
        if "queued" in started:
            return started, None
        run = run_id(h, started.get("run"))
        try:
            return started, self.refresh(host, run)
        except RunctlError as e:
            say(f"{h.name}: launched {run}, but its state could not be read yet ({e})")
            return started, None

    def sweep(self, host: str, preset: str, name: str | None = None, backend: str | None = None,
              parallel: int | None = None, send: Any = None, say: Say = _quiet) -> dict[str, Any]:
        """`runctl sweep PRESET --json ...` there: the sweep's runs go through that host's queue and
        GPU slots, its driver runs there. What it answered, with `host`."""
        self._writable("sweep")
        h = self.host(host)
        if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", preset):
            raise RunctlError(f"preset {preset!r}: not a preset name")
        if send is not None:
            self.send(h, send, preset, say)
        args = ["sweep", preset, "--json"]
        if name:
            args.append(f"--name={name}")
        if backend:
            args.append(f"--backend={backend}")
        if parallel:
            args.append(f"--parallel={parallel}")
        answer = ssh.call(h, args, timeout=LAUNCH_S)
        relay(h, answer.err, say)
        started = ssh.parse_json(h, answer.out)
        if not isinstance(started, dict) or not isinstance(started.get("sweep"), str):
            raise RemoteError(f"{h.name}: runctl there answered no sweep")
        return {**started, "host": h.name}

    def sweep_status(self, host: str, sweep: str) -> dict[str, Any]:
        """`runctl sweep status NAME --json` there, with `host`."""
        h = self.host(host)
        if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", sweep):
            raise RunctlError(f"sweep {sweep!r}: not a sweep id or name")
        data = ssh.call_json(h, ["sweep", "status", sweep, "--json"])
        if not isinstance(data, dict) or not isinstance(data.get("points"), list):
            raise RemoteError(f"{h.name}: runctl there answered no sweep status")
        return {**data, "host": h.name}

    def send(self, host: Host, registry: Any, preset: str, say: Say = _quiet) -> None:
        """Write the local preset and its `extends` chain into the host's presets folder
        (`runctl presets receive` there: a file already there with other content is refused)."""
        p = registry.get(preset)
        files = {f"{n}.toml": registry.path(n).read_text(encoding="utf-8") for n in p.chain}
        data = ssh.call_json(host, ["presets", "receive"],
                             stdin=json.dumps({"files": files}).encode())
        written = data.get("written") if isinstance(data, dict) else None
        if written:
            say(f"{host.name}: sent {', '.join(ssh.clean(str(w)) for w in written)}")

    def launch_any(self, preset: str, say: Say = _quiet,
                   **kw: Any) -> tuple[dict[str, Any], Manifest | None]:
        """Launch on the host with a free slot: hosts with free GPUs and nothing queued first
        (the most free first), then hosts with no GPUs (a CPU box always has a slot); a host
        whose GPUs turned out taken is passed over for the next."""
        self._writable("launch")
        if not self.hosts:
            raise RunctlError("--host any: the hosts file lists no host")
        with ThreadPoolExecutor(max_workers=min(16, len(self.hosts))) as pool:
            queues = list(pool.map(self._queue, self.hosts.values()))
        ranked: list[tuple[tuple[int, int, int], str]] = []
        passed: list[str] = []
        for host, q, error in queues:
            if error is not None:
                passed.append(error)
                continue
            gpus, free = len(q.get("gpus") or ()), len(q.get("free") or ())
            waiting = len(q.get("waiting") or ())
            if gpus and not free:
                passed.append(f"{host}: 0 of {gpus} GPU(s) free")
                continue
            ranked.append(((0 if gpus else 1, 1 if waiting else 0, -free), host))
        for _, host in sorted(ranked):
            try:
                return self.launch(host, preset, say=say, **kw)
            except RemoteError as e:
                if "GPU(s) needed" not in str(e):
                    raise
                passed.append(str(e))
        why = "; ".join(passed) or "no host"
        raise RunctlError(f"no host has a free slot for {preset} ({why})")

    def _queue(self, host: Host) -> tuple[str, dict[str, Any], str | None]:
        try:
            q = ssh.call_json(host, ["queue", "--json"])
        except RunctlError as e:
            return host.name, {}, str(e)
        if not isinstance(q, dict):
            return host.name, {}, f"{host.name}: runctl there answered no queue"
        return host.name, q, None

    def kill(self, host: str, run: str, grace: float = 30.0, say: Say = _quiet) -> str:
        """Stop the run through its host's runctl (its verified kill: SIGTERM, then for good)."""
        self._writable("kill")
        from tui.runs.backend import actor

        m = self.refresh(host, run)
        store = self.store(host)
        return store.backend(m).kill(store, m, grace, say, actor())

    def resume(self, host: str, run: str, say: Say = _quiet) -> Manifest:
        """Resume the run through its host's runctl (its checks, its checkpoints)."""
        self._writable("resume")
        h = self.host(host)
        return far_resume(h, self.store(host), run, say)

    def text(self, host: str, args: Sequence[str], timeout: float | None = None) -> str:
        """A reading command's text there (`status RUN`, `report RUN`), cleaned."""
        answer = ssh.call(self.host(host), list(args), timeout=timeout)
        return ssh.clean(answer.out.decode("utf-8", "replace"), 10_000_000)


def status_job(host: str, run: str) -> Any:
    """The backend's Job for a run on a host (by its name): its far status, asked at most every
    STATUS_TTL_S (one `ask` for every such job, so that equal jobs are one cache entry)."""
    from tui.runs.backend import Job

    return Job(f"{host}:{run}", _ask_status, STATUS_TTL_S)


def _ask_status(job: str) -> dict[str, Any]:
    """A Job's ask: `HOST:RUN` -> the far status (the host read from the hosts file)."""
    host, _, run = job.partition(":")
    return far_status(get_host(host), run)
