"""Metric sources, declared in one place (tui.log.sources): every documented example line of every
line source makes an event, and the fast attach path folds it to the same state as the plain line
loop, alone, among the others, after a runctl stream's start and at any chunking; what the
zero-configuration shapes read and what they leave alone."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies

import tui.log.sources as sources_mod
from tui.log import events as evt
from tui.log.lines import LineAssembler
from tui.log.scan import RegionScanner
from tui.log.sources import (
    FILE_SOURCES,
    LINE_SOURCES,
    SOURCES,
    LineSet,
    SourceConfig,
    file_source,
    line_set,
    rank,
)
from tui.log.sources import jsonl as jsonl_source
from tui.log.sources import patterns as patterns_source
from tui.log.sources import stdout as stdout_source
from tui.log.sources.base import FileSource, LineSource
from tui.log.sources.stdout import parse as stdout_parse
from tui.state.follow import LogFollower, read_state
from tui.state.run import RunState

DOCS = Path(__file__).resolve().parent.parent / "docs" / "log-format.md"

CONFIG = SourceConfig(patterns=patterns_source.EXAMPLE_PATTERNS)
START = "[2026-11-24 04:21:51,473][engine][INFO] - runctl engine 0.1.0 starting: pid=1 run_dir=-"


def _states(tmp_path: Path, text: str, config: SourceConfig = CONFIG) -> tuple[object, object]:
    log = tmp_path / "run.log"
    log.write_text(text, encoding="utf-8")
    return read_state(log, fast=True, sources=config), read_state(log, fast=False, sources=config)


def _events(text: str, fast: bool, config: SourceConfig = CONFIG) -> list[evt.Event]:
    scanner = RegionScanner(fast, line_set(config))
    out: list[evt.Event] = []
    for seg in LineAssembler().feed(text.encode()):
        out += [e for e in scanner.scan(seg) if not isinstance(e, evt.Activity)]
    return out


def test_every_source_is_declared_once_in_one_order() -> None:
    names = [s.name for s in SOURCES]
    assert len(names) == len(set(names))
    assert {"runctl", "atft", "patterns", "csv", "jsonl", "hf", "hf_state", "stdout"} <= set(names)
    assert [rank(n) for n in names] == sorted(rank(n) for n in names)
    assert names.index("runctl") == 0 and names[-1] == "stdout"  # the run's own report first
    for s in SOURCES:
        assert isinstance(s, (LineSource, FileSource)) and s.title
    for f in FILE_SOURCES:
        assert "{run_dir}" in f.default_glob and f.preset_key


@pytest.mark.parametrize("source", LINE_SOURCES, ids=lambda s: s.name)
def test_every_example_line_makes_an_event_on_both_paths(source: LineSource) -> None:
    assert source.examples
    for line in source.examples:
        assert source.parse(line) is not None, line
        for fast in (True, False):
            got = _events(line + "\n", fast)
            assert got, (fast, line)


@pytest.mark.parametrize("source", LINE_SOURCES, ids=lambda s: s.name)
def test_fast_and_plain_paths_fold_each_example_the_same(tmp_path: Path, source: LineSource) -> None:
    for line in source.examples:
        fast, plain = _states(tmp_path, line + "\n")
        assert fast == plain, line


def test_all_examples_together_in_any_order_and_chunking(tmp_path: Path) -> None:
    lines = [ln for s in LINE_SOURCES for ln in s.examples]
    rnd = random.Random(7)
    for trial in range(12):
        rnd.shuffle(lines)
        text = "\n".join(lines) + "\n"
        if trial % 3 == 1:  # a runctl stream: the bare shapes stop at its start line
            text = START + "\n" + text
        fast, plain = _states(tmp_path, text)
        assert fast == plain, trial
        log = tmp_path / "run.log"
        f = LogFollower(log, chunk=rnd.choice([7, 64, 333, 4096]), sources=CONFIG)
        f.catch_up()
        assert f.state == plain, trial


def test_the_bare_shapes_end_at_a_prefixed_formats_start(tmp_path: Path) -> None:
    text = "\n".join(["step 1: loss 2.0", START, "step 2: loss 1.0", "loss: 0.5"]) + "\n"
    for st in _states(tmp_path, text, SourceConfig()):
        assert st.latest["loss"].value == 2.0 and st.latest["loss"].step == 1  # type: ignore[attr-defined]
    # an explicit pattern reads every line, before and after
    cfg = SourceConfig(patterns=(r"loss[:]? (?P<loss>[0-9.]+)",))
    for st in _states(tmp_path, text, cfg):
        assert st.latest["loss"].value == 0.5  # type: ignore[attr-defined]
    # a runctl / atft log (the preset says so): never
    for st in _states(tmp_path, "step 1: loss 2.0\n", SourceConfig(log_format="runctl")):
        assert st.latest == {}  # type: ignore[attr-defined]


@pytest.mark.parametrize("line", [
    "Loaded 1000 samples", "Saved checkpoint at step 500 to out/", "number of parameters: 10.65M",
    "tokens per iteration will be: 16,384", "Target Sharpe Ratio: 0.849", "max_iters = 5000",
    '  File "train.py", line 3, in <module>', "KeyError: 5", "Overriding: max_iters = 100",
    "found vocab_size = 65 (inside data/shakespeare_char/meta.pkl)", "============",
    "Using device: cuda", "compiling the model... (takes a ~minute)",
])
def test_what_is_not_a_metric(line: str) -> None:
    assert stdout_parse(line) is None


@pytest.mark.parametrize(("line", "values", "step", "epoch"), [
    ("step 250: train loss 2.4100, val loss 2.5700", {"train_loss": 2.41, "val_loss": 2.57}, 250, None),
    ("iter 10: loss 3.9012, time 12.34ms, mfu -100.00%", {"loss": 3.9012, "time": 12.34, "mfu": -100.0}, 10, None),
    ("Epoch 2: train_loss=0.009 val_loss=0.013 val_acc=0.994",
     {"train_loss": 0.009, "val_loss": 0.013, "val_acc": 0.994}, None, 2),
    ("Epoch [1/5], Step [100/600], Loss: 0.2198", {"Loss": 0.2198}, 100, 1),
    ("loss: 0.23, acc: 0.91", {"loss": 0.23, "acc": 0.91}, None, None),
    ("train loss 2.41; val loss nan", {"train_loss": 2.41, "val_loss": None}, None, None),
    ("epoch=3 loss=1e-3 lr=3.0E-4", {"loss": 0.001, "lr": 0.0003}, None, 3),
    ("step=120 | loss=0.5", {"loss": 0.5}, 120, None),
])
def test_zero_configuration_shapes(line: str, values: dict, step: int | None, epoch: int | None) -> None:
    ev = stdout_parse(line)
    assert isinstance(ev, evt.Scalars)
    assert dict(ev.values) == values
    assert ev.step == step and ev.epoch == epoch


def test_a_line_set_orders_its_sources_by_rank() -> None:
    ls = line_set(CONFIG)
    assert isinstance(ls, LineSet)
    assert [s.name for s in ls.anyline] == ["patterns"]
    assert [s.name for s in ls.bare] == ["hf", "stdout"]
    assert line_set(SourceConfig(stdout=False)) is None


def test_a_config_round_trips_through_the_manifest_json() -> None:
    cfg = SourceConfig(log_format="atft", stdout=False, patterns=("a=(?P<a>\\d+)",),
                       files=(("csv", "/r/**/metrics.csv"), ("jsonl", "/r/m.jsonl")))
    assert SourceConfig.from_json(cfg.to_json()) == cfg
    named = SourceConfig(patterns=(("loss", "loss=(\\value)"),))
    assert SourceConfig.from_json(named.to_json()) == named
    assert SourceConfig.from_json(None) == SourceConfig()


_SHAPES = [
    "iter {i}: loss {x:.4f}, time {y:.2f}ms, mfu {z:.2f}%",
    "step {i}: train loss {x:.4f}, val loss {y:.4f}",
    "iter {i}: top1 {x:.3f} top5 {y:.3f}",
    "iter {i}: top5 {y:.3f} top1 {x:.3f}",
    "loss: {x:.4f}, acc: {y:.4f}",
    "Epoch {e}: train_loss={x:.4f} val_loss={y:.4f}",
    "Epoch {e}/9",
    " {p}%|####      | {i}/999 [00:01<00:02, 12.50it/s, loss={x:.3f}]",
    "{{'loss': '{x:.4f}', 'learning_rate': '{y:.3g}', 'epoch': '{f:.3f}'}}",
    "{{'eval_loss': {x:.4f}, 'epoch': {e}.0}}",
    '{{"step": {i}, "loss": {x:.4f}}}',
    "step={i} loss=nan",
    "val loss nan, val acc inf",
    "plain words with no numbers",
    "Traceback (most recent call last):",
    '  File "train.py", line {i}, in <module>',
    "ValueError: bad {i}",
]


@pytest.mark.parametrize("seed", range(8))
def test_bare_line_templates_fold_like_every_line(tmp_path: Path, seed: int) -> None:
    """The fast path reads only the first and last line of each template of per-step numbers:
    random mixes of every printed shape (steps going back as after a resume, names with digits,
    bars, dicts, evaluations, values with no position) at random chunkings fold to the plain
    loop's state."""
    rnd = random.Random(seed)
    lines = []
    i, e = 0, 0
    for _ in range(rnd.choice([50, 400, 3000])):
        i = max(0, i + rnd.choice([1, 1, 1, 7, -30]))
        if rnd.random() < 0.02:
            e += 1
        shape = rnd.choices(_SHAPES, weights=[40, 4, 6, 3, 2, 2, 1, 8, 3, 1, 3, 1, 1, 2, 1, 1, 1])[0]
        lines.append(shape.format(i=i, e=e, x=rnd.random() * 3, y=rnd.random() * 100, z=rnd.random(),
                                  p=rnd.randrange(100), f=e + rnd.random()))
    log = tmp_path / "run.log"
    log.write_text("\n".join(lines) + "\n")
    cfg = SourceConfig()
    plain = read_state(log, fast=False, sources=cfg)
    assert read_state(log, fast=True, sources=cfg) == plain
    f = LogFollower(log, chunk=rnd.choice([97, 1024, 8192]), sources=cfg)
    f.catch_up()
    assert f.state == plain


