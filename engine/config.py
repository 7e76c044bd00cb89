"""Typed engine configuration: defaults, dotted overrides, TOML files, env overrides.

This module imports no torch, so the controller can validate a preset in milliseconds
(`engine.config.check(...)` or `python -m engine check ...`).
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A user's configuration mistake; the message is one line meant for the user."""


PRECISIONS = ("bf16-mixed", "16-mixed", "32-true", "32", "bf16-true", "64-true")
SCHEDULERS = ("none", "cosine", "step", "plateau")
OPTIMIZERS = ("adamw", "adam", "sgd")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda")
DAY_ORDERS = ("interleaved", "consecutive")


@dataclass
class DataConfig:
    """Where the panel comes from and how it is cut into day batches."""

    path: str | None = None  # parquet file or folder with train/ val/ test/; None: default synth market
    min_date: str = "2016-01-01"  # global date filter (MIN_TRAINING_DATE in the original)
    seq_len: int = 20  # days of history per sample
    min_nodes_per_day: int = 20  # days with fewer stocks are dropped
    features: list[str] = field(default_factory=list)  # empty: every numeric non-key, non-target column
    return_feature: str = "ret_1d"  # past-return feature used for the kNN correlation graph
    val_fraction: float = 0.15  # share of days for validation (single-file layout)
    test_fraction: float = 0.15  # share of days for test (single-file layout)
    embargo_days: int = 20  # trading days left out between splits (>= longest horizon)
    scaler_max_samples: int = 65536  # reservoir size for OnlineRobustScaler
    scaler_clip: float = 5.0  # robust z-scores are clipped to +-this


@dataclass
class ModelConfig:
    """ATFT-GAT-FAN architecture."""

    hidden_size: int = 64
    lstm_layers: int = 1
    attention_heads: int = 4
    dropout: float = 0.1  # encoder dropout
    use_vsn: bool = True  # variable selection network
    use_fan: bool = True  # frequency adaptive normalisation
    fan_top_k: int = 2  # dominant Fourier components removed per window
    use_gat: bool = True
    gat_layers: int = 1
    gat_heads: int = 2
    knn_k: int = 10  # neighbours per stock in the return-correlation graph
    horizons: list[int] = field(default_factory=lambda: [1, 5, 10, 20])
    head_dropout: float = 0.1  # env PRED_HEAD_DROPOUT overrides
    layer_scale: float = 1.0
    layer_norm: bool = False  # LayerNorm in the heads (off keeps prediction variance)
    output_init_std: float = 0.05
    quantiles: list[float] = field(default_factory=list)  # e.g. [0.05, 0.25, 0.5, 0.75, 0.95]; empty: off


@dataclass
class LossConfig:
    """Per-day loss terms and their weights (env SHARPE_WEIGHT etc. override)."""

    huber_weight: float = 1.0
    huber_delta: float = 1.0
    # Off by default: the term is -mean/std over the ~7 consecutive days of one batch; at h5-h20
    # those days' targets overlap, so the in-batch std is tiny and the term rewards fitting batch
    # noise (val IC after 6 epochs .072/.120/.130/.096 with 0.1 vs .090/.151/.154/.122 with 0).
    # SHARPE_WEIGHT or loss.sharpe_weight turn it on, as the seed's experiments do.
    sharpe_weight: float = 0.0
    rankic_weight: float = 0.1
    cs_ic_weight: float = 0.1
    listnet_weight: float = 0.0
    listnet_temperature: float = 0.5
    ranknet_weight: float = 0.0
    exposure_weight: float = 0.0  # sector and market-beta neutralisation penalty
    turnover_weight: float = 0.0
    turnover_ema: float = 0.9
    # min std of predictions per day; 0: off. Huber alone shrinks predictions to ~IC (~0.1 z);
    # the floor keeps SCALE >= 0.2 without changing the ranking (IC)
    variance_floor: float = 0.3
    variance_floor_weight: float = 1.0
    quantile_weight: float = 0.0  # pinball loss on quantile outputs
    horizon_weights: list[float] = field(default_factory=lambda: [1.5, 0.6, 0.3, 0.2])


