"""engine.losses: every term against a per-day numpy reference; masking; the module."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine import losses as L
from engine.config import LossConfig
from engine.metrics import average_rank

H = 3


def _batch(seed: int = 0, sizes: tuple[int, ...] = (6, 9, 1, 12, 8)) -> tuple[torch.Tensor, ...]:
    g = np.random.default_rng(seed)
    day = np.concatenate([np.full(n, d) for d, n in enumerate(sizes)])
    y = g.normal(0, 0.02, (day.size, H)) + g.normal(0, 0.05, (len(sizes), 1))[day]
    pred = g.normal(0, 1, (day.size, H)) + 3.0 * day[:, None]  # day-level offsets
    y[g.random(day.size) < 0.15, 1] = np.nan
    y[day == 3, 2] = np.nan  # a whole day missing at one horizon
    y[day == 0, 2] = np.nan
    y[np.flatnonzero(day == 0)[0], 2] = 0.01  # ...and a day with a single valid target there
    t = torch.tensor
    return (
        t(pred, dtype=torch.float32),
        t(y, dtype=torch.float32),
        t(day),
        t(g.integers(0, 5, day.size)),
    )


def _cells(pred: torch.Tensor, y: torch.Tensor, day: torch.Tensor):
    """Yield (k, p, yz, y_raw) per usable (day, horizon) cell, in numpy."""
    p_all, y_all, d_all = pred.double().numpy(), y.double().numpy(), day.numpy()
    for k in range(y_all.shape[1]):
        for d in np.unique(d_all):
            sel = (d_all == d) & ~np.isnan(y_all[:, k])
            p, t = p_all[sel, k], y_all[sel, k]
            if len(t) < 2 or t.std() == 0:
                continue
            yield k, p, (t - t.mean()) / t.std(), t


def _ref(pred, y, day, fn) -> np.ndarray:
    """Per-horizon mean over usable days of fn(p, yz, y_raw)."""
    acc: dict[int, list[float]] = {k: [] for k in range(H)}
    for k, p, z, t in _cells(pred, y, day):
        acc[k].append(fn(p, z, t))
    return np.array([np.mean(v) if v else 0.0 for v in acc.values()])


def _z(a: np.ndarray) -> np.ndarray:
    return (a - a.mean()) / a.std()


def _check(value: torch.Tensor, ref: np.ndarray, tol: float = 1e-4) -> None:
    np.testing.assert_allclose(value.detach().double().numpy(), ref, rtol=tol, atol=tol)


def test_day_batch_zscores_targets_per_day_and_masks() -> None:
    pred, y, day, _ = _batch()
    b = L.day_batch(pred, y, day)
    assert b.usable.shape == (5, H)
    assert not b.usable[2].any()  # the 1-row day
    assert not b.usable[3, 2] and not b.usable[0, 2]
    got = sorted(b.y_z[b.mask].tolist())
    want = sorted(z for _, _, zz, _ in _cells(pred, y, day) for z in zz)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_huber_matches_reference() -> None:
    pred, y, day, _ = _batch()
    pred = pred - 3.0 * day[:, None]  # Huber is not shift invariant: keep errors moderate
    b = L.day_batch(pred, y, day)

    def hub(p, z, _t, d=0.7):
        e = np.abs(p - z)
        return np.mean(np.where(e < d, 0.5 * e**2, d * (e - 0.5 * d)))

    _check(L.huber_term(b, 0.7), _ref(pred, y, day, hub))


def test_cs_ic_and_rankic_match_reference() -> None:
    pred, y, day, _ = _batch()
    b = L.day_batch(pred, y, day)
    _check(L.cs_ic_term(b), _ref(pred, y, day, lambda p, z, t: 1 - np.mean(_z(p) * _z(t))))

    def soft_rankic(p, z, _t):
        pz = _z(p)
        soft = (1 / (1 + np.exp(-(pz[:, None] - pz[None, :]) / L.SOFT_RANK_TAU))).sum(1)
        return 1 - np.corrcoef(soft, average_rank(z))[0, 1]

    _check(L.rankic_term(b), _ref(pred, y, day, soft_rankic))


def test_rankic_term_near_zero_for_monotone_predictions() -> None:
    pred, y, day, _ = _batch()
    b = L.day_batch(torch.nan_to_num(y) * 100, y, day)
    assert (L.rankic_term(b) < 0.05).all()


def test_sharpe_term_is_minus_sharpe_across_days() -> None:
    pred, y, day, _ = _batch()
    b = L.day_batch(pred, y, day)
    rets: dict[int, list[float]] = {k: [] for k in range(H)}
    for k, p, z, _t in _cells(pred, y, day):
        rets[k].append(float((p / np.abs(p).sum()) @ z))
    ref = [-np.mean(r) / np.std(r, ddof=1) if len(r) >= 2 else 0.0 for r in rets.values()]
    value, present = L.sharpe_term(b)
    _check(value, np.array(ref))
    assert present.tolist() == [len(r) >= 2 for r in rets.values()]


def test_optional_terms_match_reference() -> None:
    pred, y, day, _ = _batch(2)
    pred = pred - 3.0 * day[:, None]
    b = L.day_batch(pred, y, day)
    _check(
        L.variance_floor_term(b, 1.5),
        _ref(pred, y, day, lambda p, z, t: max(1.5 - p.std(), 0) ** 2),
    )

    def listnet(p, z, _t, temp=0.5):
        tgt = np.exp(z / temp) / np.exp(z / temp).sum()
        logp = p / temp - np.log(np.exp(p / temp).sum())
        return -(tgt * logp).sum()

    _check(L.listnet_term(b, 0.5), _ref(pred, y, day, listnet))

    def ranknet(p, z, _t):
        i, j = np.nonzero(z[:, None] > z[None, :])
        return np.mean(np.log1p(np.exp(-(p[i] - p[j]))))

    _check(L.ranknet_term(b), _ref(pred, y, day, ranknet))


def test_pinball_matches_reference() -> None:
    pred, y, day, _ = _batch(4)
    levels = [0.1, 0.5, 0.9]
    q = torch.randn(pred.shape[0], H, 3)
    b = L.day_batch(pred, y, day)
    value = L.pinball_term(b, q, torch.tensor(levels))
    acc: dict[int, list[float]] = {k: [] for k in range(H)}
    yn, dn, qn = y.numpy(), day.numpy(), q.numpy()
    for k in range(H):
        for d in np.unique(dn):
            sel = (dn == d) & ~np.isnan(yn[:, k])
            t = yn[sel, k]
            if len(t) < 2:
                continue
            diff = ((t - t.mean()) / t.std())[:, None] - qn[sel, k]
            lv = np.array(levels)
            acc[k].append(np.mean(np.maximum(lv * diff, (lv - 1) * diff)))
    _check(value, np.array([np.mean(v) for v in acc.values()]))


def test_exposure_term_is_mean_squared_correlation_per_day() -> None:
    pred, y, day, _ = _batch(5)
    g = np.random.default_rng(5)
    sector = g.integers(0, 2, pred.shape[0])
    ex = np.stack([sector, 1 - sector, g.normal(size=pred.shape[0]), np.zeros(pred.shape[0])], 1)
    value, day_ok = L.exposure_term(
        L.day_batch(pred, y, day), torch.tensor(ex, dtype=torch.float32)
    )
    pn, dn = pred.double().numpy(), day.numpy()
    ref = np.zeros(H)
    days = [d for d in np.unique(dn) if (dn == d).sum() >= 2]
    for d in days:
        sel = dn == d
        for k in range(H):
            cs = [
                np.corrcoef(pn[sel, k], ex[sel, c])[0, 1] ** 2
                for c in range(4)
                if ex[sel, c].std() > 0
            ]
            ref[k] += np.mean(cs) / len(days)
    _check(value, ref)
    assert day_ok.tolist() == [True, True, False, True, True]


def test_per_day_cs_ic_differs_from_pooled() -> None:
    # Backwards within each day, aligned across day levels: pooled IC > 0, per-day IC = -1.
    y = torch.tensor([1.0, 2.0, 3.0, 11.0, 12.0, 13.0])[:, None] * 0.01
    pred = torch.tensor([3.0, 2.0, 1.0, 13.0, 12.0, 11.0])[:, None]
    day = torch.tensor([0, 0, 0, 1, 1, 1])
    b = L.day_batch(pred, y, day)
    pooled = 1 - np.corrcoef(pred[:, 0].numpy(), y[:, 0].numpy())[0, 1]
    assert L.cs_ic_term(b).item() == pytest.approx(2.0, abs=1e-4)
    assert pooled < 0.1
    assert L.rankic_term(b).item() > 1.8


def test_large_days_use_sampled_ranks_and_pairs_close_to_exact() -> None:
    torch.manual_seed(0)
    n = 700
    y = torch.randn(n, 1)
    pred = y + torch.randn(n, 1)
    day = torch.zeros(n, dtype=torch.long)
    b = L.day_batch(pred, y, day)
    pz = _z(pred[:, 0].double().numpy())
    soft = (1 / (1 + np.exp(-(pz[:, None] - pz[None, :]) / L.SOFT_RANK_TAU))).sum(1)
    exact_rank = 1 - np.corrcoef(soft, average_rank(y[:, 0].numpy()))[0, 1]
    assert L.rankic_term(b).item() == pytest.approx(exact_rank, abs=0.03)
    p, z = pred[:, 0].double().numpy(), y[:, 0].double().numpy()
    i, j = np.nonzero(z[:, None] > z[None, :])
    exact_pairs = np.mean(np.log1p(np.exp(-(p[i] - p[j]))))
    assert L.ranknet_term(b).item() == pytest.approx(exact_pairs, abs=0.03)


def _out(pred: torch.Tensor, q: int = 0) -> dict[str, torch.Tensor]:
    out = {"pred": pred}
    if q:
        out["quantiles"] = pred.unsqueeze(-1) + torch.linspace(-1, 1, q)
    return out


def test_module_total_is_finite_with_missing_horizons_and_combines_weights() -> None:
    pred, y, day, stock = _batch()
    pred.requires_grad_(True)
    cfg = LossConfig(
        horizon_weights=[1.5, 0.6, 0.3],
        sharpe_weight=0.1,
        listnet_weight=0.1,
        ranknet_weight=0.1,
        variance_floor=0.5,
        quantile_weight=0.2,
        exposure_weight=0.1,
    )
    loss = L.MultiHorizonLoss(cfg, [1, 5, 10], [0.1, 0.5, 0.9], n_stocks=5)
    total, parts = loss(_out(pred, 3), y, day, stock, torch.randn(pred.shape[0], 2))
    assert torch.isfinite(total)
    assert {
        "huber",
        "sharpe",
        "rankic",
        "cs_ic",
        "listnet",
        "ranknet",
        "var_floor",
        "quantile",
        "exposure",
    } <= set(parts)
    total.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    b = L.day_batch(pred.detach(), y, day)
    w = torch.tensor([1.5, 0.6, 0.3])
    want = (L.huber_term(b, 1.0) * w).sum() / w.sum()
    assert parts["huber"].item() == pytest.approx(want.item(), rel=1e-5)
    weights = {
        "huber": 1.0,
        "sharpe": 0.1,
        "rankic": 0.1,
        "cs_ic": 0.1,
        "listnet": 0.1,
        "ranknet": 0.1,
        "var_floor": 1.0,
        "quantile": 0.2,
        "exposure": 0.1,
    }
    assert total.item() == pytest.approx(
        sum(weights[k] * parts[k].item() for k in weights), rel=1e-5
    )


def test_module_all_nan_batch_is_zero_and_differentiable() -> None:
    pred = torch.randn(10, 2, requires_grad=True)
    y = torch.full((10, 2), math.nan)
    loss = L.MultiHorizonLoss(LossConfig(horizon_weights=[1.0, 1.0]), [1, 5], [], n_stocks=10)
    total, _ = loss({"pred": pred}, y, torch.arange(10) // 5, torch.arange(10))
    total.backward()
    assert total.item() == 0.0 and torch.isfinite(pred.grad).all()


def test_module_handles_bf16_and_constant_predictions() -> None:
    _, y, day, stock = _batch()
    pred = torch.zeros(y.shape, dtype=torch.bfloat16, requires_grad=True)
    loss = L.MultiHorizonLoss(
        LossConfig(horizon_weights=[1.0] * H, variance_floor=0.1), [1, 5, 10], [], 5
    )
    total, parts = loss({"pred": pred}, y, day, stock)
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(pred.grad.float()).all()
    assert parts["cs_ic"].item() == pytest.approx(1.0)
    assert parts["var_floor"].item() == pytest.approx(0.01, abs=1e-4)  # (0.1 - 0)^2


def test_turnover_ema_updates_only_in_training() -> None:
    cfg = LossConfig(horizon_weights=[1.0], turnover_weight=1.0, turnover_ema=0.5)
    loss = L.MultiHorizonLoss(cfg, [1], [], n_stocks=4)
    y = torch.randn(4, 1)
    day, stock = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 2])
    p1 = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    _, parts = loss({"pred": p1}, y, day, stock)
    assert parts["turnover"].item() == 0.0  # nothing seen yet
    assert loss.pred_seen.tolist() == [True, True, True, False]
    assert loss.pred_ema[:3, 0].tolist() == [2.0, 2.0, 4.0]  # stock 0: mean of its two days
    p2 = torch.tensor([[3.0], [1.0], [2.0], [0.0]])
    loss.eval()
    _, parts = loss({"pred": p2}, y, day, stock)
    # day 0: stocks 0, 1: |3-2|, |1-2|; day 1: stocks 0, 2: |2-2|, |0-4|
    assert parts["turnover"].item() == pytest.approx(((1 + 1) / 2 + (0 + 4) / 2) / 2)
    assert loss.pred_ema[:3, 0].tolist() == [2.0, 2.0, 4.0]  # eval leaves the EMA alone
    loss.train()
    loss({"pred": p2}, y, day, stock)
    assert loss.pred_ema[:3, 0].tolist() == [2.25, 1.5, 2.0]


def test_describe_names_weights() -> None:
    loss = L.MultiHorizonLoss(LossConfig(sharpe_weight=0.5), [1, 5, 10, 20], [], 1)
    assert loss.describe().startswith(
        "Sharpe/RankIC/CS-IC/Huber computed per trading day (group_day); weights sharpe=0.5"
    )
