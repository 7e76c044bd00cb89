"""Preset types: the typed, validated form of a preset file (format: docs/presets.md).

`Preset` and its parts (criteria, checkpoints with decision rules, next actions, timeline), the
metric vocabulary and `PresetError`. No TOML parsing here (`tui.presets.parse`), no torch, no
Textual: `Preset.validate` goes through `engine.config.check`.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import config as ec
from tui.errors import RunctlError
from tui.log.sources import FILE_SOURCES, SourceConfig
from tui.presets.backends import DEFAULT_BACKEND


class PresetError(RunctlError):
    """A preset (or baseline table) the user wrote is wrong; one line naming file and key."""


METRICS = ("sharpe", "val_loss", "train_loss", "ic", "rank_ic", "scale")  # the built-in metrics
HORIZON_METRICS = ("ic", "rank_ic", "scale")
# Any other metric a log carries (`[metrics]` lines, a CSVLogger metrics.csv), by its logged name.
METRIC_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]{0,63}$")
LOG_FORMATS = ("auto", "runctl", "atft")
PLACEHOLDERS = ("python", "run_dir", "run", "max_epochs", "max_steps")  # in `command` and `resume_args`
RESUME_PLACEHOLDERS = (*PLACEHOLDERS, "ckpt")  # `resume_args` only: the checkpoint to continue from
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
OPS = (">", ">=", "<", "<=", "between")
DEFAULT_OVERRIDE_FORMAT = ("{key}={value}",)  # Hydra's; `--{key}={value}`, ("--{key}", "{value}")
LEVELS = {"good": "✅", "warn": "⚠️", "bad": "❌"}
# What a notification can be about (docs/presets.md, `[notify]`; tui.runs.notify sends them).
NOTIFY_EVENTS = ("decided", "finished", "crashed", "stalled", "requeued", "sweep_done")


_HORIZON_KEY = re.compile(r"^(ic|rank_ic|scale)_h([1-9][0-9]*)$")
_HORIZON_TYPO = re.compile(r"^(ic|rank_?ic|scale)[_-]?h?([0-9]+)$", re.IGNORECASE)


def metric_name_problem(name: Any) -> str | None:
    """Why `name` cannot be a metric (None: fine): malformed (letters, digits, `_ . / -`)."""
    if not isinstance(name, str) or not METRIC_NAME.match(name):
        return (f"metric {name!r} is not a metric name (letters, digits, '_', '.', '/', '-'; "
                f"built-in: {', '.join(METRICS)})")
    return None


def metric_name_hint(name: str) -> str | None:
    """A warning for a name that is not a built-in but looks like one (`sharp`, `ic20`): it may be
    a typo, or the script's own metric of that name (then the warning is all it costs)."""
    h = _HORIZON_TYPO.match(name)
    if h and not _HORIZON_KEY.match(name):
        m = h.group(1).replace("rankic", "rank_ic")
        return (f"metric {name!r} is not a built-in: did you mean {m} at horizon {h.group(2)} "
                f"({m}_h{h.group(2)})? (fine if the script logs {name!r})")
    if name not in METRICS:
        close = difflib.get_close_matches(name, METRICS, n=1, cutoff=0.8)
        if close:
            return (f"metric {name!r} is not a built-in: did you mean {close[0]!r}? (fine if the "
                    f"script logs {name!r})")
    return None




def split_metric_key(key: str) -> tuple[str, int | str | None]:
    """Baseline-table key -> (metric, horizon): `ic_h20` -> (ic, 20), `scale` -> (scale, "all")."""
    m = _HORIZON_KEY.match(key)
    if m:
        return m.group(1), int(m.group(2))
    return key, "all" if key == "scale" else None


def placeholders(text: str) -> list[str]:
    """The `{name}` placeholders of one argument (`{{` and `}}` are literal braces)."""
    return [m.group(1) for m in _PLACEHOLDER.finditer(text) if m.group(1) is not None]


