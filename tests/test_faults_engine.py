"""Issue 18 with the real engine (slow: one `tiny` run and its resume, ~30 s on 2 cores).

Its checkpoints go to a tmpfs too small for epoch 2's: the engine ends with `[exit]
reason=disk_full` and its exit record, the status says "disk full while saving epoch 2" and
recommends a resume (last.ckpt is epoch 1's, whole). Then, with space again and last.ckpt made
garbage, `runctl resume` names it, the engine continues from the intact epoch=001.ckpt, the log's
cut last line is ended first, and the run finishes with both epochs.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.waiting import wait_until
from tui.runs.store import RunStore


@pytest.fixture
def small_runs(logs_dir: Path):  # noqa: ANN201
    """`_logs/runs` on a 400 KB tmpfs: one tiny checkpoint and last.ckpt fit, a second does not."""
    runs = logs_dir / "runs"
    runs.mkdir(parents=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(runs)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or r.returncode}); needs root")
    try:
        yield runs
    finally:
        subprocess.run(["umount", "-l", str(runs)], capture_output=True)


@pytest.mark.slow
def test_disk_full_mid_checkpoint_then_a_damaged_last_ckpt(small_runs: Path, logs_dir: Path, runctl) -> None:
    r = runctl("launch", "tiny", "--json")
    assert r.returncode == 0, r.stderr
    run = json.loads(r.stdout)["run"]
    store = RunStore(logs_dir)
    assert wait_until(lambda: not store.is_running(store.get(run)), 240, 0.5)
    data = json.loads(runctl("status", run, "--json").stdout)
    assert data["state"] == "crashed" and data["exit_reason"] == "disk_full", data["error"]
    assert data["error"].startswith("disk full while saving epoch 2: ") and "free on " in data["error"]
    assert data["recommendation"]["action"] == "resume" and data["resume"]["from"].endswith("last.ckpt")
    ckpts = Path(store.get(run).run_dir) / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["epoch=001.ckpt", "last.ckpt"]  # nothing half-written
    record = json.loads(store.exit_path(run).read_text())
    assert (record["reason"], record["attempt"], record["writer"]) == ("disk_full", 1, "engine")
    log = store.log_path(run)
    assert "[exit] reason=disk_full status=3" in log.read_text()

    subprocess.run(["mount", "-o", "remount,size=4m", str(small_runs)], check=True)  # space again
    (ckpts / "last.ckpt").write_bytes(b"PK\x03\x04 not really a zip")
    with log.open("a") as f:
        f.write("[2026-11-24 05:00:00,000][engine][INFO] - Checkpoint sa")  # a line the full disk cut
    r = runctl("resume", run, "--json")
    assert r.returncode == 0, r.stderr
    assert len(r.stderr.splitlines()) == 1 and "last.ckpt is damaged" in r.stderr and "epoch=001.ckpt" in r.stderr
    assert wait_until(lambda: not store.is_running(store.get(run)), 240, 0.5)
    text = log.read_text()
    assert "Checkpoint sa\n[" in text  # the resumed engine's first line starts a line of its own
    assert "[resume] checkpoint" in text and f"Resuming from checkpoint {ckpts / 'epoch=001.ckpt'}" in text
    st = store.state(store.get(run))
    assert st.state == "finished" and [e.epoch for e in st.epochs if e.validated] == [1, 2]
    record = json.loads(store.exit_path(run).read_text())
    assert (record["reason"], record["attempt"]) == ("finished", 2)
    status = runctl("status", run).stdout
    assert "resumed " in status and "last.ckpt is damaged" in status
