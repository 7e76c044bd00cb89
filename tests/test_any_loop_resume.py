"""Kill, then resume, of real training loops: recorded outputs (tests/data/any_loop, README there)
read through a run's store into `status`, as `test_any_loop` does.

- the plain PyTorch loop killed in epoch 3 and resumed from its own `ckpt.pt` (stdout + the two
  processes' SummaryWriter files side by side), and the same loop resumed with no checkpoint;
- plain Lightning (default logger) resumed from its `epoch=3-step=32.ckpt` for two more epochs: the
  rich flavour (metrics only in the two event files) and the tqdm flavour (bars only).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_any_loop import (
    DATA,
    EXIT,
    KILLED,
    put_run,
    status,
    status_text,
    torch_file,
    write_presets,
)

from tui.cli.main import main
from tui.state.follow import read_state

PLAIN_TB = {"plain_loop_killed.tfevents": "tb/events.out.tfevents.1796491945.vm.9978.0",
            "plain_loop_resume.tfevents": "tb/events.out.tfevents.1796491949.vm.10187.0"}
LIT_TB = {"lightning_default.tfevents": "lightning_logs/version_0/events.out.tfevents.1796491928.vm.9856.0",
          "lightning_resume.tfevents": "lightning_logs/version_1/events.out.tfevents.1796491932.vm.9870.0"}
NO_CKPT = "[2026-12-05 17:40:00,000][runctl][ERROR] - [exit] reason=error status=2\n"  # the shim's


@pytest.fixture
def presets(tmp_path: Path) -> Path:
    return write_presets(tmp_path)


def evaluations(data: dict) -> list[tuple[int, float]]:
    return [(e["epoch"], e["metrics"]["val_loss"]) for e in data["epochs"] if e["validated"]]


def test_plain_loop_killed_then_resumed_from_its_own_checkpoint(capsys, tmp_path: Path, presets: Path) -> None:
    """Killed in epoch 3 (its ckpt.pt holds epoch 2): `resume` is recommended, from that file; after
    the resumed process, epochs 3 and 4 follow 1 and 2, each evaluation once, with the numbers of
    the unbroken run; the two SummaryWriter files (steps 17-21 in both) give each name's latest."""
    logs = tmp_path / "_logs"
    killed_tb = {k: v for k, v in PLAIN_TB.items() if "killed" in k}
    m = put_run(logs, presets, "plainr", ["plain_loop_killed.log"], end=KILLED, files=killed_tb)
    ckpt = torch_file(Path(m.run_dir) / "ckpt.pt", epoch=2)
    data = status(capsys, logs, presets, m.run)
    assert data["state"] == "killed" and [e for e, _ in evaluations(data)] == [1, 2]
    assert data["phases"]["checkpoint"] is True
    assert data["resume"] == {"from": str(ckpt), "blocked": None, "last": None}
    assert data["recommendation"]["action"] == "resume"
    assert data["latest"]["val/acc"]["step"] == 16 and data["latest"]["train/loss"]["step"] == 21

    m = put_run(tmp_path / "resumed", presets, "plainr", ["plain_loop_killed.log", "plain_loop_resume.log"],
                between=KILLED, files=PLAIN_TB)
    torch_file(Path(m.run_dir) / "ckpt.pt", epoch=4)
    data = status(capsys, tmp_path / "resumed", presets, m.run)
    assert data["state"] == "finished" and data["epoch"] == 4
    once = evaluations(data)
    assert [e for e, _ in once] == [1, 2, 3, 4]
    whole = put_run(tmp_path / "whole", presets, "plain", ["plain_loop.log"])
    unbroken = evaluations(status(capsys, tmp_path / "whole", presets, whole.run))
    assert once == [(e, pytest.approx(v, abs=1e-4)) for e, v in unbroken]
    assert data["latest"]["val/acc"]["step"] == 32 and data["latest"]["train/loss"]["step"] == 32
    assert [c["status"] for c in data["criteria"]] == ["met"]
    assert data["phases"]["checkpoint"] is True


