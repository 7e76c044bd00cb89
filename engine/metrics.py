"""Per-trading-day evaluation metrics in numpy (definitions: docs/metrics.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

TRADING_DAYS = 252
METRIC_KEYS = ("ic", "rank_ic", "scale", "mae", "rmse", "hit", "icir")


@dataclass(frozen=True)
class EvalResult:
    """Per-horizon metrics, the long-short Sharpe at the first horizon and the days it used."""

    per_horizon: dict[int, dict[str, float]] = field(default_factory=dict)
    sharpe: float = math.nan  # mean/std of daily long-short returns, NOT annualised
    sharpe_ann: float = math.nan  # sharpe * sqrt(252)
    n_days: int = 0  # days with >= 2 valid rows at the first horizon


def average_rank(a: np.ndarray) -> np.ndarray:
    """1-based ranks; ties get the mean of the ranks they span (scipy's rankdata 'average')."""
    order = np.argsort(a, kind="mergesort")
    sorted_a = a[order]
    first = np.r_[True, sorted_a[1:] != sorted_a[:-1]]
    group = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], a.size]
    ranks = np.empty(a.size, dtype=np.float64)
    ranks[order] = ((starts + ends + 1) / 2.0)[group]
    return ranks


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; nan when either side is constant."""
    ac, bc = a - a.mean(), b - b.mean()
    den = math.sqrt(float(ac @ ac) * float(bc @ bc))
    return float(ac @ bc) / den if den > 0 else math.nan


def _mean_or_nan(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def ratio_ddof1(values: list[float]) -> float:
    """mean / sample std (ddof=1) of the non-nan values; nan with < 2 values or zero spread."""
    v = np.array([x for x in values if not math.isnan(x)], dtype=np.float64)
    if v.size < 2:
        return math.nan
    sd = float(v.std(ddof=1))
    return float(v.mean()) / sd if sd > 0 else math.nan


def _day_slices(day: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(day, kind="mergesort")
    _, starts = np.unique(day[order], return_index=True)
    return np.split(order, starts[1:])


def day_metrics(p: np.ndarray, y: np.ndarray) -> dict[str, float] | None:
    """Metrics of one day and horizon (rows already filtered to valid); None if unusable."""
    if p.size < 2:
        return None
    y_sd = float(y.std())
    if y_sd == 0:
        return None
    yz = (y - y.mean()) / y_sd
    p_sd = float(p.std())
    constant = p_sd == 0
    err = p - yz
    return {
        "ic": math.nan if constant else pearson(p, y),
        "rank_ic": math.nan if constant else pearson(average_rank(p), average_rank(y)),
        "scale": p_sd,  # std(pred) / std(z target) and std(z target) == 1
        "hit": float(np.mean(np.sign(p - p.mean()) == np.sign(y - y.mean()))),
        "mae": float(np.mean(np.abs(err))),
        "mse": float(np.mean(err**2)),
    }


def long_short_return(p: np.ndarray, y: np.ndarray) -> float:
    """One day's return of w = (p - mean p) / sum|p - mean p| on raw returns (0 if p is flat)."""
    centred = p - p.mean()
    gross = float(np.abs(centred).sum())
    return float(centred @ y) / gross if gross > 0 else 0.0


def evaluate(pred: np.ndarray, y: np.ndarray, day: np.ndarray, horizons: list[int]) -> EvalResult:
    """Per-day metrics averaged over days, per horizon; Sharpe of the first horizon's long-short book."""
    pred = np.asarray(pred, dtype=np.float64).reshape(len(day), -1)
    y = np.asarray(y, dtype=np.float64).reshape(len(day), -1)
    day = np.asarray(day).reshape(-1)
    if pred.shape[1] != len(horizons) or y.shape[1] != len(horizons):
        raise ValueError(f"pred {pred.shape} / y {y.shape} do not match {len(horizons)} horizons")
    slices = _day_slices(day) if day.size else []
    per_horizon: dict[int, dict[str, float]] = {}
    daily_returns: list[float] = []
    for k, h in enumerate(horizons):
        rows: list[dict[str, float]] = []
        for idx in slices:
            p, t = pred[idx, k], y[idx, k]
            ok = np.isfinite(p) & np.isfinite(t)
            if k == 0 and ok.sum() >= 2:
                daily_returns.append(long_short_return(p[ok], t[ok]))
            m = day_metrics(p[ok], t[ok])
            if m is not None:
                rows.append(m)
        ics = [r["ic"] for r in rows]
        per_horizon[h] = {
            "ic": _mean_or_nan(ics),
            "rank_ic": _mean_or_nan([r["rank_ic"] for r in rows]),
            "scale": _mean_or_nan([r["scale"] for r in rows]),
            "mae": _mean_or_nan([r["mae"] for r in rows]),
            "rmse": math.sqrt(_mean_or_nan([r["mse"] for r in rows])) if rows else math.nan,
            "hit": _mean_or_nan([r["hit"] for r in rows]),
            "icir": ratio_ddof1(ics),
        }
    sharpe = ratio_ddof1(daily_returns)
    return EvalResult(per_horizon, sharpe, sharpe * math.sqrt(TRADING_DAYS), len(daily_returns))
