"""`RunData.snapshot()`: what the TUI and `status --watch` take on every poll instead of a deep copy.

A snapshot equals a deep copy when taken; nothing folded into the state afterwards changes it, and
folding into the snapshot leaves the state alone (records are shared until one side writes one).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests.test_attach_fast import _atft_log, _engine_log
from tui.log.tail import LogTail
from tui.state.run import RunState

DATA = Path(__file__).parent / "data"
LOGS = sorted(DATA.glob("*.log"))


def _events(path: Path) -> list:
    tail = LogTail(path)
    try:
        return tail.poll()
    finally:
        tail.close()


def _dump(st: RunState) -> str:
    return json.dumps(st.to_json(), sort_keys=True)


def _check(events: list) -> None:
    st = RunState()
    taken: list[tuple[RunState, str]] = []
    for i, ev in enumerate(events):
        st.apply(ev)
        if i % 3 == 0:
            snap = st.snapshot()
            assert snap == copy.deepcopy(st)
            taken.append((snap, _dump(snap)))
    whole = _dump(st)
    for snap, then in taken:
        assert _dump(snap) == then  # later folds did not reach it
    # a snapshot folded on (a branch) leaves the state it came from alone
    if taken:
        branch = taken[len(taken) // 2][0]
        for ev in events[len(events) // 2 :]:
            branch.apply(ev)
        assert _dump(st) == whole
        fresh = RunState()
        for ev in events:
            fresh.apply(ev)
        assert _dump(fresh) == whole


@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.name)
def test_snapshots_of_every_recorded_log_stay_as_taken(log: Path) -> None:
    _check(_events(log))


@pytest.mark.parametrize("text", [_atft_log(6, 4), _engine_log(12)], ids=["atft", "engine"])
def test_snapshots_of_long_logs(text: str, tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text(text)
    _check(_events(log))


def test_a_record_written_after_a_snapshot_is_a_copy() -> None:
    st = RunState()
    rec = st.epoch_record(1)
    rec.val_loss = 0.5
    snap = st.snapshot()
    again = st.epoch_record(1)
    again.val_loss = 0.4
    again.horizons[1] = None  # type: ignore[assignment]
    assert again is not rec and snap.epochs[0] is rec
    assert rec.val_loss == 0.5 and rec.horizons == {}
    assert st.epoch_record(1) is again  # copied once per snapshot, not per write