def test_no_checkpoint_to_resume_from_is_not_told_to_resume(capsys, tmp_path: Path, presets: Path) -> None:
    """The plain loop with `checkpoint_files` and nothing matching it: not `resume` (the script would
    only say `--resume but no checkpoint`, as it did), but launch again, and why."""
    logs = tmp_path / "_logs"
    m = put_run(logs, presets, "plainr", ["plain_loop_nockpt.log"], end=NO_CKPT)
    data = status(capsys, logs, presets, m.run)
    assert data["state"] == "crashed" and data["phases"]["checkpoint"] is False
    assert data["resume"]["from"] is None and data["resume"]["blocked"] == "no checkpoint to resume from"
    rec = data["recommendation"]
    assert rec["action"] == "launch" and rec["command"] == "runctl launch plainr"
    assert "no checkpoint to resume from" in rec["why"]
    assert "Recommendation: launch" in status_text(capsys, logs, presets, m.run)
    # killed before it wrote one: the same
    logs = tmp_path / "killed"
    m = put_run(logs, presets, "plainr", ["plain_loop_killed.log"], end=KILLED)
    data = status(capsys, logs, presets, m.run)
    assert data["state"] == "killed" and data["recommendation"]["action"] == "launch"
    assert data["resume"]["blocked"] == "no checkpoint to resume from"
    assert main(["--logs", str(logs), "--presets", str(presets), "resume", m.run]) == 2
    assert "checkpoint" in capsys.readouterr().err


def test_lightning_resumed_epochs_continue(capsys, tmp_path: Path, presets: Path) -> None:
    """rich prints nothing per epoch: epochs 1-4 from version_0's event file, 5-6 from the resumed
    process's version_1, each evaluation once, at its own step."""
    logs = tmp_path / "_logs"
    m = put_run(logs, presets, "lit", ["lightning_default.log", "lightning_resume.log"], between=EXIT, files=LIT_TB)
    data = status(capsys, logs, presets, m.run)
    assert data["state"] == "finished" and data["epoch"] == 6
    evals = [e for e in data["epochs"] if e["validated"]]
    assert [e["epoch"] for e in evals] == [1, 2, 3, 4, 5, 6]
    assert [e["step"] for e in evals] == [7, 15, 23, 31, 39, 47]
    assert evals[3]["metrics"]["val_loss"] == pytest.approx(0.1418, abs=1e-4)  # the first process's
    assert all(e["metrics"]["val_loss"] < evals[3]["metrics"]["val_loss"] for e in evals[4:])
    assert data["latest"]["train_loss"]["step"] == 47
    assert data["criteria"][0]["status"] == "met"


def test_lightning_tqdm_bars_resumed(capsys, tmp_path: Path, presets: Path) -> None:
    """Lightning without rich: only tqdm bars (0-based `Epoch N:`, nested validation bars, the
    closing line glued to the last frame), no metric. The training bar is the progress (8 steps,
    never a validation bar's 4), the resumed process's bar goes on from epoch 4; no evaluation
    point is made up; a live run reads `training` from its first bar."""
    logs = tmp_path / "_logs"
    m = put_run(logs, presets, "lit", ["lightning_default_tqdm.log"])
    data = status(capsys, logs, presets, m.run)
    assert data["state"] == "finished" and data["epochs"] == []
    assert (data["progress"]["epoch"], data["progress"]["step"], data["progress"]["steps"]) == (3, 8, 8)
    assert data["phases"]["first_step"] is True and data["phases"]["first_eval"] is False
    assert data["criteria"][0]["status"] == "pending"

    m = put_run(tmp_path / "resumed", presets, "lit", ["lightning_default_tqdm.log", "lightning_resume_tqdm.log"],
                between=EXIT)
    data = status(capsys, tmp_path / "resumed", presets, m.run)
    assert data["state"] == "finished" and data["epochs"] == []
    assert (data["progress"]["epoch"], data["progress"]["step"], data["progress"]["steps"]) == (5, 8, 8)

    text = (DATA / "lightning_default_tqdm.log").read_bytes()
    live = tmp_path / "live.log"
    live.write_bytes(text[:text.index(b"Epoch 1:") + 200])  # while in its second epoch
    st = read_state(live)
    assert st.state == "training" and st.progress.epoch == 1 and st.progress.steps == 8
