"""The files a file source reads: a glob watched for new matches, an append-only file tailed.

`GlobWatch(pattern)` lists the files matching a glob (`**` allowed), oldest first, looking again at
most every `every` seconds (a run folder with thousands of checkpoint files is not walked on every
poll); `changed(name)` says whether a file is new or changed since it last said so (a file read
whole: a CSVLogger's, a trainer_state.json). `TailLines` reads the whole lines a file gained since
the last read (a partial last line waits; a file that shrank is read again from its start).
"""

from __future__ import annotations

import glob
import os
import time

GLOB_EVERY_S = 2.0
TAIL_CHUNK = 1 << 20


class GlobWatch:
    """The files matching a glob, re-listed at most every `every` seconds."""

    def __init__(self, pattern: str, every: float = GLOB_EVERY_S) -> None:
        self.pattern = pattern
        self.every = every
        self._at = -every
        self._files: list[str] = []
        self._seen: dict[str, tuple[int, int]] = {}  # file -> (size, mtime) when `changed` said so

    def files(self) -> list[str]:
        """The matching files, oldest (by mtime) first; a file that vanished is left out."""
        now = time.monotonic()
        if now - self._at >= self.every:
            self._at = now
            found = []
            for name in glob.glob(self.pattern, recursive=True):
                try:
                    st = os.stat(name)
                except OSError:
                    continue
                found.append((st.st_mtime_ns, name))
            self._files = [name for _, name in sorted(found)]
        return self._files


    def changed(self, name: str, limit: int | None = None) -> bool:
        """`name` is new or its size or mtime changed since the last True for it (and it is at most
        `limit` bytes); a file that cannot be stat'ed has not changed."""
        try:
            st = os.stat(name)
        except OSError:
            return False
        key = (st.st_size, st.st_mtime_ns)
        if self._seen.get(name) == key or limit is not None and st.st_size > limit:
            return False
        self._seen[name] = key
        return True


class TailLines:
    """One append-only text file (JSON lines): the whole lines it gained since the last read."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self._ino: tuple[int, int] | None = None

    def read(self) -> list[str]:
        """New whole lines (decoded, without the newline); [] when none or unreadable."""
        try:
            st = os.stat(self.path)
        except OSError:
            return []
        ino = (st.st_dev, st.st_ino)
        if ino != self._ino or st.st_size < self.offset:  # replaced or truncated: from the start
            self._ino, self.offset, self.partial = ino, 0, b""
        if st.st_size == self.offset:
            return []
        out: list[str] = []
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                while True:
                    data = fh.read(TAIL_CHUNK)
                    if not data:
                        break
                    self.offset += len(data)
                    data = self.partial + data
                    cut = data.rfind(b"\n") + 1
                    self.partial = data[cut:]
                    out += data[:cut].decode("utf-8", "replace").splitlines()
        except OSError:
            return out
        return out
