"""Synthetic stock market in the original pipeline's schema, with a planted weak alpha.

Returns are r = beta * market + sector + alpha + idiosyncratic (student-t, volatility regimes).
The alpha mu[d, n] (expected return from day d to d+1, known at d) has three parts of equal-ish
variance: linear in one feature, nonlinear (U-shaped) in another, and the 10-day moving average of
a third (noisy) feature, which a model that sees only the last day cannot recover. Its size is set
so the per-day oracle IC at h=1 is about 0.09, as in real equity markets.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

GENERATOR_VERSION = 1
HORIZONS = (1, 5, 10, 20)
START_DATE = "2016-01-04"
TARGET_IC = 0.09
# 300 stocks x 1000 days x 24 features is ~280k rows: ~200k training samples per epoch, which a
# hidden-64 model with seq_len 20 runs in ~10-15 s per epoch on 2 CPU cores (10 epochs ~2-3 min).
DEFAULT_STOCKS, DEFAULT_DAYS, DEFAULT_FEATURES, DEFAULT_SEED = 300, 1000, 24, 7
NAMED = ("ret_1d", "ret_5d", "ret_20d", "vol_20d", "log_volume", "volume_ratio")
MIN_FEATURES = len(NAMED) + 4


def _ar1(rng: np.random.Generator, days: int, shape: tuple[int, ...], phi: np.ndarray, df: float) -> np.ndarray:
    """Unit-variance AR(1) series along axis 0 with student-t innovations (loop over days only)."""
    eps = rng.standard_t(df, size=(days, *shape)).astype(np.float64) / np.sqrt(df / (df - 2))
    out = np.empty_like(eps)
    out[0] = eps[0]
    a, b = phi, np.sqrt(1.0 - phi**2)
    for d in range(1, days):
        out[d] = a * out[d - 1] + b * eps[d]
    return out


def _rolling(x: np.ndarray, w: int, fn: str = "sum") -> np.ndarray:
    """Rolling sum/mean/std over the last w days (axis 0); NaN unless all w values are present."""
    ok = np.isfinite(x)
    z = np.where(ok, x, 0.0)
    pad = np.zeros((1, *x.shape[1:]))

    def win(a: np.ndarray) -> np.ndarray:
        c = np.concatenate([pad, np.cumsum(a, axis=0)])
        out = np.full(x.shape, np.nan)
        out[w - 1 :] = c[w:] - c[:-w]
        return out

    cnt = win(ok.astype(np.float64))
    s = win(z)
    if fn == "std":
        var = win(z * z) / w - (s / w) ** 2
        s = np.sqrt(np.maximum(var, 0.0) * w / (w - 1))
    elif fn == "mean":
        s = s / w
    return np.where(cnt == w, s, np.nan)


def _zscore_days(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Cross-sectional z-score per day (axis 1) over finite values in mask; NaN outside."""
    ok = mask & np.isfinite(x)
    n = np.maximum(ok.sum(axis=1, keepdims=True), 1)
    c = np.where(ok, x, 0.0)
    c = np.where(ok, c - c.sum(axis=1, keepdims=True) / n, 0.0)
    sd = np.sqrt((c * c).sum(axis=1, keepdims=True) / n)
    return np.where(ok, c / np.where(sd > 0, sd, 1.0), np.nan)


def daily_ic(pred: np.ndarray, y: np.ndarray, mask: np.ndarray, min_n: int = 10) -> float:
    """Mean over days of the cross-sectional Pearson correlation of pred and y ([days, stocks])."""
    ok = mask & np.isfinite(pred) & np.isfinite(y)
    n = ok.sum(axis=1)
    safe = np.maximum(n, 1)[:, None]
    p = np.where(ok, pred, 0.0)
    t = np.where(ok, y, 0.0)
    p = np.where(ok, p - p.sum(axis=1, keepdims=True) / safe, 0.0)
    t = np.where(ok, t - t.sum(axis=1, keepdims=True) / safe, 0.0)
    vp, vt = (p * p).sum(axis=1), (t * t).sum(axis=1)
    keep = (n >= min_n) & (vp > 0) & (vt > 0)
    ic = (p * t).sum(axis=1)[keep] / np.sqrt(vp[keep] * vt[keep])
    return float(ic.mean()) if ic.size else float("nan")


