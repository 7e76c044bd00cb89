"""The real engine, end to end on a tiny synthetic market: log stream, checkpoints, SIGTERM, resume, DDP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TINY = [
    "model.hidden_size=16",
    "model.attention_heads=2",
    "data.seq_len=8",
    "data.min_nodes_per_day=10",
    "train.batch.train_batch_size=256",
    "train.batch.val_batch_size=512",
    "train.trainer.progress_every=2",
]


def engine(*args: str, env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run `python -m engine ...` to completion."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env)


@pytest.fixture(scope="module")
def tiny_market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("market") / "tiny.parquet"
    r = engine("synth", "--out", str(out), "--stocks", "40", "--days", "220", "--features", "10", "--seed", "3")
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def two_epoch_run(tiny_market: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    run_dir = tmp_path_factory.mktemp("run")
    r = engine("train", "--max-epochs", "2", "--data-path", str(tiny_market), "--run-dir", str(run_dir), *TINY,
               "train.ema_decay=0.9", env={"SHARPE_WEIGHT": "0.5", "ENABLE_GRAD_MONITOR": "1", "GRAD_MONITOR_EVERY": "3"})
    return r, run_dir


LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\]\[engine\]\[(INFO|WARNING|ERROR|DEBUG)\] - (.*)$")

# Every line type of docs/log-format.md that a healthy run with the grad monitor on emits.
EXPECTED = {
    "start": r"^runctl engine \S+ starting: pid=\d+ run_dir=",
    "config": r"^Config: .*train.trainer.max_epochs=2",
    "env override": r"^\[EnvOverride\] SHARPE_WEIGHT = 0.5 \(via environment\)$",
    "seed": r"^Random seed: 42$",
    "device": r"^Using device: cpu$",
    "gpu": r"^GPU: none \(CPU, \d+ threads\)$",
    "precision": r"^Precision: bf16-mixed$",
    "hidden size": r"^Found hidden_size=16 at path: model.hidden_size$",
    "data source": r"^\[data\] Loading .*tiny.parquet$",
    "files found": r"^📂 Found 1 train, 1 val, 1 test files$",
    "date filter": r"^\[data-filter\] Global minimum date filter: 2016-01-01$",
    "split": r"^\[data\] split train=.* embargo=\d+ days$",
    "scaler start": r"^Fitting OnlineRobustScaler on training data \(max_samples=\d+, rows=\d+\)\.\.\.$",
    "scaler done": r"^OnlineRobustScaler fitted on \d+ samples \(\d+ features\)$",
    "loaders start": r"^Creating data loaders\.\.\.$",
    "loaders done": r"^Data loaders created: train=\d+ days \(\d+ batches\), val=\d+ days \(\d+ batches\), seq_len=8, features=\d+$",
    "model": r"^Model: ATFT-GAT-FAN hidden_size=16 params=[\d,]+$",
    "per-day loss": r"^\[LOSS-PER-DAY\] enabled: .*sharpe=0.5",
    "head init": r"^\[PRED-HEAD-INIT\] horizons=\[1, 5, 10, 20\] dropout=",
    "weight ema": r"^\[EMA\] weight average on: decay=0.9; validation uses the averaged weights",
    "training start": r"^Starting training: max_epochs=2 steps_per_epoch=\d+$",
    "epoch rule": r"^={50}$",
    "epoch start": r"^\[main\] Epoch [12]/2$",
    "learning rate": r"^Learning rate: \d+\.\d{6}$",
    "progress": r"^\[progress\] epoch=\d/2 step=\d+/\d+ \(\d+%\) steps/s=\d+\.\d\d eta=\d\d:\d\d:\d\d loss=",
    "grad monitor": r"^\[GRAD-MONITOR\] step=\d+ epoch=\d batch=\d+ .*prediction_head:l2=",
    "train loss": r"^train/total_loss: \d+\.\d{6}$",
    "val loss": r"^val/loss: \d+\.\d{6}$",
    "metrics h=20": r"^Val metrics \(z\) h=20: MAE=\S+ RMSE=\S+ IC=\S+ RankIC=\S+ SCALE\(yhat/y\)=\d+\.\d\d HIT=",
    "sharpe": r"^Sharpe: (-?\d+\.\d{4}|nan)$",
    "epoch summary": r"^\[epoch-end\] epoch=2/2 train_loss=\S+ val_loss=\S+ sharpe=\S+ sharpe_ann=\S+ time=",
    "checkpoint": r"^Checkpoint saved: .*epoch=002\.ckpt \(epoch=2\)$",
    "best": r"^Best model saved \(main\) \(val_loss: \d+\.\d{4}\)$",
    "complete": r"^=== Training Complete ===$",
    "best loss": r"^Best validation loss: \d+\.\d{4}$",
    "exit": r"^\[exit\] reason=finished status=0 epochs_completed=2$",
}


def messages(stdout: str) -> list[str]:
    out = []
    for line in stdout.splitlines():
        m = LINE.match(line)
        assert m, f"line not in the documented shape: {line!r}"
        out.append(m.group(2))
    return out


def test_two_epoch_run_emits_every_line_type(two_epoch_run: tuple[subprocess.CompletedProcess, Path]) -> None:
    r, run_dir = two_epoch_run
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "\r" not in r.stdout
    msgs = messages(r.stdout)
    missing = [name for name, pat in EXPECTED.items() if not any(re.search(pat, m) for m in msgs)]
    assert not missing, f"line types missing from the log: {missing}"
    assert msgs[-1].startswith("[exit] reason=finished")
    for h in (1, 5, 10, 20):
        assert sum(m.startswith(f"Val metrics (z) h={h}:") for m in msgs) == 2
    assert (run_dir / "checkpoints" / "last.ckpt").exists()
    assert (run_dir / "checkpoints" / "epoch=001.ckpt").exists()
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,train_loss,val_loss,sharpe") and len(rows) == 3


def test_seed_greps_find_their_lines(two_epoch_run: tuple[subprocess.CompletedProcess, Path]) -> None:
    out = two_epoch_run[0].stdout.splitlines()
    assert len([x for x in out if re.search(r"Epoch [0-9]+/2", x)]) == 2
    assert len([x for x in out if "SCALE(yhat/y)" in x]) == 8
    assert len([x for x in out if "Sharpe:" in x]) == 2
    assert len([x for x in out if "IC=" in x and "h=20" in x]) == 2
    assert any("[LOSS-PER-DAY]" in x for x in out) and any("[PRED-HEAD-INIT]" in x for x in out)
    assert any("prediction_head" in x and "[GRAD-MONITOR]" in x for x in out)


def test_sigterm_mid_epoch_then_resume(tiny_market: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    log_path = tmp_path / "run.log"
    args = ["train", "--max-epochs", "3", "--data-path", str(tiny_market), "--run-dir", str(run_dir), *TINY,
            "train.trainer.progress_every=1", "train.ema_decay=0.5"]  # the average survives a resume too
    with log_path.open("w") as fh:
        p = subprocess.Popen([sys.executable, "-m", "engine", *args], stdout=fh, stderr=subprocess.STDOUT,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            text = log_path.read_text()
            if "[main] Epoch 2/3" in text and "[progress] epoch=2/3 step=2/" in text:
                break
            assert p.poll() is None, text[-2000:]
            time.sleep(0.05)
        else:
            pytest.fail("epoch 2 never started")
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=60) == 143
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    text = log_path.read_text()
    assert "[signal] SIGTERM received" in text
    assert "[exit] reason=terminated status=143" in text
    assert re.search(r"Checkpoint saved: .*interrupted.ckpt \(epoch=2, step=\d+, mid-epoch\)", text)

    r = engine(*args, "--resume")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    msgs = messages(r.stdout)
    assert any(re.match(r"Resuming from checkpoint .*last.ckpt \(completed_epochs=1, next_epoch=2, global_step=\d+\)", m) for m in msgs)
    starts = [m for m in msgs if m.startswith("[main] Epoch")]
    assert starts[0] == "[main] Epoch 2/3" and starts[-1] == "[main] Epoch 3/3"
    assert msgs[-1] == "[exit] reason=finished status=0 epochs_completed=3"
    rows = (run_dir / "metrics.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [1, 2, 3]


def test_ddp_two_cpu_processes(tiny_market: Path, tmp_path: Path) -> None:
    r = engine("train", "--max-epochs", "1", "--data-path", str(tiny_market), "--run-dir", str(tmp_path / "ddp"),
               *TINY, "train.trainer.accelerator=cpu", "train.trainer.devices=2", "train.trainer.strategy=ddp",
               "train.trainer.precision=32-true")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    msgs = messages(r.stdout)
    # rank 1 stays silent: one epoch start, one exit line
    assert sum(m == "[main] Epoch 1/1" for m in msgs) == 1
    assert msgs[-1] == "[exit] reason=finished status=0 epochs_completed=1"
    assert (tmp_path / "ddp" / "checkpoints" / "epoch=001.ckpt").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--data-path", "/nonexistent/panel.parquet"], ["/nonexistent/panel.parquet"]),
        (["model.hiden_size=8"], ["model.hidden_size"]),
        (["train.trainer.precision=fp8"], ["fp8", "bf16-mixed"]),
        (["data.min_date=2100-01-01"], ["date"]),
    ],
)
def test_bad_input_one_line_nothing_written(tiny_market: Path, tmp_path: Path, args: list[str], words: list[str]) -> None:
    run_dir = tmp_path / "run"
    base = ["--data-path", str(tiny_market)] if "--data-path" not in args else []
    r = engine("train", "--run-dir", str(run_dir), *base, *args, timeout=120)
    assert r.returncode == 2
    assert "Traceback" not in r.stdout + r.stderr
    errors = [m for m in messages(r.stdout) if m.startswith("[error]")]
    assert len(errors) == 1
    for w in words:
        assert w in errors[0]
    assert messages(r.stdout)[-1] == "[exit] reason=error status=2 epochs_completed=0"
    assert not run_dir.exists()


def test_corrupt_parquet_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 this is not a parquet file")
    r = engine("train", "--data-path", str(bad), "--run-dir", str(tmp_path / "run"), timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stdout + r.stderr
    assert "bad.parquet" in [m for m in messages(r.stdout) if m.startswith("[error]")][0]


def test_controller_reads_the_real_engine_log(two_epoch_run: tuple[subprocess.CompletedProcess, Path],
                                              tmp_path: Path) -> None:
    """The contract end to end: the controller's parser turns a real engine log into the run state."""
    from tui.state.follow import read_state

    log = tmp_path / "run.log"
    log.write_text(two_epoch_run[0].stdout)
    st = read_state(log)
    assert st.state == "finished" and st.exit_status == 0
    assert st.max_epochs == 2 and [r.epoch for r in st.epochs] == [1, 2]
    assert all(st.phases.values()), st.phases
    for rec in st.epochs:
        assert rec.train_loss is not None and rec.val_loss is not None and rec.sharpe is not None
        assert sorted(rec.horizons) == [1, 5, 10, 20]
        assert all(m.ic is not None and m.scale is not None for m in rec.horizons.values())
    assert st.errors == 0


def test_non_finite_loss_stops_with_a_clear_error(tiny_market: Path, tmp_path: Path) -> None:
    from tui.state.follow import read_state

    r = engine("train", "--max-epochs", "2", "--data-path", str(tiny_market), "--run-dir", str(tmp_path / "run"),
               *TINY, "train.trainer.precision=32-true", "train.optimizer.lr=1e30",
               "train.trainer.gradient_clip_val=0")
    assert r.returncode == 3
    msgs = messages(r.stdout)
    errors = [m for m in msgs if m.startswith("[error]")]
    assert len(errors) == 1 and re.match(r"\[error\] non-finite loss: train/total_loss=nan at epoch=1 step=\d+", errors[0])
    assert msgs[-1] == "[exit] reason=error status=3 epochs_completed=0"
    log = tmp_path / "run.log"
    log.write_text(r.stdout)
    st = read_state(log)
    assert st.state == "crashed" and "non-finite loss" in (st.error or "")
