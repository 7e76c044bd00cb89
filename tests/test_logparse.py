"""tui.log (line -> event) and tui.state (the fold): every line type of both formats, and the reducer's lifecycle."""

from __future__ import annotations

import math

import pytest

from tui.log import events as evt
from tui.log import parse, prefix
from tui.state.run import RunState

H = "[2026-11-24 04:21:51,473][engine][INFO] - "
W = "2025-10-28 23:54:09,473 - __main__ - INFO - "


def ev(msg: str, prefix: str = H) -> evt.Event | None:
    return parse.parse_line(prefix + msg)


def fold(lines: list[str]) -> RunState:
    st = RunState()
    for e in parse.parse_lines(lines):
        st.apply(e)
    return st


def test_prefixes_and_timestamps() -> None:
    e = parse.parse_line("[2025-10-28 23:57:52,443][__main__][INFO] - [main] Epoch 1/1")
    assert isinstance(e, evt.EpochStart) and (e.epoch, e.max_epochs) == (1, 1)
    assert e.level == "INFO" and e.t is not None and abs(e.t % 1 - 0.443) < 1e-6
    dotted = parse.parse_line("[2025-10-28 23:56:14,857][src.a.b_c][INFO] - 📂 Found 100 train, 100 val, 0 test files")
    assert dotted == evt.Phase("files", "Found 100 train, 100 val, 0 test files", t=dotted.t, level="INFO")
    w = parse.parse_line("2025-10-28 23:59:56,175 - __main__ - INFO - 🎯 Achieved Sharpe Ratio: 0.08177260619898637")
    assert isinstance(w, evt.AchievedSharpe) and w.value == pytest.approx(0.08177260619898637)
    assert w.t == pytest.approx(prefix.line_time("[2025-10-28 23:59:56,175][x][INFO] - y"))
    assert parse.parse_line("Using optimized data loader") is None
    assert parse.parse_line("") is None


def test_engine_line_types() -> None:
    start = ev("runctl engine 0.1.0 starting: pid=4242 run_dir=_logs/runs/smoke_1")
    assert start == evt.Start("engine", 4242, "_logs/runs/smoke_1", "0.1.0", t=start.t, level="INFO")
    assert isinstance(ev("Starting training: max_epochs=10 steps_per_epoch=113"), evt.TrainingStart)
    assert ev("Learning rate: 0.000500").lr == pytest.approx(0.0005)
    p = ev("[progress] epoch=3/10 step=40/113 (35%) steps/s=9.81 eta=00:01:07 loss=0.3481")
    assert (p.epoch, p.max_epochs, p.step, p.steps, p.steps_per_s, p.eta_s, p.loss) == (
        3, 10, 40, 113, 9.81, 67.0, 0.3481)
    gm = ev("[GRAD-MONITOR] step=200 epoch=2 batch=87 encoder:l2=3.1e-02 max=4.0e-03 grad=12/12 "
            "small=0 none=0 | gat:l2=3.0e-09 max=1.0e-09 grad=6/6 small=6 none=0")
    assert isinstance(gm, evt.GradMonitor) and [g.name for g in gm.groups] == ["encoder", "gat"]
    assert gm.groups[1].l2 == pytest.approx(3e-9) and gm.groups[1].small == 6
    gw = ev("[GRAD-MONITOR] gat: vanishing gradients (l2=3.0e-09, none=0/6)", H.replace("INFO", "WARNING"))
    assert isinstance(gw, evt.GradWarning) and (gw.group, gw.kind, gw.level) == ("gat", "vanishing", "WARNING")
    assert ev("train/total_loss: 0.350750").loss == pytest.approx(0.35075)
    vl = ev("val/loss: 0.351234")
    assert vl == evt.ValLoss(0.351234, "val/loss", t=prefix.line_time(H), level="INFO")
    m = ev("Val metrics (z) h=20: MAE=0.7812 RMSE=0.9951 IC=0.0412 RankIC=0.0398 SCALE(yhat/y)=0.31 HIT=0.5123")
    assert (m.h, m.ic, m.rank_ic, m.scale, m.mae, m.rmse, m.hit, m.variant) == (
        20, 0.0412, 0.0398, 0.31, 0.7812, 0.9951, 0.5123, "z")
    lv = ev("Low prediction variance for horizon 1: scale_ratio=0.0012, yhat_std=0.000900")
    assert (lv.h, lv.ratio, lv.yhat_std) == (1, 0.0012, 0.0009)
    assert ev("Sharpe: 0.1234").value == pytest.approx(0.1234)
    ee = ev("[epoch-end] epoch=3/10 train_loss=0.350750 val_loss=0.351234 sharpe=0.1234 sharpe_ann=1.9589 time=12.3s")
    assert (ee.epoch, ee.max_epochs, ee.sharpe_ann, ee.seconds) == (3, 10, 1.9589, 12.3)
    ck = ev("Checkpoint saved: _logs/runs/x/checkpoints/epoch=003.ckpt (epoch=3)")
    assert (ck.path, ck.epoch, ck.best) == ("_logs/runs/x/checkpoints/epoch=003.ckpt", 3, False)
    best = ev("Best model saved (main) (val_loss: 0.3512)")
    assert best.best and best.val_loss == pytest.approx(0.3512)
    assert isinstance(ev("=== Training Complete ==="), evt.Complete)
    assert ev("Best validation loss: 0.3504").loss == pytest.approx(0.3504)
    err = ev("[error] non-finite loss: train/total_loss=nan at epoch=2 step=57", H.replace("INFO", "ERROR"))
    assert isinstance(err, evt.Error) and err.fatal and err.message.startswith("[error] non-finite")
    assert ev("[signal] SIGTERM received: saving checkpoint and stopping").name == "SIGTERM"
    x = ev("[exit] reason=terminated status=143 epochs_completed=4")
    assert (x.reason, x.status, x.epochs_completed) == ("terminated", 143, 4)
    wn = ev("[data] 12 days dropped", H.replace("INFO", "WARNING"))
    assert wn == evt.Warning("[data] 12 days dropped", t=wn.t, level="WARNING")
    assert ev("Config: a=1") is None and ev("[LOSS-PER-DAY] enabled: x") is None


