"""Attach benchmark: `read_state` on long logs vs `grep -cE 'Epoch|SCALE|Sharpe'` on the same file.

Four 300 MB logs (generated once into bench/out/): our engine's format (2,000 steps an epoch), the
same with tens of thousands of short epochs, the original ATFT pipeline's format built from its real
smoke log (bench/atft_log.py: Hydra and wrapper lines, tqdm fragments glued to the next line, a
WARNING every fourth line; ~7,400 epochs of 50 steps) and that format with ~30,000 epochs of 2
steps; plus the cost curve (20 / 100 / 300 / 600 MB) of the ATFT format and of ours. Each figure
is the best of REPEATS, grep and attach interleaved; grep's output goes to a file (to /dev/null GNU
grep stops at the first match). Attach runs in a child process that only reads the log, so its
peak RSS is the reader's. `--plain` also times the plain line loop and the fast path without the
compiled prefilter (a build without a C compiler). `python bench/bench_attach.py [--curve] [--plain]`.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.atft_log import write_atft_log  # noqa: E402

OUT = ROOT / "bench" / "out"
REPEATS = 5


def write_log(path: Path, size_mb: float = 300.0, seed: int = 0, steps: int = 2000) -> int:
    """A realistic engine log: mostly progress, some grad-monitor/warning noise, epoch metrics."""
    rnd = random.Random(seed)
    t = 1_795_000_000.0
    written, epoch, n_epochs = 0, 0, 100_000
    with path.open("w") as out:
        out.write(f"[2026-11-24 04:21:51,473][engine][INFO] - runctl engine 0.1.0 starting: pid=1 run_dir={path.parent}\n")
        while written < size_mb * 1e6:
            epoch += 1
            lines = [f"[main] Epoch {epoch}/{n_epochs}", "Learning rate: 0.000500"]
            for s in range(1, steps + 1):
                lines.append(f"[progress] epoch={epoch}/{n_epochs} step={s}/{steps} ({100 * s // steps}%) "
                             f"steps/s={rnd.uniform(8, 11):.2f} eta=00:03:{s % 60:02d} loss={rnd.uniform(0.3, 0.4):.4f}")
                if s % 50 == 0:
                    lines.append(f"[GRAD-MONITOR] step={s} epoch={epoch} batch={s} " + " | ".join(
                        f"{g}:l2={rnd.uniform(1e-3, 1e-1):.2e} max=4.0e-03 grad=12/12 small=0 none=0"
                        for g in ("vsn", "encoder", "gat", "prediction_head")))
            lines += ["train/total_loss: 0.350750", "val/loss: 0.351234"]
            lines += [f"Val metrics (z) h={h}: MAE=0.7812 RMSE=0.9951 IC={rnd.uniform(-0.05, 0.05):.4f} "
                      f"RankIC=0.0398 SCALE(yhat/y)=0.31 HIT=0.5123" for h in (1, 5, 10, 20)]
            lines += [f"Sharpe: {rnd.uniform(-0.2, 0.2):.4f}", f"Checkpoint saved: c/epoch={epoch}.ckpt (epoch={epoch})"]
            chunk = []
            for i, msg in enumerate(lines):
                t += 0.1
                lt = time.localtime(t)
                level = "WARNING" if i % 400 == 399 else "INFO"
                chunk.append(f"[{time.strftime('%Y-%m-%d %H:%M:%S', lt)},{int(t * 1000) % 1000:03d}]"
                             f"[engine][{level}] - {msg}\n")
            text = "".join(chunk)
            out.write(text)
            written += len(text)
        out.write(f"[2026-11-24 04:21:51,473][engine][INFO] - === Training Complete ===\n"
                  f"[2026-11-24 04:21:51,473][engine][INFO] - [exit] reason=finished status=0 epochs_completed={epoch}\n")
    return epoch


def write_stdout_log(path: Path, size_mb: float = 300.0, seed: int = 0, eval_every: int = 250) -> int:
    """A plain script's log shaped like nanoGPT's (docs/log-format.md, *Metric sources*): an `iter`
    line per step, an evaluation every `eval_every` steps, a checkpoint line after each, the
    supervise shim's exit line at the end; returns the number of evaluations."""
    rnd = random.Random(seed)
    written, i, evals = 0, 0, 0
    with path.open("w") as out:
        out.write("Overriding config with config/train_shakespeare_char.py:\nnumber of parameters: 10.65M\n")
        while written < size_mb * 1e6:
            chunk = []
            for _ in range(1000):
                if i % eval_every == 0:
                    evals += 1
                    chunk.append(f"step {i}: train loss {rnd.uniform(1, 4):.4f}, val loss {rnd.uniform(1, 4):.4f}\n"
                                 f"saving checkpoint to out\n")
                chunk.append(f"iter {i}: loss {rnd.uniform(1, 4):.4f}, time {rnd.uniform(5, 500):.2f}ms, "
                             f"mfu {rnd.uniform(-100, 40):.2f}%\n")
                i += 1
            text = "".join(chunk)
            out.write(text)
            written += len(text)
        out.write("[2026-12-05 17:40:00,000][runctl][INFO] - [exit] reason=finished status=0\n")
    return evals


