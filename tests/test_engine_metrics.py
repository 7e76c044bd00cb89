"""engine.metrics against straightforward per-day numpy references."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.metrics import average_rank, evaluate, long_short_return, pearson


def _brute_rank(a: np.ndarray) -> np.ndarray:
    return np.array([(a < v).sum() + ((a == v).sum() + 1) / 2 for v in a], dtype=float)


def _reference(pred: np.ndarray, y: np.ndarray, day: np.ndarray, horizons: list[int]) -> dict:
    """Per-day metrics written out plainly, one day at a time."""
    out: dict = {}
    rets: list[float] = []
    for k, h in enumerate(horizons):
        ic, ric, sc, hit, mae, mse = [], [], [], [], [], []
        for d in sorted(set(day.tolist())):
            sel = (day == d) & ~np.isnan(y[:, k])
            p, t = pred[sel, k], y[sel, k]
            if len(p) < 2:
                continue
            if k == 0:  # the book trades every day with >= 2 valid rows
                w = (p - p.mean()) / np.abs(p - p.mean()).sum()
                rets.append(float(w @ t))
            if t.std() == 0:
                continue
            z = (t - t.mean()) / t.std()
            ic.append(np.corrcoef(p, t)[0, 1])
            ric.append(np.corrcoef(_brute_rank(p), _brute_rank(t))[0, 1])
            sc.append(p.std() / z.std())
            hit.append(np.mean(np.sign(p - p.mean()) == np.sign(t - t.mean())))
            mae.append(np.mean(np.abs(p - z)))
            mse.append(np.mean((p - z) ** 2))
        ic_a = np.array(ic)
        out[h] = {
            "ic": ic_a.mean(),
            "rank_ic": np.mean(ric),
            "scale": np.mean(sc),
            "hit": np.mean(hit),
            "mae": np.mean(mae),
            "rmse": math.sqrt(np.mean(mse)),
            "icir": ic_a.mean() / ic_a.std(ddof=1),
        }
    r = np.array(rets)
    out["sharpe"] = r.mean() / r.std(ddof=1)
    return out


def _panel(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = [7, 12, 1, 9, 15, 10]  # the 1-row day is skipped everywhere
    day = np.concatenate([np.full(n, d) for d, n in enumerate(sizes)])
    rng.shuffle(day)  # rows of a day need not be contiguous
    y = rng.normal(0, 0.02, (day.size, 3)) + rng.normal(0, 0.01, (day.max() + 1, 1))[day]
    pred = 0.3 * (y - y.mean(0)) / y.std(0) + rng.normal(0, 1, y.shape)
    pred[:, 1] = np.round(pred[:, 1], 0)  # ties in predictions
    y[rng.random(day.size) < 0.1, 2] = np.nan
    y[day == 3, 1] = np.nan  # one horizon missing for a whole day
    return pred, y, day


def test_average_rank_matches_brute_force_with_ties() -> None:
    a = np.array([3.0, 1.0, 3.0, 2.0, 3.0, 1.0])
    np.testing.assert_allclose(average_rank(a), _brute_rank(a))
    np.testing.assert_allclose(average_rank(a), [5, 1.5, 5, 3, 5, 1.5])


def test_evaluate_matches_per_day_reference() -> None:
    pred, y, day = _panel()
    horizons = [1, 5, 10]
    res = evaluate(pred, y, day, horizons)
    ref = _reference(pred, y, day, horizons)
    for h in horizons:
        for key in ("ic", "rank_ic", "scale", "hit", "mae", "rmse", "icir"):
            assert res.per_horizon[h][key] == pytest.approx(ref[h][key], rel=1e-9, abs=1e-12), (
                h,
                key,
            )
    assert res.sharpe == pytest.approx(ref["sharpe"], rel=1e-9)
    assert res.sharpe_ann == pytest.approx(ref["sharpe"] * math.sqrt(252), rel=1e-9)
    assert res.n_days == 5


def test_per_day_ic_differs_from_pooled_ic() -> None:
    # Within each day the prediction ranks the stocks backwards, but day levels line up,
    # so a pooled correlation is strongly positive while the per-day IC is exactly -1.
    y = np.array([1.0, 2.0, 3.0, 11.0, 12.0, 13.0])[:, None]
    pred = np.array([3.0, 2.0, 1.0, 13.0, 12.0, 11.0])[:, None]
    day = np.array([0, 0, 0, 1, 1, 1])
    res = evaluate(pred, y, day, [1])
    assert pearson(pred[:, 0], y[:, 0]) > 0.9
    assert res.per_horizon[1]["ic"] == pytest.approx(-1.0)
    assert res.per_horizon[1]["rank_ic"] == pytest.approx(-1.0)
    assert res.per_horizon[1]["hit"] == pytest.approx(1 / 3)  # the middle row: sign 0 == sign 0


def test_constant_predictions_give_nan_ic_and_zero_scale() -> None:
    pred, y, day = _panel(1)
    res = evaluate(np.full_like(pred, 0.25), y, day, [1, 5, 10])
    for h in (1, 5, 10):
        m = res.per_horizon[h]
        assert math.isnan(m["ic"]) and math.isnan(m["rank_ic"]) and math.isnan(m["icir"])
        assert m["scale"] == 0.0
    assert math.isnan(res.sharpe) and math.isnan(res.sharpe_ann)  # the book is flat every day


def test_scale_and_errors_in_z_units() -> None:
    rng = np.random.default_rng(3)
    day = np.repeat(np.arange(4), 50)
    y = rng.normal(0, 0.03, (200, 1)) * (1 + day[:, None])  # very different daily volatility
    z = np.concatenate([(y[day == d] - y[day == d].mean()) / y[day == d].std() for d in range(4)])
    res = evaluate(0.5 * z, y, day, [1])
    m = res.per_horizon[1]
    assert m["scale"] == pytest.approx(0.5)
    assert m["ic"] == pytest.approx(1.0) and m["rank_ic"] == pytest.approx(1.0)
    assert m["hit"] == pytest.approx(1.0)
    assert m["rmse"] == pytest.approx(0.5)
    assert m["mae"] == pytest.approx(0.5 * np.mean(np.abs(z)))


def test_long_short_sharpe_by_hand() -> None:
    # Two stocks a day: the book is +0.5 / -0.5, so r_d = (y_long - y_short) / 2.
    pred = np.array([[1.0], [0.0], [1.0], [0.0], [0.0], [1.0]])
    y = np.array([[0.03], [0.01], [0.02], [0.02], [0.01], [0.05]])
    day = np.array([0, 0, 1, 1, 2, 2])
    assert long_short_return(pred[:2, 0], y[:2, 0]) == pytest.approx(0.01)
    r = np.array([0.01, 0.0, 0.02])
    res = evaluate(pred, y, day, [1])
    assert res.sharpe == pytest.approx(r.mean() / r.std(ddof=1))
    assert res.sharpe_ann == pytest.approx(res.sharpe * math.sqrt(252))
    assert res.n_days == 3


def test_nan_targets_and_tiny_days_are_skipped() -> None:
    pred = np.array([[0.1, 0.2], [0.3, 0.1], [0.5, 0.0], [0.2, 0.4]])
    y = np.array([[0.01, np.nan], [0.02, np.nan], [0.03, 0.01], [np.nan, np.nan]])
    day = np.array([0, 0, 1, 1])
    res = evaluate(pred, y, day, [1, 5])
    assert res.n_days == 1  # day 1 has a single valid 1d target
    assert res.per_horizon[1]["ic"] == pytest.approx(1.0)
    assert math.isnan(res.per_horizon[5]["ic"])  # no day with 2 valid 5d targets
    assert math.isnan(res.sharpe)
