"""Preset files, the registry and the baseline table. Imports tui.errors and engine.config (docs/design.md)."""
