"""Preset files: one TOML file -> typed settings; layers merged along `extends` -> `Preset`.

`parse_preset_file` validates one file's own keys (errors name the file and the key);
`merge_layers` and `build_preset` apply an extends chain (`tui.presets.registry` resolves the chain).
"""

from __future__ import annotations

import re
from dataclasses import fields, replace
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

from engine import config as ec
from tui.log.sources import FILE_SOURCES
from tui.log.sources.patterns import PatternError, compile_patterns
from tui.presets.backends import BACKENDS, settings_tables
from tui.presets.preset import (
    HORIZON_METRICS,
    LEVELS,
    LOG_FORMATS,
    NOTIFY_EVENTS,
    OPS,
    PLACEHOLDERS,
    RESUME_PLACEHOLDERS,
    Checkpoint,
    Condition,
    Criterion,
    NextAction,
    Preset,
    PresetError,
    Rule,
    Timeline,
    metric_name_hint,
    metric_name_problem,
    placeholders,
)
from tui.presets.schema import Where, duration_seconds, is_num, read_toml, tname
from tui.presets.sweep import parse_sweep

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
# Engine keys that have their own preset field (and engine flag).
FIELD_KEYS = {"train.trainer.max_epochs": "max_epochs", "data.path": "data_path"}

# A file's keys; each backend's table (`[slurm]`, tui.presets.backends) goes after "backend".
_TOP_KEYS = (
    "description", "extends", "env", "overrides", "max_epochs", "data_path", "default_horizon",
    "baseline", "timeline", "criteria", "checkpoints", "next",
    "command", "resume_args", "cwd", "log_format", "metrics_csv", "gpus", "backend",
)
_TOP_KEYS_AFTER_TABLES = (
    "checkpoint_files",
    "max_steps", "override_format", "metrics", "stall_after", "notify", "sweep",
)
_MERGED = ("env", "overrides", "next", "origins", "metrics", "notify")  # merged per entry along extends
# Keys whose errors are only errors for the bundled engine: `{"overrides": {key: message}}`.
ENGINE_ONLY = "engine_errors"


def _condition(w: Where, raw: Any, where: str, with_label: bool = False) -> Condition:
    keys = ("metric", "horizon", "op", "value") + (("label",) if with_label else ())
    t = w.table(raw, where, keys)
    for k in ("metric", "op", "value"):
        if k not in t:
            raise w.err(where, f"missing key {k!r}")
    metric = t["metric"]
    problem = metric_name_problem(metric)
    if problem is not None:
        raise w.err(where, problem)
    hint = metric_name_hint(metric)
    if hint is not None:
        w.warn(where, hint)
    op = t["op"]
    if op not in OPS:
        raise w.err(where, f"op {op!r} is not one of {', '.join(OPS)}")
    value: float | tuple[float, float]
    if op == "between":
        v = t["value"]
        if not (isinstance(v, list) and len(v) == 2 and all(is_num(x) for x in v) and v[0] <= v[1]):
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


def _criterion(w: Where, raw: Any, where: str) -> Criterion:
    t = w.table(raw, where, ("metric", "horizon", "op", "value", "label"))
    if "label" not in t:
        raise w.err(where, "missing key 'label'")
    label = w.typed(t["label"], str, f"{where} label", "a string")
    if t.get("metric") == "completed":
        w.table(t, where, ("metric", "label"))
        return Criterion(label=label, metric="completed", template=label)
    cond = _condition(w, {k: v for k, v in t.items() if k != "label"}, where)
    return Criterion(label=label, metric=cond.metric, condition=cond, template=label)


def _checkpoint(w: Where, raw: Any, where: str) -> Checkpoint:
    t = w.table(raw, where, ("epoch", "step", "title", "look_for", "rules"))
    if ("epoch" in t) == ("step" in t) or "rules" not in t:
        raise w.err(where, "needs 'rules' and one of 'epoch' or 'step'")
    axis = "epoch" if "epoch" in t else "step"
    epoch = t[axis]
    if epoch != "last" and not (isinstance(epoch, int) and not isinstance(epoch, bool)
                                and (epoch > 0 or axis == "step" and epoch >= 0)):
        raise w.err(where, f"{axis} {epoch!r} must be a positive integer or \"last\"")
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
    title = t.get("title", f"{axis.capitalize()} {epoch}")
    return Checkpoint(epoch=epoch, title=w.typed(title, str, f"{where} title", "a string"),
                      rules=tuple(rules), look_for=w.strings(t.get("look_for", []), f"{where} look_for"),
                      axis=axis)


def _next(w: Where, raw: Any) -> dict[str, NextAction]:
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


