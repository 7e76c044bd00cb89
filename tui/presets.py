"""Experiment presets: TOML files -> typed, validated `Preset`s (format: docs/presets.md).

A preset names an engine configuration (env + dotted overrides on top of the defaults) and how to
judge the run: success criteria, critical checkpoints with ordered decision rules, next actions.
No torch, no Textual: validation goes through `engine.config.check`.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomli_w

from engine import config as ec
from tui.errors import RunctlError


class PresetError(RunctlError):
    """A preset (or baseline table) the user wrote is wrong; one line naming file and key."""


METRICS = ("sharpe", "val_loss", "train_loss", "ic", "rank_ic", "scale")
HORIZON_METRICS = ("ic", "rank_ic", "scale")
OPS = (">", ">=", "<", "<=", "between")
LEVELS = {"good": "✅", "warn": "⚠️", "bad": "❌"}
BASELINES_FILE = "baselines.toml"
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_PRESET_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
# Engine keys that have their own preset field (and engine flag).
_FIELD_KEYS = {"train.trainer.max_epochs": "max_epochs", "data.path": "data_path"}

_TOP_KEYS = (
    "description", "extends", "env", "overrides", "max_epochs", "data_path", "default_horizon",
    "baseline", "timeline", "criteria", "checkpoints", "next",
)


@dataclass(frozen=True)
class Condition:
    """`metric [at horizon] op value`; horizon "all": must hold at every horizon."""

    metric: str
    op: str
    value: float | tuple[float, float]
    horizon: int | str | None = None  # None for sharpe/val_loss/train_loss (and before defaulting)

    def holds(self, x: float) -> bool:
        """Whether one finite value satisfies the comparison."""
        v = self.value
        if self.op == "between":
            lo, hi = v  # type: ignore[misc]
            return lo <= x <= hi
        assert isinstance(v, float)
        return {">": x > v, ">=": x >= v, "<": x < v, "<=": x <= v}[self.op]

    def describe(self) -> str:
        """Human text, e.g. `SCALE(yhat/y) (all h) >= 0.005`."""
        v = self.value
        rhs = f"{v[0]:g}..{v[1]:g}" if isinstance(v, tuple) else f"{v:g}"
        return f"{metric_label(self.metric, self.horizon)} {self.op} {rhs}"


@dataclass(frozen=True)
class Criterion:
    """A success criterion; metric "completed" means the run finished all its epochs."""

    label: str
    metric: str
    condition: Condition | None = None  # None only for "completed"


@dataclass(frozen=True)
class Rule:
    """One decision rule of a checkpoint: all `when` conditions hold -> verdict (empty: otherwise)."""

    verdict: str
    when: tuple[Condition, ...] = ()
    say: str = ""
    level: str = "warn"  # good | warn | bad

    @property
    def mark(self) -> str:
        """✅ / ⚠️ / ❌."""
        return LEVELS[self.level]


@dataclass(frozen=True)
class Checkpoint:
    """A critical checkpoint: decided from the record of `epoch` ("last": the final epoch)."""

    epoch: int | str
    title: str
    rules: tuple[Rule, ...]
    look_for: tuple[str, ...] = ()

    def at(self, max_epochs: int | None) -> int | None:
        """The 1-based epoch number this checkpoint is decided at (None: unknown)."""
        return max_epochs if self.epoch == "last" else int(self.epoch)


@dataclass(frozen=True)
class NextAction:
    """What to do after a verdict: a preset to launch (optional), why, alternatives, manual steps."""

    verdict: str
    why: str
    preset: str | None = None
    alternatives: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()


@dataclass(frozen=True)
class Timeline:
    """Expected durations in minutes (None: unknown; measured epochs take over)."""

    setup_minutes: float | None = None
    epoch_minutes: float | None = None


@dataclass(frozen=True)
class Preset:
    """A resolved preset (extends applied)."""

    name: str
    path: Path
    description: str = ""
    extends: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted key -> typed value
    max_epochs: int | None = None
    data_path: str | None = None
    default_horizon: int = 20
    baseline: str | None = None  # name of the baselines.toml row to compare with; None: the first
    timeline: Timeline = field(default_factory=Timeline)
    criteria: tuple[Criterion, ...] = ()
    checkpoints: tuple[Checkpoint, ...] = ()
    next: dict[str, NextAction] = field(default_factory=dict)
    chain: tuple[str, ...] = ()  # this preset, its parent, ... up to the root

    def override_args(self) -> list[str]:
        """The overrides as engine `key=value` arguments."""
        return [f"{k}={value_text(v)}" for k, v in self.overrides.items()]

    def engine_args(self) -> list[str]:
        """Arguments for `python -m engine train` (after the subcommand)."""
        args: list[str] = []
        if self.max_epochs is not None:
            args += ["--max-epochs", str(self.max_epochs)]
        if self.data_path is not None:
            args += ["--data-path", self.data_path]
        return args + self.override_args()

    def validate(self) -> ec.EngineConfig:
        """Resolve the engine config as the engine would; raise PresetError naming this file."""
        args = self.override_args()
        if self.max_epochs is not None:
            args.append(f"train.trainer.max_epochs={self.max_epochs}")
        if self.data_path is not None:
            args.append(f"data.path={self.data_path}")
        try:
            cfg = ec.check(args, environ=self.env)
        except ec.ConfigError as e:
            raise PresetError(f"{self.path}: {e}") from None
        horizons = set(cfg.model.horizons)
        for where, cond in self._conditions():
            if isinstance(cond.horizon, int) and cond.horizon not in horizons:
                raise PresetError(
                    f"{self.path}: {where}: horizon {cond.horizon} is not one of model.horizons "
                    f"{sorted(horizons)}"
                )
        return cfg

    def unknown_env(self) -> list[str]:
        """Env names the engine does not read (passed through, worth a warning)."""
        return [k for k in self.env if k not in ec.ENV_KEYS]

    def _conditions(self) -> list[tuple[str, Condition]]:
        out = [(f"criteria {c.label!r}", c.condition) for c in self.criteria if c.condition]
        for cp in self.checkpoints:
            out += [(f"checkpoint {cp.title!r}", c) for r in cp.rules for c in r.when]
        return out


def metric_label(metric: str, horizon: int | str | None) -> str:
    """Display name, e.g. `IC (h20)`, `SCALE(yhat/y) (all h)`, `Sharpe`."""
    base = {
        "sharpe": "Sharpe", "val_loss": "val/loss", "train_loss": "train/total_loss",
        "ic": "IC", "rank_ic": "RankIC", "scale": "SCALE(yhat/y)", "completed": "Completed",
    }.get(metric, metric)
    if horizon is None:
        return base
    return f"{base} (all h)" if horizon == "all" else f"{base} (h{horizon})"


def metric_key(metric: str, horizon: int | str | None) -> str:
    """Baseline-table key: `sharpe`, `ic_h20`, `scale` (all horizons)."""
    return metric if horizon in (None, "all") else f"{metric}_h{horizon}"


def value_text(v: Any) -> str:
    """A typed value as the engine's command line reads it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, list):
        return json.dumps(v)
    return str(v)


