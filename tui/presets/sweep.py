"""A preset's `[sweep]` table: the space of values a sweep tries, and its points.

```toml
[sweep]
method = "grid"                 # grid (default) | random | optuna
"train.optimizer.lr" = [1e-4, 3e-4, 1e-3]      # an override (any key `--set` takes) ...
SHARPE_WEIGHT = [0.3, 0.5]      # ... or an environment name (UPPER_SNAKE_CASE), with its values
# random / optuna also take ranges: "train.optimizer.lr" = { low = 1e-5, high = 1e-2, log = true }
samples = 8                     # random: how many points to draw
trials = 12                     # optuna: how many trials
seed = 0                        # random / optuna: the draws' seed
parallel = 2                    # runs at once (default: as the GPU slots allow; `--parallel N`)
stop_on = "bad"                 # stop a run whose checkpoint decision has this level
objective = "val_loss"          # the metric to rank by (default: the first criterion's)
direction = "minimize"          # maximize | minimize (default: from the criterion's op, else the name)
```

`SweepSpec` is the parsed table; `points(spec)` the grid's or a random sweep's points (an optuna
sweep's come one by one from its study, tui.runs.sweeps). Each point is a list of `key=value`
overrides and `NAME=value` environment entries, applied to the preset as `--set` / `--env` would.
Pure: no I/O beyond what the caller passes.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from dataclasses import dataclass, field
from typing import Any

from tui.presets.preset import METRIC_NAME, value_text
from tui.presets.schema import Where, is_num

METHODS = ("grid", "random", "optuna")
LEVELS = ("good", "warn", "bad")
DIRECTIONS = ("maximize", "minimize")
_RESERVED = ("method", "samples", "trials", "seed", "parallel", "stop_on", "objective", "direction")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
MAX_POINTS = 10_000  # a grid larger than this is a mistake, not a sweep


@dataclass(frozen=True)
class Range:
    """`{ low, high, log = false, int = false }`: a continuous (or integer) range to draw from."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def draw(self, rnd: random.Random) -> float | int:
        """One value, uniform (or log-uniform) in [low, high]."""
        if self.log:
            x = math.exp(rnd.uniform(math.log(self.low), math.log(self.high)))
        else:
            x = rnd.uniform(self.low, self.high)
        return round(x) if self.integer else x


@dataclass(frozen=True)
class Param:
    """One swept key: an override (`key`) or an environment name (`env`), its choices or range."""

    key: str
    env: bool
    choices: tuple[Any, ...] = ()
    range: Range | None = None

    def entry(self, value: Any) -> str:
        """`key=value` as `--set` / `--env` take it."""
        text = value_text(value) if not isinstance(value, float) else f"{value:.6g}"
        return f"{self.key}={text}"


@dataclass(frozen=True)
class SweepSpec:
    """A parsed `[sweep]` table."""

    params: tuple[Param, ...]
    method: str = "grid"
    samples: int | None = None
    trials: int | None = None
    seed: int = 0
    parallel: int | None = None
    stop_on: str | None = None
    objective: str | None = None
    direction: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)  # the table, for the manifest

    @property
    def size(self) -> int | None:
        """Runs the sweep makes (None: until its trials are told apart, an optuna sweep's `trials`)."""
        if self.method == "grid":
            return math.prod(len(p.choices) for p in self.params)
        return self.samples if self.method == "random" else self.trials


