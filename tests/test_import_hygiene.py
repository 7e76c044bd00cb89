"""The engine knows nothing of the controller; the controller's fast paths import no torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _fresh(code: str) -> str:
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_engine_never_imports_tui_or_textual_in_a_fresh_interpreter() -> None:
    out = _fresh(
        "import sys\n"
        "import engine, engine.config, engine.data, engine.model, engine.losses, engine.metrics, engine.train, engine.lit_module, engine.callbacks\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith(('textual.', 'tui')))\n"
        "print(','.join(bad))\n"
    )
    assert out.strip() == ""


def test_no_engine_module_imports_tui_or_textual() -> None:
    for path in (ROOT / "engine").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for n in names:
                assert not n.startswith(("tui", "textual")), f"{path}: imports {n}"


def test_engine_config_imports_no_torch() -> None:
    out = _fresh("import sys, engine.config; print('torch' in sys.modules, 'lightning' in sys.modules)")
    assert out.strip() == "False False"
