"""Issue 18.1: a log cut under a live run loses nothing, even for a reader that comes after the
cut (tui.runs.seen: the read mark and epoch journal every reader of a live run leaves)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import psutil

from tui.runs import seen
from tui.runs.store import Manifest, RunStore
from tui.state.records import EpochRecord, HorizonMetrics

DATA = Path(__file__).resolve().parent / "data"
RUN = "tiny_20261124_031012"


def _live_run(logs: Path, lines: list[str]) -> tuple[RunStore, Manifest, Path]:
    """A live run (no exit record) whose log holds `lines`."""
    store = RunStore(logs)
    store.training_dir.mkdir(parents=True)
    log = store.log_path(RUN)
    log.write_text("".join(lines))
    me = psutil.Process()  # this test's own process stands in for the run's: alive, verified
    m = Manifest(run=RUN, name="tiny", preset="tiny", log=str(log), run_dir=str(store.run_dir(RUN)),
                 pid_file=str(store.pid_path("tiny")), created_at=1.0, host="test", pid=me.pid,
                 create_time=me.create_time(), cmdline=tuple(me.cmdline()))
    assert store.is_running(m)
    store.save(m)
    return store, m, log


def _validated(st) -> list[int]:  # noqa: ANN001
    return [r.epoch for r in st.epochs if r.validated]


def test_a_one_shot_reader_after_a_cut_gets_back_what_one_before_it_read(tmp_path: Path) -> None:
    lines = (DATA / "app_tiny_finished.log").read_text().splitlines(keepends=True)
    epoch2 = next(i for i, ln in enumerate(lines) if "Epoch 2/2" in ln)
    store, m, log = _live_run(tmp_path / "_logs", lines[:epoch2 + 1])
    before = store.log_state(m)  # a `runctl status` while epoch 2 runs: epoch 1 journaled
    assert _validated(before) == [1] and before.phases["first_epoch"]
    os.truncate(log, 0)  # `: > run.log`; the run writes on
    with log.open("a") as f:
        f.writelines(lines[epoch2:])
    after = RunStore(tmp_path / "_logs").log_state(m)  # another `runctl status`, after the cut
    assert _validated(after) == [1, 2] and after.log_event == "truncated"
    assert after.epochs[0] == before.epochs[0]  # the record itself, every field
    assert all(after.phases[k] for k, done in before.phases.items() if done)  # the checklist's ticks kept
    # a reader of the whole, uncut log is not told it was cut, and reads no journal
    fresh = RunStore(tmp_path / "other")
    fresh.training_dir.mkdir(parents=True)
    whole = fresh.log_path(RUN)
    whole.write_text("".join(lines))
    st = fresh.log_state(Manifest(run=RUN, name="tiny", preset="tiny", log=str(whole), run_dir=str(tmp_path),
                                  pid_file=str(fresh.pid_path("tiny")), created_at=1.0, host="test"))
    assert st.log_event is None and _validated(st) == [1, 2]


def test_the_journal_grows_by_the_new_epochs_only_and_reads_each_epoch_once(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    log = tmp_path / "run.log"
    log.write_text("x" * 10)
    from tui.state.run import RunState

    st = RunState()
    mark = None
    for e in range(1, 6):
        st.epochs.append(EpochRecord(e, validated=True, val_loss=1.0 / e))
        mark = seen.record(st, cache, "r", log, os.stat(log), mark)
    journal = (cache / "r.seen.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in journal] == [1, 2, 3, 4]  # the current one is in the mark
    assert mark is not None and mark.n == 4 and mark.last is not None and mark.last["epoch"] == 5
    assert seen.record(st, cache, "r", log, os.stat(log), mark) is mark  # nothing new: nothing written
    with (cache / "r.seen.jsonl").open("a") as f:  # two readers appended one epoch each; a torn line
        f.write(journal[1] + "\n" + '{"epoch": 9, "val_lo\n')
    assert [r.epoch for r in seen.journal(cache, "r")] == [1, 2, 3, 4]


def test_an_epoch_round_trips_through_the_journal() -> None:
    r = EpochRecord(3, max_epochs=10, started_at=1.5, ended_at=2.5, train_loss=0.4, val_loss=float("nan"),
                    sharpe=0.2, horizons={1: HorizonMetrics(0.1, 0.2, 0.3), 5: HorizonMetrics(rank_ic=-0.1)},
                    lr=1e-3, validated=True, metrics={"val/acc": 0.9, "x": None}, metrics_final=True, step=30,
                    ranks={"val/acc": 9})
    back = seen.epoch_from_json(json.loads(json.dumps(seen.epoch_json(r))))
    assert math.isnan(back.val_loss or 0.0)
    back.val_loss = r.val_loss = None
    assert back == r