@pytest.mark.parametrize(("msg", "key", "done"), [
    ("GPU: NVIDIA A100-SXM4-80GB", "device", True),
    ("🎮 GPU: none (CPU, 2 threads)", "device", True),
    ("Using device: cuda", "device", True),
    ("Found hidden_size=256 at path: model.hidden_size", "hidden_size", True),
    ("📂 Found 100 train, 100 val, 0 test files", "files", True),
    ("Fitting OnlineRobustScaler on training data (max_samples=250000, files=100)...", "scaler", False),
    ("OnlineRobustScaler fitted on 8192 samples (24 features)", "scaler", True),
    ("✅ Iterable datasets ready (train_files=100, val_files=100)", "scaler", True),
    ("[data-filter] Global minimum date filter: 2016-01-01", "date_filter", True),
    ("Creating data loaders...", "loaders", False),
    ("Data loaders created: train=900 days", "loaders", True),
])
def test_phases(msg: str, key: str, done: bool) -> None:
    e = ev(msg)
    assert isinstance(e, evt.Phase) and (e.key, e.done) == (key, done)


def test_epoch_starts_and_not_tqdm() -> None:
    assert ev("Epoch 2/5").epoch == 2
    assert ev("[phase1] Epoch 3/7").max_epochs == 7
    tq = parse.parse_line("Epoch 1: 9it [00:35,  3.69s/it, loss=0.3544]")
    assert isinstance(tq, evt.Progress) and tq.source == "tqdm" and tq.step == 9
    assert tq.steps_per_s == pytest.approx(1 / 3.69) and tq.loss == pytest.approx(0.3544)
    total = parse.parse_line("Epoch 2:  35%|███▌      | 40/113 [00:04<00:07,  9.81it/s, loss=0.348]")
    assert (total.step, total.steps, total.steps_per_s, total.eta_s) == (40, 113, 9.81, 7.0)
    pe = ev("Epoch 3/10: Train Loss=0.3512, Val Loss=0.3498, LR=5.00e-04")
    assert isinstance(pe, evt.PhaseEpoch) and (pe.epoch, pe.val_loss, pe.lr) == (3, 0.3498, 5e-4)
    pv = ev("  Val Metrics   - Sharpe: 0.123456, IC: 0.012345, RankIC: 0.023456, HitRate(h1): 0.5123")
    assert isinstance(pv, evt.PhaseValMetrics) and (pv.sharpe, pv.hit) == (0.123456, 0.5123)


def test_tqdm_glued_in_front_of_a_log_line() -> None:
    line = "Epoch 1: 9it [00:35,  3.69s/it, loss=0.3544][2025-10-28 23:45:51,715][__main__][INFO] - val/loss: 0.3"
    e = parse.parse_line(line)
    assert isinstance(e, evt.ValLoss) and e.loss == pytest.approx(0.3) and e.t is not None
    noise = "Epoch 1: 9it [00:35,  3.69s/it, loss=0.3544][2025-10-28 23:45:51,715][__main__][INFO] - [EDGE-TS] x"
    p = parse.parse_line(noise)
    assert isinstance(p, evt.Progress) and p.step == 9 and p.t == e.t


