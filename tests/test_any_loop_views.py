"""The recorded runs of an HF Trainer script, a plain Lightning script (its default logger) and a plain
PyTorch loop (tests/data/any_loop, README there) through the TUI and `runctl report`, as
tests/test_any_loop.py drives them through `status` (and nanoGPT's through all three).

Each view must show the script's own metric names with the values the recording holds (read from
the recorded files here: the HF Trainer's `trainer_state.json` and closing dict, the plain loop's
`Epoch N: ...` lines; the Lightning event file's scalars are written out below), a timeline point
per epoch, the script's own start-up checklist (not the engine's seven phases), and the criteria
judged on the script's metric names.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from app_fixtures import sync, wait_for
from test_any_loop import DATA, put_run, write_presets

from tui.cli.main import main
from tui.runs.store import Manifest
from tui.state.records import COMMAND_PHASES, PHASES

pytestmark = pytest.mark.timeout(60)

Values = list[float | None]  # one per epoch (None: not logged that epoch)


@dataclass
class Expected:
    """What a recording holds, as every view must show it."""

    preset: str
    logs: list[str]
    files: dict[str, str]  # recorded file -> its place in the run folder
    epochs: list[int]
    columns: dict[str, Values]  # metric name -> its value at each epoch
    rows: dict[str, tuple[str, str, float]]  # metric-table key -> (label shown, target, current)
    criteria: list[str]  # the preset's criteria, each met by the recording
    checkpoint: str | None = None  # "title (where)" of the decided checkpoint
    verdict: str | None = None
    checkpoint_values: dict[str, float] = field(default_factory=dict)  # what it decided on


def hf() -> Expected:
    """The HF Trainer: `trainer_state.json`'s log history (evaluations, per-step `loss` entries)
    and the closing dict's `train_loss`, printed to stdout only."""
    history = json.loads((DATA / "hf_trainer_state.json").read_text())["log_history"]
    evals = [e for e in history if "eval_loss" in e]
    last_loss = [[e for e in history if "loss" in e and e["step"] <= ev["step"]][-1]["loss"] for ev in evals]
    closing = re.search(r"'train_loss': '([0-9.]+)'", (DATA / "hf_trainer.log").read_text())
    assert closing is not None
    train_loss: Values = [None] * (len(evals) - 1) + [float(closing.group(1))]
    return Expected(
        preset="hf", logs=["hf_trainer.log"], files={"hf_trainer_state.json": "checkpoint-48/trainer_state.json"},
        epochs=[int(e["epoch"]) for e in evals],
        columns={"eval_loss": [e["eval_loss"] for e in evals], "eval_accuracy": [e["eval_accuracy"] for e in evals],
                 "loss": last_loss, "train_loss": train_loss},
        rows={"eval_loss": ("eval_loss", "< 0.6", evals[-1]["eval_loss"]),
              "eval_accuracy": ("eval_accuracy", ">= 0.8", evals[-1]["eval_accuracy"])},
        criteria=["eval loss below 0.6", "eval accuracy at least 0.8"],
        checkpoint="Epoch 2 evaluation (epoch 2)", verdict="good",
        checkpoint_values={"eval_accuracy": evals[1]["eval_accuracy"]})


# lightning_default.tfevents' scalars at the end of each epoch (steps 7, 15, 23, 31), as tensorboard's
# EventAccumulator reads them: the log has no metric value at all (rich prints nothing).
LIGHTNING = {"train_loss": [0.471521, 0.248811, 0.25941, 0.112782],
             "val_loss": [0.620195, 0.220565, 0.149817, 0.141795],
             "val_acc": [0.9375, 0.96875, 0.96875, 0.96875]}


def lightning() -> Expected:
    return Expected(
        preset="lit", logs=["lightning_default.log"],
        files={"lightning_default.tfevents": "lightning_logs/version_0/events.out.tfevents.1.box.1.0"},
        epochs=[1, 2, 3, 4], columns=dict(LIGHTNING),
        rows={"val_loss": ("val/loss", "< 0.3", LIGHTNING["val_loss"][-1])},
        criteria=["val loss below 0.3 after 4 epochs"],
        checkpoint="Epoch 2 (epoch 2)", verdict="good", checkpoint_values={"val_acc": LIGHTNING["val_acc"][1]})


