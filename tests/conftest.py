"""Shared fixtures: a tmp `_logs` dir, the repo's presets, a `runctl` runner, process cleanup."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


class Reaper:
    """Kills, at teardown, the process groups a test started (by handle or by a path in argv)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.pids: list[int] = []

    def add(self, pid: int) -> int:
        """Remember a pid whose process group must die at teardown."""
        self.pids.append(pid)
        return pid

    def _targets(self) -> set[int]:
        found = set(self.pids)
        for p in psutil.process_iter(["pid", "cmdline"]):
            with contextlib.suppress(psutil.Error):
                if p.pid != os.getpid() and any(self.marker in a for a in p.info["cmdline"] or ()):
                    found.add(p.pid)
        return found

    def kill_all(self) -> None:
        """SIGKILL every target's group (or the process itself when it leads none)."""
        for pid in self._targets():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getpgid(pid) == pid:
                    os.killpg(pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(psutil.pid_exists(p) and _alive(p) for p in self.pids):
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.fixture(autouse=True)
def gpu_reservations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own machine-wide GPU reservation folder (tui.runs.gpus), so concurrent test runs
    on one box do not see each other's declared GPUs as taken."""
    d = tmp_path / "gpu-reservations"
    monkeypatch.setenv("RUNCTL_GPU_DIR", str(d))
    return d


@pytest.fixture(autouse=True)
def no_user_notifications(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's own (absent) notify.toml (tui.runs.notify): the developer's
    ~/.config/runctl/notify.toml never gets a test's runs, and no test starts a watcher unless it
    writes one."""
    monkeypatch.setenv("RUNCTL_NOTIFY", str(tmp_path / "notify.toml"))


@pytest.fixture(autouse=True)
def no_user_hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's own (absent) hosts file (tui.runs.hosts): the developer's
    ~/.config/runctl/hosts.toml never sends a test's `runctl runs` to their GPU boxes (and ssh's
    control sockets go under the test's folder, or /tmp where that path is too long, not ~)."""
    monkeypatch.setenv("RUNCTL_HOSTS", str(tmp_path / "hosts.toml"))
    monkeypatch.setenv("RUNCTL_SSH_DIR", str(tmp_path / "ssh"))


@pytest.fixture
def reaper(tmp_path: Path) -> Iterator[Reaper]:
    """Every process whose command line mentions tmp_path, and every added pid, dies at teardown."""
    r = Reaper(str(tmp_path))
    yield r
    r.kill_all()


@pytest.fixture
def logs_dir(tmp_path: Path, reaper: Reaper) -> Path:
    """An empty `_logs` under tmp_path (processes started on it are killed at teardown)."""
    return tmp_path / "_logs"


@pytest.fixture
def presets_dir() -> Path:
    """The repository's presets."""
    return ROOT / "presets"


def runctl_cmd(logs_dir: Path, presets_dir: Path, *args: str) -> list[str]:
    """The argv of `runctl --logs L --presets P ARGS...` in a fresh interpreter."""
    return [sys.executable, "-m", "tui.cli", "--logs", str(logs_dir), "--presets", str(presets_dir),
            *args]


@pytest.fixture
def runctl(logs_dir: Path, presets_dir: Path, tmp_path: Path):
    """Run `runctl ARGS...` to completion in tmp_path; returns the CompletedProcess."""

    def run(*args: str, timeout: float = 120, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(runctl_cmd(logs_dir, presets_dir, *args), capture_output=True,
                              text=True, timeout=timeout, cwd=tmp_path,
                              env={**os.environ, **(env or {})})

    return run
