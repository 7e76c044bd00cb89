"""The run state: RunState, the fold of log events into it, its JSON. Imports tui.log (docs/design.md)."""
