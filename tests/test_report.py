"""The Markdown status page: the seed's sections, filled with the run's real numbers."""

from __future__ import annotations

from pathlib import Path

from tui.judge.evaluate import evaluate
from tui.judge.report import render_report
from tui.presets.baselines import load_baselines
from tui.presets.registry import PresetRegistry
from tui.state.records import HorizonMetrics
from tui.state.run import RunState

SHIPPED = Path(__file__).resolve().parent.parent / "presets"
REG = PresetRegistry(SHIPPED)
BASE = load_baselines(SHIPPED / "baselines.toml")
LOG = "_logs/training/smoke_v2_20251031_042151.log"
T0 = 1761884511.0  # 2025-10-31 04:21:51 UTC

SECTIONS = ["# smoke_v2_20251031_042151 - Monitoring Status", "**Launch Time**: 2025-10-31 04:21:51 UTC",
            "**PID**: 959590", f"**Log**: `{LOG}`", "## 🎯 Test Objective", "**Success Criteria**:",
            "## 📊 Current Status", "**Initialization Phase**:", "## 🔍 Key Changes vs Baseline",
            "## 📋 Expected Timeline", "## 🚨 Critical Checkpoints", "## 📊 Baseline Comparison",
            "## 🔧 Monitoring Commands", "## 🎯 Next Actions Based on Results", "**Last Updated**:"]


def running_state() -> RunState:
    s = RunState(run="smoke_v2_20251031_042151", pid=959590, state="training", max_epochs=10, epoch=6,
                 started_at=T0, last_time=T0 + 1500)
    for k in range(1, 6):
        r = s.epoch_record(k)
        r.started_at = T0 + 360 + (k - 1) * 170
        r.ended_at = r.started_at + 165
        r.train_loss, r.val_loss, r.sharpe = 0.5 - 0.01 * k, 0.52 - 0.005 * k, 0.08 + 0.004 * k
        r.horizons = {h: HorizonMetrics(ic=-0.02 + 0.003 * k, rank_ic=0.01, scale=0.31) for h in (1, 5, 10, 20)}
        r.validated = True
    s.phases.update(device=True, hidden_size=True, files=True, scaler=True, date_filter=True,
                    loaders=True, first_epoch=True)
    s.phase_details["device"] = "GPU: NVIDIA H200 (139.8GB)"
    return s


def render(state: RunState, manifest: dict | None = None) -> str:
    p = REG.get("smoke_v2")
    v = evaluate(p, state, BASE)
    m = {"run": state.run, "pid": 959590, "log": LOG, "launched_at": "2025-10-31T04:21:51+00:00"}
    return render_report(p, state, v, m if manifest is None else manifest, baselines=BASE,
                         baseline_preset=REG.get("baseline"))


def test_report_has_the_seed_sections_and_real_numbers() -> None:
    md = render(running_state())
    for section in SECTIONS:
        assert section in md, section
    assert "✅ **ACTIVE** - Training epoch 6/10" in md
    assert "**Epoch**: 6/10 (5 complete)" in md
    assert "- ✅ Device detected: GPU: NVIDIA H200 (139.8GB)" in md
    assert "- ✅ SCALE(yhat/y) > 0.00 (prediction variance restored)" in md
    assert "- ⏳ Training completes without crashes (10 epochs)" in md
    assert "`loss.sharpe_weight`: 0.0 → **0.5** (via `SHARPE_WEIGHT`)" in md
    assert "`train.trainer.max_epochs`: 50 → **10**" in md
    assert "| Epoch 1 validation | ~04:30 UTC | 04:30 UTC |" in md
    assert "| Epoch 10 complete (final evaluation) | ~04:55 UTC | ~04:55 UTC (projected) |" in md
    assert "**Result**: ✅ **improved**: Improvement! Approve 25-epoch run (Sharpe = 0.1000)" in md
    assert "| Baseline (50ep) | Default | 0.0818 | -0.0603 | 0.00 | ❌ Plateau |" in md
    assert "| **Sharpe** | > 0.0818 | 0.0818 | 0.1000 | 0.1000 | ↗ up | ✅ |" in md
    assert "| **SCALE(yhat/y) (all h)** | >= 0.005 | 0.00 | 0.31 | 0.31 | → flat | ✅ |" in md
    assert "ps -p 959590 -o pid,stat,%cpu,etime --no-headers" in md
    assert f'grep -E "Epoch [0-9]+/10" {LOG} | tail -5' in md
    assert f'grep "IC=" {LOG} | grep "h=20"' in md
    assert "runctl status smoke_v2_20251031_042151" in md
    assert "**Now**: **LAUNCH** `full_perday`" in md and "runctl launch full_perday" in md
    assert "**Next Checkpoint**: Epoch 10 Final (epoch 10)" in md
    assert "nan" not in md.lower().replace("nanosecond", "")


def test_report_while_initializing_and_without_manifest() -> None:
    s = RunState(run="r1", pid=77, state="initializing", max_epochs=10, started_at=T0, last_time=T0 + 180)
    s.phases["device"] = True
    md = render(s, manifest={})
    assert "✅ **ACTIVE** - Initializing (waiting for: Model hidden_size configured)" in md
    assert "ps -p 77 -o pid" in md and "(unknown log)" in md
    assert md.count("⏳ Pending") == 3
    assert "**Now**: **WAIT** - Waiting for Epoch 1 Validation (epoch 1)" in md
    assert "| First epoch training start | ~04:27 UTC | ⏳ |" in md


def test_report_for_a_crash_and_variance_collapse() -> None:
    s = running_state()
    s.state = "crashed"
    s.error = "[error] non-finite loss: train/total_loss=nan at epoch=6 step=57"
    s.epochs[0].horizons[1].scale = 0.0
    md = render(s)
    assert "❌ **CRASHED** - [error] non-finite loss" in md
    assert "> ⚠️ **Variance collapse**: SCALE(yhat/y) = 0.00 at h=[1] from epoch 1" in md
    assert "➖ Not reached (the run ended before this epoch)" in md
    assert "**Now**: **INVESTIGATE**" in md
