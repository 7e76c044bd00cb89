"""User-facing errors of the controller: one line, no traceback."""

from __future__ import annotations


class RunctlError(Exception):
    """A mistake the user can fix; `runctl` prints the message and exits 2."""


class DiskFull(RunctlError):
    """A write of the controller found no space left (the message names the file and the free space)."""


def write_error(path: object, e: OSError, what: str = "write") -> RunctlError:
    """The one-line error for a failed write of `path`: DiskFull (naming the free space) for ENOSPC /
    EDQUOT, else the OS's reason."""
    import errno

    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        from engine.runfiles import free_text

        return DiskFull(f"cannot {what} {path}: disk full ({free_text(str(path))}); "
                        f"free some space and try again")
    return RunctlError(f"cannot {what} {path}: {e.strerror or e}")
