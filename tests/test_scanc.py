"""The compiled prefilter (tui/log/_scanc.c) is the regex prefilter, only faster.

`c_matches` must return exactly what `py_matches` (SCAN_RE / SCAN_BULK_RE by finditer, and the
counts) returns, for every log shape, every slice of it (lookbehinds before the slice's start,
lookaheads stopped at its end) and for byte soups made of the pieces the patterns test. The state
tests (test_attach_fast.py, test_follow.py) run with the compiled one; here the fast path also runs
on the regex one, so a build without a C compiler is covered too.
"""

from __future__ import annotations

import random
import shutil
import sysconfig
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tui.log.scan as scan
from tests.test_attach_fast import _atft_log, _engine_log
from tui.log.parse import parse_full
from tui.log.prefix import split_prefix
from tui.log.scan import c_matches, c_prefix, parse_at, py_matches
from tui.state.follow import read_state

DATA = Path(__file__).parent / "data"
HAVE_CC = shutil.which((sysconfig.get_config_var("CC") or "cc").split()[0]) is not None
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

pytestmark = pytest.mark.skipif(c_matches is None and not HAVE_CC, reason="no C compiler: nothing compiled")


def _same(buf: bytes, start: int, end: int) -> None:
    for bulk in (False, True):
        assert c_matches(buf, start, end, bulk) == py_matches(buf, start, end, bulk), (start, end, bulk)


def test_the_dev_install_builds_it() -> None:
    """`make test`'s install compiles it where there is a C compiler (a failed build would only be
    slower, so say so here)."""
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
    monkeypatch.setattr(scan, "c_prefix", None)
    monkeypatch.setattr(scan, "c_hot_matches", None)
    assert read_state(log).to_json() == compiled == read_state(log, fast=False).to_json()


# prefixes c_prefix must split as split_prefix does, or leave to it (None)
STAMPS = ["2025-10-28 23:59:50,149", "2024-02-29 00:00:00,000", "2025-02-29 10:00:00,000",
          "2025-13-01 10:00:00,000", "2025-12-31 24:00:00,000", "0000-01-01 00:00:00,000",
          "2025-10-28 23:59:99,999", "2025-1x-28 23:59:50,149", "2025-10-28 23:59:50.149",
          "\u0663025-10-28 23:59:50,149"]
LOGGERS = ["__main__", "root", "src.graph.graph_builder", "a", "", "x" * 200, "x" * 201, "l\u00f6g",
           "a b", "a\tb", "a]b", "a[b"]
LEVELS = ["INFO", "WARNING", "ERROR", "CRITICAL", "DEBUG", "IN", "ABCDEFGHI", "info", "WARN1NG"]
MESSAGES = ["[main] Epoch 3/10", "Val metrics (z) h=1: MAE=0.1 RMSE=0.2 R2=0.0 IC=0.0212 NAIVE_RMSE=0.1 "
            "SCALE(yhat/y)=0.33 CAL=+0.000+1.000*yhat", "", "  ", "\u2705 done", "Sharpe: nan",
            "Training failed", "\U0001f680 Complete ATFT-GAT-FAN Training Pipeline started"]


def _lines() -> list[str]:
    out = [line for log in LOGS for line in log.read_text(encoding="utf-8", errors="replace").split("\n")]
    for ts in STAMPS:
        for lg in LOGGERS:
            for lv in LEVELS:
                out += [f"[{ts}][{lg}][{lv}] - {m}" for m in MESSAGES[:3]]
                out += [f"{ts} - {lg} - {lv} - {m}" for m in MESSAGES[:3]]
    for m in MESSAGES:
        out += [f"[2025-10-28 23:59:50,149][root][INFO] - {m}", f"2025-10-28 23:54:09,050 - __main__ - ERROR - {m}",
                f"Epoch 1: 9it [00:35,  3.69s/it, loss=0.3544][2025-10-28 23:59:50,149][root][INFO] - {m}"]
    return out


def test_prefix_splits_as_split_prefix_does() -> None:
    assert c_prefix is not None
    handled = 0
    for line in _lines():
        buf = f"#{line}\n".encode()
        r = c_prefix(buf, 1, len(buf) - 1)
        if r is not None:
            handled += 1
            t, logger, lv, msg, frag = split_prefix(line)
            assert (t, lv, msg, frag, r[3]) == (r[0], r[1], r[2], "", line.startswith("[")), line
        assert parse_at(buf, 1, len(buf) - 1) == parse_full(line), line
    assert handled > 1000  # it takes the common lines, not only leaves them to split_prefix


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.sampled_from(PIECES), max_size=12))
def test_raw_bytes(noise: bytes, pieces: list[str]) -> None:
    """Any bytes at all (NULs, invalid UTF-8, lone \\r) around the pieces."""
    buf = noise[: len(noise) // 2] + "".join(pieces).encode() + noise[len(noise) // 2 :]
    _same(buf, 0, len(buf))
    for ls in (0, len(buf) // 3):
        le = buf.find(b"\n", ls)
        le = len(buf) if le < 0 else le
        line = buf[ls:le].decode("utf-8", "replace")
        r = c_prefix(buf, ls, le)  # type: ignore[misc]
        if r is not None:
            t, _, lv, msg, frag = split_prefix(line)
            assert (t, lv, msg, frag) == (r[0], r[1], r[2], "")


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(STAMPS[:3]), st.text(max_size=30), st.sampled_from(LEVELS), st.text(max_size=40),
       st.booleans())
def test_prefix_of_any_logger_and_message(ts: str, logger: str, level: str, msg: str, hydra: bool) -> None:
    line = f"[{ts}][{logger}][{level}] - {msg}" if hydra else f"{ts} - {logger} - {level} - {msg}"
    line = line.split("\n")[0].split("\r")[0]
    buf = line.encode("utf-8", "surrogatepass") + b"\n"
    r = c_prefix(buf, 0, len(buf) - 1)  # type: ignore[misc]
    decoded = buf[:-1].decode("utf-8", "replace")
    if r is not None:
        t, _, lv, m, frag = split_prefix(decoded)
        assert (t, lv, m, frag, r[3]) == (r[0], r[1], r[2], "", decoded.startswith("["))
    assert parse_at(buf, 0, len(buf) - 1) == parse_full(decoded)