# ----------------------------------------------------------------------------- the stdout prefilter
_NO_DIGIT = ["loss: nan", "val loss nan, val acc nan", "loss: inf", "loss=-Infinity",
             "val_loss=NaN, val_acc=Inf", "val_loss: na\x1b[mn"]  # a colour code splitting a word


@pytest.mark.parametrize("line", _NO_DIGIT)
def test_a_printed_line_with_no_digit_is_read_on_both_paths(tmp_path: Path, line: str) -> None:
    """A value printed as `nan` / `inf` leaves no digit on the line: the fast path still reads it
    (in an epoch run an evaluation line like that validates the epoch on both paths)."""
    assert stdout_parse(line) is not None
    for fast in (True, False):
        assert _events(line + "\n", fast, SourceConfig()), fast
    text = "Epoch 1: train_loss=0.5000\n" + line + "\nno metric here\n"
    fast_st, plain = _states(tmp_path, text, SourceConfig())
    assert fast_st == plain
    assert plain.epochs[0].validated == line.startswith("val")  # type: ignore[attr-defined]


_PRINTED = ["loss", "val", "acc", "lr", "Epoch", "step", "iter", ": ", "=", " ", ", ", "; ", " | ",
            " - ", "nan", "NaN", "inf", "Inf", "Infinity", "infinity", "-", "+", "ms", "%", "x", "_",
            "/", "[", "]", "%|", "1", "0.5", "e-3", "\x1b[K", "\x1b[A", "\x1b[m", "\t"]


