"""runctl's training engine: ATFT-GAT-FAN on Lightning (`python -m engine ...`).

Importing this package imports no torch; `engine.config` validates configs in milliseconds.
"""

__version__ = "0.1.0"