def expand(text: str, values: dict[str, str]) -> str:
    """`text` with its placeholders replaced (every one must be in `values`)."""
    def sub(m: re.Match[str]) -> str:
        if m.group(1) is None:
            return m.group(0)[0]
        return values[m.group(1)]

    return _PLACEHOLDER.sub(sub, text)


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
    template: str = ""  # the label as written (`{max_epochs}` unexpanded); "" when it is `label`


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
    """A critical checkpoint: decided from the record of `epoch` ("last": the final epoch), or,
    with `axis = "step"`, from the run's first evaluation at or after step `epoch`."""

    epoch: int | str
    title: str
    rules: tuple[Rule, ...]
    look_for: tuple[str, ...] = ()
    axis: str = "epoch"  # "epoch" | "step" (the file's `step = N`)

    def at(self, max_epochs: int | None) -> int | None:
        """The 1-based epoch (or the step) this checkpoint is decided at (None: unknown)."""
        return max_epochs if self.epoch == "last" else int(self.epoch)

    @property
    def where(self) -> str:
        """`epoch 5`, `step 250`, `last epoch`."""
        return f"last {self.axis}" if self.epoch == "last" else f"{self.axis} {self.epoch}"


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
    # Any training script (docs/presets.md): None is the bundled engine.
    command: tuple[str, ...] | None = None
    resume_args: tuple[str, ...] = ()
    cwd: str | None = None  # absolute (a relative one was resolved against its preset file's folder)
    log_format: str = "auto"
    metrics_csv: str | None = None  # a path or glob, may use {run_dir} and {run}
    checkpoint_files: str | None = None  # what `{ckpt}` is: a glob of files or folders ({run_dir}, {run})
    origins: dict[str, Path] = field(default_factory=dict)  # key -> the file that set it
    gpus: int | None = None  # GPUs a run reserves (None: 1 where the box has GPUs, else 0)
    backend: str = DEFAULT_BACKEND  # where its runs run: a name of tui.presets.backends.BACKENDS
    backend_settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # backend -> its table ([slurm])
    max_steps: int | None = None  # a run counted in steps: its budget (`{max_steps}`, the timeline)
    override_format: tuple[str, ...] = DEFAULT_OVERRIDE_FORMAT  # how a command takes `key=value`
    metrics: dict[str, Any] = field(default_factory=dict)  # the [metrics] table (docs/presets.md)
    stall_after: float | None = None  # seconds of silence that make a live run stalled (0: never;
    # None: from the run's own epoch times, tui.state.stall)
    notify: dict[str, Any] = field(default_factory=dict)  # the [notify] table: urls, on
    sweep: Any = None  # the [sweep] table (tui.presets.sweep.SweepSpec), None: not a sweep
    warnings: tuple[str, ...] = ()  # what `presets check` and `launch` say but do not refuse

    @property
    def is_engine(self) -> bool:
        """The bundled engine (no `command`)."""
        return self.command is None

    def where(self, key: str) -> Path:
        """The file that set `key` (this preset's own file if no layer did)."""
        return self.origins.get(key, self.path)

    @property
    def workdir(self) -> Path:
        """The folder the command runs in: `cwd`, else the preset file's folder."""
        return Path(self.cwd) if self.cwd is not None else self.path.resolve().parent

    def placeholder_values(self, run_dir: Path | str, run: str) -> dict[str, str]:
        """What `{python}`, `{run_dir}`, `{run}` and `{max_epochs}` stand for in one run."""
        return {"python": sys.executable, "run_dir": str(run_dir), "run": run,
                "max_epochs": "" if self.max_epochs is None else str(self.max_epochs),
                "max_steps": "" if self.max_steps is None else str(self.max_steps)}

    def source_config(self, run_dir: Path | str, run: str) -> SourceConfig:
        """What one run's metrics are read from (docs/presets.md, `[metrics]`): the bundled engine
        writes the runctl stream; a command is read by every source, its files' globs (the
        `[metrics]` keys, `metrics_csv`, else each source's default) expanded for this run."""
        if self.command is None:
            return SourceConfig(log_format="runctl")
        values = self.placeholder_values(run_dir, run)
        m = self.metrics
        files = []
        for src in FILE_SOURCES:
            glob = m.get(src.preset_key)
            if glob is None and src.name == "csv":
                glob = self.metrics_csv
            if glob is False:
                continue
            files.append((src.name, expand(glob or src.default_glob, values)))
        pats = m.get("patterns") or ()
        return SourceConfig(log_format=self.log_format, stdout=m.get("stdout", True),
                            patterns=tuple(pats.items()) if isinstance(pats, dict) else tuple(pats),
                            files=tuple(files))

    def command_argv(self, run_dir: Path | str, run: str) -> list[str]:
        """The command of one run: placeholders expanded, then the overrides as `key=value`."""
        assert self.command is not None
        values = self.placeholder_values(run_dir, run)
        return [expand(a, values) for a in self.command] + self.override_args()

    def command_text(self) -> str:
        """The command line a run of this preset starts (placeholders shown unexpanded)."""
        if self.command is None:
            return "python -m engine train " + " ".join(self.engine_args())
        return shlex.join([*self.command, *self.override_args()]) + f"   (in {self.workdir})"

    def override_args(self) -> list[str]:
        """The overrides as arguments: the engine's `key=value`; a command's in its
        `override_format` (each element one argument, `{key}` and `{value}` filled in)."""
        if self.command is None or self.override_format == DEFAULT_OVERRIDE_FORMAT:
            return [f"{k}={value_text(v)}" for k, v in self.overrides.items()]
        out: list[str] = []
        for k, v in self.overrides.items():
            values = {"key": k, "value": value_text(v)}
            out += [expand(a, values) for a in self.override_format]
        return out

    def engine_args(self) -> list[str]:
        """Arguments for `python -m engine train` (after the subcommand)."""
        args: list[str] = []
        if self.max_epochs is not None:
            args += ["--max-epochs", str(self.max_epochs)]
        if self.data_path is not None:
            args += ["--data-path", self.data_path]
        return args + self.override_args()

    def validate(self) -> ec.EngineConfig | None:
        """Check the preset as its run would see it; raise PresetError naming the file and key.

        The bundled engine: its config resolved as the engine would (returned). A command: the
        placeholders it may use, its folder and its program (None returned).
        """
        if not self.is_engine:
            self._validate_command()
            return None
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

    def _validate_command(self) -> None:
        assert self.command is not None
        w = self.where("command")
        uses = [p for a in (*self.command, *self.resume_args) for p in placeholders(a)]
        for key in ("max_epochs", "max_steps"):
            if key in uses and getattr(self, key) is None:
                raise PresetError(f"{w}: command: uses {{{key}}} but the preset sets no {key}")
        if self.cwd is not None and not Path(self.cwd).is_dir():
            raise PresetError(f"{self.where('cwd')}: cwd: {self.cwd} is not a folder")
        program = expand(self.command[0], self.placeholder_values("RUN_DIR", "RUN"))
        if os.sep in program:
            path = self.workdir / program
            if not path.is_file():
                raise PresetError(f"{w}: command: program {program!r} not found (in {self.workdir})")
            if not os.access(path, os.X_OK):
                raise PresetError(f"{w}: command: program {program!r} is not executable; "
                                  f"run it through an interpreter, e.g. [\"{{python}}\", \"{program}\"]")
        elif shutil.which(program) is None:
            raise PresetError(f"{w}: command: program {program!r} is not on PATH")

    def unknown_env(self) -> list[str]:
        """Env names the engine does not read (passed through, worth a warning)."""
        return [k for k in self.env if k not in ec.ENV_KEYS] if self.is_engine else []

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
