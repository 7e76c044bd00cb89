"""Data layer: robust scaler, both layouts, embargo, whole-day batches, bad inputs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from engine.config import EngineConfig, default_config
from engine.data import DataError, make_loader, prepare_data
from engine.day_batches import interleave_days
from engine.scaler import OnlineRobustScaler
from engine.synth import generate_market

TEMPLATES = [  # docs/log-format.md #8-#15, in order
    r"\[data\] Loading \S+",
    r"📂 Found \d+ train, \d+ val, \d+ test files",
    r"\[data-filter\] Global minimum date filter: \d{4}-\d\d-\d\d",
    r"\[data\] split train=\S+ \(\d+ days\) val=\S+ \(\d+ days\) test=\S+ \(\d+ days\) embargo=\d+ days",
    r"Fitting OnlineRobustScaler on training data \(max_samples=\d+, rows=\d+\)\.\.\.",
    r"OnlineRobustScaler fitted on \d+ samples \(\d+ features\)",
    r"Creating data loaders\.\.\.",
    r"Data loaders created: train=\d+ days \(\d+ batches\), val=\d+ days \(\d+ batches\), seq_len=\d+, features=\d+",
]


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mkt") / "market.parquet"
    return generate_market(path, stocks=40, days=200, features=12, seed=2)


def _cfg(path: Path, **data: object) -> EngineConfig:
    cfg = default_config()
    cfg.data.path = str(path)
    cfg.data.seq_len = 5
    cfg.data.min_nodes_per_day = 10
    cfg.train.batch.train_batch_size = 100
    cfg.train.batch.val_batch_size = 100
    for k, v in data.items():
        setattr(cfg.data, k, v)
    return cfg


def _prep(cfg: EngineConfig) -> tuple[object, list[str], list[str]]:
    logs: list[str] = []
    warns: list[str] = []
    return prepare_data(cfg, logs.append, warns.append), logs, warns


# ---------------------------------------------------------------- scaler


def test_scaler_matches_numpy_reference() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_t(3, (5001, 4)).astype(np.float32) * [1, 10, 0.1, 1]
    x[rng.random(x.shape) < 0.1] = np.nan
    x[:, 3] = 7.0  # constant: MAD 0 -> scale 1
    s = OnlineRobustScaler(max_samples=10_000, clip=3.0).fit(x)  # reservoir holds everything
    med = np.nanmedian(x, axis=0)
    mad = np.nanmedian(np.abs(x - med), axis=0) * 1.4826
    np.testing.assert_allclose(s.median_, med, rtol=1e-6)
    np.testing.assert_allclose(s.scale_[:3], mad[:3], rtol=1e-5)
    assert s.scale_[3] == 1.0
    z = s.transform(x)
    ref = np.nan_to_num(np.clip((x - med) / np.where(mad > 0, mad, 1.0), -3, 3))
    np.testing.assert_allclose(z, ref, atol=1e-5)
    assert np.abs(z).max() == pytest.approx(3.0) and not np.isnan(z).any()
    assert (z[np.isnan(x)] == 0).all()


def test_scaler_reservoir_is_bounded_seeded_and_uniform() -> None:
    x = np.arange(100_000, dtype=np.float32)[:, None]
    a = OnlineRobustScaler(max_samples=2000, seed=1)
    for chunk in np.array_split(x, 7):  # streamed in chunks
        a.partial_fit(chunk)
    b = OnlineRobustScaler(max_samples=2000, seed=1)
    for chunk in np.array_split(x, 7):
        b.partial_fit(chunk)
    assert a.n_samples == 2000 and a.n_seen == 100_000
    np.testing.assert_array_equal(a._reservoir, b._reservoir)
    sample = a._reservoir[:, 0]
    assert len(np.unique(sample)) == 2000
    hist = np.histogram(sample, bins=4, range=(0, 100_000))[0]
    assert hist.min() > 400  # every quarter of the stream is represented
    assert abs(float(a.median_[0]) - 50_000) < 5_000
    only = OnlineRobustScaler(max_samples=50).fit(x, rows=np.arange(10))
    assert only.median_[0] == pytest.approx(4.5)


# ---------------------------------------------------------------- single file


def test_single_file_logs_batches_and_exposures(market: Path) -> None:
    data, logs, warns = _prep(_cfg(market))
    assert len(logs) == len(TEMPLATES)
    for line, pattern in zip(logs, TEMPLATES, strict=True):
        assert re.fullmatch(pattern, line), line
    assert data.n_features == 12 and data.feature_names[data.return_channel] == "ret_1d"
    assert data.horizons == [1, 5, 10, 20] and data.n_stocks == 40
    b = data.train[0]
    B = b["x"].shape[0]
    assert b["x"].shape == (B, 5, 12) and b["x"].dtype == torch.float32
    assert b["y"].shape == (B, 4) and torch.isfinite(b["y"][:, 0]).all()
    assert torch.isfinite(b["x"]).all()
    last = data.test[len(data.test) - 1]["y"]  # the last days' 20-day future is unknown: NaN
    assert torch.isfinite(last[:, 0]).all() and torch.isnan(last[:, 3]).any()
    assert b["day"].dtype == torch.int64 and b["stock"].max() < 40
    assert b["exposures"].shape == (B, data.n_exposures)
    sectors = b["exposures"][:, :-1]
    assert torch.all(sectors.sum(1) == 1) and torch.isfinite(b["exposures"][:, -1]).all()
    # the last step of x is the scaled feature row of (day, stock); the panel matches the scaler
    df = pl.read_parquet(market)
    code = data.codes[int(b["stock"][0])]
    day = int(data.train.day[0])
    row = df.filter((pl.col("Code") == code) & (pl.col("Date") == data.dates[day]))
    raw = row.select(data.feature_names).to_numpy().astype(np.float32)
    np.testing.assert_allclose(b["x"][0, -1].numpy(), data.scaler.transform(raw)[0], atol=1e-5)
    np.testing.assert_allclose(b["y"][0].numpy(), row.select("target_1d", "target_5d", "target_10d",
                               "target_20d").to_numpy()[0].astype(np.float32), equal_nan=True)


def test_embargo_keeps_train_targets_out_of_val(market: Path) -> None:
    data, logs, _ = _prep(_cfg(market, embargo_days=20))
    train_last = int(data.train.day.max())
    val_first = int(data.val.day.min())
    test_first = int(data.test.day.min())
    # a train sample's 20-day target ends at train_last + 20; val's first target starts after val_first
    assert train_last + 20 < val_first + 1
    assert int(data.val.day.max()) + 20 < test_first + 1
    assert "embargo=20 days" in logs[3]
    # val samples still see seq_len days of history (from before the split boundary)
    assert (data.val.day >= 4).all()


def test_short_embargo_is_raised_to_longest_horizon(market: Path) -> None:
    data, _, warns = _prep(_cfg(market, embargo_days=3))
    assert any("using 20" in w for w in warns)
    assert int(data.train.day.max()) + 20 < int(data.val.day.min()) + 1


def test_batches_are_whole_days_and_small_days_dropped(tmp_path: Path, market: Path) -> None:
    df = pl.read_parquet(market)
    dates = df["Date"].unique().sort()
    thin = dates[30:33].to_list()  # three training days keep only 5 stocks
    df = df.filter(~pl.col("Date").is_in(thin) | (pl.col("Code").rank("dense").over("Date") <= 5))
    path = tmp_path / "thin.parquet"
    df.write_parquet(path)
    data, _, warns = _prep(_cfg(path))
    assert any(w.startswith("[data] 3 days dropped: fewer than 10 stocks") for w in warns)
    dropped = {dates.to_list().index(d) for d in thin}
    seen: list[int] = []
    for i in range(len(data.train)):
        b = data.train[i]
        s, e = int(data.train.bounds[i]), int(data.train.bounds[i + 1])
        g = data.train.day[s:e]
        local = b["day"]
        assert local[0] == 0 and torch.equal(local.diff() == 1, g.diff() != 0)  # one id per day
        assert (g.diff() >= 0).all() and torch.unique_consecutive(g).numel() == int(local.max()) + 1
        assert len(g) <= 100 or torch.unique(g).numel() == 1  # only a single big day may exceed
        seen += torch.unique(g).tolist()
    assert len(seen) == len(set(seen))  # no day is split across batches
    assert not dropped & set(seen)
    # every kept day has all its valid samples in one batch
    counts = torch.bincount(data.train.day)
    assert counts[counts > 0].min() >= 10


def test_loaders_shuffle_train_and_keep_val_in_date_order(market: Path) -> None:
    data, _, _ = _prep(_cfg(market))
    torch.manual_seed(0)
    firsts = [int(b["stock"].shape[0]) for b in make_loader(data.train, shuffle=True)]
    assert len(firsts) == len(data.train)
    val_days = [int(data.val.day[int(data.val.bounds[i])]) for i in range(len(data.val))]
    assert val_days == sorted(val_days)
    loaded = list(make_loader(data.val, shuffle=False))
    assert torch.equal(loaded[0]["x"], data.val[0]["x"])


# ---------------------------------------------------------------- folder layout


def test_folder_layout_uses_folders_as_given(tmp_path: Path, market: Path) -> None:
    df = pl.read_parquet(market)
    root = tmp_path / "panel"
    origin = {}
    for code, g in df.group_by("Code", maintain_order=True):
        g = g.sort("Date")
        n = g.height
        cuts = {"train": g[: int(n * 0.7)], "val": g[int(n * 0.7) : int(n * 0.85)], "test": g[int(n * 0.85) :]}
        for split, part in cuts.items():
            (root / split).mkdir(parents=True, exist_ok=True)
            part.write_parquet(root / split / f"{code[0]}.parquet")
            origin.update({(code[0], d): split for d in part["Date"].to_list()})
    data, logs, _ = _prep(_cfg(root))
    assert logs[1] == f"📂 Found {df['Code'].n_unique()} train, {df['Code'].n_unique()} val, " \
                      f"{df['Code'].n_unique()} test files"
    assert "embargo=0 days" in logs[3]
    for name, ds in (("train", data.train), ("val", data.val), ("test", data.test)):
        assert len(ds) > 0
        for d, n in zip(ds.day[:200].tolist(), ds.stock[:200].tolist(), strict=True):
            assert origin[(data.codes[n], data.dates[d])] == name
    b = data.val[0]
    assert b["x"][:, 0].abs().sum() > 0  # history from the train folder feeds val sequences


# ---------------------------------------------------------------- bad input


def test_bad_inputs_raise_one_line_data_errors(tmp_path: Path, market: Path) -> None:
    df = pl.read_parquet(market)

    def err(cfg: EngineConfig) -> str:
        with pytest.raises(DataError) as e:
            _prep(cfg)
        assert "\n" not in str(e.value)
        return str(e.value)

    assert "not found" in err(_cfg(tmp_path / "nope.parquet"))
    bad = tmp_path / "corrupt.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    assert "cannot read parquet" in err(_cfg(bad))
    p = tmp_path / "notarget.parquet"
    df.drop("target_5d").write_parquet(p)
    assert "target_5d" in err(_cfg(p))
    p = tmp_path / "nocode.parquet"
    df.drop("Code").write_parquet(p)
    assert "Code" in err(_cfg(p))
    msg = err(_cfg(market, features=["feat_00", "ret_1day"]))
    assert "'ret_1day' not found" in msg and "did you mean ret_1d" in msg
    p = tmp_path / "nan.parquet"
    df.with_columns(pl.lit(None, dtype=pl.Float32).alias("feat_02")).write_parquet(p)
    assert "no finite value" in err(_cfg(p)) and "feat_02" in err(_cfg(p))
    msg = err(_cfg(market, min_date="2030-01-01"))
    assert "no rows with Date >= 2030-01-01" in msg and "data.min_date" in msg
    assert "too few trading days" in err(_cfg(market, seq_len=150))
    (tmp_path / "empty").mkdir()
    assert "train/" in err(_cfg(tmp_path / "empty"))


# ---------------------------------------------------------------- representation vs a slow reference


def test_batches_match_a_slow_dense_reference(tmp_path: Path, market: Path) -> None:
    """Row map + row-major matrix give exactly the batches of a per-sample loop over a dense panel
    (duplicates, missing cells, gaps in history), so the fast layout can't silently change data."""
    df = pl.read_parquet(market)
    rng = np.random.default_rng(0)
    df = df.filter(pl.Series(rng.random(df.height) > 0.05))  # holes in the stock histories
    df = pl.concat([df, df.head(30).with_columns(pl.col("feat_00") + 1.0)])  # duplicates: first wins
    path = tmp_path / "holes.parquet"
    df.write_parquet(path)
    data, _, _ = _prep(_cfg(path, seq_len=6))
    feats, L = data.feature_names, 6
    D, N = len(data.dates), len(data.codes)
    day_of = {d: i for i, d in enumerate(data.dates)}
    code_of = {c: i for i, c in enumerate(data.codes)}
    dense_x = np.zeros((D, N, len(feats)), dtype=np.float32)
    dense_y = np.full((D, N, 4), np.nan, dtype=np.float32)
    seen: set[tuple[int, int]] = set()
    targets = ["target_1d", "target_5d", "target_10d", "target_20d"]
    for r in df.iter_rows(named=True):  # slow on purpose: one row at a time
        key = (day_of[r["Date"]], code_of[r["Code"]])
        if key in seen:
            continue
        seen.add(key)
        raw = np.array([[np.nan if r[f] is None else r[f] for f in feats]], dtype=np.float32)
        dense_x[key] = data.scaler.transform(raw)[0]
        dense_y[key] = [np.nan if r[t] is None else r[t] for t in targets]
    n_batches = 0
    for ds in (data.train, data.val, data.test):
        for i in range(len(ds)):
            b = ds[i]
            s, e = int(ds.bounds[i]), int(ds.bounds[i + 1])
            days, stocks = ds.day[s:e].numpy(), ds.stock[s:e].numpy()
            ref_x = np.stack([dense_x[d - L + 1 : d + 1, n] for d, n in zip(days, stocks, strict=True)])
            ref_y = dense_y[days, stocks]
            assert b["x"].dtype == torch.float32 and b["x"].shape == ref_x.shape
            np.testing.assert_array_equal(b["x"].numpy(), ref_x)
            np.testing.assert_array_equal(b["y"].numpy(), ref_y)  # NaN where missing, equal NaN
            assert torch.equal(b["stock"], torch.from_numpy(stocks))
            n_batches += 1
    assert n_batches > 5


