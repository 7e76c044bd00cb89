"""Verdicts on hand-built run states: the seed's decision tree, pending states, collapse flag."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tui.judge.conditions import summary_metrics
from tui.judge.evaluate import evaluate
from tui.presets.baselines import load_baselines
from tui.presets.registry import PresetRegistry
from tui.state.records import HorizonMetrics
from tui.state.run import RunState

SHIPPED = Path(__file__).resolve().parent.parent / "presets"
REG = PresetRegistry(SHIPPED)
BASE = load_baselines(SHIPPED / "baselines.toml")
SMOKE_V2 = REG.get("smoke_v2")


def make_state(epochs: list[dict[str, Any]], state: str = "training", max_epochs: int = 10,
               **kw: Any) -> RunState:
    """A RunState whose epoch k has the given sharpe / scale / ic (same at every horizon)."""
    s = RunState(run="smoke_v2_test", pid=4242, state=state, max_epochs=max_epochs, **kw)
    for k, e in enumerate(epochs, 1):
        r = s.epoch_record(k)
        r.started_at = 1000.0 + 100 * k
        r.ended_at = r.started_at + 90
        r.train_loss, r.val_loss = e.get("train_loss", 0.5), e.get("val_loss", 0.5)
        r.sharpe = e.get("sharpe")
        scale = e.get("scale", 0.3)
        scales = scale if isinstance(scale, dict) else dict.fromkeys((1, 5, 10, 20), scale)
        r.horizons = {h: HorizonMetrics(ic=e.get("ic", 0.01), rank_ic=0.01, scale=v)
                      for h, v in scales.items()}
        r.validated = True
    s.epoch = len(epochs) or None
    return s


def decisions(v: Any) -> list[tuple[str, str | None]]:
    return [(c.status, c.verdict) for c in v.checkpoints]


def test_nothing_measured_yet_is_pending() -> None:
    v = evaluate(SMOKE_V2, RunState(state="initializing", max_epochs=10), BASE)
    assert decisions(v) == [("pending", None)] * 3
    assert [c.status for c in v.criteria] == ["pending"] * 4
    assert {r.status for r in v.table} == {"⏳"}
    assert v.recommendation.action == "wait" and "Epoch 1 Validation" in v.recommendation.why
    assert not v.variance_collapse.detected
    assert v.baseline is not None and v.baseline.name == "Baseline (50ep)"
    json.dumps(v.to_json(), allow_nan=False)
    assert set(v.to_json()) == {"baseline", "criteria", "checkpoints", "recommendation", "table",
                                "variance_collapse"}


def test_epoch1_variance_restored() -> None:
    v = evaluate(SMOKE_V2, make_state([{"sharpe": 0.085, "scale": 0.31}]), BASE)
    assert decisions(v) == [("decided", "variance_restored"), ("pending", None), ("pending", None)]
    assert v.checkpoints[0].mark == "✅"
    r = v.recommendation
    assert r.action == "continue" and r.verdict == "variance_restored" and r.preset is None


def test_epoch1_scale_zero_needs_investigation_and_flags_collapse() -> None:
    state = make_state([{"sharpe": 0.0818, "scale": {1: 0.001, 5: 0.2, 10: 0.2, 20: 0.2}}])
    v = evaluate(SMOKE_V2, state, BASE)
    assert decisions(v)[0] == ("decided", "variance_collapsed")
    assert v.checkpoints[0].mark == "❌"
    vc = v.variance_collapse
    assert vc.detected and vc.first_epoch == 1 and vc.horizons == (1,) and vc.latest
    assert vc.lowest == pytest.approx(0.001)
    r = v.recommendation
    assert r.action == "launch" and r.preset == "head_std010"
    assert set(r.alternatives) == {"var_floor", "layerscale_01", "layerscale_10"}
    assert any("[LOSS-PER-DAY]" in s for s in r.steps)
    scale_row = next(x for x in v.table if x.key == "scale")
    assert scale_row.current == pytest.approx(0.001) and scale_row.status == "❌"
    crit = {c.label.split()[0]: c.status for c in v.criteria}
    assert crit["SCALE(yhat/y)"] == "unmet"


def test_collapse_flag_stays_after_recovery() -> None:
    v = evaluate(SMOKE_V2, make_state([{"sharpe": 0.08, "scale": 0.0}, {"sharpe": 0.08, "scale": 0.2}]), BASE)
    vc = v.variance_collapse
    assert vc.detected and vc.first_epoch == 1 and not vc.latest and vc.horizons == (1, 5, 10, 20)


@pytest.mark.parametrize(("sharpe", "verdict", "action", "preset"), [
    (0.095, "improved", "launch", "full_perday"),
    (0.085, "marginal", "continue", None),
    (0.080, "marginal", "continue", None),
    (0.070, "no_improvement", "launch", "head_std010"),
])
def test_epoch5_branches(sharpe: float, verdict: str, action: str, preset: str | None) -> None:
    eps = [{"sharpe": 0.08, "scale": 0.3}] * 4 + [{"sharpe": sharpe, "scale": 0.3}]
    v = evaluate(SMOKE_V2, make_state(eps), BASE)
    assert decisions(v) == [("decided", "variance_restored"), ("decided", verdict), ("pending", None)]
    r = v.recommendation
    assert (r.verdict, r.action, r.preset, r.source) == (verdict, action, preset, "Epoch 5 Validation")
    assert v.checkpoints[1].values == (("Sharpe", sharpe),)


def test_epoch5_waits_for_sharpe_while_validating() -> None:
    eps = [{"sharpe": 0.1}] * 4 + [{"sharpe": None}]
    v = evaluate(SMOKE_V2, make_state(eps, state="validating"), BASE)
    assert decisions(v)[1] == ("pending", None)
    assert v.recommendation.verdict == "variance_restored"


@pytest.mark.parametrize(("last", "verdict", "preset"), [
    ({"sharpe": 0.12, "scale": 0.3}, "launch_full", "full_perday"),
    ({"sharpe": 0.09, "scale": 0.3}, "try_config", "head_std010"),
    ({"sharpe": 0.12, "scale": 0.0}, "architecture", "var_floor"),
])
def test_epoch10_final_branches(last: dict[str, float], verdict: str, preset: str) -> None:
    eps = [{"sharpe": 0.1, "scale": 0.3}] * 9 + [last]
    v = evaluate(SMOKE_V2, make_state(eps, state="finished"), BASE)
    assert decisions(v)[2] == ("decided", verdict)
    r = v.recommendation
    assert (r.verdict, r.preset, r.action) == (verdict, preset, "launch")
    assert r.command == f"runctl launch {preset}"
    assert v.criteria[0].status == "met" and v.criteria[0].value == 10


def test_full_run_success_table() -> None:
    eps = [{"sharpe": 0.09 + 0.005 * k, "scale": 0.3, "ic": -0.05 + 0.01 * k, "val_loss": 0.6 - 0.01 * k}
           for k in range(10)]
    v = evaluate(SMOKE_V2, make_state(eps, state="finished"), BASE)
    assert all(c.status == "met" for c in v.criteria)
    rows = {r.key: r for r in v.table}
    assert list(rows) == ["scale", "ic_h20", "sharpe"]
    assert rows["sharpe"].baseline == 0.0818 and rows["sharpe"].current == pytest.approx(0.135)
    assert rows["sharpe"].best == pytest.approx(0.135) and rows["sharpe"].trend == "up"
    assert rows["scale"].trend == "flat" and rows["ic_h20"].status == "✅"
    assert rows["sharpe"].target == "> 0.0818"


def test_table_trend_down_and_warning_status() -> None:
    eps = [{"sharpe": s, "scale": 0.3} for s in (0.2, 0.15, 0.1, 0.083)]
    v = evaluate(SMOKE_V2, make_state(eps), BASE)
    row = next(r for r in v.table if r.key == "sharpe")
    assert row.trend == "down" and row.best == 0.2 and row.status == "✅"
    eps = [{"sharpe": 0.09, "scale": 0.3}]
    v = evaluate(REG.get("full_perday"), make_state(eps, max_epochs=25), BASE)
    row = next(r for r in v.table if r.key == "sharpe")
    assert row.target == "> 0.1" and row.status == "⚠️"  # misses the target, beats the baseline


def test_crash_before_checkpoints() -> None:
    eps = [{"sharpe": 0.1, "scale": 0.3}] * 3
    s = make_state(eps, state="crashed", error="[error] non-finite loss: train/total_loss=nan")
    v = evaluate(SMOKE_V2, s, BASE)
    assert decisions(v) == [("decided", "variance_restored"), ("not_reached", None), ("not_reached", None)]
    assert v.recommendation.action == "investigate" and "non-finite" in v.recommendation.why
    assert v.criteria[0].status == "unmet"
    s2 = make_state(eps, state="crashed", error="[error] CUDA error: unspecified launch failure",
                    checkpoints=["ckpt/last.ckpt"])
    r = evaluate(SMOKE_V2, s2, BASE).recommendation
    assert r.action == "resume" and r.command == "runctl resume smoke_v2_test"
    assert evaluate(SMOKE_V2, make_state(eps, state="killed"), BASE).recommendation.action == "resume"


def test_nan_and_missing_metrics() -> None:
    eps = [{"sharpe": 0.1, "scale": float("nan")}]
    s = make_state(eps)
    v = evaluate(SMOKE_V2, s, BASE)
    assert decisions(v)[0] == ("no_data", None)
    assert not v.variance_collapse.detected
    json.dumps(v.to_json(), allow_nan=False)
    eps = [{"sharpe": 0.1}] * 4 + [{"sharpe": float("nan")}]
    v = evaluate(SMOKE_V2, make_state(eps, state="finished", max_epochs=5), BASE)
    assert decisions(v)[1] == ("no_data", None)
    assert next(r for r in v.table if r.key == "sharpe").current is None  # latest epoch: nan
    json.dumps(v.to_json(), allow_nan=False)
    assert evaluate(SMOKE_V2, make_state([]), None).baseline is None


def test_smoke_preset_synthetic_thresholds() -> None:
    smoke = REG.get("smoke")
    eps = [{"sharpe": 0.05, "scale": 0.4, "ic": 0.03}] * 10
    v = evaluate(smoke, make_state(eps, state="finished"), BASE)
    assert decisions(v) == [("decided", "healthy"), ("decided", "learning"), ("decided", "pass")]
    assert v.recommendation.preset == "smoke_v2"


def test_low_variance_warning_counts_as_collapse() -> None:
    s = make_state([{"sharpe": 0.1, "scale": 0.3}], low_variance={5: 0.0012})
    vc = evaluate(SMOKE_V2, s, BASE).variance_collapse
    assert vc.detected and vc.horizons == (5,) and vc.lowest == 0.0012


def test_summary_metrics_for_baseline_table() -> None:
    m = summary_metrics(make_state([{"sharpe": 0.11, "scale": 0.25, "ic": -0.01}]))
    assert m["sharpe"] == 0.11 and m["ic_h20"] == -0.01 and m["scale"] == 0.25 and m["scale_h1"] == 0.25
    assert summary_metrics(RunState()) == {}


def test_an_epoch_is_complete_once_its_validation_is_over() -> None:
    """Sharpe printed, end-of-epoch metrics, a later epoch begun, or the run over; the later epoch
    is the timeline's last record (sorted), looked at in O(1): the judge asks this of every epoch
    on every poll (it was a scan of the timeline each: 2.9 s a poll at 10,000 epochs)."""
    from tui.judge.conditions import epoch_complete
    from tui.state.run import RunState

    st = RunState(state="validating", epoch=2)
    one, two = st.epoch_record(1), st.epoch_record(2)
    assert not epoch_complete(st, one)  # not validated yet
    one.validated = two.validated = True
    assert epoch_complete(st, one) and not epoch_complete(st, two)  # 2 begun after 1; 2 still validating
    two.sharpe = 0.1
    assert epoch_complete(st, two)
    three = st.epoch_record(3)
    three.validated, st.epoch = True, 3
    assert not epoch_complete(st, three)
    st.state = "finished"
    assert epoch_complete(st, three)
    four = RunState(state="training", epoch=5)
    rec = four.epoch_record(4)
    rec.validated = True
    assert epoch_complete(four, rec)  # the current epoch (5) is later, though it has no record yet
