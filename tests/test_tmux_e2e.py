"""End to end in a real terminal: runctl in tmux, launch `tiny` by keystrokes, kill, quit, re-open."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tui.runs.store import RunStore

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed"),
]
DATA = Path(__file__).parent / "data"


class Tmux:
    """A private tmux server (its own socket) holding one 120x40 window."""

    def __init__(self, socket: str, cwd: Path) -> None:
        self.socket, self.cwd = socket, cwd

    def tmux(self, *args: str) -> str:
        """Run a tmux command on this server."""
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                              timeout=10).stdout

    def start(self, command: str, size: tuple[int, int] = (120, 40)) -> None:
        """A new session running `command` (TERM=xterm-256color, no mouse)."""
        self.tmux("new", "-d", "-x", str(size[0]), "-y", str(size[1]), "-c", str(self.cwd),
                  f"TERM=xterm-256color {command}; sleep 600")

    def restart(self, command: str) -> None:
        """Replace what runs in the pane (the old process is gone, the server stays)."""
        self.tmux("respawn-pane", "-k", "-c", str(self.cwd), f"TERM=xterm-256color {command}; sleep 600")

    def screen(self) -> str:
        """The visible pane as text."""
        return self.tmux("capture-pane", "-p")

    def keys(self, *keys: str, pause: float = 0.4) -> None:
        """Send keys one by one."""
        for k in keys:
            self.tmux("send-keys", k)
            time.sleep(pause)

    def type(self, text: str) -> None:
        """Type literal text."""
        self.tmux("send-keys", "-l", text)
        time.sleep(0.4)

    def wait(self, *texts: str, timeout: float = 60.0, any_of: tuple[str, ...] = ()) -> str:
        """The screen once every text (and one of `any_of`) is on it (AssertionError otherwise)."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if all(t in screen for t in texts) and (not any_of or any(t in screen for t in any_of)):
                return screen
            time.sleep(0.25)
        raise AssertionError(f"{texts} not on screen after {timeout}s:\n{screen}")


@pytest.fixture
def term(tmp_path: Path, reaper: object) -> Iterator[Tmux]:
    """A tmux server killed at teardown (the reaper kills the engines started under tmp_path)."""
    t = Tmux(f"runctl-e2e-{os.getpid()}", tmp_path)
    yield t
    t.tmux("kill-server")


def test_80x24_shows_the_metric_table_and_the_recommendation(term: Tmux, tmp_path: Path,
                                                              presets_dir: Path) -> None:
    """A finished run's recorded log in an 80x24 tmux pane: what matters is on screen."""
    from app_fixtures import TINY, add_run

    logs = tmp_path / "_logs"
    add_run(RunStore(logs), TINY)  # the recorded log with its manifest (preset tiny)
    term.start(f"{sys.executable} -m tui.cli --logs {logs} --presets {presets_dir} tui {TINY[1]}",
               size=(80, 24))
    screen = term.wait("Metrics vs baseline", "Next: launch smoke", "Epochs", "0.9010",
                       "❌ Epoch 1 Validation", timeout=30)  # drawn in steps: wait for the last
    lines = screen.splitlines()
    assert len(lines) <= 24 and all(len(ln) <= 80 for ln in lines)
    for row in ("val/loss", "Sharpe", "IC (h20)", "SCALE(yhat/y)"):
        assert any(row in ln for ln in lines), row
    assert any("0.9010" in ln for ln in lines)  # the current val/loss, 4 significant digits
    assert any("❌ Epoch 1 Validation" in ln for ln in lines)  # the checkpoint decision
    term.keys("q")


@pytest.mark.slow
def test_launch_kill_quit_reopen(term: Tmux, tmp_path: Path, presets_dir: Path) -> None:
    logs = tmp_path / "_logs"
    runctl = f"{sys.executable} -m tui.cli --logs {logs} --presets {presets_dir}"
    store = RunStore(logs)

    term.start(runctl)  # no runs yet: the runs screen
    term.wait("No runs yet")
    term.keys("l")
    term.wait("Launch")
    term.type("tiny")
    term.keys("Enter")
    first = term.wait("tiny_", "Epoch", timeout=120)
    assert "launched" in first or "Run started" in first
    # epoch 1 validated: its checkpoint is decided (toast and checkpoint list)
    term.wait(any_of=("Predictions have variance", "SCALE = 0.00 on the tiny run"), timeout=240)
    run_a = store.runs()[0]

    term.keys("k")
    term.wait("SIGKILL after 30 s")
    term.keys("y")
    term.wait("■ killed", f"{run_a.run} stopped", timeout=60)  # the kill worker's last toast
    assert not store.is_running(store.get(run_a.run))

    term.keys("l")  # a second run, named tiny2, left running when we quit
    term.wait("Launch")
    term.type("tiny")
    term.keys("Tab", "Tab", "Tab")  # filter -> list -> changes -> run name
    term.type("tiny2")
    term.keys("Enter")
    term.wait("tiny2_", timeout=30)
    run_b = next(m for m in store.runs() if m.name == "tiny2")
    term.keys("q")
    time.sleep(1.0)
    assert store.is_running(store.get(run_b.run)), "quitting the TUI must leave the run alone"

    term.restart(runctl)  # a new runctl re-attaches to the newest active run
    term.wait(run_b.run, "tiny2", timeout=30)
    term.keys("R")
    screen = term.wait(run_a.run, run_b.run, "■ killed", timeout=30)
    assert any(s in screen for s in ("● training", "◔ initializing", "◌ launching", "✔ finished"))
