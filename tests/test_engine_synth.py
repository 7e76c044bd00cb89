"""Synthetic market: schema, determinism, planted alpha strength, CLI, default cache."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from engine import synth


def _small(path: Path, seed: int = 3) -> pl.DataFrame:
    synth.generate_market(path, stocks=30, days=90, features=12, seed=seed)
    return pl.read_parquet(path)


def test_schema_and_oracle_json(tmp_path: Path) -> None:
    df = _small(tmp_path / "m.parquet")
    assert df.columns[:2] == ["Code", "Date"]
    assert df.schema["Code"] == pl.String and df.schema["Date"] == pl.Date
    assert df.schema["sector"].is_integer()
    feats = [c for c in df.columns if c not in ("Code", "Date", "sector") and not c.startswith("target_")]
    assert len(feats) == 12 and "ret_1d" in feats
    for h in (1, 5, 10, 20):
        t = df[f"target_{h}d"]
        assert t.dtype.is_float() and t.null_count() > 0  # the last h days have no future
    assert df.select(pl.struct("Code", "Date").is_unique().all()).item()
    last = df.filter(pl.col("Date") == df["Date"].max())
    assert last["target_1d"].null_count() == last.height
    assert df.select(pl.col(feats).null_count()).sum_horizontal().item() > 0  # missing values
    # stocks list and delist: not every stock trades on the first and the last day
    first_day = df.filter(pl.col("Date") == df["Date"].min())["Code"].n_unique()
    assert first_day < 30 or last["Code"].n_unique() < 30
    meta = json.loads((tmp_path / "m.oracle.json").read_text())
    assert set(meta["oracle_ic"]) == set(meta["ridge_ic"]) == {"1", "5", "10", "20"}
    assert meta["params"]["seed"] == 3 and meta["params"]["stocks"] == 30


def test_deterministic_by_seed(tmp_path: Path) -> None:
    a = _small(tmp_path / "a.parquet", seed=5)
    b = _small(tmp_path / "b.parquet", seed=5)
    c = _small(tmp_path / "c.parquet", seed=6)
    assert a.equals(b)
    assert not a.equals(c)


def test_planted_alpha_is_weak_and_beats_ridge(tmp_path: Path) -> None:
    synth.generate_market(tmp_path / "m.parquet", stocks=200, days=400, features=16, seed=11)
    meta = json.loads((tmp_path / "m.oracle.json").read_text())
    assert 0.05 <= meta["oracle_ic"]["1"] <= 0.15
    assert meta["ridge_ic"]["1"] < meta["oracle_ic"]["1"] - 0.01
    assert meta["ridge_ic"]["1"] > 0.0  # the linear part is there to find


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert synth.synth_main(["--stocks", "10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err
    assert synth.synth_main(["--out", str(tmp_path / "x.parquet"), "--days", "5"]) == 2
    assert "days" in capsys.readouterr().err
    out = tmp_path / "ok.parquet"
    args = ["--out", str(out), "--stocks", "25", "--days", "70", "--features", "10", "--seed", "1"]
    assert synth.synth_main(args) == 0
    assert out.is_file() and (tmp_path / "ok.oracle.json").is_file()


def test_default_market_generated_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCTL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(synth, "DEFAULT_STOCKS", 25)
    monkeypatch.setattr(synth, "DEFAULT_DAYS", 70)
    monkeypatch.setattr(synth, "DEFAULT_FEATURES", 10)
    lines: list[str] = []
    p1 = synth.ensure_default_market(lines.append)
    mtime = p1.stat().st_mtime_ns
    p2 = synth.ensure_default_market(lines.append)
    assert p1 == p2 == synth.default_market_path()
    assert p1.parent == tmp_path / "cache" and p2.stat().st_mtime_ns == mtime
    assert len(lines) == 1 and "Generating" in lines[0]
    assert sorted(x.name for x in p1.parent.iterdir()) == sorted([p1.name, synth.oracle_path(p1).name])


def test_scores_on_split_use_the_given_days(tmp_path: Path) -> None:
    """The bench compares a model's validation IC with ridge and oracle on the same days."""
    synth.generate_market(tmp_path / "m.parquet", stocks=40, days=120, features=12, seed=4)
    meta = json.loads((tmp_path / "m.oracle.json").read_text())
    fit, scored = slice(0, 84), slice(84, None)  # the JSON's own 70/30 split
    [(oracle, ridge)] = synth.scores_on_split(fit, [scored], stocks=40, days=120, features=12, seed=4)
    assert ridge == meta["ridge_ic"]  # same fit, same scored days: same ridge
    assert oracle != meta["oracle_ic"]  # the JSON's oracle is over every day
    both = synth.scores_on_split(slice(0, 60), [slice(80, 100), scored], stocks=40, days=120,
                                 features=12, seed=4)
    (oracle2, ridge2), (oracle3, _) = both
    assert oracle3 == oracle  # one draw of the market scores every span alike
    assert ridge2 != ridge and oracle2 != oracle
    assert all(-1.0 < v < 1.0 for v in (*oracle2.values(), *ridge2.values()))
