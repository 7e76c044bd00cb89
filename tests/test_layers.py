"""The controller's layout is checked by tools, not by memory (docs/design.md).

- the import-linter contracts of pyproject.toml hold (`lint-imports`), and breaking one fails;
- one import path per name: every `from tui.X import name` names a module where `name` is defined,
  and no module of tui re-exports (`__all__`);
- the wheel's package list is every package folder; tui's top level is only what every layer shares.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_import_contracts_hold() -> None:
    r = _lint_imports(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 broken" in r.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("tui/log/events.py", "from tui.state import run", "tui is layered"),
    ("tui/presets/schema.py", "import tui.state.run", "tui is layered"),
    ("tui/judge/conditions.py", "import textual", "only tui.app imports textual"),
    ("engine/metrics.py", "import tui.errors", "the engine imports nothing of tui"),
    ("tui/app/view.py", "import tui.app.widgets.header", "the Textual app is layered"),
    ("tui/log/prefix.py", "import tui.log.parse", "no import circle"),
])
def test_a_broken_contract_fails(tmp_path: Path, module: str, line: str, contract: str) -> None:
    """The same check on a copy of the tree with one forbidden import added."""
    for name in ("tui", "engine"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    path = tmp_path / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}  # noqa\n", encoding="utf-8")
    r = _lint_imports(tmp_path)
    assert r.returncode != 0, r.stdout
    broken = r.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, r.stdout


def _modules() -> dict[str, Path]:
    out = {}
    for path in [*(ROOT / "tui").rglob("*.py"), *(ROOT / "tui").rglob("*.pyi")]:  # .pyi: a compiled module
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _defined(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_one_import_path_per_name() -> None:
    """Callers import a name from the module that defines it; nothing re-exports."""
    modules = _modules()
    defined = {m: _defined(ast.parse(p.read_text(encoding="utf-8"))) for m, p in modules.items()}
    problems = [f"{m}: __all__ (a re-export list)" for m in modules if "__all__" in defined[m]]
    sources = [*(ROOT / "tui").rglob("*.py"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py")]
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                    and node.module.split(".")[0] == "tui"):
                continue
            if node.module not in modules:
                problems.append(f"{path.relative_to(ROOT)}:{node.lineno}: no module {node.module}")
                continue
            for alias in node.names:
                if alias.name not in defined[node.module] and f"{node.module}.{alias.name}" not in modules:
                    problems.append(f"{path.relative_to(ROOT)}:{node.lineno}: {alias.name} is not "
                                    f"defined in {node.module}")
    assert not problems, "\n".join(problems)


def test_package_list_is_every_package_folder() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for top in ("engine", "tui") for p in (ROOT / top).rglob("__init__.py")}
    assert listed - {"runctl_presets"} == found


def test_tui_top_level_holds_only_shared_modules() -> None:
    top = sorted(p.name for p in (ROOT / "tui").iterdir() if p.suffix == ".py")
    assert top == ["__init__.py", "errors.py"]
    packages = sorted(p.name for p in (ROOT / "tui").iterdir() if (p / "__init__.py").is_file())
    assert packages == ["app", "cli", "judge", "log", "presets", "runs", "state"]
