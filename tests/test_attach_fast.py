"""The attach fast path on the long-log shapes of issue 12: many epochs of the original pipeline's
format (Hydra lines, tqdm fragments glued to the next line, warnings by the hundred, low-variance
warnings), tens of thousands of tiny epochs, and our engine's format: the fast scanner (in both its
warning-counting modes, at any chunking) folds to the same state as the plain line loop.

Small versions of what bench/bench_attach.py reads at 300 MB; timings live there, not here.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tui.log import prefix
from tui.log.lines import LineAssembler
from tui.log.scan import RegionScanner
from tui.state.follow import LogFollower, read_state
from tui.state.records import RunData
from tui.state.run import RunState

DATA = Path(__file__).parent / "data"
TS = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}")


def _atft_log(epochs: int, steps: int) -> str:
    """The CPU smoke log with its one epoch repeated: epoch e of n, `steps` training steps each,
    values and timestamps changing, the wrapper's start and end kept."""
    lines = (DATA / "iterable_cpu_smoke.log").read_text().split("\n")
    head = next(i for i, s in enumerate(lines) if s.endswith("] - [main] Epoch 1/1")) - 2
    frags = [i for i, s in enumerate(lines) if re.match(r"Epoch 1: \d+it \[.*\]\[", s)]
    loss = next(i for i, s in enumerate(lines) if "train/total_loss: " in s)
    tail = max(i for i in frags if i < loss) + 1
    done = next(i for i, s in enumerate(lines) if s.startswith("=== Training Complete")) - 1
    out = lines[:head]
    for e in range(1, epochs + 1):
        body = lines[head : frags[0]] + lines[frags[0] : frags[steps]] + lines[tail:done]
        text = "\n".join(body).replace("Epoch 1/1", f"Epoch {e}/{epochs}").replace("Epoch 1:", f"Epoch {e}:")
        text = text.replace("train/total_loss: 0.350750", f"train/total_loss: 0.35{e % 97:02d}")
        text = text.replace("Sharpe: nan", f"Sharpe: 0.{e % 89:02d}").replace("val/loss: nan", f"val/loss: 0.{e % 83:02d}")
        text = text.replace("IC=0.0061", f"IC=0.{e % 79:04d}").replace("SCALE(yhat/y)=0.00", f"SCALE(yhat/y)=0.0{e % 3}")
        out.append(text)
    out += lines[done:]
    t0 = 1_761_000_000.0
    stamped = []
    for i, s in enumerate("\n".join(out).split("\n")):
        ts = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t0 + 7 * i)) + f",{i % 1000:03d}"
        stamped.append(TS.sub(ts, s, count=1))
    return "\n".join(stamped)


def _engine_log(epochs: int) -> str:
    """Our engine's smoke log with its epochs repeated (`[main] Epoch e/n` .. checkpoint)."""
    lines = (DATA / "engine_smoke.log").read_text().split("\n")
    first = next(i for i, s in enumerate(lines) if s.endswith("[main] Epoch 1/3"))
    second = next(i for i, s in enumerate(lines) if s.endswith("[main] Epoch 2/3"))
    end = next(i for i, s in enumerate(lines) if "=== Training Complete" in s or "[exit]" in s)
    block = "\n".join(lines[first:second])
    body = [block.replace("Epoch 1/3", f"Epoch {e}/{epochs}").replace("epoch=1/3", f"epoch={e}/{epochs}")
            .replace("epoch=1 ", f"epoch={e} ") for e in range(1, epochs + 1)]
    return "\n".join([*lines[:first], *body, *lines[end:]])


def _fold(data: bytes, chunk: int, bulk: bool | None) -> RunState:
    """Read data in chunks as poll() does; bulk forces the scanner's warning-counting mode."""
    state, assembler, scanner = RunState(), LineAssembler(), RegionScanner(True)
    for i in range(0, len(data), chunk):
        for seg in assembler.feed(data[i : i + chunk]):
            if bulk is not None:
                scanner.bulk_warnings = bulk
            for ev in scanner.scan(seg):
                state.apply(ev)
    return state


SHAPES = {
    "atft 40 epochs x 12 steps": lambda: _atft_log(40, 12),
    "atft 400 epochs x 1 step": lambda: _atft_log(400, 1),
    "engine 300 epochs": lambda: _engine_log(300),
}


