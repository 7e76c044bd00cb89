"""Where a run runs is its backend's business (tui.runs.backend, docs/design.md *Backends*):
no module outside the backends tests a backend's name, one registry feeds the CLI, the preset
checks and the launcher, and a backend added in a test (one module, one entry) is picked up by
all three. Manifests written before `backend_data` are still read."""

from __future__ import annotations

import json
import re
import sys
import types
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from tui.cli.main import build_parser, main
from tui.errors import RunctlError
from tui.presets.backends import BACKENDS, BackendEntry, setting
from tui.presets.preset import PresetError
from tui.presets.registry import PresetRegistry
from tui.runs import backend as backend_mod
from tui.runs.backend import Attempt, Backend, JobCache, Say, Scheduled
from tui.runs.backends.slurm import job_id, job_ids
from tui.runs.launcher import Launcher
from tui.runs.store import Manifest, RunStore

ROOT = Path(__file__).resolve().parent.parent
OUTSIDE = [p for p in sorted((ROOT / "tui").rglob("*.py"))
           if "backends" not in p.relative_to(ROOT / "tui").parts and p.name != "backends.py"]


# ------------------------------------------------------------------ no branch on a backend's name
def test_no_backend_name_is_tested_outside_the_backends() -> None:
    """No `backend ==` / `!=` / `in (...)` and no literal list of backend names outside
    tui/runs/backends/ and the registry (tui/presets/backends.py); `in BACKENDS` (the registry)
    is how a name is checked."""
    names = "|".join(map(re.escape, BACKENDS))
    quoted = rf"""["'](?:{names})["']"""
    patterns = {
        "a comparison of a backend": re.compile(r"""backend["'\])]*\s*(?:==|!=|(?:\bnot\s+)?\bin\s*[(\[{])"""),
        "a comparison with a backend's name": re.compile(rf"(?:==|!=|\bin\b)\s*[(\[]?\s*{quoted}"),
        "a list of backend names": re.compile(rf"{quoted}\s*,\s*{quoted}"),
    }
    found = []
    for path in OUTSIDE:
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            for what, pattern in patterns.items():
                if pattern.search(code):
                    found.append(f"{path.relative_to(ROOT)}:{i}: {what}: {line.strip()}")
    assert OUTSIDE and not found, "\n".join(found)


# ------------------------------------------------------------------ one module plus one entry
@dataclass(frozen=True)
class FakeSettings:
    """The fake backend's preset table `[fake]`."""

    queue: str | None = None
    slots: int = setting(1, low=1)


class FakeBackend(Backend[Manifest, RunStore]):
    """A backend with no process at all: each attempt is a ticket it keeps in `backend_data`."""

    name = "fake"
    title = "Fake"

    def __init__(self) -> None:
        self.live: set[str] = set()  # the tickets its "scheduler" runs

    def start(self, store: RunStore, run: Manifest, attempt: Attempt) -> Manifest:
        tickets = [*run.backend_data.get("tickets", []), f"T{len(run.backend_data.get('tickets', [])) + 1}"]
        data = {**run.backend_data, "ticket": tickets[-1], "tickets": tickets,
                "settings": dict(attempt.settings) or run.backend_data.get("settings", {}),
                "resume": list(attempt.resume)}
        self.live.add(tickets[-1])
        m = replace(run, backend_data=data, state="running").with_event(attempt.event, ticket=tickets[-1])
        store.save(m)
        return m

    def kill(self, store: RunStore, run: Manifest, grace: float, say: Say, by: str) -> str:
        ticket = run.backend_data["ticket"]
        if ticket not in self.live:
            raise RunctlError(f"run {run.run} is not running (fake ticket {ticket})")
        self.live.discard(ticket)
        store.save(replace(run.with_event("kill", ticket=ticket, by=by), state="killed"))
        say(f"cancelled fake ticket {ticket}")
        return f"cancelled fake ticket {ticket}"

    def alive(self, store: RunStore, run: Manifest) -> bool:
        return run.backend_data.get("ticket") in self.live

    def where(self, run: Manifest) -> str:
        return f"fake ticket {run.backend_data.get('ticket')}"

    def label(self, run: Manifest) -> str | None:
        return f"ticket {run.backend_data.get('ticket')}"

    def scheduled(self, run: Manifest, jobs: JobCache, errors: dict[str, str] | None) -> Scheduled:
        alive = run.backend_data.get("ticket") in self.live
        state = "QUEUED" if alive else "DONE"
        return Scheduled(job_id=run.backend_data.get("ticket"), state=state, alive=alive, executing=False,
                         text=f"fake {state}", fields={"state": state})

    def why_gone(self, store: RunStore, run: Manifest) -> str:
        return "the fake ticket is done"

    remote: Path | None = None  # a log written "elsewhere", which log_feed copies here
    closed = 0

    def log_feed(self, store: RunStore, run: Manifest) -> CopyFeed | None:
        return CopyFeed(self, self.remote, store.log_path(run.run)) if self.remote is not None else None


