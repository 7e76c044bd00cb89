"""Metrics by any name: the `[metrics]` line, a CSVLogger metrics.csv, and judging on them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui.judge.conditions import lower_is_better, summary_metrics
from tui.judge.evaluate import evaluate
from tui.log.events import Metrics, Start
from tui.log.parse import parse_line
from tui.log.sources.csvlogger import CsvMetrics, read_metrics_csv
from tui.presets.baselines import Baselines, load_baselines
from tui.presets.preset import PresetError
from tui.presets.registry import PresetRegistry
from tui.state.follow import read_state
from tui.state.run import RunState

H = "[2026-11-24 04:21:51,473][runctl][INFO] - "

PRESET = """description = "own metrics"
max_epochs = 3
command = ["{python}", "train.py"]

[[criteria]]
metric = "completed"
label = "completes"

[[criteria]]
metric = "val_acc"
op = ">"
value = 0.8
label = "val_acc above 0.8"

[[checkpoints]]
epoch = 2
title = "Epoch 2"
rules = [
  { when = [{ metric = "val_acc", op = ">", value = 0.7 }], verdict = "good", level = "good", say = "learning" },
  { verdict = "bad", level = "bad", say = "not learning" },
]

[next.good]
why = "fine"
"""


def _fold(lines: list[str]) -> RunState:
    st = RunState()
    for line in lines:
        ev = parse_line(line)
        if ev is not None:
            st.apply(ev)
    return st


def test_metrics_line_and_callback_start() -> None:
    ev = parse_line(H + "[metrics] epoch=3 train_loss=0.61 val/acc=0.72 val_nll=nan lr-SGD=0.1")
    assert isinstance(ev, Metrics) and ev.epoch == 3 and ev.final and ev.source == "log"
    assert dict(ev.values) == {"train_loss": 0.61, "val/acc": 0.72, "val_nll": None, "lr-SGD": 0.1}
    assert parse_line(H + "[metrics] epoch=x a=1") is None
    start = parse_line(H + "runctl callback 0.1.0 starting: pid=42 run_dir=/runs/r7")
    assert isinstance(start, Start) and start.kind == "callback" and start.pid == 42
    st = _fold([H + "runctl callback 0.1.0 starting: pid=42 run_dir=/runs/r7", H + "[main] Epoch 1/3",
                H + "[metrics] epoch=1 val_loss=0.5 val_acc=0.75"])
    assert st.source_format == "callback" and st.run == "r7" and st.state == "validating"
    rec = st.epochs[0]
    assert rec.validated and rec.metrics_final and rec.val_loss == 0.5 and rec.metrics["val_acc"] == 0.75
    assert st.to_json()["epochs"][0]["metrics"] == {"val_acc": 0.75, "val_loss": 0.5}


def test_the_fast_reader_sees_metrics_lines(tmp_path: Path) -> None:
    log = tmp_path / "r.log"
    log.write_text("\n".join([H + "runctl callback 0.1 starting: pid=1 run_dir=-", H + "[main] Epoch 1/2",
                              H + "[metrics] epoch=1 val_acc=0.6", H + "[main] Epoch 2/2",
                              H + "[metrics] epoch=2 val_acc=0.9", ""]))
    fast, plain = read_state(log), read_state(log, fast=False)
    assert [r.metrics for r in fast.epochs] == [{"val_acc": 0.6}, {"val_acc": 0.9}]
    assert fast.to_json() == plain.to_json()


def test_judging_on_a_metric_of_its_own(tmp_path: Path) -> None:
    (tmp_path / "own.toml").write_text(PRESET)
    preset = PresetRegistry(tmp_path).get("own")
    lines = [H + "runctl callback 0.1 starting: pid=1 run_dir=/r/own_1", H + "[main] Epoch 1/3"]
    v = evaluate(preset, _fold(lines), Baselines())
    row = next(r for r in v.table if r.key == "val_acc")
    assert row.current is None and row.status == "⏳"  # nothing carried it yet: pending, no error
    assert [c.status for c in v.criteria] == ["pending", "pending"]
    lines += [H + "[metrics] epoch=1 val_acc=0.65", H + "[main] Epoch 2/3", H + "[metrics] epoch=2 val_acc=0.75"]
    v = evaluate(preset, _fold(lines), Baselines())
    (cp,) = v.checkpoints
    assert cp.status == "decided" and cp.verdict == "good"
    lines += [H + "[main] Epoch 3/3", H + "[metrics] epoch=3 val_acc=0.85",
              H + "[exit] reason=finished status=0 epochs_completed=3"]
    st = _fold(lines)
    v = evaluate(preset, st, Baselines())
    assert [c.status for c in v.criteria] == ["met", "met"]
    assert next(r for r in v.table if r.key == "val_acc").current == 0.85
    assert summary_metrics(st)["val_acc"] == 0.85


def test_baseline_rows_of_own_metrics(tmp_path: Path) -> None:
    p = tmp_path / "baselines.toml"
    p.write_text('[[runs]]\nname = "prev"\nmetrics = { val_acc = 0.8, "val/f1" = 0.5 }\n')
    assert load_baselines(p).runs[0].metrics == {"val_acc": 0.8, "val/f1": 0.5}
    p.write_text('[[runs]]\nname = "prev"\nmetrics = { "val acc" = 0.8 }\n')
    with pytest.raises(PresetError, match="is not a metric name"):
        load_baselines(p)


def test_lower_is_better_by_name() -> None:
    assert lower_is_better("val_loss") and lower_is_better("val_nll") and lower_is_better("test/mae")
    assert not lower_is_better("val_acc") and not lower_is_better("glossary_size")


def _csv(tmp_path: Path, rows: list[dict[str, float]]) -> Path:
    """A real Lightning CSVLogger file: rows as `Trainer` logs them (with an `epoch` column)."""
    from lightning.pytorch.loggers import CSVLogger

    logger = CSVLogger(tmp_path, name="", version="")
    for step, row in enumerate(rows):
        logger.log_metrics(row, step)
    logger.save()
    (path,) = tmp_path.rglob("metrics.csv")
    return path


def test_csvlogger_metrics_fold_into_epochs(tmp_path: Path) -> None:
    path = _csv(tmp_path, [
        {"epoch": 0, "train_loss_step": 0.9}, {"epoch": 0, "train_loss_step": 0.8},
        {"epoch": 0, "val_loss": 0.7, "val_acc": 0.6}, {"epoch": 0, "train_loss_epoch": 0.85},
        {"epoch": 1, "train_loss_step": 0.5},
    ])
    events = read_metrics_csv(path)
    assert [(e.epoch, e.final) for e in events] == [(1, True), (2, False)]
    assert dict(events[0].values) == {"train_loss_epoch": 0.85, "train_loss_step": 0.8, "val_acc": 0.6,
                                      "val_loss": 0.7}
    st = RunState()
    for e in events:
        st.apply(e)
    assert st.epoch == 2 and st.state == "training" and st.source_format == "csv"
    assert st.epochs[0].validated and st.epochs[0].val_loss == 0.7 and not st.epochs[1].validated
    source = CsvMetrics(str(tmp_path / "**" / "metrics.csv"))
    assert len(source.poll()) == 2 and source.poll() == []  # unchanged: not read again


def test_read_state_folds_the_csv_beside_the_log(tmp_path: Path) -> None:
    _csv(tmp_path / "run", [{"epoch": 0, "val_acc": 0.6}, {"epoch": 1, "val_acc": 0.7}])
    log = tmp_path / "r.log"
    log.write_text("plain stdout of a script\n")
    st = read_state(log, metrics_csv=str(tmp_path / "run" / "**" / "metrics.csv"))
    assert [r.metrics.get("val_acc") for r in st.epochs] == [0.6, 0.7] and st.epoch == 2


def test_plain_text_views_show_own_metrics(tmp_path: Path) -> None:
    from tui.cli.textview import ProgressPrinter, render_status

    (tmp_path / "own.toml").write_text(PRESET)
    preset = PresetRegistry(tmp_path).get("own")
    lines = [H + "runctl callback 0.1 starting: pid=1 run_dir=/r/own_1", H + "[main] Epoch 1/3",
             H + "[metrics] epoch=1 val_acc=0.65 f1=0.5"]
    st = _fold(lines)
    text = render_status(st, None, None, preset)
    header = next(line for line in text.splitlines() if "train_loss" in line)
    assert header.split()[-2:] == ["val_acc", "f1"]  # the preset's first, then what the run logs
    assert text.splitlines()[text.splitlines().index(header) + 1].split()[-2:] == ["0.6500", "0.5000"]
    said: list[str] = []
    ProgressPrinter(said.append, preset=preset).update(st)  # reported at its [metrics] line
    assert any(s.startswith("Epoch 1/3:") and "val_acc=0.6500" in s and "sharpe" not in s for s in said)


def test_runs_screen_and_timeline_show_own_metrics(tmp_path: Path) -> None:
    from tui.app.screens.runs import run_cells
    from tui.app.view import RunView

    (tmp_path / "own.toml").write_text(PRESET)
    preset = PresetRegistry(tmp_path).get("own")
    st = _fold([H + "runctl callback 0.1 starting: pid=1 run_dir=/r/own_1", H + "[main] Epoch 1/3",
                H + "[metrics] epoch=1 val_acc=0.85"])
    v = RunView(run="own_1", state=st, preset=preset, verdicts=evaluate(preset, st, Baselines()),
                log_path=tmp_path / "x.log", loaded=True)
    assert run_cells(v)["own"] == "val_acc 0.8500"
    assert any(r.key == "val_acc" and r.current == 0.85 for r in v.verdicts.table)  # the metric table's row