@pytest.fixture(scope="module", params=list(SHAPES))
def long_log(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("long") / "run.log"
    path.write_text(SHAPES[request.param]() + "\n")
    return path


def test_long_logs_fast_equals_plain(long_log: Path) -> None:
    plain = read_state(long_log, fast=False)
    assert read_state(long_log) == plain
    data = long_log.read_bytes()
    for chunk in (1 << 12, 1 << 16, 1 << 20):
        for bulk in (None, True, False):
            assert _fold(data, chunk, bulk) == plain, (chunk, bulk)
    f = LogFollower(long_log, chunk=1 << 15)
    f.catch_up()
    f.close()
    assert f.state == plain


def test_long_atft_log_reads_every_epoch(tmp_path: Path) -> None:
    path = tmp_path / "atft.log"
    path.write_text(_atft_log(400, 1) + "\n")
    s = read_state(path)
    assert (s.state, s.epoch, s.max_epochs, len(s.epochs), s.source_format) == ("finished", 400, 400, 400, "atft")
    assert [r.epoch for r in s.epochs] == list(range(1, 401))
    assert s.epochs[10].sharpe == pytest.approx(0.11) and s.epochs[10].horizons[1].ic == pytest.approx(0.0011)
    assert s.low_variance == {}  # flagged in every epoch, cleared by the last one's SCALE 0.01
    assert s.warnings > 400 * 10 and s.errors == 0 and s.achieved_sharpe == pytest.approx(0.08177260619898637)


def test_log_cut_inside_validation_keeps_the_last_plain_warning(tmp_path: Path) -> None:
    """Attached in the middle of an epoch's validation: the last WARNING lines are low-variance
    ones (events), the last plain warning comes before them."""
    text = _atft_log(30, 2)
    cut = text.rindex("Low prediction variance for horizon 5")
    path = tmp_path / "cut.log"
    path.write_text(text[: text.index("\n", cut) + 1])
    plain = read_state(path, fast=False)
    assert plain.last_warning is not None and plain.last_warning.startswith("[nan-guard]")
    data = path.read_bytes()
    for bulk in (None, True, False):
        assert _fold(data, 1 << 20, bulk) == plain


def test_epoch_records_stay_sorted_and_unique() -> None:
    st = RunData()
    for e in (5, 3, 7, 3, 6, 7, 1):
        st.epoch_record(e).lr = float(e)
    assert [r.epoch for r in st.epochs] == [1, 3, 5, 6, 7]
    assert st.epoch_record(6) is st.epochs[3]


@pytest.mark.parametrize("minute", ["2025-10-28 23:54", "2024-02-29 00:00", "2025-02-29 00:00",
                                    "2025-13-01 00:00", "0000-01-01 00:00", "1969-12-31 23:59",
                                    "2025-10-26 02:30", "2025-03-30 02:30", "2024-02-29 10:61"])
def test_timestamps_as_strptime(minute: str) -> None:
    try:
        want: float | None = time.mktime(time.strptime(minute, "%Y-%m-%d %H:%M")) + 1.5
    except (ValueError, OverflowError):
        want = None
    prefix._MINUTES.clear()
    assert prefix._unix(minute, "01", "500") == want


W = "[2026-11-24 04:21:51,473][engine][WARNING] - "
_ALPHABET = st.sampled_from(["\n", " - ", "[INFO]", "[WARNING]", "][WARNING] - ", W, W + "[progress] x",
                             W + "Low prediction variance for horizon 1: scale_ratio=0.1", "Sharpe: 1",
                             "[GRAD-MONITOR] step=1 epoch=1 batch=1 g:l2=1 max=1 grad=1/1 small=0 none=0",
                             "[2026-11-24 04:21:51,473][engine][ERROR] - ", "x", "[main] Epoch 1/2",
                             "Traceback (most recent call last):", "Epoch 1: 3it [00:01,  2.0it/s]"])


@settings(max_examples=150, deadline=None)
@given(parts=st.lists(_ALPHABET, max_size=60), chunk=st.integers(1, 400))
@example(parts=["\n", W, W + "Low prediction variance for horizon 1: scale_ratio=0.1", "\n",
                W + "Low prediction variance for horizon 1: scale_ratio=0.1", "\n"], chunk=1)
def test_warning_counting_modes_agree(parts: list[str], chunk: int) -> None:
    data = "".join(parts).encode()
    whole = _fold(data, max(len(data), 1), False)
    assert _fold(data, chunk, True) == whole
    assert _fold(data, chunk, False) == whole
