"""tui.log.lines / LogFollower(keep_lines=...): the raw lines of each poll, for the TUI's log pane."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui.log.lines import LineAssembler, LineTail, RawLines
from tui.state.follow import LogFollower

H = "[2026-11-24 04:21:51,473][engine][INFO] - "


def write(path: Path, text: str, mode: str = "a") -> None:
    with path.open(mode, encoding="utf-8", newline="") as f:
        f.write(text)


def test_without_keep_lines_there_is_no_line_channel(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    write(path, H + "[main] Epoch 1/3\n")
    f = LogFollower(path)
    f.poll()
    assert f.take_lines() is None and f.state.epoch == 1


def test_each_poll_gives_the_new_whole_lines_once(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    f = LogFollower(path, keep_lines=100)
    f.poll()
    assert f.take_lines() is None  # no file yet
    write(path, H + "[main] Epoch 1/3\r\n" + "plain\rtqdm 2\n" + "\n" + H + "Sharpe: 0")
    f.poll()
    assert f.take_lines() == RawLines([H + "[main] Epoch 1/3", "plain", "tqdm 2", ""])
    assert f.take_lines() is None  # taken
    f.poll()
    assert f.take_lines() is None  # nothing new: the partial line waits
    write(path, ".25\n")
    f.poll()
    assert f.take_lines() == RawLines([H + "Sharpe: 0.25"])
    assert f.state.epochs[0].sharpe == pytest.approx(0.25)  # the same read fed the state


def test_lines_are_capped_and_the_rest_counted(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    write(path, "".join(f"line {i}\n" for i in range(1000)))
    f = LogFollower(path, chunk=64, keep_lines=5)  # many small reads: old segments are dropped
    f.poll()
    assert f.take_lines() == RawLines([f"line {i}" for i in range(995, 1000)], skipped=995)
    assert len(f._tail._segs) == 0  # type: ignore[union-attr]
    g = LogFollower(path, keep_lines=1000, keep_bytes=3 * len("line 999\n") + 4)
    g.poll()
    assert g.take_lines() == RawLines(["line 997", "line 998", "line 999"], skipped=997)


def test_truncation_and_rotation_go_on(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    write(path, "a\nb\n")
    f = LogFollower(path, keep_lines=10)
    f.poll()
    assert f.take_lines() == RawLines(["a", "b"])
    write(path, "c\n", mode="w")  # shorter: truncated, read from its start; the lines shown stay (issue 18)
    f.poll()
    assert f.take_lines() == RawLines(["c"]) and f.event == "truncated"
    write(path, "d\n")
    os.rename(path, tmp_path / "run.log.1")
    write(path, "e\n", mode="w")
    f.poll()
    assert f.take_lines() == RawLines(["d", "e"])  # the old file drained, then the new one


def test_a_reset_with_nothing_after_it_is_still_reported() -> None:
    t = LineTail(10)
    t.feed((b"x\n", 0, 2))
    t.reset()
    assert t.take() == RawLines([], reset=True) and t.take() is None


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(st.text(st.sampled_from("ab é-"), max_size=12), max_size=80),
       cuts=st.lists(st.integers(0, 1500), max_size=8), max_lines=st.integers(1, 40),
       max_bytes=st.integers(1, 400))
def test_tail_is_the_newest_lines_within_both_budgets(lines: list[str], cuts: list[int],
                                                      max_lines: int, max_bytes: int) -> None:
    data = "".join(ln + "\n" for ln in lines).encode()
    pieces, last = [], 0
    for c in sorted({min(c, len(data)) for c in cuts}) + [len(data)]:
        pieces.append(data[last:c])
        last = c
    asm, tail = LineAssembler(), LineTail(max_lines, max_bytes)
    for p in pieces:
        for seg in asm.feed(p):
            tail.feed(seg)
    want: list[str] = []
    used = 0
    for ln in reversed(lines):
        size = len(ln.encode()) + 1
        if len(want) == max_lines or used + size > max_bytes:
            break
        want.insert(0, ln)
        used += size
    got = tail.take()
    if not lines:
        assert got is None
    else:
        assert got == RawLines(want, skipped=len(lines) - len(want))