@settings(max_examples=600, deadline=None)
@given(strategies.lists(strategies.sampled_from(_PRINTED), max_size=10))
def test_the_stdout_prefilter_finds_every_line_it_reads(pieces: list[str]) -> None:
    line = "".join(pieces)
    if stdout_parse(line) is not None:
        assert stdout_source.SOURCE.prefilter is not None
        assert stdout_source.SOURCE.prefilter.search(line.encode()), line


@pytest.mark.parametrize("line", [
    "Epoch: inf", "step=inf loss=1.0", "epoch=-inf, val_loss=0.5", "iter=Infinity | loss=2",
    "{'step': inf, 'loss': 1.0}", '{"step": Infinity, "loss": 1.0}', '{"global_step": -Infinity}',
    "pos 1.5 loss 2.0", "pos inf loss 2.0",
])
def test_a_position_that_is_not_a_count_is_no_position(tmp_path: Path, line: str) -> None:
    """`step=inf`, `{"step": Infinity}`, a pattern's step group matching `1.5`: read without a
    position (the reader must not fail on them), alike on both paths."""
    cfg = SourceConfig(patterns=(r"pos (?P<step>\S+) loss (?P<loss>\S+)", r"(?P<epoch>\w+)=-?inf"))
    for fast in (True, False):
        for ev in _events(line + "\n", fast, cfg):
            assert getattr(ev, "step", None) is None and getattr(ev, "epoch", None) is None, (fast, ev)
    fast_st, plain = _states(tmp_path, "Epoch 1: loss=2.0\n" + line + "\n", cfg)
    assert fast_st == plain


