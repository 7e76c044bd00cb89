"""User-facing errors of the controller: one line, no traceback."""

from __future__ import annotations


class RunctlError(Exception):
    """A mistake the user can fix; `runctl` prints the message and exits 2."""
