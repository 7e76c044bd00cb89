"""`runctl runs` at 10 / 100 / 1,000 runs: how the listing's cost grows with the runs it lists.

Each run is a manifest and a finished log in a temporary `_logs` (not running: no live process to
probe). Two log sizes: our engine's smoke log (108 lines, 14 KB, a short run) and the same run
with 330 more progress lines after each of its own (~1.4 MB, a long run). `runctl runs` (a fresh
`python -m tui.cli` process, as a user runs it: start-up included) and `runctl runs --json`, best
of REPEATS; the start-up alone is `runctl runs` on an empty `_logs`. Cold: no listing cache (each
run's log read whole, ~ the sum of the logs' attach costs); warm: the ended runs' rows cached by
the first listing (`training/.cache/`, RunStore.listing), a stat and a small read per run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tui.runs.store import Manifest, RunStore  # noqa: E402

REPEATS = 3
COUNTS = (10, 100, 1000)
SMOKE = ROOT / "tests" / "data" / "engine_smoke.log"


def _long_log(per_line: int = 330) -> str:
    """The smoke log with `per_line` more progress lines after each of its own (~1.3 MB)."""
    out: list[str] = []
    for s in SMOKE.read_text().splitlines():
        out.append(s)
        if "[progress] " in s:
            out += [s] * per_line
    return "\n".join(out) + "\n"


def make_runs(logs: Path, n: int, text: str) -> None:
    """n finished runs (manifest + log) in logs/training."""
    store = RunStore(logs)
    store.training_dir.mkdir(parents=True, exist_ok=True)
    t0 = 1_795_000_000.0
    for i in range(n):
        run = f"bench{i % 7}_{time.strftime('%Y%m%d_%H%M%S', time.localtime(t0 + 60 * i))}"
        store.log_path(run).write_text(text)
        store.save(Manifest(run=run, name=f"bench{i % 7}", preset="smoke", log=str(store.log_path(run)),
                            run_dir=str(store.run_dir(run)), pid_file=str(store.pid_path(f"bench{i % 7}")),
                            created_at=t0 + 60 * i, host="bench", state="running"))


def _cli(logs: Path, *args: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tui.cli", "runs", "--logs", str(logs), *args],
                          capture_output=True, text=True, env=env, check=True)
    dt = time.perf_counter() - t0
    assert proc.stdout, proc.stderr
    return dt


def run(counts: tuple[int, ...] = COUNTS) -> dict:
    """`runctl runs` and `runs --json` per count and log size; the CLI start-up on no runs."""
    res: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty"
        empty.mkdir()
        res["startup_s"] = round(min(_cli(empty) for _ in range(REPEATS)), 3)
        for label, text in (("smoke 14 KB", SMOKE.read_text()), ("long 1.4 MB", _long_log())):
            rows = []
            for n in counts:
                logs = Path(tmp) / f"{label.split()[0]}_{n}"
                make_runs(logs, n, text)
                cache = logs / "training" / ".cache"
                cold = []
                for _ in range(REPEATS):
                    shutil.rmtree(cache, ignore_errors=True)
                    cold.append(_cli(logs))
                plain = min(cold)
                warm = min(_cli(logs) for _ in range(REPEATS))
                as_json = min(_cli(logs, "--json") for _ in range(REPEATS))
                start = res["startup_s"]
                rows.append({"runs": n, "log_kb": round(len(text) / 1e3, 1), "cold_s": round(plain, 3),
                             "warm_s": round(warm, 3), "warm_json_s": round(as_json, 3),
                             "cold_per_run_ms": round(1e3 * (plain - start) / n, 2),  # type: ignore[operator]
                             "warm_per_run_ms": round(1e3 * (warm - start) / n, 2)})  # type: ignore[operator]
                print(f"runctl runs, {n} runs of {label}: cold {plain:.3f}s, warm {warm:.3f}s "
                      f"(--json {as_json:.3f}s)", flush=True)
            res[label] = rows
    return res


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
