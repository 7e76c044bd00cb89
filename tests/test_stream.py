"""engine.stream.RunctlCallback in a user's own script (tests/scripts/user_train.py), run for real.

Real subprocesses, real SIGTERM, real checkpoints and resumes; plus the engine's own [metrics] line
and the callback module's import hygiene.
"""

from __future__ import annotations

import csv
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "scripts" / "user_train.py"

pytestmark = pytest.mark.slow

LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\]\[(\w+)\]\[(INFO|WARNING|ERROR|DEBUG)\] - (.*)$")
PROGRESS = re.compile(r"^\[progress\] epoch=(\d+)/(\d+) step=(\d+)/12 \(\d+%\) steps/s=\d+\.\d\d "
                      r"eta=\d\d:\d\d:\d\d loss=\d+\.\d{4}$")
METRICS = re.compile(r"^\[metrics\] epoch=(\d+)((?: [A-Za-z0-9_./-]+=\S+)*)$")
EPOCH_END = re.compile(r"^\[epoch-end\] epoch=(\d+)/(\d+) train_loss=(\d+\.\d{6}) val_loss=(\d+\.\d{6}) "
                       r"sharpe=nan sharpe_ann=nan time=\d+\.\ds$")


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RUNCTL_RUN_DIR"}
    return {**env, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT), **(extra or {})}


