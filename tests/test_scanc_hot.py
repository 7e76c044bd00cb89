"""The compiled scan's hot lines (tui/log/_scanc.c `hot_matches`, `blocks`) are tui.log.parse's
events, folded per epoch to the same state.

A hot line is one the C scan reads itself instead of handing its match to tui.log.parse: each must
give the event `parse_at` gives that line (exact floats included), every other match must still be
handed on, and the counts must not move; `blocks` + `fold._hot_run` must fold a run of them as the
events fold one by one (test_attach_fast.py and test_follow.py check whole logs; here generated
lines aim at the edges: nan, unicode digits and spaces, `1_0`, long tags, re-runs, other variants,
full sub-blocks).
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.test_attach_fast import _atft_log, _engine_log, _fold
from tui.log import events as evt
from tui.log.scan import EV, c_hot_matches, c_matches, parse_at
from tui.state.follow import read_state

try:
    from tui.log._scanc import items as c_items
except ImportError:  # pragma: no cover - a build without a C compiler
    c_items = None

DATA = Path(__file__).parent / "data"
LOGS = sorted(DATA.glob("*.log"))
pytestmark = pytest.mark.skipif(c_hot_matches is None, reason="no C compiler: nothing compiled")

H = "[2025-10-28 23:59:50,149][__main__][INFO] - "


def _event(item: tuple) -> tuple[str, evt.Event]:
    """An item of `items` as the (level, event) parse_at gives its line."""
    _, kind, t, level, a, b, (v0, v1, v2, v3, v4, v5), text = item
    kw = {"t": t, "level": level}
    ev: evt.Event
    if kind == "ES":
        ev = evt.EpochStart(a, b, **kw)
    elif kind == "LR":
        ev = evt.LearningRate(v0, **kw)
    elif kind == "TL":
        ev = evt.TrainLoss(v0, **kw)
    elif kind == "VL":
        ev = evt.ValLoss(v0, text or "val/loss", **kw)
    elif kind == "SH":
        ev = evt.Sharpe(v0, **kw)
    elif kind == "HM":
        ev = evt.HorizonMetrics(a, v0, v1, v2, v3, v4, v5, text.replace(" ", "").lower(), **kw)
    else:
        assert kind == "CK"
        ev = evt.Checkpoint(text, None if a == -1 else a, **kw)
    return level, ev


def _check(buf: bytes, start: int = 0, end: int | None = None) -> int:
    """hot_matches = matches less the hot lines' EV matches; each hot line's event is parse_at's.
    Returns the number of hot lines."""
    end = len(buf) if end is None else end
    for bulk in (False, True):
        ms, *counts = c_matches(buf, start, end, bulk)  # type: ignore[misc]
        hms, *hcounts, hot = c_hot_matches(buf, start, end, bulk)  # type: ignore[misc]
        assert hcounts == counts
        its = c_items(buf, hot)
        taken = {it[0] for it in its}
        line = {m: buf.rfind(b"\n", 0, m[1]) + 1 for m in ms}
        assert hms == [m for m in ms if line[m] not in taken]
        assert all(m[0] == EV for m in ms if line[m] in taken)
        assert len(taken) == len(its) == sum(m[0] == EV and line[m] in taken for m in ms)
        for it in its:
            ls = it[0]
            le = buf.find(b"\n", ls)
            assert _event(it) == parse_at(buf, ls, len(buf) if le < 0 else le), buf[ls:le]
    return len(its)


@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.name)
def test_every_recorded_log_and_its_slices(log: Path) -> None:
    buf = log.read_bytes()
    _check(buf)
    rnd = random.Random(log.name)
    for _ in range(20):
        a = rnd.randrange(len(buf))
        _check(buf, a, rnd.randrange(a, len(buf) + 1))


def test_the_long_shapes_are_mostly_hot() -> None:
    """The lines every epoch writes are the C scan's own: what makes attaching linear."""
    atft, engine = _atft_log(30, 2).encode(), _engine_log(40).encode()
    assert _check(atft) >= 30 * 9  # epoch, LR, two validation losses, loss, Sharpe, 4 metrics
    assert _check(engine) >= 40 * 9


# numbers num() reads (or not) as strtod would, and the ones only Python may decide
NUMS = ["0.35", "-1e-3", "1.", ".5", "+2", "7", "1e500", "1e-400", "0.005", "0.0049", "3.0e-09", "0.5%",
        "0.5,", "1s", "nan", "NaN", "inf", "-inf", "1_0", "\u0661.5", "0x10", "", ".", "e5", "1e", "--1",
        "0." + "3" * 70, "abc"]