def test_the_printed_examples_are_the_documented_ones() -> None:
    """docs/log-format.md shows every example line of the printed shapes and the patterns."""
    doc = DOCS.read_text(encoding="utf-8")
    for src in (stdout_source.SOURCE, patterns_source.SOURCE):
        for line in src.examples:
            assert line in doc, (src.name, line)
    for pat in patterns_source.EXAMPLE_PATTERNS:
        assert json.dumps(pat) in doc, pat  # as the TOML / JSON list in the docs writes it


# ----------------------------------------------------------------------------- anchored patterns
_LR, _ITEMS = r"^lr (?P<lr>\value)$", r"\Aitems (?P<items>\d+)\Z"


@pytest.mark.parametrize("pats", [(_LR,), (_ITEMS,), (_LR, _ITEMS)], ids=["^$", "AZ", "both"])
@pytest.mark.parametrize("kw", [{}, {"stdout": False}, {"log_format": "runctl"}],
                         ids=["auto", "no-stdout", "runctl-log"])
def test_anchored_patterns_find_their_lines_anywhere_in_a_read(tmp_path: Path, pats: tuple[str, ...],
                                                                kw: dict) -> None:
    """`^` / `$` are a line's start and end on the fast path too (a read buffer holds many
    lines); `\\A` / `\\Z` as well (the line's, as the plain path reads it). Without the printed
    shapes (`stdout = false`, a runctl log) only the patterns' own prefilter finds the lines."""
    cfg = SourceConfig(patterns=pats, **kw)
    lines = ["warmup", "lr 0.1", "items 5", "[2026-11-24 04:21:51,473][engine][INFO] - lr 0.9",
             "my lr 0.8", "lr 0.7 then", "lr 0.2", "nitems 6", "items 7", "done"]
    text = "\n".join(lines) + "\n"
    names = {n for p in pats for n in ("lr", "items") if f"<{n}>" in p}
    want = [d for d in ({"lr": 0.1}, {"items": 5.0}, {"lr": 0.2}, {"items": 7.0}) if set(d) <= names]
    for fast in (True, False):
        got = [dict(e.values) for e in _events(text, fast, cfg) if isinstance(e, evt.Scalars)]
        assert got == want, fast
    fast_st, plain = _states(tmp_path, text, cfg)
    assert fast_st == plain
    for chunk in (5, 16, 64):
        f = LogFollower(tmp_path / "run.log", chunk=chunk, sources=cfg)
        f.catch_up()
        assert f.state == plain, chunk


# ----------------------------------------------------------------------------- one entry, one source
def _warmup(line: str) -> evt.Event | None:
    if line.strip().lower() != "warmup done":
        return None
    return evt.Scalars((("warmup_done", 1.0),), source="warmup")


_WARMUP = LineSource(  # a new unprefixed source, as a new module would declare it
    name="warmup",
    title="`Warmup done` lines (any case)",
    parse=_warmup,
    examples=("Warmup done",),
    prefilter=re.compile(rb"^[ \t]*warmup done[ \t]*$", re.IGNORECASE | re.MULTILINE),
)


@pytest.fixture
def fresh_line_sets() -> Iterator[None]:
    line_set.cache_clear()
    yield
    line_set.cache_clear()