# ---------------------------------------------------------------- day order within training batches


def test_interleave_days_spreads_each_batch_across_the_calendar() -> None:
    counts = np.random.default_rng(1).integers(80, 120, 400)
    order, starts = interleave_days(counts, 1000)
    assert sorted(order.tolist()) == list(range(400))  # every day once
    n_batches = len(starts) - 1
    assert 38 <= n_batches <= 44 and starts[0] == 0 and starts[-1] == 400
    gaps = []
    for b in range(n_batches):
        days = order[starts[b] : starts[b + 1]]
        assert (np.diff(days) > 0).all()  # calendar order inside a batch
        assert counts[days].sum() <= 1000 + counts.max()
        gaps.append(np.diff(days).min() if len(days) > 1 else 10**9)
    # days sharing a batch are far apart: no two within the 20-day target overlap in most batches
    assert np.median(gaps) >= 30 and np.mean(np.array(gaps) > 20) > 0.9
    one_batch_order, one = interleave_days(np.array([5, 5, 5]), 1000)
    assert one_batch_order.tolist() == [0, 1, 2] and one.tolist() == [0, 3]


def test_day_order_consecutive_is_the_default_and_interleaved_spreads_days(market: Path) -> None:
    cons, _, _ = _prep(_cfg(market))
    cfg = _cfg(market)
    cfg.train.batch.day_order = "interleaved"
    inter, _, _ = _prep(cfg)

    def batch_days(ds: object) -> list[list[int]]:
        out = []
        for i in range(len(ds)):  # type: ignore[arg-type]
            s, e = int(ds.bounds[i]), int(ds.bounds[i + 1])  # type: ignore[attr-defined]
            out.append(torch.unique(ds.day[s:e]).tolist())  # type: ignore[attr-defined]
        return out

    ci, ii = batch_days(cons.train), batch_days(inter.train)
    assert sorted(sum(ci, [])) == sorted(sum(ii, []))  # same days, same samples
    assert inter.train.day.numel() == cons.train.day.numel()
    assert all(b == list(range(b[0], b[0] + len(b))) or len(b) == 1 for b in ci[:-1])  # neighbours
    multi = [b for b in ii if len(b) > 1]
    assert multi and all(min(np.diff(b)) > 1 for b in multi)  # interleaved: never neighbours
    assert batch_days(inter.val) == batch_days(cons.val)  # validation keeps calendar order
    # a batch still carries one local id per day, and the samples of a day are its own
    b = inter.train[0]
    s, e = int(inter.train.bounds[0]), int(inter.train.bounds[1])
    g = inter.train.day[s:e]
    assert torch.equal(b["day"].diff() == 1, g.diff() != 0) and int(b["day"][0]) == 0