WS = ["", " ", "  ", "\t", "\r", "\x0b", "\x1c", "\xa0", "\u2003"]
TAGS = ["main", "SWA", "a" * 20, "a" * 21, "progress", "exit", "x-y", "\u00e9", ""]
VARIANTS = ["z", "Z", " z ", "z, CAL", "raw", "", "zz", "\u017e"]


@st.composite
def hot_ish(draw: st.DrawFn) -> str:
    """A message shaped like a hot line, often a little off."""
    n = lambda: draw(st.sampled_from(NUMS))  # noqa: E731
    ws = lambda: draw(st.sampled_from(WS))  # noqa: E731
    tag = draw(st.sampled_from(TAGS))
    h = draw(st.sampled_from(["1", "5", "20", "0", "1234567890", "\u0661", "x"]))
    v = draw(st.sampled_from(VARIANTS))
    sp = draw(st.sampled_from([" ", "  ", ""]))
    kind = draw(st.integers(0, 10))
    if kind == 0:
        return f"[{tag}] Epoch {draw(st.sampled_from(['3', '12', '1234567890', '٣']))}/10{ws()}"
    if kind == 1:
        return f"Epoch {draw(st.integers(0, 99))}/{draw(st.sampled_from(['10', '', 'x']))}{ws()}"
    if kind == 2:
        return f"{draw(st.sampled_from(['Learning rate: ', 'train/total_loss: ', 'val/loss: ']))}{ws()}{n()}{ws()}"
    if kind == 3:
        return f"[{tag}] Validation loss: {n()}{draw(st.sampled_from(['', ' (best)', ' ][WARNING] - x', ws()]))}"
    if kind == 4:
        return f"Sharpe: {n()}{ws()}{draw(st.sampled_from(['', 'x', ' 2']))}"
    if kind == 5:
        return (f"Val metrics ({v}){sp}h={h}: MAE={n()} RMSE={n()} IC={n()} RankIC={n()} "
                f"SCALE(yhat/y)={n()} HIT={n()}{ws()}")
    if kind == 6:
        return (f"Val metrics ({v}){sp}h={h}: MAE={n()} RMSE={n()} R2={n()} IC={n()} NAIVE_RMSE={n()} "
                f"SCALE(yhat/y)={n()} CAL=+0.000+1.000*yhat{ws()}")
    if kind == 7:
        path = draw(st.sampled_from(["c/epoch=3.ckpt", "a b", "x (epoch=1)", "", " ", "(epoch=2)", "p\u00e9",
                                     "Traceback (most recent call last)", "t.ckpt (epoch=)"]))
        return f"Checkpoint saved: {path}{draw(st.sampled_from(['', ' (epoch=4)', ' (epoch=1234567890)', ws()]))}"
    if kind == 8:
        return f"Val metrics ({v}) h={h}: MAE={n()} RMSE={n()} IC={n()}"  # the generic key=value reading
    return draw(st.sampled_from(["Sharpe:", "Epoch", "[main]", "Checkpoint saved:", "Val metrics (z) h=1:"]))


def test_every_number_in_every_field() -> None:
    """Each number form in each numeric field, and each spacing after it (hypothesis samples them;
    this tries them all)."""
    eng = ["0.7", "0.9", "0.04", "0.03", "0.31", "0.5"]
    atft = ["0.7", "0.9", "0", "0.04", "1", "0.31", "x"]
    msgs = []
    for n in NUMS:
        for w in WS:
            msgs += [f"Learning rate: {w}{n}{w}", f"train/total_loss: {n}{w}", f"val/loss: {w}{n}",
                     f"[main] Validation loss: {n}{w}", f"Sharpe: {n}{w}", f"Epoch {n}/3{w}"]
        for k in range(6):
            v = [*eng[:k], n, *eng[k + 1 :]]
            msgs.append("Val metrics (z) h=1: MAE={} RMSE={} IC={} RankIC={} SCALE(yhat/y)={} HIT={}".format(*v))
        for k in range(7):
            v = [*atft[:k], n, *atft[k + 1 :]]
            msgs.append("Val metrics (z) h=1: MAE={} RMSE={} R2={} IC={} NAIVE_RMSE={} SCALE(yhat/y)={} CAL={}"
                        .format(*v))
    for path in ["c/e.ckpt", "a b", "x (epoch=1)", "", " ", "(epoch=2)", " (epoch=2)", "t (epoch=)", "p\u00e9"]:
        for tail in ["", " (epoch=4)", " (epoch=04) ", " (epoch=1234567890)", " (epoch=x)", "\t", "\xa0"]:
            msgs.append(f"Checkpoint saved: {path}{tail}")
    buf = "".join(f"{H}{m}\n" for m in msgs).encode()
    assert _check(buf) > len(msgs) // 3
    assert _fold(buf, len(buf), None) == read_state_of(buf)