def ridge_ic(X: np.ndarray, y: np.ndarray, mask: np.ndarray, split: int | tuple[slice, slice],
             lam: float = 1e-2) -> float:
    """IC of a ridge fit of y on the same day's z-scored features: fitted on days < split and scored
    on days >= split, or fitted on the first slice of days and scored on the second."""
    fit_days, eval_days = (slice(0, split), slice(split, None)) if isinstance(split, int) else split
    Xz = np.nan_to_num(_zscore_days(X, mask[..., None]))
    yc = _zscore_days(y, mask & np.isfinite(y))
    fit = mask[fit_days] & np.isfinite(yc[fit_days])
    A, b = Xz[fit_days][fit], yc[fit_days][fit]
    xtx = A.T @ A
    w = np.linalg.solve(xtx + lam * np.trace(xtx) / len(xtx) * np.eye(len(xtx)), A.T @ b)
    return daily_ic(Xz[eval_days] @ w, y[eval_days], mask[eval_days])


def _simulate(stocks: int, days: int, features: int, seed: int) -> dict[str, Any]:
    """Draw the whole market as [days, stocks] arrays."""
    rng = np.random.default_rng(seed)
    n_sec = int(min(17, max(2, stocks // 15)))
    sector = rng.integers(0, n_sec, stocks)
    # listing / delisting: most stocks trade the whole time, some list late or delist early
    list_day = np.where(rng.random(stocks) < 0.75, 0, rng.integers(0, max(1, int(days * 0.8)), stocks))
    delist = np.where(rng.random(stocks) < 0.85, days, 0)
    late = delist == 0
    lo = np.minimum(list_day + 60, days - 1)
    delist[late] = lo[late] + (rng.random(late.sum()) * (days - lo[late])).astype(int)
    d_idx = np.arange(days)[:, None]
    alive = (d_idx >= list_day) & (d_idx < delist)
    exists = alive & (rng.random((days, stocks)) > 0.002)  # occasional missing rows (halts)

    # noise: market with volatility regimes, sectors, fat-tailed idiosyncratic
    regime = np.exp(0.35 * _ar1(rng, days, (1,), np.array([0.98]), 30.0)[:, 0])
    market = 0.0002 + 0.010 * regime * rng.standard_t(4, days) / np.sqrt(2)
    sec_ret = 0.006 * regime[:, None] * rng.standard_t(5, (days, n_sec)) / np.sqrt(5 / 3)
    beta = np.clip(rng.normal(1.0, 0.3, stocks), 0.2, 2.0)
    sigma = 0.018 * np.exp(rng.normal(0.0, 0.3, stocks))
    idio = sigma * regime[:, None] * rng.standard_t(4, (days, stocks)) / np.sqrt(2)
    noise = beta * market[:, None] + sec_ret[:, sector] + idio

    # alpha drivers; observed features are these (plus NaNs), the alpha uses the clean values
    drivers = _ar1(rng, days, (stocks, 3), np.array([0.9, 0.8, 0.0]), 6.0)
    z_lin, z_nl, h = drivers[..., 0], drivers[..., 1], drivers[..., 2]
    hist = np.nan_to_num(_rolling(h, 10, "mean")) * np.sqrt(10.0)
    nonlin = -(np.clip(z_nl, -4, 4) ** 2 - 1.0) / np.sqrt(2.0)
    raw = np.sqrt(0.4) * z_lin + np.sqrt(0.3) * nonlin + np.sqrt(0.3) * hist
    raw = np.nan_to_num(_zscore_days(raw, alive))
    cs_noise = np.nanmean(np.nanstd(np.where(alive, noise, np.nan), axis=1))
    mu = TARGET_IC / np.sqrt(1 - TARGET_IC**2) * cs_noise * raw  # expected r[d+1] at day d
    r = np.empty_like(noise)
    r[0] = noise[0]
    r[1:] = mu[:-1] + noise[1:]
    r = np.clip(r, -0.3, 0.3)  # daily price limits
    r_obs = np.where(alive & (d_idx > list_day), r, np.nan)  # no return on the listing day

    # targets: compounded forward returns, null past the end or the delisting
    logp = np.cumsum(np.log1p(r), axis=0)
    targets, planted = {}, {}
    cmu = np.concatenate([np.zeros((1, stocks)), np.cumsum(mu, axis=0)])
    for hz in HORIZONS:
        t = np.full((days, stocks), np.nan)
        t[: days - hz] = np.expm1(logp[hz:] - logp[:-hz])
        valid = (d_idx + hz < delist) & (d_idx >= list_day)
        targets[hz] = np.where(valid, t, np.nan)
        p = np.full((days, stocks), np.nan)
        p[: days - hz + 1] = cmu[hz:] - cmu[: days - hz + 1]
        planted[hz] = p

    # features: named return/volume features, the three drivers, then distractors
    lv = 12.0 + rng.normal(0, 1.0, stocks) + 0.5 * _ar1(rng, days, (stocks,), np.full(stocks, 0.7), 6.0)
    lv = lv + 0.3 * np.nan_to_num(np.abs(r_obs) / sigma)
    lv = np.where(alive, lv, np.nan)
    feats: dict[str, np.ndarray] = {
        "ret_1d": r_obs,
        "ret_5d": _rolling(r_obs, 5),
        "ret_20d": _rolling(r_obs, 20),
        "vol_20d": _rolling(r_obs, 20, "std"),
        "log_volume": lv,
        "volume_ratio": np.exp(lv) / _rolling(np.exp(lv), 20, "mean"),
    }
    n_gen = features - len(NAMED)
    names = [f"feat_{i:02d}" for i in range(n_gen)]
    slots = {"linear": 0, "nonlinear": n_gen // 3, "history": (2 * n_gen) // 3}
    n_dis = n_gen - 3
    phis = rng.uniform(0.3, 0.99, n_dis)
    dis = _ar1(rng, days, (stocks, n_dis), np.broadcast_to(phis, (stocks, n_dis)), 5.0)
    dis += rng.normal(0, 1.0, (stocks, n_dis)) * (rng.random(n_dis) < 0.3)  # per-stock levels
    mix = rng.random(n_dis) < 0.3  # some distractors are noisy proxies of the linear driver
    dis[..., mix] = 0.5 * z_lin[..., None] + np.sqrt(0.75) * dis[..., mix]
    k = 0
    for i, name in enumerate(names):
        if i == slots["linear"]:
            v = z_lin
        elif i == slots["nonlinear"]:
            v = z_nl
        elif i == slots["history"]:
            v = h
        else:
            v = dis[..., k]
            k += 1
        feats[name] = v
    for j, (name, v) in enumerate(feats.items()):
        p_nan = 0.2 if j == len(feats) - 1 else rng.uniform(0.0, 0.03)
        v = np.where(alive & (rng.random((days, stocks)) >= p_nan), v, np.nan)
        if j >= len(NAMED):  # rare outliers for the robust scaler to handle
            v = np.where(rng.random((days, stocks)) < 1e-4, v * 30.0, v)
        feats[name] = v
    alpha = {part: names[i] for part, i in slots.items()}
    return dict(exists=exists, sector=sector, feats=feats, targets=targets, planted=planted,
                mu=mu, alpha=alpha, n_sectors=n_sec)


def _frame(sim: dict[str, Any], stocks: int, days: int, seed: int) -> pl.DataFrame:
    """Rows of existing (stock, day) pairs, sorted by Code then Date."""
    ex = sim["exists"].T  # [stocks, days]
    n_idx, d_idx = np.nonzero(ex)
    rng = np.random.default_rng(seed + 1)
    codes = np.sort(rng.choice(np.arange(1300, 1300 + max(8000, 3 * stocks)), stocks, replace=False))
    start = np.datetime64(START_DATE)
    cal = np.arange(start, start + np.timedelta64(days * 2 + 10, "D"))
    cal = cal[np.is_busday(cal)][:days]
    cols: dict[str, Any] = {
        "Code": pl.Series("Code", codes.astype(str)).gather(n_idx),
        "Date": pl.Series("Date", cal[d_idx]),
    }
    for name, v in {**sim["feats"], **{f"target_{h}d": t for h, t in sim["targets"].items()}}.items():
        cols[name] = pl.Series(name, v.T[ex].astype(np.float32)).fill_nan(None)
    cols["sector"] = pl.Series("sector", sim["sector"][n_idx].astype(np.int32))
    return pl.DataFrame(cols)


def _scores(sim: dict[str, Any], split: tuple[slice, slice] | None = None
            ) -> tuple[dict[str, float], dict[str, float]]:
    """Oracle IC and ridge-on-last-day IC per horizon. Default (the JSON beside the data): the
    oracle over every day, the ridge fitted on the first 70% of days and scored on the rest; with
    split = (fit days, scored days), both are scored on the same days."""
    days = sim["exists"].shape[0]
    fit_eval = (slice(0, int(days * 0.7)), slice(int(days * 0.7), None)) if split is None else split
    oracle_days = slice(None) if split is None else split[1]
    X = np.stack(list(sim["feats"].values()), axis=-1).astype(np.float32)
    ex = sim["exists"]
    oracle, ridge = {}, {}
    for h in HORIZONS:
        y = sim["targets"][h]
        oracle[str(h)] = round(daily_ic(sim["planted"][h][oracle_days], y[oracle_days], ex[oracle_days]), 5)
        ridge[str(h)] = round(ridge_ic(X, y, ex, fit_eval), 5)
    return oracle, ridge


def scores_on_split(fit_days: slice, scored: Sequence[slice], stocks: int = DEFAULT_STOCKS,
                    days: int = DEFAULT_DAYS, features: int = DEFAULT_FEATURES, seed: int = DEFAULT_SEED
                    ) -> list[tuple[dict[str, float], dict[str, float]]]:
    """(oracle, ridge) IC per horizon for each span of scored days, the ridge fitted on fit_days
    (day indices of the market; e.g. the engine's training days, then its validation and test
    days), so a model's IC is compared on the same days. Re-draws the market once (deterministic)."""
    sim = _simulate(stocks, days, features, seed)
    return [_scores(sim, (fit_days, span)) for span in scored]


def generate_market(
    out: Path,
    stocks: int = DEFAULT_STOCKS,
    days: int = DEFAULT_DAYS,
    features: int = DEFAULT_FEATURES,
    seed: int = DEFAULT_SEED,
) -> Path:
    """Write a synthetic market parquet at out and `<stem>.oracle.json` beside it; returns out."""
    if stocks < 20 or days < 60 or features < MIN_FEATURES:
        raise ValueError(f"need stocks >= 20, days >= 60, features >= {MIN_FEATURES}")
    out = Path(out)
    sim = _simulate(stocks, days, features, seed)
    df = _frame(sim, stocks, days, seed)
    oracle, ridge = _scores(sim)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.write_parquet(out, compression="zstd", compression_level=1, statistics=True)
    meta = {
        "oracle_ic": oracle,
        "ridge_ic": ridge,
        "params": {
            "stocks": stocks, "days": days, "features": features, "seed": seed,
            "rows": df.height, "n_sectors": sim["n_sectors"], "target_ic": TARGET_IC,
            "alpha_features": sim["alpha"], "start": str(df["Date"].min()),
            "end": str(df["Date"].max()), "generator_version": GENERATOR_VERSION,
        },
    }
    oracle_path(out).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return out


def oracle_path(market: Path) -> Path:
    """The JSON file beside a market parquet."""
    return market.parent / f"{market.stem}.oracle.json"


def default_market_path() -> Path:
    """Where the default market lives: $RUNCTL_CACHE or ~/.cache/runctl."""
    base = os.environ.get("RUNCTL_CACHE") or str(Path.home() / ".cache" / "runctl")
    name = f"market_{DEFAULT_STOCKS}x{DEFAULT_DAYS}x{DEFAULT_FEATURES}_s{DEFAULT_SEED}_v{GENERATOR_VERSION}"
    return Path(base) / f"{name}.parquet"


def ensure_default_market(log: Callable[[str], None]) -> Path:
    """Generate the default market once (atomically: tmp file, then rename) and reuse it."""
    path = default_market_path()
    if path.is_file() and oracle_path(path).is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    log(f"[data] Generating default synthetic market ({DEFAULT_STOCKS} stocks x {DEFAULT_DAYS} days "
        f"x {DEFAULT_FEATURES} features, seed {DEFAULT_SEED}): {path}")
    tmp = path.parent / f".{path.stem}.tmp{os.getpid()}.parquet"
    try:
        generate_market(tmp, DEFAULT_STOCKS, DEFAULT_DAYS, DEFAULT_FEATURES, DEFAULT_SEED)
        os.replace(oracle_path(tmp), oracle_path(path))
        os.replace(tmp, path)  # the parquet appears last: its presence means "complete"
    finally:
        for p in (tmp, oracle_path(tmp)):
            p.unlink(missing_ok=True)
    return path


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(message)


def synth_main(argv: list[str]) -> int:
    """`python -m engine synth`: write a market parquet and its oracle JSON; errors exit 2."""
    p = _Parser(prog="python -m engine synth", description="Write a synthetic market parquet.")
    p.add_argument("--out", required=True, type=Path, help="output parquet path")
    p.add_argument("--stocks", type=int, default=DEFAULT_STOCKS)
    p.add_argument("--days", type=int, default=DEFAULT_DAYS)
    p.add_argument("--features", type=int, default=DEFAULT_FEATURES)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    try:
        a = p.parse_args(argv)
        out = generate_market(a.out, a.stocks, a.days, a.features, a.seed)
    except (ValueError, OSError) as e:
        print(f"engine synth: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    meta = json.loads(oracle_path(out).read_text(encoding="utf-8"))
    print(f"wrote {out} ({meta['params']['rows']} rows); oracle_ic={meta['oracle_ic']} "
          f"ridge_ic={meta['ridge_ic']}")
    return 0
