"""A stand-in for the original pipeline's `scripts/integrated_ml_training_pipeline.py`.

It takes the seed's command line (`--data-path P --max-epochs N` and Hydra-style `key=value`
overrides, the loss weights from the environment) and, instead of training, writes the real log of
one of that pipeline's smoke runs (the original's format: wrapper and Hydra prefixes, tqdm
fragments glued to the next line), line by line over `ATFT_REPLAY_SECONDS` (default 20) seconds,
each timestamp moved to now. It lets `presets/atft_pipeline.toml` run anywhere; point that
preset's `cwd` at a checkout of the real pipeline to control the real thing.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

LOG = Path(__file__).resolve().parent.parent / "smoke_log.txt"  # the recorded smoke run
_STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}")


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + f",{int(t * 1000) % 1000:03d}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-path", required=True)
    p.add_argument("--max-epochs", type=int, required=True)
    p.add_argument("overrides", nargs="*", help="Hydra-style key=value")
    a = p.parse_args(argv)
    bad = [o for o in a.overrides if "=" not in o]
    if bad:
        p.error(f"overrides must be key=value: {' '.join(bad)}")
    lines = LOG.read_text(encoding="utf-8").splitlines(keepends=True)
    pause = float(os.environ.get("ATFT_REPLAY_SECONDS", "20")) / max(1, len(lines))
    for line in lines:
        sys.stdout.write(_STAMP.sub(lambda _: _now(), line))
        sys.stdout.flush()
        time.sleep(pause)
    return 0


if __name__ == "__main__":
    sys.exit(main())