def test_only_the_z_variant_is_the_epochs() -> None:
    lines = [f"{H}[main] Epoch 1/1"] + [f"{H}Val metrics ({v}) h={h}: MAE=1 RMSE=1 IC=0.1 RankIC=0.1 "
                                        "SCALE(yhat/y)=0.5 HIT=1" for h, v in enumerate(VARIANTS)]
    buf = ("\n".join(lines) + "\n").encode()
    assert _check(buf) >= len(VARIANTS) - 1
    s = read_state_of(buf)
    assert _fold(buf, len(buf), None) == s and sorted(s.epochs[0].horizons) == [0, 1, 2]  # z, Z, " z "


def test_numbers_read_as_float_reads_them() -> None:
    """The C reading (an exact fast path for short decimals, strtod for the rest) gives float()'s
    double, bit for bit, on random decimals of every length and exponent."""
    rnd = random.Random(12)
    nums = ["-0.0", "1e22", "1e23", "123456789012345", "1234567890123456", "9007199254740993", "5e-324",
            "1.7976931348623157e308", "1e-22", "1e-23", "0." + "0" * 30 + "1", "1" + "0" * 30, "00.10"]
    for _ in range(3000):
        d = rnd.randint(1, 19)
        x = "".join(rnd.choice("0123456789") for _ in range(d))
        p = rnd.randint(0, d)
        x = x[:p] + "." + x[p:] if rnd.random() < 0.8 else x
        x = x + f"e{rnd.randint(-40, 40)}" if rnd.random() < 0.3 else x
        nums.append("-" + x if rnd.random() < 0.3 else x)
    buf = "".join(f"{H}Sharpe: {n}\n" for n in nums).encode()
    assert _check(buf) == len(nums)  # each against parse_at's float()
    got = [it[6][0] for it in c_items(buf, c_hot_matches(buf, 0, len(buf), False)[5])]  # type: ignore[misc]
    assert [math.copysign(1, x) for x in got] == [math.copysign(1, float(n)) for n in nums]  # -0.0 too


def test_a_full_sub_block() -> None:
    """More horizons, cleared flags and paths in one epoch than a sub-block holds."""
    lines = [f"{H}[main] Epoch 1/2"]
    lines += [f"{H}Val metrics (z) h={h % 3}: MAE=1 RMSE=1 IC=0.1 RankIC=0.1 SCALE(yhat/y)=0.5 HIT=1" for h in range(40)]
    lines += [f"{H}Val metrics (z) h={h}: MAE=1 RMSE=1 IC=0.{h} RankIC=0.1 SCALE(yhat/y)=0.5 HIT=1" for h in range(40)]
    lines += [f"{H}Checkpoint saved: c/{k}.ckpt" for k in range(80)]
    buf = ("\n".join(lines) + "\n").encode()
    assert _check(buf) == len(lines)
    s = read_state_of(buf)
    assert _fold(buf, len(buf), None) == s and len(s.epochs[0].horizons) == 40


PREFIXES = [H, "[2025-10-28 23:59:50,149][root][WARNING] - ", "[2025-10-28 23:59:50,149][x][ERROR] - ",
            "[2025-10-28 23:59:50,149][x][CRITICAL] - ", "[2025-10-28 23:59:50,149][x][DEBUG] - ",
            "[2025-13-28 23:59:50,149][x][INFO] - ", "2025-10-28 23:54:09,050 - __main__ - INFO - ",
            "Epoch 1: 9it [00:35,  3.69s/it, loss=0.3544]" + H, "[2025-10-28 23:59:50,149][a - b][INFO] - ",
            H + " ", H + "\u2705 "]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PREFIXES), hot_ish()), min_size=1, max_size=12))
@example([(H, "Sharpe:"), (H, "Sharpe:"), (H, "Epoch 0/"), (H, "Learning rate: 0.35"),  # a tqdm bar, then
          (PREFIXES[7], "Epoch 0/"), (H, "[progress] Epoch 3/10")])  # ours: the fast path keeps the last only
def test_generated_lines(lines: list[tuple[str, str]]) -> None:
    buf = "".join(f"{p}{m}\n" for p, m in lines).encode("utf-8", "surrogatepass")
    _check(buf)
    if not any("][WARNING] - " in m for _, m in lines):  # a second prefix in a message: tui.log.scan's
        assert _fold(buf, len(buf), None) == read_state_of(buf)  # one approximation