def test_sharpe_summary_only_never_val_debug() -> None:
    assert parse.parse_line(H + "[VAL-DEBUG] batch0 metrics - Sharpe: 0.123456, IC: 0.0, RankIC: 0.1") is None
    assert ev("  Average Sharpe Ratio: nan") is None
    assert ev("Sharpe: nan") == evt.Sharpe(None, t=ev("Sharpe: nan").t, level="INFO")
    assert ev("Sharpe: 0.1 extra") is None


def test_val_metrics_variants_and_nan() -> None:
    atft = ev("Val metrics (z) h=1: MAE=0.0093 RMSE=0.0116 R2=0.0000 IC=0.0061 NAIVE_RMSE=0.0098 "
              "SCALE(yhat/y)=0.00 CAL=+0.000+1.000*yhat")
    assert (atft.ic, atft.rank_ic, atft.scale, atft.variant) == (0.0061, None, 0.0, "z")
    cal = ev("Val metrics (z, CAL) h=5: MAE=nan RMSE=0.1 IC=nan SCALE(yhat/y)=1.00")
    raw = ev("Val metrics (raw)  h=5: MAE=0.1 IC=0.2")
    assert (cal.variant, cal.ic, cal.mae, raw.variant, raw.h) == ("z,cal", None, None, "raw", 5)
    st = fold([H + "[main] Epoch 1/2", H + cal_line("z, CAL", 0.9), H + cal_line("raw", 0.8),
               H + cal_line("z", 0.05)])
    assert st.epochs[0].horizons[5].ic == pytest.approx(0.05)  # only (z) feeds the table
    assert math.isinf(prefix.num("inf")) and prefix.num("nan") is None and prefix.num("x") is None


def cal_line(variant: str, ic: float) -> str:
    return f"Val metrics ({variant}) h=5: MAE=0.1 RMSE=0.2 IC={ic:.4f} RankIC=0.01 SCALE(yhat/y)=0.50 HIT=0.5"


def test_wrapper_lines() -> None:
    st = ev("🚀 Complete ATFT-GAT-FAN Training Pipeline started", W)
    assert st == evt.Start("wrapper", t=prefix.line_time(W + "x"), level="INFO")
    assert parse.parse_line(H.replace("engine", "__main__") + "Starting production training...").kind == "trainer"
    ok = ev("✅ Complete ATFT-GAT-FAN Training Pipeline completed successfully in 346.66s", W)
    assert isinstance(ok, evt.WrapperResult) and ok.ok
    bad = parse.parse_line(W.replace("INFO", "ERROR") + "Training failed: Traceback (most recent call last):")
    assert isinstance(bad, evt.WrapperResult) and not bad.ok
    assert isinstance(parse.parse_line(W.replace("INFO", "WARNING") + "Predictions file not found"), evt.Warning)


def test_traceback_error_line() -> None:
    p = parse.LineParser()
    out = [p.feed(x)[1] for x in (
        "Traceback (most recent call last):",
        '  File "train.py", line 3, in <module>',
        "    main()",
        "",
        "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB",
        "bare text after",
    )]
    assert isinstance(out[0], evt.TracebackStart) and out[1:4] == [None, None, None]
    assert out[4] == evt.TracebackEnd("RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB")
    assert out[5] is None


def test_chained_traceback_keeps_last_error() -> None:
    st = fold([H + "[main] Epoch 1/3", "Traceback (most recent call last):", "  File x", "KeyError: 'a'", "",
               "During handling of the above exception, another exception occurred:", "",
               "Traceback (most recent call last):", "  File y", "ValueError: bad"])
    assert st.state == "crashed" and st.error == "ValueError: bad"


def test_empty_message_continues_on_next_line() -> None:
    st = fold(["[2025-10-28 23:59:50,149][__main__][INFO] - ", "=== Training Complete ===",
               "[2025-10-28 23:59:50,150][__main__][INFO] - Best validation loss: 0.3504"])
    assert st.state == "finished" and st.best_val_loss == pytest.approx(0.3504)
    assert fold(["=== Training Complete ==="]).state == "initializing"  # a bare banner is nobody's


def test_lifecycle() -> None:
    st = RunState()
    assert st.state == "launching"
    for line, state in [
        (H + "Random seed: 42", "initializing"),
        (H + "[main] Epoch 1/2", "training"),
        (H + "train/total_loss: 0.3", "training"),
        (H + "val/loss: 0.31", "validating"),
        (H + "Sharpe: 0.1", "validating"),
        (H + "[main] Epoch 2/2", "training"),
        (H + "=== Training Complete ===", "finished"),
    ]:
        for e in parse.parse_lines([line]):
            st.apply(e)
        assert st.state == state, line
    assert [r.epoch for r in st.epochs] == [1, 2] and st.epochs[0].val_loss == pytest.approx(0.31)
    assert st.epochs[0].ended_at is not None and st.phases["first_epoch"]


