"""The backends: one module each, whose `BACKEND` implements tui.runs.backend.Backend.

They are named in the registry tui.presets.backends.BACKENDS and imported on first use by
tui.runs.backend.backend_named: no other module imports them (docs/design.md, *Backends*).
"""