@dataclass
class BatchConfig:
    train_batch_size: int = 2048  # target rows (stock-days) per batch, filled with whole days
    val_batch_size: int = 4096
    num_workers: int = 0
    # how training days are grouped into batches: "consecutive" packs neighbouring days;
    # "interleaved" puts days ~n_batches apart in one batch (their 20-day targets don't overlap).
    # Interleaving was tried as the default and lost at every horizon after 10 epochs on the
    # default market (.088/.146/.148/.115 vs .090/.149/.152/.119 val IC h1/h5/h10/h20).
    day_order: str = "consecutive"


@dataclass
class OptimizerConfig:
    name: str = "adamw"
    lr: float = 2.5e-4  # 1e-3 overfits by epoch 3 (val IC at h10/h20 then falls for the rest of a 10-epoch run)
    weight_decay: float = 1e-2


@dataclass
class SchedulerConfig:
    name: str = "cosine"  # none | cosine | step | plateau
    warmup_epochs: int = 0
    step_size: int = 5  # for step
    gamma: float = 0.5  # for step
    min_lr: float = 1e-5  # for cosine


@dataclass
class TrainerConfig:
    max_epochs: int = 10
    precision: str = "bf16-mixed"
    accelerator: str = "auto"
    devices: str = "auto"  # "auto", a count ("2") or a list ("0,1")
    strategy: str = "auto"  # auto | ddp | ddp_spawn | ...
    num_nodes: int = 1
    gradient_clip_val: float = 1.0
    progress_every: int = 20  # steps between [progress] lines
    limit_train_batches: int = 0  # 0: all
    limit_val_batches: int = 0  # 0: all