# ---------------------------------------------------------------------------------------- parsing
class _Where:
    """Error context: the file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def err(self, where: str, msg: str) -> PresetError:
        return PresetError(f"{self.path}: {where}: {msg}" if where else f"{self.path}: {msg}")

    def table(self, v: Any, where: str, allowed: Iterable[str]) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise self.err(where, f"expected a table, got {_tname(v)}")
        allowed = tuple(allowed)
        for k in v:
            if k not in allowed:
                raise self.err(where, f"unknown key {k!r}; allowed: {', '.join(allowed)}")
        return v

    def typed(self, v: Any, kind: type | tuple[type, ...], where: str, what: str) -> Any:
        ok = isinstance(v, kind) and not (isinstance(v, bool) and kind in (int, float, (int, float)))
        if not ok:
            raise self.err(where, f"expected {what}, got {_tname(v)} {v!r}")
        return v

    def strings(self, v: Any, where: str) -> tuple[str, ...]:
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            raise self.err(where, "expected a list of strings")
        return tuple(v)


def _tname(v: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "table"}.get(type(v), type(v).__name__)


def _read_toml(path: Path) -> dict[str, Any]:
    """The file's TOML; errors name the file (and the line and column of a syntax error)."""
    try:
        return ec.load_config_file(path)
    except ec.ConfigError as e:
        raise PresetError(str(e)) from None