PLAIN_VAL_ACC_TB = 0.90625  # plain_loop.tfevents' last `val/acc` (step 32): by step, off the epochs


def plain() -> Expected:
    """The plain loop's `Epoch N: train_loss=... val_loss=... val_acc=...` lines."""
    text = (DATA / "plain_loop.log").read_text()
    lines = re.findall(r"^Epoch (\d+): train_loss=(\S+) val_loss=(\S+) val_acc=(\S+)\s*$", text, re.MULTILINE)
    assert len(lines) == 4, lines
    col = {k: [float(ln[i]) for ln in lines] for i, k in enumerate(("train_loss", "val_loss", "val_acc"), 1)}
    return Expected(
        preset="plain", logs=["plain_loop.log"], files={"plain_loop.tfevents": "tb/events.out.tfevents.1.box.1.0"},
        epochs=[int(ln[0]) for ln in lines], columns={**col, "val/acc": [None] * 4},
        rows={"val_acc": ("val_acc", ">= 0.9", col["val_acc"][-1]),
              "val/acc": ("val/acc", ">= 0.9", PLAIN_VAL_ACC_TB)},
        criteria=["val accuracy at least 0.9", "val/acc (TensorBoard) at least 0.9"])


RECORDINGS = {"hf_trainer": hf, "lightning_default": lightning, "plain_loop": plain}


def put(tmp_path: Path, e: Expected) -> tuple[Path, Path, Manifest]:
    """(logs dir, presets dir, manifest) of the recording as a finished run of its preset."""
    presets = write_presets(tmp_path)
    logs = tmp_path / "_logs"
    return logs, presets, put_run(logs, presets, e.preset, e.logs, e.files)


def sig4(x: float | None) -> str:
    """A value as the TUI prints it: 4 significant digits, trailing zeros kept."""
    return "—" if x is None else f"{x:#.4g}"


def dec4(x: float | None) -> str:
    """A value as the report prints it: 4 decimals."""
    return "—" if x is None else f"{x:.4f}"


def line_of(md: str, start: str) -> str:
    """The report's first line that starts so (AssertionError when none does)."""
    found = [ln for ln in md.splitlines() if ln.startswith(start)]
    assert found, f"no line starting {start!r} in the report"
    return found[0]


def test_the_recordings_hold_what_the_views_are_checked_against() -> None:
    """The expected values are the recordings' (not the views' own numbers read back)."""
    h = hf()
    assert h.epochs == [1, 2, 3] and h.columns["eval_loss"][-1] == pytest.approx(0.4905, abs=1e-4)
    assert h.columns["loss"] == pytest.approx([0.6941, 0.6041, 0.4700], abs=1e-4)
    assert h.columns["train_loss"][-1] == 0.6056
    p = plain()
    assert p.epochs == [1, 2, 3, 4] and p.columns["val_acc"] == [0.75, 0.875, 0.8906, 0.9062]
    raw = (DATA / "lightning_default.tfevents").read_bytes()
    assert all(tag.encode() in raw for tag in LIGHTNING)  # the scalars named above are the file's


# --------------------------------------------------------------------------------------------- TUI


