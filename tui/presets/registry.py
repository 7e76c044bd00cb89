"""Experiment presets: the registry of a presets directory, `resolve` and `derive`.

A preset names an engine configuration (env + dotted overrides on top of the defaults) and how to
judge the run: success criteria, critical checkpoints with ordered decision rules, next actions
(format: docs/presets.md). The parts live beside it in `tui.presets`: `preset` (the typed `Preset`
and `PresetError`), `parse` (one TOML file -> typed settings), `schema` (shared TOML checks) and
`baselines` (baselines.toml).
No torch, no Textual: validation goes through `engine.config.check`.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import tomli_w

from engine import config as ec
from tui.presets.baselines import BASELINES_FILE, load_baselines
from tui.presets.parse import (
    FIELD_KEYS,
    build_preset,
    env_value,
    labelled,
    merge_layers,
    parse_preset_file,
    stall_after_value,
    typed_override,
)
from tui.presets.preset import (
    Preset,
    PresetError,
)
from tui.presets.schema import Where, atomic_write

_PRESET_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


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
            merged = merge_layers(merged, layer)
        return build_preset(name, self.path(name), merged, tuple(chain))

    def check_file(self, path: Path | str) -> list[str]:
        """Every problem found in one preset file (empty: fine); warnings start `warning: `."""
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
        warnings = [f"warning: {w}" for w in preset.warnings]
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
        return errors + warnings


SHIPPED_PRESETS = "runctl_presets"  # the repository's presets/, installed as this data package


def find_presets_dir(explicit: Path | None = None) -> Path:
    """--presets DIR, else ./presets if present, else the presets shipped with the package."""
    if explicit is not None:
        return Path(explicit)
    local = Path.cwd() / "presets"
    if local.is_dir():
        return local
    spec = importlib.util.find_spec(SHIPPED_PRESETS)
    for where in (spec.submodule_search_locations or []) if spec is not None else []:
        return Path(where)
    return Path(__file__).resolve().parents[2] / "presets"  # a source checkout without install


# ------------------------------------------------------------------------------ resolve / derive
def _parse_sets(preset: Preset, sets: Iterable[str], envs: Iterable[str]) -> dict[str, Any]:
    changes: dict[str, Any] = {"env": {}, "overrides": {}}
    for text in sets:
        try:
            key, value = ec.parse_override(text)
            if key == "gpus":  # the preset's own key, not the program's
                if not value.strip().isdigit():
                    raise PresetError(f"--set {text}: gpus must be a number of GPUs >= 0")
                changes["gpus"] = int(value)
                continue
            if key == "stall_after":  # the preset's own key: when a silent live run is stalled
                changes[key] = stall_after_value(Where(Path(f"--set {text}")), value.strip(), "")
                continue
            if key in ("max_epochs", "max_steps"):  # the preset's own budget (and placeholder)
                if not value.strip().isdigit() or int(value) <= 0:
                    raise PresetError(f"--set {text}: {key} must be a positive integer")
                changes[key] = int(value)
                continue
            # a command takes any key=value (passed on as is); the engine's keys are typed
            typed = typed_override(key, value, from_text=True) \
                if preset.is_engine or key in FIELD_KEYS else value
        except ec.ConfigError as e:
            raise PresetError(f"--set {text}: {e}") from None
        if key in FIELD_KEYS:
            changes[FIELD_KEYS[key]] = typed
        else:
            changes["overrides"][key] = typed
    w = Where(Path("--env"))
    for text in envs:
        name, sep, value = text.partition("=")
        if not sep:
            raise PresetError(f"--env {text}: expected NAME=VALUE")
        try:
            changes["env"][name.strip()] = env_value(w, name.strip(), value, "")
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
    if out.max_epochs != preset.max_epochs:
        out = replace(out, criteria=labelled(out.criteria, out.max_epochs))
    out.validate()
    return out


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
    for fld in ("max_epochs", "max_steps", "data_path", "gpus", "stall_after"):
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
    atomic_write(path, f"# Derived from {name} by runctl.\n" + tomli_w.dumps(doc), overwrite=False)
    return path
