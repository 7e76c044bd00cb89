"""`make bench`: run every benchmark (or those named) and write bench/out/results.json.

Figures are ratios measured in one run, because these machines are noisy; docs/benchmarks.md
records them with the machine and the date.
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from pathlib import Path

BENCHES = ("startup", "data", "quality", "throughput", "attach", "poll", "tui", "runs", "cli_runs", "launch",
           "tensorboard")


def main(argv: list[str]) -> int:
    """Run the benchmarks named in argv (default: all)."""
    names = argv or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"bench: unknown benchmark(s) {unknown}; choose from {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    out_dir = Path(__file__).parent / "out"
    out_dir.mkdir(exist_ok=True)
    results: dict[str, object] = {
        "machine": f"{platform.node()} {platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    for name in names:
        mod = importlib.import_module(f"bench.bench_{name}")
        print(f"== {name}", flush=True)
        t0 = time.monotonic()
        res = mod.run()
        res["bench_wall_s"] = round(time.monotonic() - t0, 1)
        results[name] = res
        print(json.dumps(res, indent=2, default=str), flush=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"written {out_dir / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
