"""Judging a state against a preset: table, criteria, checkpoints, recommendation, report (docs/design.md)."""
