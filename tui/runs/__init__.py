"""Runs and processes: the store, launcher, process identity, lock, autopilot, one run followed (docs/design.md)."""