@pytest.mark.parametrize(("last", "state", "reason"), [
    ("[exit] reason=finished status=0 epochs_completed=2", "finished", "finished"),
    ("[exit] reason=terminated status=143 epochs_completed=1", "killed", "terminated"),
    ("[exit] reason=error status=3 epochs_completed=1", "crashed", "error"),
    ("[signal] SIGTERM received: saving checkpoint and stopping", "killed", None),
])
def test_exits(last: str, state: str, reason: str | None) -> None:
    st = fold([H + "[main] Epoch 1/2", H + last])
    assert (st.state, st.exit_reason) == (state, reason)


def test_error_line_crashes_with_the_line() -> None:
    e = H.replace("INFO", "ERROR")
    st = fold([H + "[main] Epoch 2/5", e + "[error] non-finite loss: train/total_loss=nan at epoch=2 step=57",
               e + "[exit] reason=error status=3 epochs_completed=1"])
    assert st.state == "crashed" and st.error == "[error] non-finite loss: train/total_loss=nan at epoch=2 step=57"
    assert (st.errors, st.exit_status) == (2, 3)


def test_two_attempts_keep_the_timeline() -> None:
    first = [H + "runctl engine 0.1.0 starting: pid=1 run_dir=r", H + "[main] Epoch 1/3", H + "val/loss: 0.5",
             H + "[main] Epoch 2/3", H + "val/loss: 0.4", H + "[main] Epoch 3/3",
             H.replace("INFO", "WARNING") + "[signal] SIGTERM received: saving checkpoint and stopping",
             H + "[exit] reason=terminated status=143 epochs_completed=2"]
    second = [H + "runctl engine 0.1.0 starting: pid=2 run_dir=r",
              H + "Resuming from checkpoint r/checkpoints/last.ckpt (epoch=3, global_step=226)",
              H + "[main] Epoch 3/3", H + "val/loss: 0.3", H + "=== Training Complete ===",
              H + "[exit] reason=finished status=0 epochs_completed=3"]
    st = fold(first)
    assert (st.state, st.attempts, st.pid) == ("killed", 1, 1)
    st = fold(first + second)
    assert (st.state, st.attempts, st.pid, st.exit_status) == ("finished", 2, 2, 0)
    assert [(r.epoch, r.val_loss) for r in st.epochs] == [(1, 0.5), (2, 0.4), (3, 0.3)]


def test_wrapper_and_trainer_start_are_one_attempt_then_retry() -> None:
    tr = "[2025-10-28 23:56:14,425][__main__][INFO] - "
    st = fold([W + "🚀 Complete ATFT-GAT-FAN Training Pipeline started", tr + "Starting production training..."])
    assert st.attempts == 1 and st.source_format == "atft"
    st = fold([W + "🚀 Complete ATFT-GAT-FAN Training Pipeline started", tr + "Starting production training...",
               tr + "[main] Epoch 1/1", "Traceback (most recent call last):", "  File x",
               "torch.OutOfMemoryError: CUDA out of memory", tr + "Starting production training..."])
    assert (st.attempts, st.state, st.error) == (2, "initializing", None)


def test_low_variance_and_grad_warnings_bounded() -> None:
    wh = H.replace("INFO", "WARNING")
    lines = [H + "[main] Epoch 1/2", wh + "Low prediction variance for horizon 1: scale_ratio=0.0012, yhat_std=0.0009"]
    lines += [wh + f"[GRAD-MONITOR] g{i % 60}: vanishing gradients (l2=1.0e-09, none=0/6)" for i in range(200)]
    st = fold(lines)
    assert st.low_variance == {1: 0.0012} and len(st.grad_warnings) == 50
    assert st.warnings == 201
    st2 = fold(lines + [H + "[main] Epoch 2/2", H + cal_line("z", 0.1).replace("h=5", "h=1")])
    assert st2.low_variance == {}


def test_garbage_never_raises() -> None:
    for line in ["\x00\xff[", "[2025-99-99 99:99:99,999][x][INFO] - Sharpe: 1", "]] - [exit] reason=",
                 H + "[GRAD-MONITOR] step=x", H + "Val metrics (z) h=: IC=", H + "[progress] epoch=/ step=a/b"]:
        parse.parse_line(line)


def test_reducer_handles_every_event_and_json_is_the_split_one() -> None:
    import tui.state.fold
    import tui.state.serialize

    handled = set(tui.state.fold.HANDLERS)
    assert {evt.Start, evt.EpochStart, evt.EpochEnd, evt.Exit, evt.Activity, evt.Reset} <= handled
    st = fold([H + "runctl engine 0.1 starting: pid=7 run_dir=/x/r1", H + "[main] Epoch 1/2"])
    assert st.to_json() == tui.state.serialize.state_json(st) and st.to_json()["state"] == "training"
