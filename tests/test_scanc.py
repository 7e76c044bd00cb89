"""The compiled prefilter (tui/log/_scanc.c) is the regex prefilter, only faster.

`c_matches` must return exactly what `py_matches` (SCAN_RE / SCAN_BULK_RE by finditer, and the
counts) returns, for every log shape, every slice of it (lookbehinds before the slice's start,
lookaheads stopped at its end) and for byte soups made of the pieces the patterns test. The state
tests (test_attach_fast.py, test_follow.py) run with the compiled one; here the fast path also runs
on the regex one, so a build without a C compiler is covered too.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tui.log.scan as scan
from tests.test_attach_fast import _atft_log, _engine_log
from tui.log.scan import c_matches, py_matches
from tui.state.follow import read_state

DATA = Path(__file__).parent / "data"
LOGS = sorted(DATA.glob("*.log"))

# what the patterns look at: prefixes, the message starts of both formats, the bulk lines, and
# the bytes next to them (brackets, word characters, whitespace, newlines, non-ASCII)
PIECES = [
    " - ", "][WARNING] - ", "][INFO] - ", "][ERROR] - ", "][CRITICAL] - ", "O] - ", "G] - ", "R] - ",
    "[2025-10-28 23:59:50,149][__main__][INFO] - ", "[2025-10-28 23:59:50,149][root][WARNING] - ",
    "2025-10-28 23:54:09,050 - __main__ - INFO - ", "\n", "\n  ", "\t", "\x0b", "\r", " ", "]", "[",
    "[progress] ", "[GRAD-MONITOR] step=", "[GRAD-MONITOR] ", "[exit] ", "[error", "[signal", "[epoch-end",
    "[metrics", "[data-filter", "[main] Epoch ", "[main] Validation loss", "[abcdefghijklmnopqrstu] Epoch ",
    "Epoch 3", "Epoch x", "Sharpe: ", "Starting ", "Val metrics", "Val Metrics", "train/total_loss: ",
    "val/loss: ", "Learning rate: ", "Low prediction variance for horizon ", "12", ": scale_ratio=",
    "0.0", ",", "Best validation loss", "Best model saved", "Checkpoint saved: ", "Creating data loaders",
    "Achieved Sharpe", "GPU: ", "Using device: ", "Found ", "Fitting OnlineRobustScaler",
    "OnlineRobustScaler fitted", "Iterable datasets ready", "Data loaders created", "runctl engine ",
    "runctl callback ", "=== Training Complete", "[EDGE-TS] ", "[edges-fallback] ", "[DEBUG-EDGE] ",
    "[DEBUG-KEYS] ", "[GAT-GRAD] ", "[GUARD] ", "Built correlation graph: ", "GraphBuilder ", "\u2705 ",
    "[GUARD] Epoch 1", "] Epoch ", "] Validation loss", "Epoch ", "-", "x", "A", "_",
]

pytestmark = pytest.mark.skipif(c_matches is None, reason="the compiled scanner is not built")


def _same(buf: bytes, start: int, end: int) -> None:
    for bulk in (False, True):
        assert c_matches(buf, start, end, bulk) == py_matches(buf, start, end, bulk), (start, end, bulk)


def test_the_dev_install_builds_it() -> None:
    """`make test`'s install compiles it; a missing build would only be slower, so say so here."""
    import tui.log._scanc as compiled

    assert scan.c_matches is compiled.matches


@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.name)
def test_every_recorded_log_and_its_slices(log: Path) -> None:
    buf = log.read_bytes()
    _same(buf, 0, len(buf))
    rnd = random.Random(log.name)
    for _ in range(40):
        a = rnd.randrange(len(buf))
        _same(buf, a, rnd.randrange(a, len(buf) + 1))


@pytest.mark.parametrize("text", [_atft_log(12, 9), _engine_log(40)], ids=["atft", "engine"])
def test_long_log_shapes(text: str) -> None:
    buf = text.encode()
    _same(buf, 0, len(buf))
    for a in range(0, len(buf), len(buf) // 7):
        _same(buf, a, min(len(buf), a + len(buf) // 3))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=60), st.integers(0, 40), st.integers(0, 40))
def test_byte_soups(pieces: list[str], cut_start: int, cut_end: int) -> None:
    buf = "".join(pieces).encode()
    start = min(cut_start, len(buf))
    _same(buf, start, max(start, len(buf) - cut_end))


def test_every_piece_pair_after_every_prefix() -> None:
    """Each pattern decides on a prefix and the one or two pieces after it: try them all."""
    prefixes = ["", *(p for p in PIECES if p.endswith(" - "))]
    for pre in prefixes:
        for a in PIECES:
            for b in PIECES:
                buf = f"x{pre}{a}{b}\n".encode()
                _same(buf, 0, len(buf))


def test_out_of_range_bounds_are_clamped() -> None:
    buf = (DATA / "engine_smoke.log").read_bytes()
    assert c_matches(buf, -5, len(buf) + 99, False) == py_matches(buf, 0, len(buf), False)
    assert c_matches(buf, 10, 5, True) == py_matches(buf, 10, 5, True)


@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.name)
def test_the_regex_prefilter_folds_to_the_same_state(log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = read_state(log).to_json()
    monkeypatch.setattr(scan, "c_matches", None)
    assert read_state(log).to_json() == compiled == read_state(log, fast=False).to_json()
