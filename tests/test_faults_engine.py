"""Issue 18 with the real engine (slow: one `tiny` run and its resume, ~30 s on 2 cores).

Its checkpoints go to a tmpfs too small for epoch 2's: the engine ends with `[exit]
reason=disk_full` and its exit record, the status says "disk full while saving epoch 2" and
recommends a resume (last.ckpt is epoch 1's, whole). Then, with space again and last.ckpt made
garbage, `runctl resume` names it, the engine continues from the intact epoch=001.ckpt, the log's
cut last line is ended first, and the run finishes with both epochs.

The exit record's write-in-place fallback (engine.runfiles.write_record) is also tested alone,
fast: the record's temp file cannot be written (ENOSPC), the placeholder's bytes take it.
"""

from __future__ import annotations

import errno
import json
import subprocess
import tempfile
from pathlib import Path

import pytest

from engine import runfiles
from tests.test_faults import tmpfs_at
from tests.waiting import wait_until
from tui.runs.store import Manifest, RunStore


@pytest.fixture
def small_runs(logs_dir: Path):  # noqa: ANN201
    """`_logs/runs` on a 400 KB tmpfs: one tiny checkpoint and last.ckpt fit, a second does not."""
    with tmpfs_at(logs_dir / "runs", "400k") as runs:
        yield runs


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


def test_the_engines_exit_record_is_written_in_place_when_no_new_file_fits(
        logs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine ends on a disk with no room for the record's temp file (its write fails with
    ENOSPC): the record goes over the placeholder runctl reserved (docs/cli.md: the exit record),
    and the run reads `finished` from it though its log has no final line. Without a placeholder
    nothing is written (and nothing raises)."""
    store = RunStore(logs_dir)
    store.training_dir.mkdir(parents=True)
    run = "tiny_20261124_031000"
    log = store.log_path(run)
    data = Path(__file__).resolve().parent / "data" / "app_tiny_finished.log"
    log.write_text("".join(data.read_text().splitlines(keepends=True)[:40]))  # epoch 1, no final line
    m = Manifest(run=run, name="tiny", preset="tiny", log=str(log), run_dir=str(store.run_dir(run)),
                 pid_file=str(store.pid_path("tiny")), created_at=1.7e9, host="h",
                 history=({"event": "launch", "at": 1.7e9},))
    store.save(m)
    exit_file = store.exit_path(run)
    runfiles.write_record(exit_file, runfiles.placeholder(1), reserve=True)  # as the launcher does
    assert store.state(m).state == "crashed"  # no record yet: the log decides

    def full(*_a: object, **_kw: object) -> tuple[int, str]:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setenv(runfiles.EXIT_FILE_ENV, str(exit_file))
    monkeypatch.setenv(runfiles.ATTEMPT_ENV, "1")
    with monkeypatch.context() as mp:
        mp.setattr(tempfile, "mkstemp", full)
        assert runfiles.write_exit("finished", 0, epochs_completed=2) is True
    assert exit_file.stat().st_size == runfiles.RESERVE  # over the reserved bytes, not a new file
    assert [p.name for p in store.training_dir.iterdir() if p.name.endswith(".tmp")] == []
    record = runfiles.read_exit(exit_file)
    assert record is not None
    assert (record["reason"], record["status"], record["writer"], record["attempt"], record["epochs_completed"]) \
        == ("finished", 0, "engine", 1, 2)
    st = RunStore(logs_dir).state(m)
    assert st.state == "finished" and st.exit_reason == "finished" and st.error is None

    exit_file.unlink()  # no placeholder to write over: not written, no exception
    with monkeypatch.context() as mp:
        mp.setattr(tempfile, "mkstemp", full)
        assert runfiles.write_exit("finished", 0) is False
    assert not exit_file.exists()