def _condition(w: _Where, raw: Any, where: str, with_label: bool = False) -> Condition:
    keys = ("metric", "horizon", "op", "value") + (("label",) if with_label else ())
    t = w.table(raw, where, keys)
    for k in ("metric", "op", "value"):
        if k not in t:
            raise w.err(where, f"missing key {k!r}")
    metric = t["metric"]
    if metric not in METRICS:
        raise w.err(where, f"metric {metric!r} is not one of {', '.join(METRICS)}")
    op = t["op"]
    if op not in OPS:
        raise w.err(where, f"op {op!r} is not one of {', '.join(OPS)}")
    value: float | tuple[float, float]
    if op == "between":
        v = t["value"]
        if not (isinstance(v, list) and len(v) == 2 and all(_is_num(x) for x in v) and v[0] <= v[1]):
            raise w.err(where, "op 'between' needs value = [low, high] with low <= high")
        value = (float(v[0]), float(v[1]))
    else:
        value = float(w.typed(t["value"], (int, float), f"{where} value", "a number"))
    horizon = t.get("horizon")
    if horizon is not None:
        if metric not in HORIZON_METRICS:
            raise w.err(where, f"metric {metric!r} has no horizon; only {', '.join(HORIZON_METRICS)} do")
        if horizon != "all" and not (isinstance(horizon, int) and not isinstance(horizon, bool) and horizon > 0):
            raise w.err(where, f"horizon {horizon!r} must be a positive integer or \"all\"")
    return Condition(metric=metric, op=op, value=value, horizon=horizon)


def _is_num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _criterion(w: _Where, raw: Any, where: str) -> Criterion:
    t = w.table(raw, where, ("metric", "horizon", "op", "value", "label"))
    if "label" not in t:
        raise w.err(where, "missing key 'label'")
    label = w.typed(t["label"], str, f"{where} label", "a string")
    if t.get("metric") == "completed":
        w.table(t, where, ("metric", "label"))
        return Criterion(label=label, metric="completed")
    cond = _condition(w, {k: v for k, v in t.items() if k != "label"}, where)
    return Criterion(label=label, metric=cond.metric, condition=cond)


def _checkpoint(w: _Where, raw: Any, where: str) -> Checkpoint:
    t = w.table(raw, where, ("epoch", "title", "look_for", "rules"))
    if "epoch" not in t or "rules" not in t:
        raise w.err(where, "needs 'epoch' and 'rules'")
    epoch = t["epoch"]
    if epoch != "last" and not (isinstance(epoch, int) and not isinstance(epoch, bool) and epoch > 0):
        raise w.err(where, f"epoch {epoch!r} must be a positive integer or \"last\"")
    rules_raw = t["rules"]
    if not isinstance(rules_raw, list) or not rules_raw:
        raise w.err(where, "rules must be a non-empty array of tables")
    rules = []
    for i, r in enumerate(rules_raw, 1):
        rw = f"{where} rules #{i}"
        rt = w.table(r, rw, ("when", "verdict", "say", "level"))
        if "verdict" not in rt:
            raise w.err(rw, "missing key 'verdict'")
        when_raw = rt.get("when", [])
        if isinstance(when_raw, dict):
            when_raw = [when_raw]
        if not isinstance(when_raw, list):
            raise w.err(rw, "when must be a table or an array of tables")
        when = tuple(_condition(w, c, f"{rw} when #{j}") for j, c in enumerate(when_raw, 1))
        level = rt.get("level", "warn")
        if level not in LEVELS:
            raise w.err(rw, f"level {level!r} is not one of {', '.join(LEVELS)}")
        rules.append(Rule(
            verdict=w.typed(rt["verdict"], str, f"{rw} verdict", "a string"),
            when=when, say=w.typed(rt.get("say", ""), str, f"{rw} say", "a string"), level=level,
        ))
    title = t.get("title", f"Epoch {epoch}")
    return Checkpoint(epoch=epoch, title=w.typed(title, str, f"{where} title", "a string"),
                      rules=tuple(rules), look_for=w.strings(t.get("look_for", []), f"{where} look_for"))


