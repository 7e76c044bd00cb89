"""runctl works from an installed wheel, not only from the checkout.

The wheel is built from a copy of the sources (nothing written into the checkout) without build
isolation (no download) and installed into a fresh venv with `--no-deps`; the fresh venv sees the
dependencies (torch, textual, ...) through a .pth line to the dev venv's site-packages, whose own
.pth files (the editable install's finder among them) are not processed, so `tui`, `engine` and the
presets can only come from the wheel. Everything then runs from a folder with no ./presets.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{cmd}: {r.stdout}\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fresh venv's bin folder, with the wheel installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("engine", "tui", "presets"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src)
    dist = tmp / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--disable-pip-version-check", "-q", "-w", str(dist), str(src)], cwd=tmp)
    (wheel,) = dist.glob("runctl-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp)
    py = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q",
          "--disable-pip-version-check", str(wheel)], cwd=tmp)
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=tmp).stdout.strip())
    (site / "zz_dev_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def test_imports_come_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    r = _run([str(installed / "python"), "-c",
              "import engine, tui, runctl_presets; print(engine.__file__, tui.__file__)"], cwd=tmp_path)
    assert str(ROOT) not in r.stdout and "site-packages" in r.stdout


@pytest.mark.skipif(shutil.which((sysconfig.get_config_var("CC") or "cc").split()[0]) is None,
                    reason="no C compiler: the wheel has the regex scanner only")
def test_the_wheel_builds_the_compiled_scanner(installed: Path, tmp_path: Path) -> None:
    r = _run([str(installed / "python"), "-c",
              "import tui.log.scan as s, tui.log._scanc as c; print(c.__file__, s.c_matches is c.matches)"],
             cwd=tmp_path)
    assert "site-packages" in r.stdout and r.stdout.split()[-1] == "True"


def test_console_script_lists_the_shipped_presets(installed: Path, tmp_path: Path) -> None:
    r = _run([str(installed / "runctl"), "--logs", str(tmp_path / "_logs"), "presets", "list"], cwd=tmp_path)
    names = {line.split()[0] for line in r.stdout.splitlines() if line.strip()}
    shipped = {p.stem for p in (ROOT / "presets").glob("*.toml")} - {"baselines"}
    assert names == shipped


def test_console_script_reads_a_recorded_log(installed: Path, tmp_path: Path) -> None:
    log = DATA / "app_tiny_finished.log"
    r = _run([str(installed / "runctl"), "--logs", str(tmp_path / "_logs"), "status", "--log", str(log),
              "--preset", "tiny", "--json"], cwd=tmp_path)
    data = json.loads(r.stdout)
    assert data["state"] == "finished" and data["preset"] == "tiny" and data["recommendation"]
    text = _run([str(installed / "runctl"), "--logs", str(tmp_path / "_logs"), "status", "--log",
                 str(log)], cwd=tmp_path).stdout
    assert "finished" in text


def test_engine_module_and_stylesheet_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    r = _run([str(installed / "python"), "-m", "engine", "check", "model.hidden_size=64"], cwd=tmp_path)
    assert r.returncode == 0
    code = ("from pathlib import Path\n"
            "from textual.app import App\n"
            "from textual.css.stylesheet import Stylesheet\n"
            "import tui.app.app as a\n"
            "p = Path(a.__file__).with_name(a.RunctlApp.CSS_PATH)\n"
            "s = Stylesheet(variables=App().get_css_variables()); s.read(p); s.parse()\n"
            "print(p, len(s.rules))\n")
    out = _run([str(installed / "python"), "-c", code], cwd=tmp_path).stdout
    assert "site-packages" in out and int(out.split()[-1]) > 10
