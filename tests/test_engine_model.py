"""engine.model: shapes, param groups, gradients, bf16, day isolation of the graph, heads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.config import LossConfig, ModelConfig
from engine.layers.day_groups import day_layout, pad, unpad
from engine.layers.graph import knn_neighbours
from engine.layers.temporal import FrequencyAdaptiveNorm
from engine.losses import MultiHorizonLoss
from engine.model import ATFTGATFAN

F, SEQ = 5, 12


def _cfg(**kw) -> ModelConfig:
    base = dict(
        hidden_size=16, attention_heads=2, gat_heads=2, knn_k=3, head_dropout=0.0, dropout=0.0
    )
    base.update(kw)
    return ModelConfig(**base)


def _data(sizes=(7, 9, 5), seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    day = torch.cat([torch.full((n,), d) for d, n in enumerate(sizes)])
    return torch.randn(day.numel(), SEQ, F, generator=g), day


@pytest.mark.parametrize("quantiles", [[], [0.05, 0.5, 0.95]])
def test_output_shapes_with_and_without_quantiles(quantiles: list[float]) -> None:
    torch.manual_seed(0)
    model = ATFTGATFAN(F, _cfg(quantiles=quantiles), return_channel=0)
    x, day = _data()
    out = model(x, day)
    assert out["pred"].shape == (21, 4)
    if quantiles:
        q = out["quantiles"]
        assert q.shape == (21, 4, 3)
        assert (q[..., 1:] >= q[..., :-1]).all()  # no quantile crossing
        assert q[..., 0].mean() < -1.0 < 1.0 < q[..., 2].mean()  # starts near N(0,1) quantiles
    else:
        assert "quantiles" not in out


def test_param_groups_partition_parameters_and_omit_disabled_parts() -> None:
    model = ATFTGATFAN(F, _cfg(), return_channel=0)
    groups = model.param_groups()
    assert list(groups) == ["vsn", "input_proj", "encoder", "fan", "gat", "prediction_head"]
    ids = [id(p) for ps in groups.values() for p in ps]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in model.parameters()}
    lean = ATFTGATFAN(F, _cfg(use_vsn=False, use_fan=False, use_gat=False), return_channel=None)
    assert list(lean.param_groups()) == ["input_proj", "encoder", "prediction_head"]


def test_every_group_gets_gradient_through_the_full_loss() -> None:
    torch.manual_seed(1)
    cfg = _cfg(quantiles=[0.25, 0.75])
    model = ATFTGATFAN(F, cfg, return_channel=0)
    x, day = _data()
    y = torch.randn(x.shape[0], 4) * 0.02
    y[day == 2, 3] = float("nan")
    loss = MultiHorizonLoss(
        LossConfig(quantile_weight=0.1), cfg.horizons, cfg.quantiles, n_stocks=30
    )
    total, _ = loss(model(x, day), y, day, torch.arange(x.shape[0]))
    total.backward()
    for name, params in model.param_groups().items():
        norm = sum(float(p.grad.abs().sum()) for p in params if p.grad is not None)
        assert norm > 0, name


def test_bf16_autocast_on_cpu() -> None:
    torch.manual_seed(2)
    model = ATFTGATFAN(F, _cfg(quantiles=[0.5]), return_channel=0)
    x, day = _data()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, day)
    assert out["pred"].dtype == torch.bfloat16
    out["pred"].float().pow(2).mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert torch.isfinite(out["pred"].float()).all()


def test_graph_attention_never_crosses_days() -> None:
    torch.manual_seed(3)
    model = ATFTGATFAN(F, _cfg(knn_k=20), return_channel=0).eval()
    x, day = _data((6, 8))
    x2 = x.clone()
    x2[day == 1] = torch.randn_like(x2[day == 1]) * 3  # change only day 1
    first = day == 0
    with torch.no_grad():
        a, b = model(x, day)["pred"], model(x2, day)["pred"]
        alone = model(x[first], day[first])["pred"]
        merged_a = model(x, torch.zeros_like(day))["pred"]
        merged_b = model(x2, torch.zeros_like(day))["pred"]
    torch.testing.assert_close(a[first], b[first])
    torch.testing.assert_close(a[first], alone, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(a[~first], b[~first])
    # Had the same rows been one day, day-1 changes would reach day 0: the check can fail.
    assert (merged_a[first] - merged_b[first]).abs().max() > 1e-4


def test_knn_edges_stay_inside_days_and_pick_top_correlations() -> None:
    g = np.random.default_rng(0)
    day = torch.tensor([0] * 6 + [1] * 3 + [2] * 1)
    series = torch.tensor(g.normal(size=(10, 15)), dtype=torch.float32)
    lay = day_layout(day)
    index, valid = knn_neighbours(pad(series, lay), lay.mask, k=4)
    for d, n in enumerate([6, 3, 1]):
        for i in range(n):
            nb = index[d, i][valid[d, i]].tolist()
            assert nb[0] == i and len(nb) == 1 + min(4, n - 1)  # self + min(k, n-1)
            assert all(0 <= j < n for j in nb)  # positions of the same day only
            rows = series[day == d].numpy()
            corr = [np.corrcoef(rows[i], rows[j])[0, 1] if j != i else -np.inf for j in range(n)]
            assert sorted(nb[1:]) == sorted(np.argsort(corr)[::-1][: min(4, n - 1)].tolist())


def test_day_layout_round_trip_with_unsorted_days() -> None:
    day = torch.tensor([2, 0, 2, 1, 0, 2])
    lay = day_layout(day)
    v = torch.arange(6.0)
    assert lay.n_days == 3 and lay.max_n == 3
    torch.testing.assert_close(unpad(pad(v, lay), lay), v)
    assert pad(v, lay)[2].tolist() == [0.0, 2.0, 5.0]


def test_fan_removes_dominant_components_and_last_step_matches() -> None:
    fan = FrequencyAdaptiveNorm(4, top_k=1)
    t = torch.arange(20.0)
    wave = torch.sin(2 * torch.pi * 3 * t / 20)[None, :, None].expand(2, 20, 4)
    residual, dominant = fan.split(wave)
    assert residual.abs().max() < 1e-5 and (dominant - wave).abs().max() < 1e-5
    torch.nn.init.normal_(fan.restore.weight)
    h = torch.randn(3, 20, 4)
    torch.testing.assert_close(fan.last_step(h), fan(h)[:, -1], rtol=1e-4, atol=1e-5)
    assert torch.equal(FrequencyAdaptiveNorm(4, top_k=0)(h), h)


def test_head_init_std_layer_norm_and_summary() -> None:
    torch.manual_seed(4)
    wide = ATFTGATFAN(F, _cfg(hidden_size=128, output_init_std=0.05), 0)
    w = torch.cat([h.out.weight.flatten() for h in wide.prediction_head.heads])
    assert w.std().item() == pytest.approx(0.05, rel=0.1)
    big = ATFTGATFAN(F, _cfg(hidden_size=128, output_init_std=0.5), 0)
    assert torch.cat([h.out.weight.flatten() for h in big.prediction_head.heads]).std() > 0.4

    def n_norms(m: ATFTGATFAN) -> int:
        return sum(isinstance(x, torch.nn.LayerNorm) for x in m.prediction_head.modules())

    off, on = ATFTGATFAN(F, _cfg(), 0), ATFTGATFAN(F, _cfg(layer_norm=True), 0)
    assert n_norms(off) == 0 and n_norms(on) == 5  # shared block + one per horizon
    x, day = _data()
    torch.manual_seed(5)
    on.load_state_dict({k: v for k, v in off.state_dict().items()}, strict=False)
    assert not torch.allclose(off.eval()(x, day)["pred"], on.eval()(x, day)["pred"])
    assert off.head_init_summary() == (
        "horizons=[1, 5, 10, 20] dropout=0.0 layer_scale=1.0 layer_norm=False "
        "output_init_std=0.05 quantiles=off"
    )
    assert (
        "quantiles=[0.1, 0.9]" in ATFTGATFAN(F, _cfg(quantiles=[0.9, 0.1]), 0).head_init_summary()
    )


def test_runs_without_return_channel_and_validates_it() -> None:
    model = ATFTGATFAN(F, _cfg(), return_channel=None)
    x, day = _data()
    assert model(x, day)["pred"].shape == (21, 4)
    with pytest.raises(ValueError):
        ATFTGATFAN(F, _cfg(), return_channel=F)


def test_row_order_does_not_matter() -> None:
    torch.manual_seed(6)
    model = ATFTGATFAN(F, _cfg(), return_channel=0).eval()
    x, day = _data()
    perm = torch.randperm(day.numel())
    with torch.no_grad():
        a, b = model(x, day)["pred"], model(x[perm], day[perm])["pred"]
    torch.testing.assert_close(a[perm], b, rtol=1e-5, atol=1e-6)
