"""tui.log.tail / tui.state.follow: bytes -> lines -> state, incremental and one-shot, on recorded logs."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui.log import events as evt
from tui.log import lines
from tui.log.lines import LineAssembler
from tui.log.scan import RegionScanner
from tui.state.follow import LogFollower, read_state
from tui.state.run import RunState

DATA = Path(__file__).parent / "data"
LOGS = ["iterable_cpu_smoke.log", "iterable_gpu_smoke.log", "engine_smoke.log"]
H = "[2026-11-24 04:21:51,473][engine][INFO] - "


def fold_chunks(chunks: list[bytes], fast: bool = True) -> RunState:
    """Feed raw chunks through the assembler and scanner, as poll() does."""
    state, lines, scanner = RunState(), LineAssembler(), RegionScanner(fast)
    for c in chunks:
        for seg in lines.feed(c):
            for ev in scanner.scan(seg):
                state.apply(ev)
    return state


@pytest.mark.parametrize("name", ["iterable_cpu_smoke.log", "iterable_gpu_smoke.log"])
def test_atft_reference_logs(name: str) -> None:
    s = read_state(DATA / name)
    assert (s.state, s.epoch, s.max_epochs, s.attempts, s.source_format) == ("finished", 1, 1, 1, "atft")
    assert all(s.phases.values()), s.phases
    assert "A100" in s.phase_details["device"]
    (rec,) = s.epochs
    assert {h: m.ic for h, m in rec.horizons.items()} == {1: 0.0061, 5: 0.0215, 10: 0.0213, 20: -0.0131}
    assert all(m.scale == 0.0 for m in rec.horizons.values())
    assert rec.sharpe is None and rec.val_loss is None and rec.validated  # `Sharpe: nan`, `val/loss: nan`
    assert rec.train_loss == pytest.approx(0.35075 if "cpu" in name else 0.350052)
    assert s.achieved_sharpe == pytest.approx(0.08177260619898637)
    assert s.best_val_loss == pytest.approx(0.3504)
    assert s.low_variance == {1: 0.0, 5: 0.0, 10: 0.0, 20: 0.0}
    assert s.warnings > 10 and s.errors == 0 and s.error is None
    assert s.started_at is not None and s.last_time is not None and s.last_time > s.started_at
    assert s.to_json()["epochs"][0]["sharpe"] is None


def test_engine_smoke_log() -> None:
    s = read_state(DATA / "engine_smoke.log")
    assert (s.state, s.epoch, s.max_epochs, s.exit_reason, s.exit_status) == ("finished", 3, 3, "finished", 0)
    assert (s.pid, s.run, s.source_format) == (4242, "smoke_20261124_042151", "engine")
    assert all(s.phases.values())
    assert [r.sharpe for r in s.epochs] == [0.0412, 0.0873, 0.1234]
    assert [r.val_loss for r in s.epochs] == [0.358812, 0.353101, 0.351234]
    assert s.epochs[2].horizons[20].ic == pytest.approx(0.0412)
    assert s.epochs[2].horizons[20].rank_ic == pytest.approx(0.0402)
    assert all(r.started_at and r.ended_at and r.ended_at > r.started_at for r in s.epochs)
    assert s.epochs[0].sharpe_ann is not None and s.epochs[0].seconds is not None
    assert s.low_variance == {}  # flagged at epoch 1, healthy since
    assert s.grad_warnings == ["gat: vanishing gradients (l2=3.0e-09, none=0/6)"]
    assert s.grad_l2["gat"] == pytest.approx(1.2e-3)
    assert (s.progress.epoch, s.progress.step, s.progress.steps) == (3, 113, 113)
    assert len(s.checkpoints) == 3 and s.best_val_loss == pytest.approx(0.3512)
    assert s.warnings == 4 and s.errors == 0 and s.lines == 108


@pytest.mark.parametrize("name", LOGS)
def test_fast_path_equals_plain_line_loop(name: str) -> None:
    assert read_state(DATA / name) == read_state(DATA / name, fast=False)


def test_missing_file_then_partial_lines(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    f = LogFollower(path)
    assert f.poll() == [] and f.state.state == "launching"
    path.write_bytes(b"[2026-11-24 04:21:51,473][engine][INFO] - [main] Ep")
    assert [e for e in f.poll() if not isinstance(e, evt.Activity)] == []
    with path.open("ab") as w:
        w.write(b"och 2/5\n" + (H + "val/loss: 0.").encode())
    evs = f.poll()  # the epoch line (an EpochStart, or a HotRun of the compiled scan) and an Activity
    assert len(evs) == 2 and isinstance(evs[1], evt.Activity) and evs[1].lines == 1
    assert (f.state.epoch, f.state.max_epochs, f.state.state) == (2, 5, "training")
    with path.open("ab") as w:
        w.write(b"25\n")
    assert len(f.poll()) == 2
    assert f.state.epochs[-1].val_loss == pytest.approx(0.25)
    assert f.state.state == "validating" and f.state.lines == 2 and f.offset == path.stat().st_size
    assert f.poll() == []


def test_carriage_returns_are_line_breaks(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    body = ("Epoch 1: 1it [00:01,  1.00s/it]\rEpoch 1: 2it [00:02,  1.00s/it, loss=0.5]\r\n"
            + H + "Sharpe: 0.2\r\n" + "Epoch 1: 3it [00:03,  2.00it/s, loss=0.4]\r")
    path.write_bytes((H + "[main] Epoch 1/1\n" + body).encode())
    s = read_state(path)
    assert s.epochs[0].sharpe == pytest.approx(0.2) and s.lines == 4  # the trailing \r waits
    assert s.progress.step == 2 and s.progress.loss == pytest.approx(0.5)
    with path.open("ab") as w:
        w.write(b"x\n")
    s = read_state(path)
    assert s.progress.step == 3 and s.progress.steps_per_s == pytest.approx(2.0)


def test_long_lines_capped_and_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    huge = (H + "Sharpe: 0.3" + "x" * 200_000 + "\n").encode()
    path.write_bytes(huge + b"\xff\xfe garbage \xc3\n" + (H + "Sharpe: 0.4\n").encode() + b"y" * 100_000)
    f = LogFollower(path, chunk=4096)
    f.poll()
    assert f.state.epoch is None and f.state.lines == 3
    assert len(f._lines.partial) == lines.LINE_CAP and f._lines.skipping
    assert lines.cap_long_lines(b"a" * 10 + b"\nbb\n", 0, 14, cap=4) == (b"aaaa\nbb\n", 0, 8)


def test_truncation_keeps_what_was_read(tmp_path: Path) -> None:
    """A truncated log is read again from its start; the epochs read before stay (issue 18)."""
    path = tmp_path / "run.log"
    path.write_text(H + "[main] Epoch 1/3\n" + H + "Sharpe: 0.1\n")
    f = LogFollower(path)
    f.poll()
    assert f.state.epoch == 1
    path.write_text(H + "[main] Epoch 2/3\n")
    evs = f.poll()
    assert isinstance(evs[0], evt.Reset) and evs[0].kind == "truncated"
    assert [r.epoch for r in f.state.epochs] == [1, 2] and f.state.epochs[0].sharpe == pytest.approx(0.1)
    assert f.state.log_event == "truncated" and f.state.lines == 3


def test_rotation_reopens_and_drains_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    path.write_text(H + "[main] Epoch 1/3\n")
    f = LogFollower(path)
    f.poll()
    with path.open("a") as w:
        w.write(H + "Sharpe: 0.5\n")
    os.rename(path, tmp_path / "run.log.1")
    path.write_text(H + "[main] Epoch 2/3\n")
    f.poll()
    assert f.state.epochs[0].sharpe == pytest.approx(0.5) and f.state.epoch == 2
    assert f.offset == path.stat().st_size


def test_traceback_at_the_end_crashes(tmp_path: Path) -> None:
    text = (DATA / "iterable_gpu_smoke.log").read_text()
    cut = text.index("=== Training Complete ===")
    tb = ("Traceback (most recent call last):\n  File \"scripts/train_atft.py\", line 9, in <module>\n"
          "    train()\n  File \"x.py\", line 2, in train\n    loss.backward()\n"
          "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB\n")
    path = tmp_path / "crash.log"
    path.write_text(text[:cut] + "\n" + tb)
    for fast in (True, False):
        s = read_state(path, fast=fast)
        assert s.state == "crashed", fast
        assert s.error == "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB"
    # the error line arriving in a later poll
    f = LogFollower(path.with_name("live.log"))
    path.with_name("live.log").write_text(text[:cut] + "\n" + tb[:60])
    f.poll()
    assert f.state.state == "crashed" and f.state.error.startswith("Traceback")
    with path.with_name("live.log").open("a") as w:
        w.write(tb[60:])
    f.poll()
    assert f.state.error.startswith("torch.OutOfMemoryError")


def test_two_attempt_file(tmp_path: Path) -> None:
    one = (DATA / "engine_smoke.log").read_text()
    killed = one[: one.index("[main] Epoch 3/3")].rsplit("\n", 1)[0] + "\n"
    killed += H + "[signal] SIGTERM received: saving checkpoint and stopping\n"
    path = tmp_path / "two.log"
    path.write_text(killed + one.replace("pid=4242", "pid=4343"))
    s = read_state(path)
    assert (s.attempts, s.state, s.pid, [r.epoch for r in s.epochs]) == (2, "finished", 4343, [1, 2, 3])
    assert s == read_state(path, fast=False)


def test_garbage_bytes_do_not_crash(tmp_path: Path) -> None:
    rnd = random.Random(7)
    path = tmp_path / "garbage.log"
    path.write_bytes(bytes(rnd.getrandbits(8) for _ in range(300_000)))
    s = read_state(path)
    assert s.lines > 0 and s.state in ("initializing", "launching", "crashed")


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@pytest.mark.parametrize("name", LOGS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=0, max_value=1 << 20), max_size=40))
def test_random_splits_equal_one_shot(name: str, cuts: list[int]) -> None:
    data = (DATA / name).read_bytes()
    whole = fold_chunks([data])
    assert fold_chunks(_chunks(data, cuts)) == whole
    assert fold_chunks(_chunks(data, cuts), fast=False) == whole


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=3000), cuts=st.lists(st.integers(0, 3000), max_size=8))
def test_random_bytes(data: bytes, cuts: list[int]) -> None:
    fold_chunks(_chunks(data, cuts))
    fold_chunks([data], fast=False)


_ALPHABET = st.sampled_from(["\n", "\r", " - ", "[INFO]", "[WARNING]", "Sharpe: 1", "Epoch 1/2", "x",
                             "Traceback (most recent call last):", "  ", H, "[main] ", "é", "\x00"])


@settings(max_examples=80, deadline=None)
@given(parts=st.lists(_ALPHABET, max_size=60), cuts=st.lists(st.integers(0, 2000), max_size=6))
def test_random_text_splits_agree(parts: list[str], cuts: list[int]) -> None:
    data = "".join(parts).encode()
    assert fold_chunks(_chunks(data, cuts)) == fold_chunks([data])


def test_a_long_read_pauses_the_collector_and_reuses_one_buffer(tmp_path: Path) -> None:
    """Many chunks in one read: the cyclic GC is off while they are folded and on again after (off
    stays off); the chunks go through one buffer, and the line tail, which keeps segments, still
    sees each read's own bytes."""
    import gc

    from tests.test_attach_fast import _engine_log

    path = tmp_path / "run.log"
    path.write_text(_engine_log(30) + "\n")
    seen: list[bool] = []

    class Probe(LogFollower):
        def _emit(self, events: list[evt.Event], out: list[evt.Event] | None) -> None:
            seen.append(gc.isenabled())
            super()._emit(events, out)

    f = Probe(path, chunk=1 << 12)
    f.catch_up()
    assert seen and not any(seen) and gc.isenabled()
    assert f.state == read_state(path, fast=False)
    gc.disable()
    try:
        Probe(path, chunk=1 << 12).catch_up()
        assert not gc.isenabled()
    finally:
        gc.enable()
    g = LogFollower(path, chunk=1 << 12, keep_lines=10**6, keep_bytes=1 << 30)
    g.catch_up()
    raw = g.take_lines()
    assert raw is not None and raw.lines == path.read_text().split("\n")[:-1]
    assert g.state == f.state
