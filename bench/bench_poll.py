"""Per-poll cost of following a long run: the state handed to the TUI / `status --watch` each poll.

Every poll, `tui.runs.store.live_state` copies the follower's state for the reader (the follower
folds on in its worker thread). A deep copy costs ~50 us an epoch record; `RunData.snapshot()`
copies the containers and shares the records until one is written. Each poll also judges the
state against its preset (`tui.judge.evaluate`: the metric table, criteria, checkpoints, the
recommendation), timed here with the `smoke` preset. States of 1,000 / 10,000 / 85,000 epochs
(our engine's format, bench_attach's many-epochs log cut to size), best of REPEATS.
`python bench/bench_poll.py`.
"""

from __future__ import annotations

import copy
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_attach import _log  # noqa: E402
from tui.judge.evaluate import evaluate  # noqa: E402
from tui.presets.registry import PresetRegistry  # noqa: E402
from tui.state.follow import read_state  # noqa: E402
from tui.state.run import RunState  # noqa: E402

REPEATS = 3
EPOCHS = (1_000, 10_000, 85_000)


def _best(fn, repeats: int = REPEATS) -> float:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


def _state(full: RunState, n: int) -> RunState:
    st = copy.copy(full)
    st.epochs = full.epochs[:n]
    return st


def run() -> dict:
    path, _ = _log("engine_epochs", 300)
    full = read_state(path)
    preset = PresetRegistry(ROOT / "presets").get("smoke")
    res = {}
    for n in EPOCHS:
        st = _state(full, n)
        deep, snap = _best(lambda st=st: copy.deepcopy(st)), _best(lambda st=st: st.snapshot())
        judge = _best(lambda st=st: evaluate(preset, st, None).to_json())
        journal_idle, journal_new = _journal(st, path)
        res[f"{n} epochs"] = {"deepcopy_ms": round(deep * 1e3, 2), "snapshot_ms": round(snap * 1e3, 3),
                              "ratio": round(deep / snap), "judge_ms": round(judge * 1e3, 1),
                              "journal_idle_ms": round(journal_idle * 1e3, 3),
                              "journal_new_epoch_ms": round(journal_new * 1e3, 3)}
        print(f"poll at {n} epochs: deepcopy {deep * 1e3:.1f} ms, snapshot {snap * 1e3:.2f} ms, "
              f"judge {judge * 1e3:.1f} ms, epoch journal {journal_idle * 1e3:.3f} ms "
              f"(an epoch more: {journal_new * 1e3:.2f} ms)", flush=True)
    return res


def _journal(st: RunState, log: Path) -> tuple[float, float]:
    """The live run's epoch journal (tui.runs.seen) per poll: nothing new (the usual poll), and a
    poll that completed one epoch (one line appended, the mark rewritten)."""
    import os
    import tempfile

    from tui.runs import seen

    with tempfile.TemporaryDirectory() as d:
        cache, stat = Path(d), os.stat(log)
        head = copy.copy(st)
        head.epochs = st.epochs[:-1]
        mark = seen.record(head, cache, "r", log, stat, None)  # the journal up to the last poll
        idle = _best(lambda: seen.record(head, cache, "r", log, stat, mark))

        def one_more() -> None:
            seen.record(st, cache, "r", log, stat, mark)

        return idle, _best(one_more)


if __name__ == "__main__":
    print(run())