def user(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the user script to completion."""
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, env=_env(env), cwd=cwd)


def messages(stdout: str, logger: str = "runctl") -> list[str]:
    """The messages of stdout; every line must have the Hydra shape and the given logger."""
    assert "\r" not in stdout
    out = []
    for line in stdout.splitlines():
        m = LINE.match(line)
        assert m and m.group(1) == logger, f"line not in the documented shape: {line!r}"
        out.append(m.group(3))
    return out


def metrics_of(msgs: list[str]) -> dict[int, dict[str, str]]:
    """[metrics] lines -> {epoch: {name: value text}}; each epoch at most once."""
    out: dict[int, dict[str, str]] = {}
    for msg in msgs:
        m = METRICS.match(msg)
        if msg.startswith("[metrics]"):
            assert m, msg
        if m:
            epoch = int(m.group(1))
            assert epoch not in out, f"epoch {epoch} reported twice"
            pairs = [kv.split("=", 1) for kv in m.group(2).split()]
            names = [k for k, _ in pairs]
            assert names == sorted(names), msg
            out[epoch] = dict(pairs)
    return out


def epochs_of(msgs: list[str], prefix: str) -> list[int]:
    pat = {"[main] Epoch": r"^\[main\] Epoch (\d+)/\d+$", "[epoch-end]": r"^\[epoch-end\] epoch=(\d+)/"}[prefix]
    return [int(m.group(1)) for m in (re.match(pat, x) for x in msgs) if m]


def wait_for(log_path: Path, proc: subprocess.Popen, needle: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_path.read_text()
        if needle in text:
            return
        assert proc.poll() is None, f"exited {proc.returncode} before {needle!r}:\n{text[-2000:]}"
        time.sleep(0.02)
    pytest.fail(f"{needle!r} never appeared:\n{log_path.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    run_dir = tmp_path_factory.mktemp("user") / "run"
    return user("--run-dir", str(run_dir), "--max-epochs", "3"), run_dir


def test_user_script_writes_the_whole_stream(finished_run: tuple[subprocess.CompletedProcess, Path]) -> None:
    r, run_dir = finished_run
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    msgs = messages(r.stdout)
    assert re.match(rf"^runctl callback \S+ starting: pid=\d+ run_dir={re.escape(str(run_dir))}$", msgs[0])
    assert "Starting training: max_epochs=3 steps_per_epoch=12" in msgs
    assert msgs.count("=" * 50) == 3
    assert epochs_of(msgs, "[main] Epoch") == [1, 2, 3]
    assert msgs.count("Learning rate: 0.100000") == 3
    progress = [PROGRESS.match(m) for m in msgs if m.startswith("[progress]")]
    assert all(progress) and [(p.group(1), p.group(3)) for p in progress if p] == [
        (str(e), str(s)) for e in (1, 2, 3) for s in (4, 8, 12)]
    assert len([m for m in msgs if re.match(r"^train/total_loss: \d+\.\d{6}$", m)]) == 3
    assert len([m for m in msgs if re.match(r"^val/loss: \d+\.\d{6}$", m)]) == 3
    ends = [EPOCH_END.match(m) for m in msgs if m.startswith("[epoch-end]")]
    assert all(ends) and [int(e.group(1)) for e in ends if e] == [1, 2, 3]
    metrics = metrics_of(msgs)
    assert sorted(metrics) == [1, 2, 3]
    for e in ends:
        assert e is not None
        row = metrics[int(e.group(1))]
        assert {"train_acc", "train_loss", "val_acc", "val_loss"} <= set(row)
        assert 0.0 <= float(row["val_acc"]) <= 1.0
        assert math.isclose(float(row["train_loss"]), float(e.group(3)), rel_tol=1e-5)
        assert math.isclose(float(row["val_loss"]), float(e.group(4)), rel_tol=1e-5)
    ckpts = run_dir / "checkpoints"
    for e in (1, 2, 3):
        assert f"Checkpoint saved: {ckpts.resolve()}/epoch={e:03d}.ckpt (epoch={e})" in msgs
        assert (ckpts / f"epoch={e:03d}.ckpt").is_file()
    assert sorted(p.name for p in ckpts.iterdir()) == ["epoch=001.ckpt", "epoch=002.ckpt", "epoch=003.ckpt", "last.ckpt"]
    assert msgs[-3] == "=== Training Complete ==="
    assert re.match(r"^Best validation loss: \d+\.\d{4}$", msgs[-2])
    assert msgs[-1] == "[exit] reason=finished status=0 epochs_completed=3"


def test_controller_follows_the_user_script(finished_run: tuple[subprocess.CompletedProcess, Path],
                                            tmp_path: Path) -> None:
    """The TUI's own reader turns the user script's log into the run state, as for the engine."""
    from tui.state.follow import read_state

    log = tmp_path / "run.log"
    log.write_text(finished_run[0].stdout)
    st = read_state(log)
    assert st.state == "finished" and st.exit_status == 0
    assert st.max_epochs == 3 and [rec.epoch for rec in st.epochs] == [1, 2, 3]
    assert all(rec.train_loss is not None and rec.val_loss is not None for rec in st.epochs)
    assert st.errors == 0


def test_sigterm_mid_epoch_then_resume_from_interrupted(tmp_path: Path) -> None:
    """RUNCTL_RUN_DIR (no --run-dir): SIGTERM in epoch 2 -> interrupted.ckpt, 143; the resume ends it."""
    run_dir, cwd = tmp_path / "run", tmp_path / "cwd"
    cwd.mkdir()
    env = {"RUNCTL_RUN_DIR": str(run_dir)}
    log_path = tmp_path / "first.log"
    with log_path.open("w") as fh:
        p = subprocess.Popen([sys.executable, str(SCRIPT), "--max-epochs", "3", "--sleep", "0.05"], stdout=fh,
                             stderr=subprocess.DEVNULL, env=_env(env), cwd=cwd, start_new_session=True)
    try:
        wait_for(log_path, p, "[progress] epoch=2/3 step=4/12")
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=60) == 143
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    first = messages(log_path.read_text())
    ckpts = run_dir / "checkpoints"
    interrupted = ckpts / "interrupted.ckpt"
    assert interrupted.is_file() and (ckpts / "last.ckpt").is_file()
    sig = first.index("[signal] SIGTERM received: saving checkpoint and stopping")
    assert re.match(rf"^Checkpoint saved: {re.escape(str(interrupted.resolve()))} \(epoch=2, step=\d+, mid-epoch\)$",
                    first[sig + 1])
    assert first[-1] == "[exit] reason=terminated status=143 epochs_completed=1"
    assert sorted(metrics_of(first)) == [1] and epochs_of(first, "[epoch-end]") == [1]

    r = user("--max-epochs", "3", "--ckpt", str(interrupted), env=env, cwd=cwd)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    second = messages(r.stdout)
    assert re.match(r"^Resuming from checkpoint .*interrupted\.ckpt \(completed_epochs=1, next_epoch=2, "
                    r"global_step=1[3-9]\)$", second[1]), second[:3]
    assert epochs_of(second, "[main] Epoch") == [2, 3]  # epoch 2 goes on where it stopped
    steps = [int(m.group(3)) for m in map(PROGRESS.match, second) if m and m.group(1) == "2"]
    assert steps and steps[0] > 4 and steps[-1] == 12
    # every epoch validated exactly once over the two logs
    both = first + second
    assert sorted(metrics_of(first)) + sorted(metrics_of(second)) == [1, 2, 3]
    assert epochs_of(both, "[epoch-end]") == [1, 2, 3]
    assert len([m for m in both if m.startswith("val/loss: ")]) == 3
    assert second[-1] == "[exit] reason=finished status=0 epochs_completed=3"
    assert not interrupted.exists(), "a stale interrupted.ckpt would be resumed from again"
    assert list(cwd.iterdir()) == []


def test_resume_from_last_ckpt_skips_the_completed_epoch(finished_run: tuple[subprocess.CompletedProcess, Path],
                                                         tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run[1], run_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    r = user("--run-dir", str(run_dir), "--max-epochs", "4", "--ckpt", str(last))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    msgs = messages(r.stdout)
    assert f"Resuming from checkpoint {last} (completed_epochs=3, next_epoch=4, global_step=36)" in msgs
    assert epochs_of(msgs, "[main] Epoch") == [4]
    assert epochs_of(msgs, "[epoch-end]") == [4] and sorted(metrics_of(msgs)) == [4]
    assert len([m for m in msgs if m.startswith("val/loss: ")]) == 1
    assert (run_dir / "checkpoints" / "epoch=004.ckpt").is_file()
    assert msgs[-1] == "[exit] reason=finished status=0 epochs_completed=4"


def test_sigterm_before_training_starts_still_ends_with_143(tmp_path: Path) -> None:
    """SIGTERM while the module's setup runs (Lightning's handler not yet in place): 143, final line."""
    run_dir = tmp_path / "run"
    log_path = tmp_path / "run.log"
    with log_path.open("w") as fh:
        p = subprocess.Popen([sys.executable, str(SCRIPT), "--run-dir", str(run_dir), "--max-epochs", "2",
                              "--setup-sleep", "30"], stdout=fh, stderr=subprocess.DEVNULL, env=_env(),
                             start_new_session=True)
    try:
        wait_for(log_path, p, "runctl callback ")
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=20) == 143
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    msgs = messages(log_path.read_text())
    assert msgs[-2:] == ["[signal] SIGTERM received: saving checkpoint and stopping",
                         "[exit] reason=terminated status=143 epochs_completed=0"]
    assert not (run_dir / "checkpoints" / "interrupted.ckpt").exists()  # nothing trained, nothing to save


def test_callback_alone_exits_143_on_sigterm(tmp_path: Path) -> None:
    """Without run_fit (a bare trainer.fit), SIGTERM still ends the process with 143 and its lines."""
    run_dir = tmp_path / "run"
    log_path = tmp_path / "run.log"
    with log_path.open("w") as fh:
        p = subprocess.Popen([sys.executable, str(SCRIPT), "--run-dir", str(run_dir), "--max-epochs", "2",
                              "--sleep", "0.05", "--plain-fit"], stdout=fh, stderr=subprocess.DEVNULL, env=_env(),
                             start_new_session=True)
    try:
        wait_for(log_path, p, "[progress] epoch=1/2 step=4/12")
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=60) == 143
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    msgs = messages(log_path.read_text())
    assert msgs[-1] == "[exit] reason=terminated status=143 epochs_completed=0"
    assert (run_dir / "checkpoints" / "interrupted.ckpt").is_file()


def test_failure_in_training_exits_3_with_one_error_line(tmp_path: Path) -> None:
    r = user("--run-dir", str(tmp_path / "run"), "--max-epochs", "3", "--fail-epoch", "2")
    assert r.returncode == 3
    msgs = messages(r.stdout)
    errors = [m for m in msgs if m.startswith("[error]")]
    assert errors == ["[error] training failed: RuntimeError: deliberate failure in epoch 2"]
    assert msgs[-1] == "[exit] reason=error status=3 epochs_completed=1"
    assert "Traceback" in r.stderr and "deliberate failure" in r.stderr


def test_missing_checkpoint_is_bad_input(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    r = user("--run-dir", str(run_dir), "--max-epochs", "2", "--ckpt", str(tmp_path / "nope.ckpt"))
    assert r.returncode == 2 and "Traceback" not in r.stdout + r.stderr
    assert messages(r.stdout) == [f"[error] bad input: checkpoint not found: {tmp_path / 'nope.ckpt'}",
                                  "[exit] reason=error status=2 epochs_completed=0"]
    assert not run_dir.exists()


def test_own_model_checkpoint_is_announced_not_duplicated(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    r = user("--run-dir", str(run_dir), "--max-epochs", "2", "--own-checkpoint")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ckpts = (run_dir / "checkpoints").resolve()
    saved = [m for m in messages(r.stdout) if m.startswith("Checkpoint saved: ")]
    assert saved == [f"Checkpoint saved: {ckpts}/own-epoch=0.ckpt (epoch=1)", f"Checkpoint saved: {ckpts}/last.ckpt (epoch=1)",
                     f"Checkpoint saved: {ckpts}/own-epoch=1.ckpt (epoch=2)", f"Checkpoint saved: {ckpts}/last.ckpt (epoch=2)"]
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.ckpt", "own-epoch=0.ckpt", "own-epoch=1.ckpt"]


def test_without_the_callback_the_script_is_plain_lightning(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    r = user("--run-dir", str(run_dir), "--max-epochs", "2", "--no-callback")
    assert r.returncode == 0, r.stderr[-3000:]
    assert not any(LINE.match(line) for line in r.stdout.splitlines())
    with next(run_dir.glob("version_*/metrics.csv")).open() as fh:
        rows = list(csv.DictReader(fh))
    assert {"epoch", "val_acc", "val_loss", "train_acc"} <= set(rows[0])
    assert sorted({int(row["epoch"]) for row in rows}) == [0, 1]
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()


def test_engine_run_writes_the_metrics_line(tmp_path: Path) -> None:
    """The bundled engine's stream carries the same [metrics] line, with every metrics.csv column."""
    market = tmp_path / "tiny.parquet"
    env = _env()
    engine = [sys.executable, "-m", "engine"]
    r = subprocess.run([*engine, "synth", "--out", str(market), "--stocks", "40", "--days", "220", "--features", "10",
                        "--seed", "3"], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    run_dir = tmp_path / "run"
    r = subprocess.run([*engine, "train", "--max-epochs", "1", "--data-path", str(market), "--run-dir", str(run_dir),
                        "model.hidden_size=16", "model.attention_heads=2", "data.seq_len=8", "data.min_nodes_per_day=10",
                        "train.batch.train_batch_size=256", "train.batch.val_batch_size=512"],
                       capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    msgs = messages(r.stdout, logger="engine")
    metrics = metrics_of(msgs)
    assert sorted(metrics) == [1]
    assert msgs.index(next(m for m in msgs if m.startswith("[metrics]"))) < msgs.index(
        next(m for m in msgs if m.startswith("[epoch-end]")))
    with (run_dir / "metrics.csv").open() as fh:
        row = next(csv.DictReader(fh))
    assert set(row) - {"epoch"} <= set(metrics[1]), sorted(set(row) - set(metrics[1]))
    for name in ("ic_h20", "rank_ic_h1", "scale_h5", "sharpe", "train_loss", "val_loss"):
        assert metrics[1][name] == format(float(row[name]), ".6g"), name


def test_metrics_line_format() -> None:
    from engine.stream import metric_name, metrics_line

    assert metric_name("val/acc@top 5") == "val/acc_top_5" and metric_name("") == "_"
    line = metrics_line(3, {"val/acc": 0.123456789, "b c": 1234567.0, "a": math.nan, "z": math.inf,
                            "m": -math.inf, "epoch": 9.0, "x-y.z": 1e-7, "ünï": 2})
    assert line == "[metrics] epoch=3 _n_=2 a=nan b_c=1.23457e+06 m=-inf val/acc=0.123457 x-y.z=1e-07 z=inf"
    assert metrics_line(1, {}) == "[metrics] epoch=1"


def test_user_mistakes_get_one_line_errors() -> None:
    import lightning as L

    from engine.stream import RunctlCallback, run_fit

    with pytest.raises(ValueError, match=r"^RunctlCallback: progress_every must be a positive integer, got 0$"):
        RunctlCallback(progress_every=0)
    with pytest.raises(TypeError, match=r"^RunctlCallback: logger must be a logging.Logger, got str$"):
        RunctlCallback(logger="runctl")  # type: ignore[arg-type]
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    with pytest.raises(ValueError, match=r"^run_fit: the Trainer has no RunctlCallback"):
        run_fit(trainer, L.LightningModule())


def test_stream_imports_nothing_of_the_engine_model_in_a_fresh_interpreter() -> None:
    code = ("import sys, engine.stream\n"
            "print(','.join(sorted(m for m in sys.modules if m == 'engine' or m.startswith('engine.'))))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=_env(), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "engine,engine.logstream,engine.runfiles,engine.stream"
