"""Metric sources, declared in one place (tui.log.sources): every documented example line of every
line source makes an event, and the fast attach path folds it to the same state as the plain line
loop, alone, among the others, after a runctl stream's start and at any chunking; what the
zero-configuration shapes read and what they leave alone."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tui.log import events as evt
from tui.log.lines import LineAssembler
from tui.log.scan import RegionScanner
from tui.log.sources import (
    FILE_SOURCES,
    LINE_SOURCES,
    SOURCES,
    LineSet,
    SourceConfig,
    line_set,
    rank,
)
from tui.log.sources import patterns as patterns_source
from tui.log.sources.base import FileSource, LineSource
from tui.log.sources.stdout import parse as stdout_parse
from tui.state.follow import read_state

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
        from tui.state.follow import LogFollower

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
    from tui.state.follow import LogFollower

    rnd = random.Random(seed)
    lines = []
    i, e = 0, 0
    for _ in range(rnd.choice([50, 400, 3000])):
        i = max(0, i + rnd.choice([1, 1, 1, 7, -30]))
        if rnd.random() < 0.02:
            e += 1
        shape = rnd.choices(_SHAPES, weights=[40, 4, 6, 3, 2, 2, 1, 8, 3, 1, 3, 1, 2, 1, 1, 1])[0]
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