def _next(w: _Where, raw: Any) -> dict[str, NextAction]:
    out = {}
    for verdict, a in w.table(raw, "next", raw.keys() if isinstance(raw, dict) else ()).items():
        where = f"next.{verdict}"
        t = w.table(a, where, ("preset", "why", "alternatives", "steps"))
        preset = t.get("preset")
        if preset is not None:
            w.typed(preset, str, f"{where} preset", "a preset name")
        out[verdict] = NextAction(
            verdict=verdict, why=w.typed(t.get("why", ""), str, f"{where} why", "a string"),
            preset=preset, alternatives=w.strings(t.get("alternatives", []), f"{where} alternatives"),
            steps=w.strings(t.get("steps", []), f"{where} steps"),
        )
    return out


def typed_override(key: str, value: Any, from_text: bool) -> Any:
    """Convert one engine override as the engine would; raise engine ConfigError."""
    cfg = ec.default_config()
    ec.set_key(cfg, key, value, from_text=from_text)
    return ec.get_key(cfg, key)


def _env_value(w: _Where, name: str, v: Any, where: str) -> str:
    if not _ENV_NAME.match(name):
        raise w.err(where, f"env name {name!r} must be UPPER_SNAKE_CASE")
    if isinstance(v, bool):
        v = "1" if v else "0"
    elif _is_num(v):
        v = str(v)
    elif not isinstance(v, str):
        raise w.err(where, f"{name}: expected a string or number, got {_tname(v)}")
    if name in ec.ENV_KEYS:
        try:
            typed_override(ec.ENV_KEYS[name], v, from_text=True)
        except ec.ConfigError as e:
            raise w.err(where, f"{name}: {e}") from None
    return v


def parse_preset_file(path: Path) -> dict[str, Any]:
    """One file's own settings as typed values (extends not applied); raise PresetError."""
    w = _Where(path)
    raw = w.table(_read_toml(path), "", _TOP_KEYS)
    out: dict[str, Any] = {}
    for k in ("description", "extends", "data_path", "baseline"):
        if k in raw:
            out[k] = w.typed(raw[k], str, k, "a string")
    for k in ("max_epochs", "default_horizon"):
        if k in raw:
            out[k] = w.typed(raw[k], int, k, "an integer")
            if out[k] <= 0:
                raise w.err(k, f"{out[k]} must be > 0")
    if "env" in raw:
        env = w.table(raw["env"], "env", raw["env"].keys() if isinstance(raw["env"], dict) else ())
        out["env"] = {k: _env_value(w, k, v, "env") for k, v in env.items()}
    if "overrides" in raw:
        ov = w.table(raw["overrides"], "overrides", raw["overrides"].keys()
                     if isinstance(raw["overrides"], dict) else ())
        typed: dict[str, Any] = {}
        for key, value in ec.flatten(ov).items():
            try:
                typed[key] = typed_override(key, value, from_text=False)
            except ec.ConfigError as e:
                raise w.err("overrides", str(e)) from None
        for key, fld in _FIELD_KEYS.items():
            if key in typed:
                if fld in out:
                    raise w.err("overrides", f"{key} and {fld} both set; keep only {fld}")
                out[fld] = typed.pop(key)
        out["overrides"] = typed
    if "timeline" in raw:
        t = w.table(raw["timeline"], "timeline", ("setup_minutes", "epoch_minutes"))
        out["timeline"] = Timeline(**{k: float(w.typed(v, (int, float), f"timeline {k}", "minutes"))
                                      for k, v in t.items()})
    for k, fn in (("criteria", _criterion), ("checkpoints", _checkpoint)):
        if k in raw:
            if not isinstance(raw[k], list):
                raise w.err(k, "expected an array of tables")
            out[k] = tuple(fn(w, item, f"{k} #{i}") for i, item in enumerate(raw[k], 1))
    if "next" in raw:
        out["next"] = _next(w, raw["next"])
    return out