@pytest.mark.parametrize("recording", RECORDINGS)
@sync
async def test_tui_shows_the_scripts_own_metrics_epochs_checklist_and_criteria(
        tmp_path: Path, recording: str) -> None:
    from textual.widgets import DataTable

    from tui.app.app import RunctlApp
    from tui.app.widgets.phases import PhaseChecklist
    from tui.presets.registry import PresetRegistry
    from tui.runs.store import RunStore

    e = RECORDINGS[recording]()
    logs, presets, m = put(tmp_path, e)
    app = RunctlApp(RunStore(logs), None, PresetRegistry(presets), run=m.run, poll_interval=0.05)
    n = len(e.epochs)
    async with app.run_test(size=(120, 40)) as pilot:
        timeline = app.main.query_one("#timeline-table", DataTable)
        await wait_for(pilot, lambda: app.view is not None and app.view.state.state == "finished"
                       and timeline.row_count == n)
        label = str(app.main.query_one("#epoch-label").render())
        assert f"epoch {n}/{n}" in label, label

        # the timeline: a row per epoch, the script's own metrics in their columns
        cols = {c.key.value: str(c.label) for c in timeline.columns.values()}
        assert cols["epoch"] == "Ep"
        assert [str(timeline.get_cell(str(ep), "epoch")) for ep in e.epochs] == [f"{ep}/{n}" for ep in e.epochs]
        for name, values in e.columns.items():
            assert name in cols, (name, cols)
            shown = [str(timeline.get_cell(str(ep), name)).strip() for ep in e.epochs]
            assert shown == [sig4(x) for x in values], (name, shown)

        # the metric table: the criteria's metrics, by the script's names, with the recorded values
        table = app.main.query_one("#metrics-table", DataTable)
        rows = {r.value: [str(c).strip() for c in table.get_row(r)] for r in table.rows}
        assert set(rows) == set(e.rows), rows
        for key, (shown_as, target, current) in e.rows.items():
            status, metric, tgt, _baseline, now, best, _trend = rows[key]
            assert (status, metric, tgt, now, best) == ("✅", shown_as, target, sig4(current), sig4(current))

        # the criteria (all met) and the checkpoint decided on the script's metric
        decisions = str(app.main.query_one("#checkpoints").render())
        for c in e.criteria:
            assert f"✅ {c}" in decisions, decisions
        if e.checkpoint:
            assert f"✅ {e.checkpoint}: {e.verdict}" in decisions, decisions
        else:
            assert "Critical checkpoints\n (none)" in decisions, decisions

        # the checklist: a script's own five phases (all seen: one line; `i` lists them)
        phases = app.main.query_one(PhaseChecklist)
        assert f"all {len(COMMAND_PHASES)} phases done" in str(phases.render())
        await pilot.press("i")
        await wait_for(pilot, lambda: "Process started" in str(phases.render()))
        listed = str(phases.render())
        for key, name in COMMAND_PHASES:
            assert name in listed, (name, listed)
            if key != "checkpoint":  # a script's checkpoint is its own files: HF wrote them here
                assert f"✅ {name}" in listed, listed
        assert not any(name in listed for _, name in PHASES), listed


# ------------------------------------------------------------------------------------------ report


@pytest.mark.parametrize("recording", RECORDINGS)
def test_report_has_the_scripts_own_metrics_epochs_and_verdicts(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, recording: str) -> None:
    e = RECORDINGS[recording]()
    logs, presets, m = put(tmp_path, e)
    assert main(["--logs", str(logs), "--presets", str(presets), "report", m.run]) == 0
    md = capsys.readouterr().out
    n = len(e.epochs)
    assert f"# {m.run} - Monitoring Status" in md
    assert "✅ **FINISHED** - all epochs complete" in md
    assert f"**Epoch**: {n}/{n} ({n} complete)" in md

    # criteria verdicts with the metric's latest recorded value; the metric table
    for label, (_, (shown_as, target, current)) in zip(e.criteria, e.rows.items(), strict=True):
        assert f"- ✅ {label} (now {dec4(current)})" in md, label
        assert f"| **{shown_as}** | {target} | — | {dec4(current)} | {dec4(current)} |" in md, shown_as
    if e.checkpoint:
        values = ", ".join(f"{k} = {dec4(x)}" for k, x in e.checkpoint_values.items())
        assert f"### {e.checkpoint}" in md
        assert f"**Result**: ✅ **{e.verdict}**:" in md and f"({values})" in md, values
    else:
        assert "(this preset defines no checkpoints)" in md

    # the timeline: the final epoch reached (no time in a plain print: done, not pending)
    final = line_of(md, f"| Epoch {n} complete (final evaluation) |")
    assert "⏳" not in final and "projected" not in final, final
    # ... and every epoch with the script's own metrics, as `status` shows them
    head = line_of(md, "| Epoch | train_loss | val_loss |")
    names = [c.strip() for c in head.strip("|").split("|")]
    assert set(e.columns) <= set(names), (names, e.columns)
    for i, ep in enumerate(e.epochs):
        row = line_of(md, f"| {ep} | ")
        cells = dict(zip(names, (c.strip() for c in row.strip("|").split("|")), strict=True))
        assert {k: cells[k] for k in e.columns} == {k: dec4(v[i]) for k, v in e.columns.items()}, row

    # the script's own checklist, not the engine's
    assert "- ✅ Process started" in md and "- ✅ First evaluation" in md
    assert not any(name in md for _, name in PHASES)