def _arguments(w: Where, raw: Any, key: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """A list of strings whose `{placeholders}` are all in `allowed`."""
    args = w.strings(raw, key)
    for i, a in enumerate(args, 1):
        for name in placeholders(a):
            if name not in allowed:
                raise w.err(f"{key} #{i}", f"unknown placeholder {{{name}}}; known: "
                            + ", ".join(f"{{{n}}}" for n in allowed))
    return args


def _command_keys(w: Where, raw: dict[str, Any], out: dict[str, Any]) -> None:
    """command, resume_args, cwd, log_format, metrics_csv: checks that need no other file."""
    if "command" in raw:
        out["command"] = _arguments(w, raw["command"], "command", PLACEHOLDERS)
        if not out["command"] or not out["command"][0].strip():
            raise w.err("command", "must name a program: a non-empty list of strings, "
                        "e.g. [\"{python}\", \"train.py\", \"--run-dir\", \"{run_dir}\"]")
    if "resume_args" in raw:
        # {ckpt} may be left out (nanoGPT's --init_from=resume): resume then needs a checkpoint_files match
        out["resume_args"] = _arguments(w, raw["resume_args"], "resume_args", RESUME_PLACEHOLDERS)
    if "checkpoint_files" in raw:
        out["checkpoint_files"] = w.typed(raw["checkpoint_files"], str, "checkpoint_files", "a path or glob")
        _arguments(w, [out["checkpoint_files"]], "checkpoint_files", ("run_dir", "run"))
    if "cwd" in raw:
        cwd = Path(w.typed(raw["cwd"], str, "cwd", "a folder"))
        out["cwd"] = str(cwd if cwd.is_absolute() else (w.path.resolve().parent / cwd).resolve())
    if "log_format" in raw:
        fmt = raw["log_format"]
        if fmt not in LOG_FORMATS:
            raise w.err("log_format", f"{fmt!r} is not one of {', '.join(LOG_FORMATS)}")
        out["log_format"] = fmt
    if "metrics_csv" in raw:
        out["metrics_csv"] = w.typed(raw["metrics_csv"], str, "metrics_csv", "a path or glob")
        _arguments(w, [out["metrics_csv"]], "metrics_csv", ("run_dir", "run"))
    if "override_format" in raw:
        v = raw["override_format"]
        fmt = (v,) if isinstance(v, str) else w.strings(v, "override_format")
        used = [p for a in fmt for p in placeholders(a)]
        if sorted(set(used)) != ["key", "value"] or any(p not in ("key", "value") for p in used):
            raise w.err("override_format", f"{v!r}: use {{key}} and {{value}}, e.g. \"{{key}}={{value}}\" "
                        f"(Hydra), \"--{{key}}={{value}}\" or [\"--{{key}}\", \"{{value}}\"] (argparse)")
        out["override_format"] = fmt


def _metrics(w: Where, raw: Any) -> dict[str, Any]:
    """The [metrics] table: explicit patterns, the zero-configuration shapes, file globs."""
    files = [s.preset_key for s in FILE_SOURCES]
    t = w.table(raw, "metrics", ("patterns", "stdout", *files))
    out: dict[str, Any] = {}
    if "patterns" in t:
        pats = t["patterns"]
        if isinstance(pats, dict):
            spec: Any = {k: w.typed(v, str, f"metrics.patterns.{k}", "a regular expression")
                         for k, v in pats.items()}
            for k in spec:
                if metric_name_problem(k) is not None:
                    raise w.err(f"metrics.patterns.{k}", metric_name_problem(k) or "")
        else:
            spec = list(w.strings(pats, "metrics.patterns"))
        try:
            compile_patterns(spec)
        except PatternError as e:
            raise w.err("metrics.patterns", str(e)) from None
        out["patterns"] = spec
    if "stdout" in t:
        out["stdout"] = w.typed(t["stdout"], bool, "metrics.stdout", "true or false")
    for k in files:
        if k in t:
            v = t[k]
            if v is not False:
                v = w.typed(v, str, f"metrics.{k}", "a path or glob, or false")
                _arguments(w, [v], f"metrics.{k}", ("run_dir", "run"))
            out[k] = v
    return out


def stall_after_value(w: Where, v: Any, where: str = "stall_after") -> float:
    """`stall_after`: a duration (seconds, or `"90s"`, `"10m"`, `"1h"`), or `false` / `"off"` / 0:
    never stalled. 0.0 stands for off."""
    if v is False or v == "off":
        return 0.0
    secs = duration_seconds(v)
    if secs is None or secs < 0:
        raise w.err(where, f"{v!r} is not a duration; use seconds (600) or a text such as \"90s\", "
                           f"\"10m\", \"1h\" (false: never stalled)")
    return secs


def notify_table(w: Where, raw: Any, where: str = "notify") -> dict[str, Any]:
    """A `[notify]` table (a preset's, or a user's notify.toml as a whole): `urls`, a list of
    notification URLs (apprise's: `scheme://...`), and `on`, the events to send. Only the shape is
    checked here; whether apprise knows a URL's scheme is checked where it sends
    (tui.runs.notify), so this layer imports no notification library."""
    t = w.table(raw, where, ("urls", "on"))
    out: dict[str, Any] = {}
    key = f"{where}." if where else ""
    if "urls" in t:
        urls = w.strings(t["urls"], f"{key}urls")
        for i, u in enumerate(urls, 1):
            if "://" not in u or not u.split("://", 1)[0].strip():
                raise w.err(f"{key}urls #{i}", "not a notification URL (scheme://...), e.g. "
                            "\"ntfy://ntfy.sh/my-runs\", \"json://host:port/path\", \"slack://...\"")
        out["urls"] = urls
    if "on" in t:
        on = w.strings(t["on"], f"{key}on")
        for e in on:
            if e not in NOTIFY_EVENTS:
                raise w.err(f"{key}on", f"unknown event {e!r}; events: {', '.join(NOTIFY_EVENTS)}")
        out["on"] = tuple(dict.fromkeys(on))
    return out


def _kind(hint: Any) -> Any:
    """A settings field's type without its None: `str | None` -> str, `tuple[str, ...]` -> tuple."""
    if get_origin(hint) in (Union, UnionType):
        hint = next(a for a in get_args(hint) if a is not type(None))
    return get_origin(hint) or hint


def _settings(w: Where, raw: Any, table: str, settings: type) -> dict[str, Any]:
    """A backend's table (`[slurm]`): its keys are the fields of its settings dataclass
    (tui.presets.backends), each checked by its type (a string, an integer, a list of strings),
    its least value (`low`) and its own check (`check`: a message when a value is wrong)."""
    t = w.table(raw, table, [f.name for f in fields(settings)])
    types = get_type_hints(settings)
    out: dict[str, Any] = {}
    for f in fields(settings):
        if f.name not in t:
            continue
        where, kind = f"{table}.{f.name}", _kind(types[f.name])
        low, check = f.metadata.get("low"), f.metadata.get("check")
        if kind is tuple:
            v: Any = w.strings(t[f.name], where)
        elif kind is int:
            v = w.typed(t[f.name], int, where, "an integer")
        else:
            v = w.typed(t[f.name], str, where, "a string")
        if low is not None and v < low:
            raise w.err(where, f"{v} must be >= {low}")
        for x in (v if isinstance(v, tuple) else (v,)):
            problem = check(x) if check is not None else None
            if problem is not None:
                raise w.err(where, problem)
        out[f.name] = v
    return out


def typed_override(key: str, value: Any, from_text: bool) -> Any:
    """Convert one engine override as the engine would; raise engine ConfigError."""
    cfg = ec.default_config()
    ec.set_key(cfg, key, value, from_text=from_text)
    return ec.get_key(cfg, key)


def env_value(w: Where, name: str, v: Any, where: str) -> str:
    if not _ENV_NAME.match(name):
        raise w.err(where, f"env name {name!r} must be UPPER_SNAKE_CASE")
    if isinstance(v, bool):
        v = "1" if v else "0"
    elif is_num(v):
        v = str(v)
    elif not isinstance(v, str):
        raise w.err(where, f"{name}: expected a string or number, got {tname(v)}")
    if name in ec.ENV_KEYS:
        try:
            typed_override(ec.ENV_KEYS[name], v, from_text=True)
        except ec.ConfigError as e:
            raise w.err(where, f"{name}: {e}") from None
    return v


def parse_preset_file(path: Path) -> dict[str, Any]:
    """One file's own settings as typed values (extends not applied); raise PresetError."""
    w = Where(path)
    tables = settings_tables()
    raw = w.table(read_toml(path), "", (*_TOP_KEYS, *tables, *_TOP_KEYS_AFTER_TABLES))
    out: dict[str, Any] = {}
    for k in ("description", "extends", "data_path", "baseline"):
        if k in raw:
            out[k] = w.typed(raw[k], str, k, "a string")
    for k in ("max_epochs", "default_horizon"):
        if k in raw:
            out[k] = w.typed(raw[k], int, k, "an integer")
            if out[k] <= 0:
                raise w.err(k, f"{out[k]} must be > 0")
    if "gpus" in raw:
        out["gpus"] = w.typed(raw["gpus"], int, "gpus", "a number of GPUs")
        if out["gpus"] < 0:
            raise w.err("gpus", f"{out['gpus']} must be >= 0")
    if "env" in raw:
        env = w.table(raw["env"], "env", raw["env"].keys() if isinstance(raw["env"], dict) else ())
        out["env"] = {k: env_value(w, k, v, "env") for k, v in env.items()}
    if "overrides" in raw:
        ov = w.table(raw["overrides"], "overrides", raw["overrides"].keys()
                     if isinstance(raw["overrides"], dict) else ())
        typed: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for key, value in ec.flatten(ov).items():
            try:
                typed[key] = typed_override(key, value, from_text=False)
            except ec.ConfigError as e:  # an error for the engine; a command takes any key=value
                typed[key] = value
                errors[key] = str(w.err("overrides", str(e)))
        for key, fld in FIELD_KEYS.items():
            if key in typed:
                if fld in out:
                    raise w.err("overrides", f"{key} and {fld} both set; keep only {fld}")
                out[fld] = typed.pop(key)
        out["overrides"] = typed
        out[ENGINE_ONLY] = errors
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
    _command_keys(w, raw, out)
    if "max_steps" in raw:
        out["max_steps"] = w.typed(raw["max_steps"], int, "max_steps", "an integer")
        if out["max_steps"] <= 0:
            raise w.err("max_steps", f"{out['max_steps']} must be > 0")
    if "metrics" in raw:
        out["metrics"] = _metrics(w, raw["metrics"])
    if "backend" in raw:
        if raw["backend"] not in BACKENDS:
            raise w.err("backend", f"{raw['backend']!r} is not one of {', '.join(BACKENDS)}")
        out["backend"] = raw["backend"]
    for table, settings in tables.items():
        if table in raw:
            out[table] = _settings(w, raw[table], table, settings)
    if "stall_after" in raw:
        out["stall_after"] = stall_after_value(w, raw["stall_after"])
    if "sweep" in raw:
        out["sweep"] = parse_sweep(w, raw["sweep"])
    if "notify" in raw:
        out["notify"] = notify_table(w, raw["notify"])
    out["origins"] = {k: path for k in out if k != ENGINE_ONLY}
    out["warnings"] = tuple(w.warnings)
    return out


def merge_layers(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """Child wins per key; env, overrides and next merge per entry; lists are replaced whole."""
    out = dict(parent)
    for k, v in child.items():
        out[k] = {**parent.get(k, {}), **v} if k in _MERGED or k in settings_tables() \
            else (*parent.get(k, ()), *v) if k == "warnings" else v
    if "overrides" in child:  # a key the child sets again carries the child's own error (if any)
        errors = {k: e for k, e in parent.get(ENGINE_ONLY, {}).items() if k not in child["overrides"]}
        out[ENGINE_ONLY] = {**errors, **child.get(ENGINE_ONLY, {})}
    return out


def _with_horizon(c: Condition, default: int) -> Condition:
    if c.metric in HORIZON_METRICS and c.horizon is None:
        return replace(c, horizon=default)
    return c


def labelled(criteria: tuple[Criterion, ...], max_epochs: int | None) -> tuple[Criterion, ...]:
    """The criteria with `{max_epochs}` in their labels filled in (again: after `--set`)."""
    if max_epochs is None:
        return criteria
    return tuple(replace(c, label=(c.template or c.label).replace("{max_epochs}", str(max_epochs)))
                 for c in criteria)


def build_preset(name: str, path: Path, merged: dict[str, Any], chain: tuple[str, ...]) -> Preset:
    h = merged.get("default_horizon", 20)
    criteria = tuple(
        replace(c, condition=_with_horizon(c.condition, h)) if c.condition else c
        for c in merged.get("criteria", ())
    )
    criteria = labelled(criteria, merged.get("max_epochs"))
    checkpoints = tuple(
        replace(cp, rules=tuple(replace(r, when=tuple(_with_horizon(c, h) for c in r.when))
                                for r in cp.rules))
        for cp in merged.get("checkpoints", ())
    )
    if "command" not in merged:  # the bundled engine: every override must be one of its keys
        for key, error in merged.get(ENGINE_ONLY, {}).items():
            if key in merged.get("overrides", {}):
                raise PresetError(error)
    tables = settings_tables()
    skip = ("criteria", "checkpoints", "extends", ENGINE_ONLY, *tables)
    fields_ = {k: v for k, v in merged.items() if k not in skip}
    return Preset(name=name, path=path, extends=chain[1] if len(chain) > 1 else None,
                  criteria=criteria, checkpoints=checkpoints, chain=chain,
                  backend_settings={t: merged[t] for t in tables if t in merged}, **fields_)