class CopyFeed:
    """What an ssh backend's stream does: append what the far log gained to the log here."""

    def __init__(self, owner: FakeBackend, remote: Path, here: Path) -> None:
        self.owner, self.remote, self.here = owner, remote, here

    def poll(self) -> None:
        have = self.here.stat().st_size if self.here.exists() else 0
        with open(self.remote, "rb") as src, open(self.here, "ab") as dst:
            src.seek(have)
            dst.write(src.read())

    def close(self) -> None:
        self.owner.closed += 1


FAKE_PRESET = 'extends = "tiny"\nbackend = "fake"\n[fake]\nqueue = "q1"\n'


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    """The fake backend: one module (made here) plus one entry in the registry."""
    module = types.ModuleType("runctl_test_fake_backend")
    module.BACKEND = FakeBackend()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(BACKENDS, "fake", BackendEntry("fake", module.__name__, "a test's fake", FakeSettings))
    monkeypatch.setattr(backend_mod, "_loaded", {})
    return module.BACKEND  # type: ignore[no-any-return]


@pytest.fixture
def presets(tmp_path: Path, presets_dir: Path) -> Path:
    d = tmp_path / "presets"
    d.mkdir()
    for name in ("tiny.toml", "baselines.toml"):
        (d / name).write_text((presets_dir / name).read_text())
    (d / "fk.toml").write_text(FAKE_PRESET)
    return d


def test_the_cli_offers_a_registered_backend(fake: FakeBackend) -> None:
    assert build_parser().parse_args(["launch", "tiny", "--backend", "fake"]).backend == "fake"


def test_without_its_entry_there_is_no_such_backend(presets: Path) -> None:
    with pytest.raises(RunctlError, match=r"invalid choice: 'fake' \(choose from 'local', 'slurm', 'ssh'\)"):
        build_parser().parse_args(["launch", "tiny", "--backend", "fake"])
    with pytest.raises(PresetError, match=r"fk.toml: unknown key 'fake'; allowed: .*backend, slurm, "):
        PresetRegistry(presets).get("fk")
    (presets / "fk2.toml").write_text('extends = "tiny"\nbackend = "fake"\n')
    with pytest.raises(PresetError, match=r"fk2.toml: backend: 'fake' is not one of local, slurm, ssh$"):
        PresetRegistry(presets).get("fk2")


def test_the_preset_checks_take_a_registered_backend_and_its_table(fake: FakeBackend, presets: Path) -> None:
    p = PresetRegistry(presets).get("fk")
    assert p.backend == "fake" and p.backend_settings == {"fake": {"queue": "q1"}}
    for text, msg in [('[fake]\nslots = 0\n', "fake.slots: 0 must be >= 1"),
                      ('[fake]\nqueue = 3\n', "fake.queue: expected a string, got integer 3"),
                      ('[fake]\nx = 1\n', "fake: unknown key 'x'; allowed: queue, slots"),
                      ('backend = "nope"\n', "backend: 'nope' is not one of local, slurm, ssh, fake")]:
        (presets / "bad.toml").write_text(text)
        with pytest.raises(PresetError, match=re.escape(msg)):
            PresetRegistry(presets).get("bad")


