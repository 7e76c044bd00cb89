"""A preset's own `command`: keys, placeholders, checks before anything starts, the supervise shim.

The runs of real user scripts (launch, kill, resume, CSV) are tests/test_user_scripts.py.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tui.cli.main import main
from tui.presets.preset import PresetError, expand, placeholders
from tui.presets.registry import PresetRegistry, resolve
from tui.runs.supervise import exit_line, wrote_exit_line
from tui.state.follow import read_state

ROOT = Path(__file__).resolve().parent.parent

GOOD = """description = "a user script"
max_epochs = 3
command = ["{python}", "train.py", "--run-dir", "{run_dir}", "--max-epochs", "{max_epochs}", "--name", "{run}"]
resume_args = ["--ckpt", "{ckpt}"]
log_format = "runctl"
"""


def _write(d: Path, name: str, text: str) -> Path:
    p = d / f"{name}.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_placeholders_and_braces() -> None:
    assert placeholders("{python} {{literal}} {run_dir}/x") == ["python", "run_dir"]
    assert expand("{run}-{{x}}", {"run": "r1"}) == "r1-{x}"


def test_command_preset_resolves_without_engine_checks(tmp_path: Path) -> None:
    _write(tmp_path, "user", GOOD + '[overrides]\n"trainer.accumulate" = 4\nlr = 0.1\n')
    p = resolve(PresetRegistry(tmp_path).get("user"), ["trainer.accumulate=8"])
    assert not p.is_engine and p.log_format == "runctl" and p.workdir == tmp_path.resolve()
    assert p.validate() is None  # nothing of the engine's config is checked
    argv = p.command_argv("/runs/r1", "r1")
    assert argv[:2] == [sys.executable, "train.py"]
    assert argv[2:9] == ["--run-dir", "/runs/r1", "--max-epochs", "3", "--name", "r1", "trainer.accumulate=8"]
    assert argv[9:] == ["lr=0.1"]  # overrides are passed on as key=value, like Hydra's


def test_command_keys_merge_along_extends(tmp_path: Path) -> None:
    _write(tmp_path, "user", GOOD)
    (tmp_path / "sub").mkdir()
    _write(tmp_path, "child", 'extends = "user"\nmax_epochs = 5\ncwd = "sub"\n')
    p = PresetRegistry(tmp_path).get("child")
    assert p.command is not None and p.command[1] == "train.py" and p.resume_args == ("--ckpt", "{ckpt}")
    assert p.cwd == str((tmp_path / "sub").resolve()) and p.max_epochs == 5
    assert p.where("command") == tmp_path / "user.toml" and p.where("cwd") == tmp_path / "child.toml"


def test_engine_presets_still_check_their_overrides(tmp_path: Path) -> None:
    _write(tmp_path, "eng", '[overrides]\n"model.hidden_sise" = 4\n')
    with pytest.raises(PresetError, match=r"eng\.toml: overrides: .*model\.hidden_sise"):
        PresetRegistry(tmp_path).get("eng")
    _write(tmp_path, "cmd", 'extends = "eng"\ncommand = ["{python}", "x.py"]\n')
    assert PresetRegistry(tmp_path).get("cmd").overrides == {"model.hidden_sise": 4}


BAD = {
    "empty": ("command = []\n", "command: must name a program"),
    "placeholder": ('command = ["{python}", "x.py", "{rundir}"]\n',
                    "command #3: unknown placeholder {rundir}; known: {python}, {run_dir}, {run}, {max_epochs}"),
    "ckpt_in_command": ('command = ["{python}", "x.py", "{ckpt}"]\n', "command #3: unknown placeholder {ckpt}"),
    "ckpt_files": ('command = ["{python}", "x.py"]\ncheckpoint_files = "{python}/ckpt.pt"\n',
                   "checkpoint_files #1: unknown placeholder {python}"),
    "resume_placeholder": ('command = ["{python}", "x.py"]\nresume_args = ["--ckpt", "{ckpt}", "{nope}"]\n',
                           "resume_args #3: unknown placeholder {nope}"),
    "not_list": ('command = "python x.py"\n', "command: expected a list of strings"),
    "format": ('command = ["{python}", "x.py"]\nlog_format = "json"\n', "log_format: 'json' is not one of auto, runctl, atft"),
    "csv": ('command = ["{python}", "x.py"]\nmetrics_csv = "{python}/m.csv"\n', "metrics_csv #1: unknown placeholder {python}"),
}
BAD_AT_VALIDATE = {
    "missing_program": ('command = ["runctl-no-such-program", "--x"]\n', "command: program 'runctl-no-such-program' is not on PATH"),
    "missing_path": ('command = ["./train.sh"]\n', "command: program './train.sh' not found"),
    "not_executable": ('command = ["./plain.txt"]\n', "command: program './plain.txt' is not executable"),
    "max_epochs": ('command = ["{python}", "x.py", "--epochs", "{max_epochs}"]\n',
                   "command: uses {max_epochs} but the preset sets no max_epochs"),
    "cwd": ('command = ["{python}", "x.py"]\ncwd = "nowhere"\n', "cwd:"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_command_keys_are_one_line_errors(tmp_path: Path, case: str) -> None:
    text, expected = BAD[case]
    _write(tmp_path, case, text)
    with pytest.raises(PresetError) as e:
        PresetRegistry(tmp_path).get(case)
    msg = str(e.value)
    assert "\n" not in msg and f"{case}.toml: " in msg and expected in msg, msg


@pytest.mark.parametrize("case", sorted(BAD_AT_VALIDATE))
def test_bad_commands_fail_before_anything_starts(tmp_path: Path, case: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """`presets check` and `launch` refuse them; launch writes nothing at all."""
    text, expected = BAD_AT_VALIDATE[case]
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "plain.txt").write_text("not a program\n")
    _write(presets, case, text)
    logs = tmp_path / "_logs"
    assert main(["--logs", str(logs), "--presets", str(presets), "presets", "check",
                 str(presets / f"{case}.toml")]) != 0
    assert expected in capsys.readouterr().out
    rc = main(["--logs", str(logs), "--presets", str(presets), "launch", case])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("runctl: ") and "\n" not in err and f"{case}.toml" in err
    assert expected in err
    assert not logs.exists() or not any(logs.rglob("*"))


def test_resume_of_a_command_without_resume_args_is_refused(tmp_path: Path) -> None:
    from tui.runs.launcher import Launcher
    from tui.runs.store import Manifest, RunStore

    store = RunStore(tmp_path / "_logs")
    ck = store.run_dir("r1") / "checkpoints"
    ck.mkdir(parents=True)
    (ck / "last.ckpt").write_bytes(b"x")
    store.save(Manifest(run="r1", name="r", preset="user", log=str(store.log_path("r1")),
                        run_dir=str(store.run_dir("r1")), pid_file=str(store.pid_path("r")),
                        created_at=1.0, host="h", kind="command", state="killed"))
    with pytest.raises(Exception, match="no resume_args"):
        Launcher(store, None).resume("r1")


# ------------------------------------------------------------------------------- supervise shim
def _supervise(tmp_path: Path, code: str) -> tuple[int, str]:
    log = tmp_path / "run.log"
    with open(log, "ab") as out:
        rc = subprocess.run([sys.executable, "-m", "tui.runs.supervise", "--log", str(log), "--",
                             sys.executable, "-c", code], stdout=out, stderr=subprocess.STDOUT,
                            timeout=60, cwd=ROOT).returncode
    return rc, log.read_text()


@pytest.mark.parametrize(("code", "status", "reason"), [
    ("print('hello')", 0, "finished"),
    ("import sys; print('boom'); sys.exit(3)", 3, "error"),
    ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", 137, "error"),
])
def test_supervise_appends_the_exit_line_a_command_did_not_write(tmp_path: Path, code: str,
                                                                  status: int, reason: str) -> None:
    rc, text = _supervise(tmp_path, code)
    assert rc == status
    assert text.splitlines()[-1].endswith(f"[exit] reason={reason} status={status}")
    st = read_state(tmp_path / "run.log")
    assert st.exit_status == status and st.exit_reason == reason


def test_supervise_keeps_a_command_s_own_exit_line(tmp_path: Path) -> None:
    own = exit_line(0, False).strip()
    rc, text = _supervise(tmp_path, f"print({own!r})")
    assert rc == 0 and text.count("[exit]") == 1
    assert wrote_exit_line(tmp_path / "run.log", 0) and not wrote_exit_line(tmp_path / "run.log", len(text))


def test_supervise_passes_sigterm_to_the_group_and_says_terminated(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    code = "import time; print('up', flush=True); time.sleep(30)"
    with open(log, "ab") as out:
        p = subprocess.Popen([sys.executable, "-m", "tui.runs.supervise", "--log", str(log), "--",
                              sys.executable, "-c", code], stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True, cwd=ROOT)
    deadline = time.monotonic() + 30
    while "up" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    import os

    os.killpg(p.pid, signal.SIGTERM)  # what `runctl kill` does
    assert p.wait(timeout=30) == 143
    assert log.read_text().splitlines()[-1].endswith("[exit] reason=terminated status=143")


def test_manifest_records_the_command(tmp_path: Path) -> None:
    """launch --json of a command preset: the manifest says how to resume it."""
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "t.py").write_text("import sys; print('args', sys.argv[1:])\n")
    _write(presets, "user", 'max_epochs = 2\ncommand = ["{python}", "t.py", "--run-dir", "{run_dir}"]\n'
                            'resume_args = ["--ckpt", "{ckpt}"]\n')
    logs = tmp_path / "_logs"
    assert main(["--logs", str(logs), "--presets", str(presets), "launch", "user", "--json"]) == 0
    (mf,) = (logs / "training").glob("*.json")
    m = json.loads(mf.read_text())
    assert m["kind"] == "command" and m["cwd"] == str(presets.resolve())
    assert m["argv"][:2] == [sys.executable, "t.py"] and m["resume_args"] == ["--ckpt", "{ckpt}"]
    assert m["placeholders"]["run_dir"] == m["run_dir"] and m["metrics_csv"] == m["run_dir"] + "/**/metrics.csv"
    log = Path(m["log"])
    deadline = time.monotonic() + 30
    while "[exit]" not in (log.read_text() if log.exists() else "") and time.monotonic() < deadline:
        time.sleep(0.1)
    text = log.read_text()
    assert f"args ['--run-dir', '{m['run_dir']}']" in text and "[exit] reason=finished status=0" in text