@dataclass
class TrainConfig:
    batch: BatchConfig = field(default_factory=BatchConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    seed: int = 42
    # exponential moving average of the weights, used for validation and kept in checkpoints;
    # 0: off. The effective decay ramps up as min(ema_decay, (1 + step) / (10 + step)).
    ema_decay: float = 0.0
    grad_monitor: bool = False  # env ENABLE_GRAD_MONITOR=1
    grad_monitor_every: int = 200  # env GRAD_MONITOR_EVERY


@dataclass
class EngineConfig:
    """The whole engine configuration."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# Environment variables the engine reads, and the config key each one sets.
ENV_KEYS: dict[str, str] = {
    "SHARPE_WEIGHT": "loss.sharpe_weight",
    "RANKIC_WEIGHT": "loss.rankic_weight",
    "CS_IC_WEIGHT": "loss.cs_ic_weight",
    "HUBER_WEIGHT": "loss.huber_weight",
    "PRED_HEAD_DROPOUT": "model.head_dropout",
    "ENABLE_GRAD_MONITOR": "train.grad_monitor",
    "GRAD_MONITOR_EVERY": "train.grad_monitor_every",
    "MIN_TRAINING_DATE": "data.min_date",
}

_CHOICES: dict[str, tuple[str, ...]] = {
    "train.trainer.precision": PRECISIONS,
    "train.scheduler.name": SCHEDULERS,
    "train.optimizer.name": OPTIMIZERS,
    "train.trainer.accelerator": ACCELERATORS,
    "train.batch.day_order": DAY_ORDERS,
}


def default_config() -> EngineConfig:
    """A fresh default configuration."""
    return EngineConfig()


def _leaf_types(cls: type, prefix: str = "") -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for f in fields(cls):
        t = hints[f.name]
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(t):
            out.update(_leaf_types(t, key + "."))  # type: ignore[arg-type]
        else:
            out[key] = t
    return out


KEY_TYPES: dict[str, Any] = _leaf_types(EngineConfig)


def config_keys() -> list[str]:
    """Every dotted key the engine accepts."""
    return sorted(KEY_TYPES)


def _type_name(t: Any) -> str:
    origin = typing.get_origin(t)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(t) if a is not type(None)]
        return f"{_type_name(args[0])} or null"
    if origin is list:
        return f"list of {_type_name(typing.get_args(t)[0])}"
    return {int: "integer", float: "number", bool: "true/false", str: "string"}.get(t, str(t))


def _near(key: str) -> str:
    near = difflib.get_close_matches(key, KEY_TYPES, n=3, cutoff=0.6)
    if not near:
        leaf = key.rsplit(".", 1)[-1]
        near = [k for k in KEY_TYPES if k.rsplit(".", 1)[-1] == leaf][:3]
    return f"; did you mean {', '.join(near)}?" if near else "; see `python -m engine keys`"


def _coerce(key: str, value: Any, t: Any, from_text: bool) -> Any:
    """Convert a TOML value, or a command-line string, to the field type; raise ConfigError."""
    origin = typing.get_origin(t)
    bad = ConfigError(f"{key}: {value!r} is not a valid {_type_name(t)}")
    if origin in (typing.Union, types.UnionType):
        if value is None or (from_text and str(value).lower() in ("null", "none", "")):
            return None
        inner = [a for a in typing.get_args(t) if a is not type(None)][0]
        return _coerce(key, value, inner, from_text)
    if origin is list:
        inner = typing.get_args(t)[0]
        if from_text and isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = tomllib.loads(f"v = {text}")["v"]
                except tomllib.TOMLDecodeError:
                    raise bad from None
            else:
                value = [v.strip() for v in text.split(",") if v.strip()]
        if not isinstance(value, list):
            raise bad
        return [_coerce(key, v, inner, from_text) for v in value]
    if t is bool:
        if isinstance(value, bool):
            return value
        if from_text and isinstance(value, str):
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise bad
    if t is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if from_text and isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise bad from None
        raise bad
    if t is float:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, (int, float)):
            return float(value)
        if from_text and isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise bad from None
        raise bad
    if t is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise bad
    raise bad


def _validate_value(key: str, value: Any) -> None:
    choices = _CHOICES.get(key)
    if choices is not None and value not in choices:
        raise ConfigError(f"{key}: {value!r} is not allowed; choose one of {', '.join(choices)}")
    positive = {
        "model.hidden_size", "data.seq_len", "train.trainer.max_epochs", "model.attention_heads",
        "train.batch.train_batch_size", "train.batch.val_batch_size", "data.scaler_max_samples",
        "train.trainer.num_nodes", "train.trainer.progress_every", "train.grad_monitor_every",
        "model.knn_k", "model.gat_heads", "model.gat_layers", "model.lstm_layers",
    }
    if key in positive and value <= 0:
        raise ConfigError(f"{key}: {value!r} must be a positive integer")
    if key in ("train.optimizer.lr",) and not value > 0:
        raise ConfigError(f"{key}: {value!r} must be > 0")
    if key in ("model.dropout", "model.head_dropout") and not 0.0 <= value < 1.0:
        raise ConfigError(f"{key}: {value!r} must be in [0, 1)")
    if key == "train.ema_decay" and not 0.0 <= value < 1.0:
        raise ConfigError(f"{key}: {value!r} must be in [0, 1) (0 turns the weight average off)")
    if key in ("data.val_fraction", "data.test_fraction") and not 0.0 <= value < 0.5:
        raise ConfigError(f"{key}: {value!r} must be in [0, 0.5)")
    if key == "data.min_date":
        import datetime as _dt

        try:
            _dt.date.fromisoformat(value)
        except ValueError:
            raise ConfigError(f"{key}: {value!r} is not a date; use YYYY-MM-DD") from None
    if key == "model.horizons" and (not value or any(h <= 0 for h in value)):
        raise ConfigError(f"{key}: {value!r} must be a non-empty list of positive integers")
    if key == "model.quantiles" and any(not 0.0 < q < 1.0 for q in value):
        raise ConfigError(f"{key}: {value!r}: every quantile must be in (0, 1)")
    if key.startswith("loss.") and key.endswith("_weight") and isinstance(value, float) and value < 0:
        raise ConfigError(f"{key}: {value!r} must be >= 0")


def set_key(cfg: EngineConfig, key: str, value: Any, *, from_text: bool) -> None:
    """Set one dotted key on cfg, converting and checking the value."""
    if key not in KEY_TYPES:
        raise ConfigError(f"unknown config key {key!r}{_near(key)}")
    converted = _coerce(key, value, KEY_TYPES[key], from_text)
    _validate_value(key, converted)
    obj: Any = cfg
    *parents, leaf = key.split(".")
    for p in parents:
        obj = getattr(obj, p)
    setattr(obj, leaf, converted)


def get_key(cfg: EngineConfig, key: str) -> Any:
    """Read one dotted key."""
    if key not in KEY_TYPES:
        raise ConfigError(f"unknown config key {key!r}{_near(key)}")
    obj: Any = cfg
    for p in key.split("."):
        obj = getattr(obj, p)
    return obj


def parse_override(text: str) -> tuple[str, str]:
    """Split `key=value`; refuse anything else."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value")
    key, value = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r} has an empty key")
    return key, value