def _log(kind: str, size_mb: float) -> tuple[Path, int]:
    """The cached log of this kind and size (generated on first use); (path, epochs)."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"attach_{kind}_{size_mb:g}MB.log"
    meta = path.with_suffix(".json")
    if not (path.is_file() and meta.is_file()):
        t = time.perf_counter()
        if kind == "engine":
            epochs = write_log(path, size_mb)
        elif kind == "engine_epochs":
            epochs = write_log(path, size_mb, steps=20)
        elif kind == "atft":
            epochs = write_atft_log(path, size_mb, steps_per_epoch=50)
        elif kind == "stdout":
            epochs = write_stdout_log(path, size_mb)
        else:
            epochs = write_atft_log(path, size_mb, steps_per_epoch=2)
        meta.write_text(json.dumps({"epochs": epochs}))
        print(f"generated {path.name} ({epochs} epochs) in {time.perf_counter() - t:.0f}s", flush=True)
    return path, json.loads(meta.read_text())["epochs"]


def _grep(log: Path) -> float:
    out = OUT / "grep.out"
    t0 = time.perf_counter()
    with out.open("w") as f:
        subprocess.run(["grep", "-cE", "Epoch|SCALE|Sharpe", str(log)], stdout=f, check=False)
    return time.perf_counter() - t0


_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
import tui.log.scan
if {no_c}:
    tui.log.scan.c_matches = tui.log.scan.c_prefix = tui.log.scan.c_hot_matches = None
from tui.state.follow import read_state
t0 = time.perf_counter(); s = read_state({log!r}, fast={fast}); dt = time.perf_counter() - t0
print(json.dumps({{"s": dt, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "epochs": len(s.epochs), "lines": s.lines, "state": s.state}}))
"""


def _attach(log: Path, fast: bool = True, no_c: bool = False) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD.format(root=str(ROOT), log=str(log), fast=fast, no_c=no_c)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def measure(kind: str, size_mb: float, repeats: int = REPEATS, plain: bool = False) -> dict:
    """Best of `repeats` for grep and for attach (interleaved), the ratio, the attach's peak RSS."""
    log, epochs = _log(kind, size_mb)
    greps, runs = [], []
    for _ in range(repeats):
        greps.append(_grep(log))
        runs.append(_attach(log))
    best = min(runs, key=lambda r: r["s"])
    assert best["epochs"] == epochs and best["state"] == "finished", (best, epochs)
    res = {"kind": kind, "log_mb": round(log.stat().st_size / 1e6, 1), "epochs": epochs, "lines": best["lines"],
           "attach_s": round(best["s"], 3), "grep_s": round(min(greps), 3),
           "ratio_to_grep": round(best["s"] / min(greps), 2), "all_attach_s": [round(r["s"], 3) for r in runs],
           "all_grep_s": [round(g, 3) for g in greps], "peak_rss_mb": round(max(r["rss_mb"] for r in runs), 1)}
    if plain:
        res["plain_loop_s"] = round(_attach(log, fast=False)["s"], 3)
        res["regex_prefilter_s"] = round(min(_attach(log, no_c=True)["s"] for _ in range(repeats)), 3)
    print(f"attach {kind} {res['log_mb']} MB ({epochs} epochs): {res['attach_s']}s, grep {res['grep_s']}s, "
          f"ratio {res['ratio_to_grep']}x (aim <= 4x), peak RSS {res['peak_rss_mb']} MB", flush=True)
    return res


CASES = (("engine", 300), ("engine_epochs", 300), ("atft", 300), ("atft_epochs", 300), ("stdout", 300))
CURVE = (("atft", 20), ("atft", 100), ("atft", 600), ("engine", 20), ("engine", 100), ("engine", 600))  # + CASES' 300


def run(curve: bool = True, plain: bool = False) -> dict:
    """The four 300 MB logs, then (curve) the cost curve of both formats."""
    res: dict[str, object] = {f"{k} {mb} MB": measure(k, mb, plain=plain) for k, mb in CASES}
    if curve:
        res["curve"] = [measure(k, mb) for k, mb in CURVE]
    return res


if __name__ == "__main__":
    print(json.dumps(run(curve="--curve" in sys.argv, plain="--plain" in sys.argv), indent=2))