def _merge(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """Child wins per key; env, overrides and next merge per entry; lists are replaced whole."""
    out = dict(parent)
    for k, v in child.items():
        out[k] = {**parent.get(k, {}), **v} if k in ("env", "overrides", "next") else v
    return out


def _with_horizon(c: Condition, default: int) -> Condition:
    if c.metric in HORIZON_METRICS and c.horizon is None:
        return replace(c, horizon=default)
    return c


def _build(name: str, path: Path, merged: dict[str, Any], chain: tuple[str, ...]) -> Preset:
    h = merged.get("default_horizon", 20)
    criteria = tuple(
        replace(c, condition=_with_horizon(c.condition, h)) if c.condition else c
        for c in merged.get("criteria", ())
    )
    if merged.get("max_epochs") is not None:
        criteria = tuple(replace(c, label=c.label.replace("{max_epochs}", str(merged["max_epochs"])))
                         for c in criteria)
    checkpoints = tuple(
        replace(cp, rules=tuple(replace(r, when=tuple(_with_horizon(c, h) for c in r.when))
                                for r in cp.rules))
        for cp in merged.get("checkpoints", ())
    )
    fields_ = {k: v for k, v in merged.items() if k not in ("criteria", "checkpoints", "extends")}
    return Preset(name=name, path=path, extends=chain[1] if len(chain) > 1 else None,
                  criteria=criteria, checkpoints=checkpoints, chain=chain, **fields_)


# --------------------------------------------------------------------------------------- registry
class PresetRegistry:
    """The presets of one directory (`NAME.toml`; baselines.toml is not a preset)."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def names(self) -> list[str]:
        """Preset names, sorted."""
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.toml") if p.name != BASELINES_FILE)

    def path(self, name: str) -> Path:
        """The file of preset `name`; PresetError listing the presets if there is none."""
        p = self.directory / f"{name}.toml"
        if name == Path(BASELINES_FILE).stem or not _PRESET_NAME.match(name) or not p.is_file():
            known = ", ".join(self.names()) or "(none)"
            raise PresetError(f"unknown preset {name!r} in {self.directory}; presets: {known}")
        return p

    def get(self, name: str) -> Preset:
        """The preset with its extends chain resolved; cycles and missing parents are errors."""
        chain: list[str] = []
        layers: list[dict[str, Any]] = []
        current: str | None = name
        while current is not None:
            if current in chain:
                raise PresetError(f"{self.path(chain[0])}: extends cycle: {' -> '.join(chain + [current])}")
            try:
                path = self.path(current)
            except PresetError:
                if not chain:
                    raise
                raise PresetError(
                    f"{self.directory / (chain[-1] + '.toml')}: extends {current!r}, which does not "
                    f"exist; presets: {', '.join(self.names())}"
                ) from None
            chain.append(current)
            layers.append(parse_preset_file(path))
            current = layers[-1].get("extends")
        merged: dict[str, Any] = {}
        for layer in reversed(layers):
            merged = _merge(merged, layer)
        return _build(name, self.path(name), merged, tuple(chain))

    def check_file(self, path: Path | str) -> list[str]:
        """Every problem found in one preset file (empty: fine)."""
        p = Path(path)
        try:
            if p.name == BASELINES_FILE:
                load_baselines(p)
                return []
            own = parse_preset_file(p)
            registry = self if p.parent.resolve() == self.directory.resolve() else PresetRegistry(p.parent)
            preset = registry.get(p.stem)
            preset.validate()
        except PresetError as e:
            return [str(e)]
        names = set(registry.names())
        errors = []
        for action in preset.next.values():
            for target in (action.preset, *action.alternatives):
                if target is not None and target not in names:
                    errors.append(f"{p}: next.{action.verdict}: unknown preset {target!r}")
        verdicts = {r.verdict for cp in preset.checkpoints for r in cp.rules}
        errors += [f"{p}: next.{v}: no checkpoint rule gives this verdict"
                   for v in own.get("next", {}) if v not in verdicts | {"success", "failure"}]
        try:
            load_baselines(registry.directory / BASELINES_FILE).get(preset.baseline)
        except PresetError as e:
            errors.append(str(e))
        return errors


def find_presets_dir(explicit: Path | None = None) -> Path:
    """--presets DIR, else ./presets if present, else the presets shipped with the package."""
    if explicit is not None:
        return Path(explicit)
    local = Path.cwd() / "presets"
    if local.is_dir():
        return local
    import tui

    return Path(tui.__file__).resolve().parent.parent / "presets"


# ------------------------------------------------------------------------------ resolve / derive
def _parse_sets(preset: Preset, sets: Iterable[str], envs: Iterable[str]) -> dict[str, Any]:
    changes: dict[str, Any] = {"env": {}, "overrides": {}}
    for text in sets:
        try:
            key, value = ec.parse_override(text)
            typed = typed_override(key, value, from_text=True)
        except ec.ConfigError as e:
            raise PresetError(f"--set {text}: {e}") from None
        if key in _FIELD_KEYS:
            changes[_FIELD_KEYS[key]] = typed
        else:
            changes["overrides"][key] = typed
    w = _Where(Path("--env"))
    for text in envs:
        name, sep, value = text.partition("=")
        if not sep:
            raise PresetError(f"--env {text}: expected NAME=VALUE")
        try:
            changes["env"][name.strip()] = _env_value(w, name.strip(), value, "")
        except PresetError as e:
            raise PresetError(f"--env {text}: {str(e).split(': ', 1)[1]}") from None
    return changes


def resolve(preset: Preset, sets: Iterable[str] = (), envs: Iterable[str] = ()) -> Preset:
    """Apply `--set key=value` / `--env NAME=VALUE` and validate the result."""
    ch = _parse_sets(preset, sets, envs)
    out = replace(
        preset,
        env={**preset.env, **ch.pop("env")},
        overrides={**preset.overrides, **ch.pop("overrides")},
        **ch,
    )
    out.validate()
    return out


def _atomic_write(path: Path, text: str, overwrite: bool) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if path exists: no race with a concurrent writer
    except FileExistsError:
        raise PresetError(f"{path}: already exists; choose another name") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def derive(
    registry: PresetRegistry, name: str, sets: Iterable[str], envs: Iterable[str],
    new_name: str, directory: Path | None = None,
) -> Path:
    """Write `new_name.toml` extending `name` with the given changes; never overwrites."""
    if not _PRESET_NAME.match(new_name) or new_name == Path(BASELINES_FILE).stem:
        raise PresetError(f"preset name {new_name!r}: use letters, digits, '_', '-', '.'")
    sets, envs = list(sets), list(envs)
    parent = registry.get(name)
    resolve(parent, sets, envs)
    ch = _parse_sets(parent, sets, envs)
    changed = ", ".join(sets + envs) or "no changes"
    doc: dict[str, Any] = {"description": f"{parent.description} [derived from {name}: {changed}]",
                           "extends": name}
    for fld in ("max_epochs", "data_path"):
        if fld in ch:
            doc[fld] = ch[fld]
    if ch["env"]:
        doc["env"] = ch["env"]
    if ch["overrides"]:
        doc["overrides"] = ch["overrides"]
    directory = Path(directory) if directory is not None else registry.directory
    path = directory / f"{new_name}.toml"
    if path.exists():
        raise PresetError(f"{path}: already exists; choose another name")
    _atomic_write(path, f"# Derived from {name} by runctl.\n" + tomli_w.dumps(doc), overwrite=False)
    return path


# -------------------------------------------------------------------------------------- baselines
@dataclass(frozen=True)
class Baseline:
    """One finished run in the baseline table; metrics keyed like `sharpe`, `ic_h20`, `scale`."""

    name: str
    config: str = ""
    status: str = ""
    preset: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Baselines:
    """The baseline table (presets/baselines.toml)."""

    runs: tuple[Baseline, ...] = ()
    path: Path | None = None

    def get(self, name: str | None) -> Baseline | None:
        """The row called `name`; None: the first row (or None if the table is empty)."""
        if name is None:
            return self.runs[0] if self.runs else None
        for b in self.runs:
            if b.name == name:
                return b
        raise PresetError(f"{self.path}: no baseline {name!r}; baselines: "
                          f"{', '.join(b.name for b in self.runs) or '(none)'}")


_METRIC_KEY = re.compile(r"^(sharpe|val_loss|train_loss|(ic|rank_ic|scale)(_h[1-9][0-9]*)?)$")


def _check_metrics(w: _Where, metrics: Any, where: str) -> dict[str, float]:
    t = w.table(metrics, where, metrics.keys() if isinstance(metrics, dict) else ())
    for k, v in t.items():
        if not _METRIC_KEY.match(k):
            raise w.err(where, f"unknown metric {k!r}; use sharpe, val_loss, train_loss, "
                               "ic_hN, rank_ic_hN, scale_hN or scale")
        w.typed(v, (int, float), f"{where} {k}", "a number")
    return {k: float(v) for k, v in t.items()}


def load_baselines(path: Path | str) -> Baselines:
    """Read the baseline table; a missing file is an empty table."""
    p = Path(path)
    if not p.exists():
        return Baselines(path=p)
    w = _Where(p)
    raw = w.table(_read_toml(p), "", ("runs",))
    runs = raw.get("runs", [])
    if not isinstance(runs, list):
        raise w.err("runs", "expected an array of tables ([[runs]])")
    out = []
    for i, r in enumerate(runs, 1):
        where = f"runs #{i}"
        t = w.table(r, where, ("name", "config", "status", "preset", "metrics"))
        if "name" not in t:
            raise w.err(where, "missing key 'name'")
        out.append(Baseline(
            name=w.typed(t["name"], str, f"{where} name", "a string"),
            config=w.typed(t.get("config", ""), str, f"{where} config", "a string"),
            status=w.typed(t.get("status", ""), str, f"{where} status", "a string"),
            preset=w.typed(t["preset"], str, f"{where} preset", "a string") if "preset" in t else None,
            metrics=_check_metrics(w, t.get("metrics", {}), f"{where} metrics"),
        ))
    return Baselines(runs=tuple(out), path=p)


def add_baseline(
    path: Path | str, name: str, config: str, metrics: Mapping[str, float | None],
    status: str = "", preset: str | None = None,
) -> Baselines:
    """Append a finished run to the table (comments kept; atomic); None/nan metrics are dropped."""
    p = Path(path)
    clean = {k: float(v) for k, v in metrics.items() if v is not None and v == v}
    _check_metrics(_Where(p), clean, "metrics")
    entry: dict[str, Any] = {"name": name, "config": config, "status": status}
    if preset is not None:
        entry["preset"] = preset
    lines = ["", "[[runs]]"] + [tomli_w.dumps({k: v}).strip() for k, v in entry.items()]
    inline = ", ".join(f"{k} = {tomli_w.dumps({'v': v}).split('=', 1)[1].strip()}" for k, v in clean.items())
    lines.append(f"metrics = {{ {inline} }}" if clean else "metrics = {}")
    old = p.read_text(encoding="utf-8") if p.exists() else ""
    text = old.rstrip("\n") + "\n" + "\n".join(lines) + "\n"
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PresetError(f"{p}: cannot append (the table does not parse: {e})") from None
    if any(b.name == name for b in load_baselines(p).runs):
        raise PresetError(f"{p}: a baseline named {name!r} already exists")
    _atomic_write(p, text, overwrite=True)
    return load_baselines(p)
