"""`runctl tui --serve`: the same Textual app in a browser, through textual-serve.

The server answers HTTP on HOST:PORT (docs/cli.md: `--host`, `--port`) and starts one `runctl tui`
process per browser session, over a websocket.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from tui.errors import RunctlError


def serve_app(
    logs_dir: Path, presets_dir: Path | None, run: str | None, log: Path | None, launch: str | None,
    host: str = "localhost", port: int = 8000, readonly: bool = False,
) -> int:
    """Serve the same app in a browser through textual-serve on http://HOST:PORT until SIGINT/SIGTERM."""
    try:
        from textual_serve.server import Server
    except ImportError:
        raise RunctlError("--serve needs textual-serve: pip install textual-serve") from None
    args = [sys.executable, "-m", "tui.cli", "--logs", str(logs_dir)]
    if presets_dir is not None:
        args += ["--presets", str(presets_dir)]
    args += ["tui", *([run] if run else [])]
    for flag, value in (("--log", log), ("--launch", launch)):
        if value is not None:
            args += [flag, str(value)]
    if readonly:
        args.append("--readonly")
    Server(shlex.join(args), host=host, port=port).serve()
    return 0