def test_the_launcher_runs_a_registered_backend(fake: FakeBackend, presets: Path, logs_dir: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    store = RunStore(logs_dir)
    launcher = Launcher(store, PresetRegistry(presets))
    m = launcher.launch("fk")
    assert m.backend == "fake" and m.pid is None and m.gpus == ()
    assert m.backend_data["ticket"] == "T1" and m.backend_data["settings"] == {"queue": "q1"}
    saved = json.loads(store.manifest_path(m.run).read_text())
    assert saved["backend"] == "fake" and saved["backend_data"]["ticket"] == "T1" and "job_id" not in saved
    assert store.is_running(store.get(m.run))

    # runs --json and the text listing ask the backend (in-process: the entry is this test's)
    assert main(["--logs", str(logs_dir), "--presets", str(presets), "runs", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert (row["backend"], row["job_id"], row["slurm_state"]) == ("fake", "T1", "QUEUED")
    assert main(["--logs", str(logs_dir), "--presets", str(presets), "runs"]) == 0
    assert "ticket T1" in capsys.readouterr().out

    with pytest.raises(RunctlError, match=r"is still running \(fake ticket T1\); kill it first"):
        launcher.resume(m.run)
    assert launcher.kill(m.run) == "cancelled fake ticket T1"
    st = store.state(store.get(m.run))
    assert st.state == "killed" and not store.is_running(store.get(m.run))

    ckpts = Path(m.run_dir) / "checkpoints"  # what a resume continues from (an intact torch zip)
    ckpts.mkdir(parents=True)
    with zipfile.ZipFile(ckpts / "last.ckpt", "w") as z:
        z.writestr("last/data.pkl", b"x")
    m2 = launcher.resume(m.run)
    assert m2.backend_data["tickets"] == ["T1", "T2"] and m2.backend_data["resume"] == ["--resume"]
    assert [h["event"] for h in m2.history] == ["launch", "kill", "resume"]


def test_a_backend_may_feed_the_log_it_runs_elsewhere(fake: FakeBackend, presets: Path, logs_dir: Path,
                                                     tmp_path: Path) -> None:
    """The log is read here, kept up to date by the backend's feed (ssh: a streaming process)."""
    from tui.runs.tail import RunTail

    remote = tmp_path / "far.log"
    lines = (ROOT / "tests" / "data" / "app_tiny_finished.log").read_text().splitlines(keepends=True)
    remote.write_text("".join(lines[:40]))
    fake.remote = remote
    store = RunStore(logs_dir)
    m = Launcher(store, PresetRegistry(presets)).launch("fk")
    first = store.state(store.get(m.run))
    assert first.state in ("training", "validating") and first.epochs and fake.closed == 1
    tail = RunTail(store, store.log_path(m.run), store.get(m.run))
    remote.write_text("".join(lines))  # the far end finished
    assert tail.poll().exit_reason == "finished"
    tail.close()
    assert fake.closed == 2 and store.log_path(m.run).read_text() == "".join(lines)


def test_a_manifest_naming_an_unknown_backend_is_damaged(logs_dir: Path) -> None:
    """A newer runctl's backend: the run is listed as damaged, never treated as another kind."""
    store = RunStore(logs_dir)
    store.training_dir.mkdir(parents=True)
    run = "tiny_20261201_000000"
    m = Manifest(run=run, name="tiny", preset="tiny", log=str(store.log_path(run)),
                 run_dir=str(store.run_dir(run)), pid_file=str(store.pid_path("tiny")), created_at=1.7e9,
                 host="h")
    store.manifest_path(run).write_text(json.dumps({**m.to_json(), "backend": "k8s"}))
    got = store.get(run)
    assert got.damaged is not None and "backend 'k8s' is not one of local, slurm" in got.damaged


# ------------------------------------------------------------------ manifests before backend_data
def _old(store: RunStore, run: str, **keys: Any) -> dict[str, Any]:
    data = {"run": run, "name": "tiny", "preset": "tiny", "log": str(store.log_path(run)),
            "run_dir": str(store.run_dir(run)), "pid_file": str(store.pid_path("tiny")),
            "created_at": 1.7e9, "host": "h", "version": 1, **keys}
    store.training_dir.mkdir(parents=True, exist_ok=True)
    store.manifest_path(run).write_text(json.dumps(data))
    return data


def test_manifests_written_before_backend_data_are_read(logs_dir: Path) -> None:
    store = RunStore(logs_dir)
    spec = {"partition": "debug", "time": "10", "nodes": 1, "extra": []}
    _old(store, "sl_20261201_000000", backend="slurm", job_id="42", job_ids=["41", "42"], slurm=spec)
    _old(store, "tiny_20261201_000001", backend="local", job_id=None, job_ids=[], slurm=None, pid=None)
    sl, lo = store.get("sl_20261201_000000"), store.get("tiny_20261201_000001")
    assert sl.damaged is None and lo.damaged is None
    assert sl.backend_data == {"job_id": "42", "job_ids": ["41", "42"], "settings": spec}
    assert (job_id(sl), job_ids(sl)) == ("42", ["41", "42"])
    assert lo.backend == "local" and lo.backend_data == {}
    out = sl.to_json()
    assert out["backend_data"]["job_id"] == "42" and not {"job_id", "job_ids", "slurm"} & set(out)
    assert Manifest.from_json(out) == sl  # what it writes now reads back the same
    assert store.backend(sl).where(sl) == "Slurm job 42" and store.backend(lo).where(lo) == "pid None"

