"""prepare_data's fast paths (issue 12) against plain references on small data: the column-block
pipeline at any block width, the in-place rolling beta, the lookup-table sector ranks, the
pre-mapped matrix. Timings and memory live in bench/bench_data.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

import engine.data as engine_data
from engine.data import prepare_data
from engine.panel import BETA_MIN_OBS, BETA_WINDOW, empty_f32, market_beta
from engine.synth import generate_market
from tests.test_engine_data import _cfg


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mkt") / "market.parquet"
    return generate_market(path, stocks=40, days=200, features=12, seed=5)


def _batches(data: engine_data.PreparedData) -> list[dict[str, torch.Tensor]]:
    return [ds[i] for ds in (data.train, data.val, data.test) for i in range(len(ds))]


@pytest.mark.parametrize("width", [1, 5, 64])
def test_any_block_width_gives_the_same_data(market: Path, width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """One column per block, uneven blocks, one block: the same matrix, scaler and batches."""
    ref = prepare_data(_cfg(market), lambda m: None, lambda m: None)
    rows = ref.train.panel.x.shape[0] - 1
    monkeypatch.setattr(engine_data, "BLOCK_SHARE", 1.0)
    monkeypatch.setattr(engine_data, "BLOCK_BYTES", (1, 4 * rows * width))
    monkeypatch.setattr(engine_data, "MIN_BLOCK_COLUMNS", 1)
    assert len(engine_data._column_blocks(12, rows)) == -(-12 // min(width, 12))
    got = prepare_data(_cfg(market), lambda m: None, lambda m: None)
    assert torch.equal(got.train.panel.x, ref.train.panel.x)
    np.testing.assert_array_equal(got.scaler.median_, ref.scaler.median_)
    np.testing.assert_array_equal(got.scaler.scale_, ref.scaler.scale_)
    for a, b in zip(_batches(got), _batches(ref), strict=True):
        assert a.keys() == b.keys()
        for k in a:  # y holds NaN where a target is missing
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, equal_nan=True)


def test_matrix_is_the_scaler_applied_to_the_raw_rows(market: Path) -> None:
    data = prepare_data(_cfg(market), lambda m: None, lambda m: None)
    raw = pl.read_parquet(market).select(data.feature_names).to_numpy().astype(np.float32)
    x = data.train.panel.x
    np.testing.assert_array_equal(x[:-1].numpy(), data.scaler.transform(raw))  # file order, every row
    assert not x[-1].any()  # the zero row absent cells point at


def _beta_reference(ret: np.ndarray) -> np.ndarray:
    """Per stock and day, the window's sums directly (no cumulative sums)."""
    d_, n_ = ret.shape
    ok = np.isfinite(ret)
    r = np.where(ok, ret, 0.0).astype(np.float64)
    cnt = ok.sum(axis=1)
    m = np.where(cnt > 0, r.sum(axis=1) / np.maximum(cnt, 1), 0.0)
    out = np.ones((d_, n_))
    for d in range(d_):
        w = slice(max(0, d - BETA_WINDOW + 1), d + 1)
        for i in range(n_):
            o = ok[w, i]
            n = o.sum()
            rs, ms = r[w, i][o], m[w][o]
            if n >= BETA_MIN_OBS:
                var = (ms * ms).sum() - ms.sum() ** 2 / n
                if var > 1e-12:
                    out[d, i] = ((rs * ms).sum() - rs.sum() * ms.sum() / n) / var
    return np.clip(out, -3.0, 3.0).astype(np.float32)


def test_market_beta_matches_a_per_cell_loop() -> None:
    rng = np.random.default_rng(7)
    ret = (rng.standard_normal((150, 9)) * 0.02).astype(np.float32)
    ret += 0.5 * ret.mean(axis=1, keepdims=True)  # some market in every stock
    ret[rng.random(ret.shape) < 0.2] = np.nan
    ret[:, 3] = np.nan  # a stock that never trades
    ret[40:70, 5] = np.nan  # a long gap
    np.testing.assert_allclose(market_beta(ret), _beta_reference(ret), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("values", [[3, 1, None, 3, 7, 1, -2], [None, None], [5], [0, 1 << 30, 5, None],
                                    list(range(-5, 40)) * 3])
def test_sector_ranks_as_polars_dense_rank(values: list[int | None]) -> None:
    s = pl.Series("sector", values, dtype=pl.Int64)
    want = s.to_frame().select((pl.col("sector").rank("dense") - 1).fill_null(-1))["sector"].to_numpy()
    np.testing.assert_array_equal(engine_data._dense_rank(s), want)


def test_large_matrix_is_premapped_and_writable() -> None:
    x = empty_f32(1 << 17, 130)  # 68 MB: mapped with MAP_POPULATE
    x[7, 3] = 2.5
    assert x.shape == (1 << 17, 130) and x.dtype == torch.float32 and float(x[7, 3]) == 2.5
    assert x.numpy().flags.writeable and x.is_contiguous()