def test_common_lines_are_hot() -> None:
    """Each recogniser takes its everyday line (a test that they are not all left to Python)."""
    msgs = ["[main] Epoch 3/10", "Epoch 3/10 ", "Learning rate: 0.000500", "train/total_loss: 0.350750",
            "val/loss: 0.351234", "[main] Validation loss: 0.3544", "[SWA] Validation loss: 0.3504",
            "Sharpe: -0.0309", "Val metrics (z) h=1: MAE=0.7812 RMSE=0.9951 IC=-0.0412 RankIC=0.0398 "
            "SCALE(yhat/y)=0.31 HIT=0.5123", "Val metrics (z) h=10: MAE=0.0210 RMSE=0.0284 R2=0.0000 "
            "IC=-0.0124 NAIVE_RMSE=0.0276 SCALE(yhat/y)=0.16 CAL=+0.000+1.000*yhat",
            "Checkpoint saved: c/epoch=1.ckpt (epoch=1)", "Checkpoint saved: models/best.pt"]
    for m in msgs:
        assert _check(f"{H}{m}\n".encode()) == 1, m
    for m in ["Checkpoint saved: Traceback (most recent call last)", "[main] Validation loss: 1 ][WARNING] - x",
              "Val metrics (z ][WARNING] - ) h=1: MAE=1 RMSE=1 IC=0.1 RankIC=0.1 SCALE(yhat/y)=0.5 HIT=1"]:
        assert _check(f"{H}{m}\n".encode()) == 0, m  # left to the lines' other readers


# ---------------------------------------------------------------- the fold of hot runs

EPOCH_LINES = ["Learning rate: 0.0005", "train/total_loss: 0.35", "val/loss: 0.36", "[main] Validation loss: 0.3",
               "[SWA] Validation loss: 0.2", "Sharpe: 0.12", "Sharpe: nan", "Checkpoint saved: c/e.ckpt (epoch=1)",
               "Val metrics (z) h=1: MAE=0.7 RMSE=0.9 IC=0.04 RankIC=0.03 SCALE(yhat/y)=0.31 HIT=0.5",
               "Val metrics (raw) h=5: MAE=0.7 RMSE=0.9 IC=0.04 RankIC=0.03 SCALE(yhat/y)=0.31 HIT=0.5",
               "Val metrics (z) h=1: MAE=0.7 RMSE=0.9 R2=0 IC=0.01 NAIVE_RMSE=1 SCALE(yhat/y)=0.001 CAL=x"]
OTHER_LINES = ["[2025-10-28 23:59:50,149][root][WARNING] - Low prediction variance for horizon 1: scale_ratio=0.0",
               "[2025-10-28 23:59:50,149][root][WARNING] - [nan-guard] x", H + "[progress] epoch=1/3 step=2/9",
               H + "[error] boom", "Traceback (most recent call last):", "ValueError: x",
               H + "=== Training Complete ===", H + "[exit] reason=finished status=0", "Epoch 1: 3it [00:01,  2.0it/s]"]


LEVELS = [H, H, H, "[2025-10-28 23:59:50,149][x][WARNING] - ", "[2025-10-28 23:59:50,149][x][ERROR] - ",
          "[2025-10-28 23:59:50,149][x][CRITICAL] - ", "[2025-10-28 23:59:50,149][x][DEBUG] - "]


@st.composite
def epoch_logs(draw: st.DrawFn) -> bytes:
    out = []
    for _ in range(draw(st.integers(1, 25))):
        what = draw(st.integers(0, 9))
        if what == 0:
            out.append(f"{H}[main] Epoch {draw(st.integers(1, 6))}/6")  # re-runs too
        elif what == 1:
            out.append(draw(st.sampled_from(OTHER_LINES)))
        elif what == 2:  # many horizons, many clears, many paths: full sub-blocks
            for h in draw(st.lists(st.integers(0, 40), min_size=1, max_size=40)):
                out.append(f"{H}Val metrics (z) h={h}: MAE=0.7 RMSE=0.9 IC=0.04 RankIC=0.03 "
                           f"SCALE(yhat/y)={draw(st.sampled_from(['0.001', '0.31', '0.005', '0.0049']))} HIT=0.5")
        elif what == 3:
            out += [f"{H}Checkpoint saved: c/{k % 60}.ckpt" for k in range(draw(st.integers(1, 70)))]
        else:  # at any level: only the lines of a level that counts nothing may be hot
            out.append(draw(st.sampled_from(LEVELS)) + draw(st.sampled_from(EPOCH_LINES)))
    return ("\n".join(out) + "\n").encode()


@settings(max_examples=300, deadline=None)
@given(epoch_logs(), st.integers(1, 2000))
def test_hot_runs_fold_as_their_events(data: bytes, chunk: int) -> None:
    plain = read_state_of(data)
    assert _fold(data, len(data), None) == plain
    assert _fold(data, chunk, None) == plain
    assert _fold(data, chunk, True) == plain


def read_state_of(data: bytes) -> object:
    """The plain line loop's state of `data`."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "run.log"
        path.write_bytes(data)
        return read_state(path, fast=False)