def test_a_new_line_source_is_one_entry_in_the_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    fresh_line_sets: None) -> None:
    """Adding an unprefixed line source is one entry in SOURCES: a run reads it with no
    configuration, and the fast path finds its lines with its own prefilter's flags."""
    declared = (*SOURCES, _WARMUP)
    monkeypatch.setattr(sources_mod, "SOURCES", declared)
    monkeypatch.setattr(sources_mod, "LINE_SOURCES", tuple(s for s in declared if isinstance(s, LineSource)))
    monkeypatch.setattr(sources_mod, "RANK", {s.name: i for i, s in enumerate(declared)})
    ls = line_set(SourceConfig())
    assert ls is not None and [s.name for s in ls.bare] == ["hf", "stdout", "warmup"]
    assert line_set(SourceConfig(stdout=False)) is None  # `stdout = false`: no printed shape at all
    assert [s.name for s in line_set(CONFIG).bare] == ["hf", "stdout", "warmup"]  # type: ignore[union-attr]
    text = "step 1: loss 2.0\n  Warmup done\nstep 2: loss 1.0\n"
    for fast in (True, False):
        assert any(getattr(e, "source", None) == "warmup" for e in _events(text, fast, SourceConfig())), fast
    fast_st, plain = _states(tmp_path, text, SourceConfig())
    assert fast_st == plain
    assert plain.latest["warmup_done"].value == 1.0  # type: ignore[attr-defined]


def test_the_declared_line_sources_are_the_ones_a_run_reads(fresh_line_sets: None) -> None:
    ls = line_set(SourceConfig())
    assert ls is not None
    assert ls.bare == tuple(s for s in LINE_SOURCES if not s.prefixed and not s.anyline)
    assert ls.anyline == ()


