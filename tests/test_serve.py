"""`runctl tui --serve`: a real textual-serve process answers HTTP on the port it was given."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import runctl_cmd

pytestmark = pytest.mark.timeout(90)
START_TIMEOUT_S = 20.0


def free_port() -> int:
    """A port nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str, str]:
    """(status, content type, body) of one GET."""
    with urllib.request.urlopen(url, timeout=2) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode("utf-8", "replace")


def test_serve_answers_with_the_app_page_and_stops_on_sigterm(
    tmp_path: Path, logs_dir: Path, presets_dir: Path,
) -> None:
    port = free_port()
    out = tmp_path / "serve.out"
    cmd = runctl_cmd(logs_dir, presets_dir, "tui", "--serve", "--host", "127.0.0.1", "--port", str(port))
    with out.open("wb") as sink:
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)  # its own process group
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        page: tuple[int, str, str] | None = None
        while page is None:
            assert proc.poll() is None, f"exited {proc.returncode}: {out.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"no answer on :{port}: {out.read_text()[-2000:]}"
            try:
                page = get(f"http://127.0.0.1:{port}/")
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        status, ctype, body = page
        assert status == 200 and ctype.startswith("text/html")
        assert "<html" in body.lower() and f"ws://127.0.0.1:{port}/ws" in body  # the app's socket
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=10) == 0  # textual-serve exits cleanly on SIGTERM
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            get(f"http://127.0.0.1:{port}/")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert not logs_dir.exists() or not any(logs_dir.rglob("*.json"))  # nothing was launched


def test_host_and_port_need_serve(runctl) -> None:  # noqa: ANN001
    r = runctl("tui", "--port", "8123")
    assert r.returncode == 2 and r.stderr.strip() == "runctl: --host and --port need --serve"
    r = runctl("tui", "--serve", "--port", "70000")
    assert r.returncode == 2 and "--port 70000: must be 1..65535" in r.stderr