def parse_sweep(w: Where, raw: Any) -> SweepSpec:
    """The `[sweep]` table, every key checked (errors name the file and the key)."""
    if not isinstance(raw, dict):
        raise w.err("sweep", "expected a table")
    method = raw.get("method", "grid")
    if method not in METHODS:
        raise w.err("sweep.method", f"{method!r} is not one of {', '.join(METHODS)}")
    ints: dict[str, int | None] = {}
    for k, low in (("samples", 1), ("trials", 1), ("seed", 0), ("parallel", 1)):
        v = raw.get(k)
        if v is not None:
            v = w.typed(v, int, f"sweep.{k}", "an integer")
            if v < low:
                raise w.err(f"sweep.{k}", f"{v} must be >= {low}")
        ints[k] = v
    if method == "random" and ints["samples"] is None:
        raise w.err("sweep", "method \"random\" needs samples = N (how many points to draw)")
    if method == "optuna" and ints["trials"] is None:
        raise w.err("sweep", "method \"optuna\" needs trials = N")
    for k, m in (("samples", "random"), ("trials", "optuna")):
        if ints[k] is not None and method != m:
            raise w.err(f"sweep.{k}", f"only for method = \"{m}\"")
    stop_on = raw.get("stop_on")
    if stop_on is not None and stop_on not in LEVELS:
        raise w.err("sweep.stop_on", f"{stop_on!r} is not one of {', '.join(LEVELS)}")
    objective = raw.get("objective")
    if objective is not None and (not isinstance(objective, str) or not METRIC_NAME.match(objective)):
        raise w.err("sweep.objective", f"{objective!r} is not a metric name")
    direction = raw.get("direction")
    if direction is not None and direction not in DIRECTIONS:
        raise w.err("sweep.direction", f"{direction!r} is not one of {', '.join(DIRECTIONS)}")
    swept = {k: v for k, v in raw.items() if k not in _RESERVED}
    params = tuple(_param(w, k, v, method) for k, v in _flatten(swept).items())
    if not params:
        raise w.err("sweep", "names nothing to sweep: add `key = [values]` (an override or an env name)")
    spec = SweepSpec(params=params, method=method, samples=ints["samples"], trials=ints["trials"],
                     seed=ints["seed"] or 0, parallel=ints["parallel"], stop_on=stop_on,
                     objective=objective, direction=direction, raw=dict(raw))
    if spec.size is not None and spec.size > MAX_POINTS:
        raise w.err("sweep", f"{spec.size} runs; at most {MAX_POINTS}")
    return spec


def _flatten(t: dict[str, Any]) -> dict[str, Any]:
    """Nested tables of dotted keys -> `a.b.c` keys; a range table (it has `low`) is a value."""
    out: dict[str, Any] = {}
    for k, v in t.items():
        if isinstance(v, dict) and "low" not in v and "high" not in v:
            out.update({f"{k}.{kk}": vv for kk, vv in _flatten(v).items()})
        else:
            out[k] = v
    return out


def _param(w: Where, key: str, v: Any, method: str) -> Param:
    where = f"sweep.{key}"
    env = bool(_ENV_NAME.match(key))
    if not env and not re.match(r"^[A-Za-z_][\w.-]*$", key):
        raise w.err(where, "a swept key is an override (`model.hidden_size`) or an env name (`SHARPE_WEIGHT`)")
    if isinstance(v, list):
        if not v:
            raise w.err(where, "an empty list of values")
        if any(isinstance(x, (dict, list)) for x in v):
            raise w.err(where, "values are numbers, strings or booleans")
        if len(set(map(repr, v))) != len(v):
            raise w.err(where, "a value is listed twice")
        return Param(key, env, choices=tuple(v))
    if isinstance(v, dict):
        if method == "grid":
            raise w.err(where, "a range needs method = \"random\" or \"optuna\"; a grid takes a list of values")
        t = w.table(v, where, ("low", "high", "log", "int"))
        if "low" not in t or "high" not in t or not (is_num(t["low"]) and is_num(t["high"])):
            raise w.err(where, "a range is { low = X, high = Y } with numbers")
        low, high = float(t["low"]), float(t["high"])
        log = w.typed(t.get("log", False), bool, f"{where}.log", "true or false")
        integer = w.typed(t.get("int", False), bool, f"{where}.int", "true or false")
        if not low < high or log and low <= 0:
            raise w.err(where, "needs low < high (and low > 0 with log = true)")
        return Param(key, env, range=Range(low, high, log, integer))
    raise w.err(where, "expected a list of values, or a range { low, high }")


def points(spec: SweepSpec) -> list[list[str]]:
    """The grid's points (in the file's order, the last key varying fastest) or `samples` random
    draws (seeded); each point the `--set`/`--env` entries that make it. Not for optuna."""
    if spec.method == "grid":
        return [[p.entry(v) for p, v in zip(spec.params, combo, strict=True)]
                for combo in itertools.product(*(p.choices for p in spec.params))]
    if spec.method == "random":
        rnd = random.Random(spec.seed)
        out = []
        for _ in range(spec.samples or 0):
            out.append([p.entry(rnd.choice(p.choices) if p.range is None else p.range.draw(rnd))
                        for p in spec.params])
        return out
    raise ValueError("an optuna sweep's points come from its study")


def split_entries(entries: list[str], params: tuple[Param, ...]) -> tuple[list[str], list[str]]:
    """A point's entries -> (`--set` ones, `--env` ones)."""
    env_keys = {p.key for p in params if p.env}
    sets = [e for e in entries if e.partition("=")[0] not in env_keys]
    envs = [e for e in entries if e.partition("=")[0] in env_keys]
    return sets, envs
