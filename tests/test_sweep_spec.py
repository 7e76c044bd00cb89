"""A preset's `[sweep]` table: parsed and checked (errors name the file and the key), its grid's
and a random sweep's points."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui.presets.preset import PresetError
from tui.presets.schema import Where
from tui.presets.sweep import parse_sweep, points, split_entries


def _spec(raw: dict):  # noqa: ANN202
    return parse_sweep(Where(Path("p.toml")), raw)


def test_a_grid_in_file_order_the_last_key_fastest() -> None:
    spec = _spec({"train": {"optimizer": {"lr": [0.001, 0.01]}}, "SHARPE_WEIGHT": [0.3, 0.5, 0.7]})
    assert spec.method == "grid" and spec.size == 6
    pts = points(spec)
    assert pts[:3] == [["train.optimizer.lr=0.001", "SHARPE_WEIGHT=0.3"],
                       ["train.optimizer.lr=0.001", "SHARPE_WEIGHT=0.5"],
                       ["train.optimizer.lr=0.001", "SHARPE_WEIGHT=0.7"]]
    assert len({tuple(p) for p in pts}) == 6
    assert split_entries(pts[0], spec.params) == (["train.optimizer.lr=0.001"], ["SHARPE_WEIGHT=0.3"])


def test_random_draws_lists_and_ranges_seeded() -> None:
    raw = {"method": "random", "samples": 5, "seed": 3, "model.hidden_size": [16, 32],
           "train.optimizer.lr": {"low": 1e-4, "high": 1e-1, "log": True},
           "train.batch.days": {"low": 1, "high": 8, "int": True}}
    a, b = points(_spec(raw)), points(_spec(raw))
    assert a == b and len(a) == 5  # the same seed, the same points
    for p in a:
        lr = float(p[1].split("=")[1])
        days = p[2].split("=")[1]
        assert 1e-4 <= lr <= 1e-1 and days.isdigit() and 1 <= int(days) <= 8
        assert p[0] in ("model.hidden_size=16", "model.hidden_size=32")
    assert points(_spec({**raw, "seed": 4})) != a


@pytest.mark.parametrize(("raw", "message"), [
    ({"method": "bayes", "a": [1]}, "sweep.method: 'bayes' is not one of grid, random, optuna"),
    ({"method": "random", "a": [1]}, "needs samples = N"),
    ({"method": "optuna", "a": [1]}, "needs trials = N"),
    ({"samples": 3, "a": [1]}, "sweep.samples: only for method = \"random\""),
    ({"a": {"low": 1, "high": 2}}, "a range needs method"),
    ({"method": "random", "samples": 2, "a": {"low": 2, "high": 1}}, "needs low < high"),
    ({"method": "random", "samples": 2, "a": {"low": 0, "high": 1, "log": True}}, "low > 0"),
    ({"a": []}, "an empty list"),
    ({"a": [1, 1]}, "listed twice"),
    ({"a": "x"}, "expected a list of values"),
    ({"stop_on": "terrible", "a": [1]}, "sweep.stop_on: 'terrible' is not one of good, warn, bad"),
    ({"objective": "val acc", "a": [1]}, "is not a metric name"),
    ({"direction": "up", "a": [1]}, "is not one of maximize, minimize"),
    ({"parallel": 0, "a": [1]}, "sweep.parallel: 0 must be >= 1"),
    ({"method": "grid"}, "names nothing to sweep"),
    ({"a": list(range(101)), "b": list(range(101))}, "10201 runs; at most 10000"),
])
def test_mistakes_are_one_line_naming_the_key(raw: dict, message: str) -> None:
    with pytest.raises(PresetError) as e:
        _spec(raw)
    assert message in str(e.value) and str(e.value).startswith("p.toml: ") and "\n" not in str(e.value)


def test_a_greater_than_criterion_maximizes_and_ranks_the_highest_first(tmp_path: Path) -> None:
    from tui.presets.registry import PresetRegistry
    from tui.runs.store import RunStore
    from tui.runs.sweeps import Point, Sweep, objective_of, rank

    (tmp_path / "acc.toml").write_text(
        'description = "d"\ncommand = ["{python}", "x.py"]\n'
        '[[criteria]]\nmetric = "val_acc"\nop = ">"\nvalue = 0.9\nlabel = "acc above 0.9"\n'
        '[sweep]\nlr = [0.1, 0.01, 0.001]\n')
    preset = PresetRegistry(tmp_path).get("acc")
    assert preset.sweep is not None
    metric, horizon, direction = objective_of(preset, preset.sweep)
    assert (metric, horizon, direction) == ("val_acc", None, "maximize")
    sweep = Sweep(id="s", name="s", preset="acc", presets_dir=str(tmp_path), method="grid", metric=metric,
                  horizon=horizon, direction=direction, size=4, stop_on=None, parallel=None, backend=None,
                  created_at=0.0)
    sweep.points = [Point(0, {"lr": "0.1"}, [], [], objective=0.80, outcome="finished"),
                    Point(1, {"lr": "0.01"}, [], [], objective=0.95, outcome="finished"),
                    Point(2, {"lr": "0.001"}, [], [], objective=None, outcome="crashed"),
                    Point(3, {"lr": "0.0001"}, [], [], objective=0.90, outcome="finished")]
    rows = rank(RunStore(tmp_path / "_logs"), sweep)
    assert [(r["index"], r["rank"]) for r in rows] == [(1, 1), (3, 2), (0, 3), (2, None)]
    assert sweep.better(0.95, 0.90) and not sweep.better(0.80, 0.90)