def apply_overrides(cfg: EngineConfig, overrides: Iterable[str]) -> EngineConfig:
    """Apply `key=value` strings (command line); returns cfg."""
    for text in overrides:
        key, value = parse_override(text)
        set_key(cfg, key, value, from_text=True)
    return cfg


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables -> dotted keys (tables whose key is not a leaf key are descended)."""
    out: dict[str, Any] = {}
    for k, v in mapping.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and key not in KEY_TYPES:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def apply_mapping(cfg: EngineConfig, mapping: Mapping[str, Any], source: str = "") -> EngineConfig:
    """Apply a (possibly nested) mapping of typed values, e.g. from TOML."""
    for key, value in flatten(mapping).items():
        try:
            set_key(cfg, key, value, from_text=False)
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}" if source else str(e)) from None
    return cfg


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file; errors name the file (and line)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: cannot read ({e.__class__.__name__})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: invalid TOML: {e}") from None


def env_overrides(environ: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """The (ENV_NAME, key, value) triples that environ sets."""
    return [(name, key, environ[name]) for name, key in ENV_KEYS.items() if environ.get(name, "") != ""]


def apply_env(cfg: EngineConfig, environ: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """Apply the engine's environment overrides; returns what was applied."""
    applied = env_overrides(environ)
    for name, key, value in applied:
        try:
            set_key(cfg, key, value, from_text=True)
        except ConfigError as e:
            raise ConfigError(f"environment {name}: {e}") from None
    return applied


def check(
    overrides: Iterable[str] = (),
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> EngineConfig:
    """Resolve and validate a configuration without importing torch; raises ConfigError."""
    cfg = default_config()
    if config_file is not None:
        apply_mapping(cfg, load_config_file(config_file), str(config_file))
    if environ is not None:
        apply_env(cfg, environ)
    apply_overrides(cfg, overrides)
    validate(cfg)
    return cfg


def validate(cfg: EngineConfig) -> None:
    """Cross-field checks."""
    n_h = len(cfg.model.horizons)
    if len(cfg.loss.horizon_weights) != n_h:
        raise ConfigError(
            f"loss.horizon_weights has {len(cfg.loss.horizon_weights)} values but model.horizons has {n_h}"
        )
    if cfg.data.embargo_days < max(cfg.model.horizons):
        raise ConfigError(
            f"data.embargo_days={cfg.data.embargo_days} must be >= the longest horizon ({max(cfg.model.horizons)})"
        )
    if cfg.model.hidden_size % cfg.model.attention_heads:
        raise ConfigError(
            f"model.hidden_size={cfg.model.hidden_size} must be divisible by model.attention_heads={cfg.model.attention_heads}"
        )
    if cfg.model.hidden_size % cfg.model.gat_heads:
        raise ConfigError(
            f"model.hidden_size={cfg.model.hidden_size} must be divisible by model.gat_heads={cfg.model.gat_heads}"
        )


def to_flat_dict(cfg: EngineConfig) -> dict[str, Any]:
    """Dotted key -> value for every key."""
    return {k: get_key(cfg, k) for k in config_keys()}


def non_default_items(cfg: EngineConfig) -> list[tuple[str, Any]]:
    """The keys whose value differs from the default, sorted."""
    default = to_flat_dict(default_config())
    return [(k, v) for k, v in to_flat_dict(cfg).items() if default[k] != v]