# ----------------------------------------------------------------------------- JSON lines
def test_a_jsonl_file_is_read_by_whole_new_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default glob finds a run's metrics.jsonl; each poll gives the lines appended since the
    last one; a half-written line waits until it is whole, then gives its event once."""
    import tui.state.follow as follow

    monkeypatch.setattr(follow, "FILES_EVERY_S", 0.0)
    run_dir = tmp_path / "run"
    (run_dir / "logs").mkdir(parents=True)
    path = run_dir / "logs" / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 2.0}\nnot json\n')
    src = file_source("jsonl")
    assert src is jsonl_source.SOURCE and src.append_only
    glob = src.default_glob.format(run_dir=run_dir, run="run")
    reader = src.reader(glob)
    (run_dir / "run.log").write_text("")
    follower = LogFollower(run_dir / "run.log", sources=SourceConfig(files=(("jsonl", glob),)))

    def points(events: list[evt.Event]) -> list[tuple[int | None, int | None, dict]]:
        return [(e.step, e.epoch, dict(e.values)) for e in events if isinstance(e, evt.Scalars)]

    assert points(list(reader.poll())) == [(1, None, {"loss": 2.0})]
    assert points(follower.poll()) == [(1, None, {"loss": 2.0})]
    assert list(reader.poll()) == [] and points(follower.poll()) == []
    with path.open("a") as fh:
        fh.write('{"step": 2, "loss": 1.5}\n{"step": 3, "epoch": 1, "val_lo')
    assert points(list(reader.poll())) == [(2, None, {"loss": 1.5})]
    assert points(follower.poll()) == [(2, None, {"loss": 1.5})]
    assert follower.state.latest["loss"].value == 1.5 and "val_loss" not in follower.state.latest
    with path.open("a") as fh:
        fh.write('ss": 0.75}\n')
    assert points(list(reader.poll())) == [(3, 1, {"val_loss": 0.75})]
    assert points(follower.poll()) == [(3, 1, {"val_loss": 0.75})]
    assert list(reader.poll()) == [] and points(follower.poll()) == []
    st_ = follower.state
    assert st_.latest["val_loss"].value == 0.75 and st_.latest["val_loss"].step == 3
    assert [(r.epoch, r.metrics, r.validated) for r in st_.epochs] == [(1, {"val_loss": 0.75}, True)]
    follower.close()


# ----------------------------------------------------------------------------- the documented order
def _two_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, file_first: bool) -> RunState:
    """The state of a run whose printed line says val_loss=0.5 and whose metrics file (`kind`)
    says 0.7 for the same epoch, the file read before or after the line."""
    import tui.state.follow as follow

    monkeypatch.setattr(follow, "FILES_EVERY_S", 0.0)
    log, file = tmp_path / "run.log", tmp_path / f"metrics.{kind}"
    printed = "Epoch 1: train_loss=0.9000 val_loss=0.5000\n"
    file.write_text(json.dumps({"epoch": 1, "val_loss": 0.7}) + "\n" if kind == "jsonl"
                    else "epoch,step,val_loss\n0,10,0.7\n")  # CSVLogger's epochs count from 0
    log.write_text("" if file_first else printed)
    f = LogFollower(log, sources=SourceConfig(files=((kind, str(tmp_path / "**" / f"metrics.{kind}")),)))
    f.catch_up()
    if file_first:
        with log.open("a") as fh:
            fh.write(printed)
        f.catch_up()
    f.close()
    return f.state


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
@pytest.mark.parametrize("file_first", [False, True], ids=["printed-first", "file-first"])
def test_a_name_two_sources_give_keeps_the_better_ranked_value(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, file_first: bool) -> None:
    """docs/log-format.md, *Metric sources*: a name two sources carry at the same point keeps the
    earlier source's value: the metrics file's (`jsonl` #6, `csv` #4) over the printed line's
    (`stdout` #9), whichever is read first; a name only one gives is kept as it is."""
    assert rank(kind) < rank("stdout")
    st_ = _two_sources(tmp_path, monkeypatch, kind, file_first)
    assert [r.epoch for r in st_.epochs] == [1]
    assert st_.epochs[0].metrics == {"val_loss": 0.7, "train_loss": 0.9}
    if kind == "jsonl":  # a metric's latest value: its best-ranked source's
        assert st_.latest["val_loss"].value == 0.7
        assert st_.latest["train_loss"].value == 0.9


def test_a_metrics_latest_value_stays_its_best_ranked_sources(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/log-format.md: once a source gave a name, a later source of the list no longer replaces
    its latest value, even from a later point (that point's own value is on the timeline)."""
    _two_sources(tmp_path, monkeypatch, "jsonl", file_first=True)  # its files: epoch 1 in both
    with (tmp_path / "run.log").open("a") as fh:
        fh.write("Epoch 2: train_loss=0.8000 val_loss=0.4000\n")
    f = LogFollower(tmp_path / "run.log", sources=SourceConfig(files=(("jsonl", str(tmp_path / "metrics.jsonl")),)))
    f.catch_up()
    f.close()
    st_ = f.state
    assert [(r.epoch, r.metrics.get("val_loss")) for r in st_.epochs] == [(1, 0.7), (2, 0.4)]
    assert (st_.latest["val_loss"].value, st_.latest["val_loss"].epoch) == (0.7, 1)
    assert (st_.latest["train_loss"].value, st_.latest["train_loss"].epoch) == (0.8, 2)


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_the_built_in_field_follows_the_documented_order_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    st_ = _two_sources(tmp_path, monkeypatch, kind, file_first=False)
    assert st_.epochs[0].val_loss == 0.7


def test_a_progress_bars_postfix_values_are_latest_where_no_source_gave_the_name(tmp_path: Path) -> None:
    from tui.state.follow import LogFollower
    from tui.state.serialize import state_json

    log = tmp_path / "run.log"
    bar = "Epoch 0:  50%|█████     | 8/16 [00:01<00:01,  7.50it/s, loss={loss}, acc={acc}]\n"
    log.write_text(bar.format(loss="0.42", acc="0.81"))
    f = LogFollower(log)
    f.catch_up()
    latest = state_json(f.state)["latest"]
    assert latest["loss"]["value"] == 0.42 and latest["acc"]["value"] == 0.81
    with log.open("a") as out:
        out.write("loss: 0.30\n" + bar.format(loss="0.20", acc="0.85"))
    f.catch_up()
    latest = state_json(f.state)["latest"]
    assert latest["loss"]["value"] == 0.30  # a printed line's source comes before a bar's postfix
    assert latest["acc"]["value"] == 0.85  # the bar as it is now
    f.close()
