"""Shared parts for the app's Pilot and snapshot tests: recorded logs, a fake launcher, a frozen clock."""

from __future__ import annotations

import asyncio
import functools
import shutil
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from tui.app.app import RunctlApp
from tui.app.view import ProcView, field_of
from tui.log.prefix import line_time
from tui.presets.registry import PresetRegistry
from tui.runs.store import Manifest, RunStore

DATA = Path(__file__).parent / "data"
PRESETS = Path(__file__).resolve().parents[1] / "presets"

# (log file in tests/data, run id, preset, pid)
SMOKE = ("app_smoke_running.log", "smoke_20261124_042151", "smoke", 4242)
TINY = ("app_tiny_finished.log", "tiny_20261124_031005", "tiny", 5151)
CRASHED = ("app_smoke_crashed.log", "smoke_20261123_220000", "smoke", 6161)


def last_time(log: str) -> float:
    """The timestamp of a recorded log's last line."""
    for line in reversed((DATA / log).read_text().splitlines()):
        t = line_time(line)
        if t is not None:
            return t
    raise AssertionError(f"{log}: no timestamps")


FROZEN = last_time(SMOKE[0]) + 20.0  # "now" for every test: 20 s after the smoke log's last line


class RecordedStore(RunStore):
    """A RunStore whose liveness is what the test says (no real processes)."""

    def __init__(self, logs_dir: Path, alive: Iterable[str] = ()) -> None:
        super().__init__(logs_dir)
        self.alive = set(alive)

    def is_running(self, m: Manifest) -> bool:
        """Alive iff the test said so."""
        return m.run in self.alive


def add_run(store: RunStore, spec: tuple[str, str, str, int], text: str | None = None) -> Manifest:
    """Copy a recorded log into the store and write its manifest."""
    log_name, run, preset, pid = spec
    store.training_dir.mkdir(parents=True, exist_ok=True)
    log = store.log_path(run)
    if text is None:
        shutil.copy(DATA / log_name, log)
    else:
        log.write_text(text)
    created = line_time((DATA / log_name).read_text().splitlines()[0]) or 0.0
    m = Manifest(run=run, name=preset, preset=preset, log=str(log), run_dir=str(store.run_dir(run)),
                 pid_file=str(store.pid_path(preset)), created_at=created, host="test", pid=pid,
                 create_time=created, argv=("python", "-m", "engine", "train"))
    store.save(m)
    ckpts = store.run_dir(run) / "checkpoints"  # what a resume continues from (an intact torch zip)
    ckpts.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(ckpts / "last.ckpt", "w") as z:
        z.writestr("last/data.pkl", b"recorded")
    return m


class FakeLauncher:
    """Records launch / kill / resume; a launch writes a manifest and an empty log."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self.calls: list[tuple[Any, ...]] = []

    def launch(self, preset: str, sets: Iterable[str] = (), envs: Iterable[str] = (),
               name: str | None = None, autopilot: int = 0) -> Manifest:
        """Record; write a new run's manifest with an empty log."""
        self.calls.append(("launch", preset, list(sets), list(envs), name))
        run = f"{name or preset}_20261124_050000"
        log = self.store.log_path(run)
        self.store.training_dir.mkdir(parents=True, exist_ok=True)
        log.write_text("")
        m = Manifest(run=run, name=name or preset, preset=preset, log=str(log),
                     run_dir=str(self.store.run_dir(run)), pid_file=str(self.store.pid_path(preset)),
                     created_at=FROZEN, host="test", pid=9999, sets=tuple(sets), envs=tuple(envs))
        self.store.save(m)
        return m

    def kill(self, run: str, grace: float = 30.0, say: Callable[[str], None] = print,
             by: str | None = None) -> str:
        """Record; say the escalation like the real launcher."""
        self.calls.append(("kill", run, grace))
        say(f"SIGTERM -> process group 4242 (run {run}); waiting up to {grace:g}s")
        return "SIGTERM -> process group 4242; exited after SIGTERM"

    def resume(self, run: str) -> Manifest:
        """Record; the same manifest."""
        self.calls.append(("resume", run))
        return self.store.get(run)


def make_app(tmp_path: Path, runs: Iterable[tuple[str, str, str, int]] = (SMOKE,),
             alive: Iterable[str] = (SMOKE[1],), **kw: Any) -> tuple[RunctlApp, RecordedStore, FakeLauncher]:
    """An app over a temporary logs dir holding recorded runs; clock frozen; presets copied."""
    store = RecordedStore(tmp_path / "_logs", alive)
    for spec in runs:
        add_run(store, spec)
    presets = tmp_path / "presets"
    if not presets.exists():
        shutil.copytree(PRESETS, presets)
    registry = PresetRegistry(presets)
    launcher = FakeLauncher(store)

    def probe(m: Any) -> ProcView | None:
        pid = field_of(m, "pid")
        if pid is None:
            return None
        if field_of(m, "run") in store.alive:
            return ProcView(pid=pid, alive=True, status="running", cpu_percent=181.0, rss=1_288_490_188,
                            threads=14, children=2, read_bytes=12_582_912, write_bytes=3_565_158)
        return ProcView(pid=pid, alive=False)

    kw.setdefault("clock", lambda: FROZEN)
    kw.setdefault("probe", probe)
    kw.setdefault("poll_interval", 0.05)
    app = RunctlApp(store, launcher, registry, **kw)
    return app, store, launcher


async def wait_for(pilot: Pilot[Any], cond: Callable[[], Any], timeout: float = 5.0) -> None:
    """Pause until `cond()` is truthy (AssertionError after `timeout` seconds)."""
    async def loop() -> None:
        while not cond():
            await pilot.pause(0.05)

    try:
        await asyncio.wait_for(loop(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {cond}") from None


def sync(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run an async test with asyncio.run (no pytest-asyncio here)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(fn(*args, **kwargs))

    return wrapper
