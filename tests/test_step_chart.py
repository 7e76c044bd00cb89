"""Issue 17.4: the TUI's per-step train-loss chart of a script that prints its steps (nanoGPT's
`iter N: loss X` lines, recorded in tests/data/any_loop), and the engine's progress lines still
the chart's alone where a log has them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from tui.app.widgets.run_watch import RunWatch, default_follower

DATA = Path(__file__).resolve().parent / "data"


def _watch(tmp_path: Path, recorded: Path, kind: str | None) -> RunWatch:
    log = tmp_path / "run.log"
    shutil.copy(recorded, log)
    manifest: dict[str, Any] = {"run": "r", "kind": kind}
    posted: list[Any] = []
    w = RunWatch(posted.append, log, default_follower(log), run="r", manifest=manifest, probe=None)
    w.step()
    return w


def test_a_scripts_printed_steps_feed_the_per_step_chart(tmp_path: Path) -> None:
    recorded = DATA / "any_loop" / "nanogpt_train.log"
    want = [(float(m[1]), float(m[2])) for m in
            re.finditer(r"^iter (\d+): loss ([\d.]+),", recorded.read_text(), re.M)]
    assert len(want) > 10
    w = _watch(tmp_path, recorded, "command")
    assert w.steps == want  # every iter line, in order; the eval lines' estimates give way to them
    assert w.view is not None and w.view.steps == tuple(want)


def test_an_engine_log_keeps_its_progress_lines_and_an_engine_run_reads_no_printed_steps(tmp_path: Path) -> None:
    recorded = DATA / "app_tiny_finished.log"
    engine = _watch(tmp_path, recorded, None)
    assert engine.steps and all(y > 0 for _, y in engine.steps)
    (tmp_path / "b").mkdir()
    script = _watch(tmp_path / "b", recorded, "command")
    assert script.steps == engine.steps  # progress lines are the chart's, whatever else the log prints
