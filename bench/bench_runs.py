"""The runs screen at scale: 1,000 runs in one logs folder (manifests + realistic engine logs).

Measures the listing (`RunStore.runs()` + a state per run, as the runs screen loads it) cold and
warm, and the app itself, headless (Textual's Pilot): from start to the runs screen showing every
run with its state, a filter keystroke, a sort, while the list refreshes. Aim: open < 1 s.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

N_RUNS = 1000
T0 = 1_764_000_000.0  # 2025-11-24, the runs' launch times go backwards from here
PRESETS = ("smoke", "smoke_v2", "tiny", "var_floor", "long25")


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + f",{int(t * 1000) % 1000:03d}"


def _log(rng: random.Random, t: float, epochs: int, done: int, end: str) -> str:
    """An engine log: start-up, `done` epochs of progress + validation lines, then the end."""
    out: list[str] = []

    def line(msg: str, level: str = "INFO") -> None:
        out.append(f"[{_stamp(t)}][engine][{level}] - {msg}\n")

    for msg in ("runctl engine 0.1.0 starting: pid=1 run_dir=_logs/runs/x", "Using device: cpu",
                "GPU: none (CPU, 2 threads)", "Found hidden_size=64 at path: model.hidden_size",
                "📂 Found 1 train, 1 val, 1 test files", "[data-filter] Global minimum date filter: 2016-01-01",
                "OnlineRobustScaler fitted on 8192 samples (24 features)",
                "Data loaders created: train=900 days (113 batches), val=150 days (19 batches), seq_len=20, features=24",
                f"Starting training: max_epochs={epochs} steps_per_epoch=113"):
        line(msg)
    loss = 0.9
    for e in range(1, done + 1):
        line("=" * 50)
        line(f"[main] Epoch {e}/{epochs}")
        line(f"Learning rate: {0.0005 * 0.95 ** e:.6f}")
        for s in range(10, 114, 10):
            t += 1.0
            loss *= 0.998
            line(f"[progress] epoch={e}/{epochs} step={s}/113 ({100 * s // 113}%) steps/s=9.50 "
                 f"eta=00:00:{(113 - s) // 10:02d} loss={loss:.4f}")
        t += 3.0
        val = loss + rng.uniform(0.0, 0.05)
        line(f"train/total_loss: {loss:.6f}")
        line(f"val/loss: {val:.6f}")
        for h in (1, 5, 10, 20):
            ic = rng.uniform(-0.02, 0.15)
            line(f"Val metrics (z) h={h}: MAE=0.7812 RMSE=0.9951 IC={ic:.4f} RankIC={ic * 0.9:.4f} "
                 f"SCALE(yhat/y)={rng.uniform(0.05, 0.4):.2f} HIT=0.5123")
        sharpe = rng.uniform(-0.05, 0.2)
        line(f"Sharpe: {sharpe:.4f}")
        line(f"[epoch-end] epoch={e}/{epochs} train_loss={loss:.6f} val_loss={val:.6f} "
             f"sharpe={sharpe:.4f} sharpe_ann={sharpe * 15.87:.4f} time=16.0s")
        line(f"Checkpoint saved: _logs/runs/x/checkpoints/epoch={e:03d}.ckpt (epoch={e})")
    if end == "finished":
        line(f"[exit] reason=finished status=0 epochs_completed={done}")
    elif end == "crashed":
        line("[error] non-finite loss: nan at step 40", "ERROR")
        line(f"[exit] reason=error status=3 epochs_completed={done}", "ERROR")
    return "".join(out)


def make_runs(logs: Path, n: int = N_RUNS, seed: int = 0) -> Path:
    """`n` runs (manifests + logs) in `logs`: mostly finished, some crashed, killed or cut short."""
    from tui.runs.store import Manifest, RunStore

    rng = random.Random(seed)
    store = RunStore(logs)
    store.training_dir.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        preset = PRESETS[i % len(PRESETS)]
        created = T0 - 600.0 * i
        run = f"{preset}_{time.strftime('%Y%m%d_%H%M%S', time.localtime(created))}"
        epochs = rng.choice((2, 10, 10, 10, 25))
        end = rng.choices(("finished", "crashed", "killed"), (8, 1, 1))[0]
        done = epochs if end == "finished" else rng.randint(1, epochs)
        store.log_path(run).write_text(_log(rng, created, epochs, done, end))
        store.save(Manifest(run=run, name=preset, preset=preset, log=str(store.log_path(run)),
                            run_dir=str(store.run_dir(run)), pid_file=str(store.pid_path(preset)),
                            created_at=created, host="bench", pid=10_000_000 + i, create_time=created,
                            state="killed" if end == "killed" else "running",
                            sets=(f"train.optimizer.lr={rng.choice((1e-4, 2.5e-4, 5e-4))}",)))
    return logs


def _listing(logs: Path) -> float:
    """Seconds for the rows the runs screen shows: every manifest and its state."""
    from tui.runs.store import RunStore

    store = RunStore(logs)
    t0 = time.perf_counter()
    for m in store.runs():
        store.state(m)
    return time.perf_counter() - t0


def _listing_twice(logs: Path) -> float:
    """Seconds for a second listing from the same store (the runs screen's refresh)."""
    from tui.runs.store import RunStore

    store = RunStore(logs)
    for m in store.runs():
        store.state(m)
    t0 = time.perf_counter()
    for m in store.runs():
        store.state(m)
    return time.perf_counter() - t0


async def _app(logs: Path, presets: Path, n_runs: int) -> dict[str, Any]:
    """The app over `logs`, headless: open to rows / states, filter keystrokes, sorts, cursor."""
    from textual import events

    from tui.app.app import RunctlApp
    from tui.app.screens.runs import RunsScreen
    from tui.app.widgets.runtable import RunTable
    from tui.presets.registry import PresetRegistry
    from tui.runs.launcher import Launcher
    from tui.runs.store import RunStore

    store = RunStore(logs)
    registry = PresetRegistry(presets)
    t0 = time.perf_counter()
    app = RunctlApp(store, Launcher(store, registry), registry, probe=None)
    out: dict[str, Any] = {}
    async with app.run_test(size=(120, 40)) as pilot:
        async def until(cond: Any, timeout: float = 60.0) -> float:
            t = time.perf_counter()
            while not cond():
                if time.perf_counter() - t > timeout:
                    raise TimeoutError
                await asyncio.sleep(0.002)
            return time.perf_counter()

        def screen() -> Any:
            return app.screen if isinstance(app.screen, RunsScreen) else None

        def table() -> Any:
            s = screen()
            return s.query_one(RunTable) if s else None

        async def key_latency(n: int) -> list[float]:
            """Seconds from a key event reaching the table to its cursor having moved (Pilot's
            press waits for the app to be idle, which a loading worker never is)."""
            out = []
            for _ in range(n):
                tab = table()
                before = tab.cursor
                t = time.perf_counter()
                app.post_message(events.Key("down", None))
                await until(lambda tab=tab, before=before: tab.cursor != before, 10.0)
                out.append(time.perf_counter() - t)
                await asyncio.sleep(0.02)
            return out

        t_rows = await until(lambda: table() is not None and table().row_count >= n_runs)
        out["open_to_all_rows_s"] = round(t_rows - t0, 3)
        reading = await key_latency(20)  # while the states are still being read
        out["key_while_reading_s"] = {"median": round(statistics.median(reading), 3),
                                      "max": round(max(reading), 3)}
        t_states = await until(lambda: screen().loaded)
        out["open_to_all_states_s"] = round(t_states - t0, 3)
        idle = await key_latency(20)
        out["key_after_s"] = {"median": round(statistics.median(idle), 3), "max": round(max(idle), 3)}

        async def timed(*keys: str) -> float:
            t = time.perf_counter()
            await pilot.press(*keys)
            await pilot.pause()
            return time.perf_counter() - t

        out["keypress_baseline_s"] = round(statistics.median([await timed("down") for _ in range(5)]), 3)
        await pilot.press("slash")
        typed = [await timed(ch) for ch in "smoke"] + [await timed("backspace") for _ in range(5)]
        out["filter_keystroke_s"] = {"median": round(statistics.median(typed), 3), "max": round(max(typed), 3)}
        await pilot.press("enter")
        sorts = [await timed(k) for k in ("s", "s", "S", "s", "s", "s")]
        out["sort_s"] = {"median": round(statistics.median(sorts), 3), "max": round(max(sorts), 3)}
        t = time.perf_counter()
        screen().action_refresh()  # the 5 s refresh, warm: stats, no log read
        await until(lambda: not any(w.is_running for w in screen().workers))
        out["refresh_warm_s"] = round(time.perf_counter() - t, 3)
    return out


def run() -> dict[str, object]:
    """Generate 1,000 runs, measure the listing cold/warm and the app opening and responding."""
    tmp = Path(tempfile.mkdtemp(prefix="bench_runs_"))
    try:
        t = time.perf_counter()
        logs = make_runs(tmp / "_logs")
        size = sum(p.stat().st_size for p in (logs / "training").glob("*.log"))
        out: dict[str, object] = {"runs": N_RUNS, "logs_mb": round(size / 2**20, 1),
                                  "generate_s": round(time.perf_counter() - t, 1)}
        out["listing_cold_s"] = round(_listing(logs), 3)
        out["listing_again_s"] = round(_listing(logs), 3)  # a new store: cold again
        out["listing_warm_s"] = round(_listing_twice(logs), 3)
        presets = Path(__file__).resolve().parents[1] / "presets"
        out["app"] = asyncio.run(_app(logs, presets, N_RUNS))
        out["aim"] = "open_to_all_rows_s < 1"
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    import json

    sys.exit(print(json.dumps(run(), indent=2)))
