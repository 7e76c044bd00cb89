"""The TUI over a real terminal (tmux): CPU idle / following a normal run / a 10,000 lines/s flood,
and key-to-screen latency during the flood, at 120x40; then idle and following again at 200x55,
where the charts are drawn beside the timeline. Aims: < 2% of a core idle, < 25% following a run.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from tui.runs.store import Manifest, RunStore

RUN = "bench_20261124_000000"
SOCKET = f"runctl-bench-{os.getpid()}"
SIZE = (120, 40)
WINDOW_S = 8.0


def _line(t: float, msg: str, level: str = "INFO") -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + f",{int(t * 1000) % 1000:03d}"
    return f"[{stamp}][engine][{level}] - {msg}\n"


def _header(t: float) -> str:
    msgs = ["runctl engine 0.1.0 starting: pid=1 run_dir=x", "GPU: none (CPU, 2 threads)",
            "Found hidden_size=64 at path: model.hidden_size", "📂 Found 1 train, 1 val, 1 test files",
            "OnlineRobustScaler fitted on 8192 samples (24 features)",
            "Data loaders created: train=900 days (113 batches), val=150 days (19 batches), seq_len=20, features=24",
            "Starting training: max_epochs=10 steps_per_epoch=113", "[main] Epoch 1/10"]
    return "".join(_line(t, m) for m in msgs)


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", "-L", SOCKET, *args], capture_output=True, text=True).stdout


def _screen() -> str:
    return _tmux("capture-pane", "-p")


def _app_process() -> psutil.Process:
    pane_pid = int(_tmux("display", "-p", "#{pane_pid}").strip())
    shell = psutil.Process(pane_pid)
    procs = [shell, *shell.children(recursive=True)]
    return next(p for p in procs if "tui" in " ".join(p.cmdline()))


def _cpu(proc: psutil.Process, seconds: float = WINDOW_S) -> float:
    """Percent of one core used over a window."""
    t0 = proc.cpu_times()
    time.sleep(seconds)
    t1 = proc.cpu_times()
    return round(100.0 * ((t1.user - t0.user) + (t1.system - t0.system)) / seconds, 1)


def _wait_screen(text: str, timeout: float = 10.0) -> float:
    """Seconds until `text` is on screen."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if text in _screen():
            return time.monotonic() - t0
        time.sleep(0.01)
    raise TimeoutError(f"{text!r} did not appear on screen in {timeout}s")


def _writer(log: Path, rate: float, seconds: float, stop: threading.Event) -> None:
    """Append progress-like lines at `rate` lines/s in 20 ms batches."""
    step, n = 0, 0
    t_end = time.monotonic() + seconds
    with open(log, "a", buffering=1 << 16) as f:
        while time.monotonic() < t_end and not stop.is_set():
            due = int(rate * (seconds - (t_end - time.monotonic()))) - n
            now = time.time()
            for _ in range(max(0, due)):
                step += 1
                f.write(_line(now, f"[progress] epoch=1/10 step={step}/9999999 (50%) "
                                   "steps/s=9.50 eta=00:00:05 loss=0.3447"))
            n += max(0, due)
            f.flush()
            time.sleep(0.02)


def _latency(key: str, text: str, back: str) -> float:
    """Seconds from a key press to its effect on screen."""
    _tmux("send-keys", key)
    dt = _wait_screen(text)
    _tmux("send-keys", back)
    time.sleep(0.3)
    return dt


def run() -> dict[str, object]:
    """Measure; the app runs as `runctl tui` in a private tmux server."""
    if shutil.which("tmux") is None:
        return {"skipped": "tmux not installed"}
    tmp = Path(tempfile.mkdtemp(prefix="bench_tui_"))
    store = RunStore(tmp / "_logs")
    store.training_dir.mkdir(parents=True)
    log = store.log_path(RUN)
    log.write_text(_header(time.time()))
    me = psutil.Process()
    store.save(Manifest(run=RUN, name="bench", preset="smoke", log=str(log), run_dir=str(tmp / "run"),
                        pid_file=str(store.pid_path("bench")), created_at=time.time(), host="bench",
                        pid=me.pid, create_time=me.create_time(), cmdline=tuple(me.cmdline())))
    runctl = str(Path(sys.executable).parent / "runctl")
    cmd = f"TERM=xterm-256color {runctl} --logs {tmp / '_logs'} --presets presets tui {RUN}"
    _tmux("new", "-d", "-x", str(SIZE[0]), "-y", str(SIZE[1]), cmd)
    out: dict[str, object] = {}
    stop = threading.Event()
    try:
        out["startup_s"] = round(_wait_screen("Epoch 1/10", 30.0), 2)
        time.sleep(2.0)
        proc = _app_process()
        out["idle_cpu_pct"] = _cpu(proc)
        w = threading.Thread(target=_writer, args=(log, 20.0, WINDOW_S + 1, stop))
        w.start()
        out["follow_20_lines_s_cpu_pct"] = _cpu(proc)
        w.join()
        w = threading.Thread(target=_writer, args=(log, 10_000.0, WINDOW_S + 6, stop))
        w.start()
        time.sleep(1.0)
        out["flood_10k_lines_s_cpu_pct"] = _cpu(proc, 4.0)
        lat = [_latency("/", "regex, Enter to apply", "Escape") for _ in range(5)]
        out["flood_key_latency_ms"] = {"median": round(1000 * statistics.median(lat)),
                                       "max": round(1000 * max(lat))}
        w.join()
        t0 = time.monotonic()
        last = log.read_text().rsplit("step=", 1)[1].split("/")[0]
        try:
            _wait_screen(f"step={last}/", 20.0)
            out["flood_catch_up_s"] = round(time.monotonic() - t0, 2)
        except TimeoutError as e:
            out["flood_catch_up_s"] = f"{e}; screen:\n{_screen()}"
        # 200x55: the charts beside the timeline, drawn (at 120x40 they are a hidden tab)
        _tmux("resize-window", "-x", "200", "-y", "55")
        time.sleep(2.0)
        out["wide_200x55_idle_cpu_pct"] = _cpu(proc)
        w = threading.Thread(target=_writer, args=(log, 20.0, WINDOW_S + 1, stop))
        w.start()
        out["wide_200x55_follow_20_lines_s_cpu_pct"] = _cpu(proc)
        w.join()
        out["aims"] = {"idle_cpu_pct": "< 2", "follow_cpu_pct": "< 25"}
    finally:
        stop.set()
        _tmux("kill-server")
        shutil.rmtree(tmp, ignore_errors=True)
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
