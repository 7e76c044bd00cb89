"""What one `runctl` invocation works with: the run store, the preset registry, the baselines."""

from __future__ import annotations

import argparse
from typing import Any

from tui.errors import RunctlError
from tui.runs.store import RunStore
from tui.state.run import RunState


class Context:
    """The store, the preset registry and the baselines of one invocation."""

    def __init__(self, args: argparse.Namespace) -> None:
        from tui.presets.registry import PresetRegistry, find_presets_dir

        self.store = RunStore(args.logs)
        self.presets_dir = find_presets_dir(args.presets)
        self.registry = PresetRegistry(self.presets_dir)
        self._baselines: Any = None
        self._remote: Any = None

    def baselines(self) -> Any:
        """presets/baselines.toml (loaded once)."""
        if self._baselines is None:
            from tui.presets.baselines import BASELINES_FILE, load_baselines

            self._baselines = load_baselines(self.presets_dir / BASELINES_FILE)
        return self._baselines

    def remote(self) -> Any:
        """The hosts of the hosts file and their runs (tui.runs.remote.Remote), made once."""
        if self._remote is None:
            from tui.runs.remote import Remote

            self._remote = Remote(self.store.logs_dir)
        return self._remote

    def launcher(self) -> Any:
        """A Launcher on this store and registry."""
        from tui.runs.launcher import Launcher

        return Launcher(self.store, self.registry)

    def preset(self, name: str | None) -> Any:
        """The preset, or None if unnamed or gone (status still works without verdicts)."""
        from tui.presets.preset import PresetError

        if not name:
            return None
        try:
            return self.registry.get(name)
        except PresetError:
            return None

    def run_preset(self, m: Any) -> Any:
        """A run's preset as it was launched: its `--set` / `--env` applied (the preset alone when
        they no longer apply; None if unknown)."""
        if m is None:
            return None
        preset = self.preset(m.preset)
        if preset is None or not (m.sets or m.envs):
            return preset
        from tui.presets.registry import resolve

        try:
            return resolve(preset, m.sets, m.envs)
        except RunctlError:
            return preset

    def judge(self, preset: Any, st: RunState) -> dict[str, Any] | None:
        """Verdicts as JSON (None without a preset)."""
        if preset is None:
            return None
        from tui.judge.evaluate import evaluate

        return evaluate(preset, st, self.baselines()).to_json()
