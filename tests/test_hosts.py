"""Hosts without an ssh server (issue 19): the hosts file and its one-line mistakes, the command
ssh hands the far shell (quoted, never built from a host's answer), how runctl's ssh options
combine with the user's, a host's text cleaned, the mirror refusing a bad run id, `runctl log`
(the far side of a followed log), `presets export | receive`, and an unreachable host (a closed
port: the ssh client only) listed as one line next to this machine's runs."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import runctl_cmd
from tests.sshd import free_port
from tests.waiting import wait_until
from tui.runs import ssh
from tui.runs.hosts import Host, HostsError, get_host, hosts_path, load_hosts, split_target
from tui.runs.remote import mirror
from tui.runs.ssh import RemoteError, clean, remote_command
from tui.runs.store import RunStore

ROOT = Path(__file__).resolve().parent.parent
STEPPED = """description = "stand-in trainer: one epoch per go-file"
cwd = "{root}"
command = ["{{python}}", "tests/scripts/stepped_train.py", "{{run_dir}}", "3"]
resume_args = ["--resume", "{{ckpt}}"]
max_epochs = 3
"""


@pytest.fixture
def presets_dir(tmp_path: Path) -> Path:
    d = tmp_path / "presets"
    d.mkdir()
    (d / "stepped.toml").write_text(STEPPED.format(root=ROOT))
    (d / "child.toml").write_text('extends = "stepped"\ndescription = "a child"\n')
    (d / "baselines.toml").write_text("")
    return d


def _one_line(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("runctl: "), r.stderr
    return lines[0]


# ------------------------------------------------------------------------------ the hosts file
def test_hosts_file(tmp_path: Path) -> None:
    f = tmp_path / "hosts.toml"
    f.write_text('[hosts.gpu2]\nssh = "gpu2"\nssh_args = ["-F", "/x/config"]\n'
                 'runctl = "/opt/venv/bin/runctl"\ndir = "~/research"\n[hosts.gpu3]\nssh = "me@10.0.0.3"\n')
    hosts = load_hosts(f)
    assert list(hosts) == ["gpu2", "gpu3"]
    assert hosts["gpu2"] == Host("gpu2", "gpu2", ("-F", "/x/config"), "/opt/venv/bin/runctl", "~/research")
    assert hosts["gpu3"] == Host("gpu3", "me@10.0.0.3")  # runctl on its PATH, in its home
    assert load_hosts(tmp_path / "none.toml") == {}
    assert split_target("gpu2:r_1") == ("gpu2", "r_1") and split_target("r_1") == (None, "r_1")
    assert split_target("local:r_1") == ("local", "r_1")
    for text, msg in [("[hosts.a\n", "not valid TOML"),
                      ('[hosts.a]\nssh = "a"\nport = 22\n', "hosts.a: unknown key 'port'"),
                      ('[hosts.a]\nssh_args = []\n', "hosts.a: ssh: give the destination"),
                      ('[hosts.a]\nssh = "-oProxyCommand=x"\n', "is not a destination"),
                      ('[hosts.a]\nssh = "a b"\n', "is not a destination"),
                      ('[hosts.a]\nssh = "a"\nssh_args = "-p 22"\n', "ssh_args: expected a list"),
                      ('[hosts.local]\nssh = "a"\n', "the name 'local' is reserved"),
                      ('[hosts.any]\nssh = "a"\n', "the name 'any' is reserved"),
                      ('[hosts."a:b"]\nssh = "a"\n', "the name 'a:b'"),
                      ('[hosts.a]\nssh = "a"\ndir = 3\n', "hosts.a: dir: expected a path"),
                      ('hosts = 3\n', "expected [hosts.NAME] tables"),
                      ('[other]\n', "unknown key 'other'")]:
        f.write_text(text)
        with pytest.raises(HostsError, match=None) as e:
            load_hosts(f)
        assert str(e.value).startswith(f"{f}: ") and msg in str(e.value) and "\n" not in str(e.value), text


def test_a_bad_hosts_file_is_one_line(tmp_path: Path, runctl, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    f = tmp_path / "hosts.toml"
    f.write_text("[hosts.a]\nssh = 3\n")
    assert "hosts.a: ssh: give the destination" in _one_line(runctl("runs"))
    assert "hosts.a: ssh" in _one_line(runctl("status", "a:r_20260101_000000"))
    f.write_text('[hosts.a]\nssh = "127.0.0.1"\n')
    assert _one_line(runctl("status", "b:r_1")) == "runctl: unknown host 'b' (hosts: a)"
    assert "unknown host 'b'" in _one_line(runctl("launch", "stepped", "--host", "b"))
    assert "--send goes with --host" in _one_line(runctl("launch", "stepped", "--send"))
    r = runctl("runs", "--host", "local")  # this machine only: no host asked
    assert r.returncode == 0 and r.stdout.startswith("no runs in"), r.stderr
    f.unlink()
    r = runctl("runs")  # no hosts file: the listing as it always was (no host column)
    assert r.returncode == 0 and r.stdout.strip() == f"no runs in {tmp_path / '_logs' / 'training'}"
    assert "unknown run 'x'" in _one_line(runctl("status", "x"))


def test_without_runctl_hosts_the_file_is_in_the_users_config(tmp_path: Path, runctl,  # noqa: ANN001
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """`$RUNCTL_HOSTS` unset (or empty): `~/.config/runctl/hosts.toml`, for the library and the CLI;
    set, it wins."""
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("RUNCTL_HOSTS")  # the autouse fixture's own file
    default = home / ".config" / "runctl" / "hosts.toml"
    assert hosts_path() == default
    assert load_hosts() == {}  # no file there: no hosts
    with pytest.raises(HostsError, match=re.escape(f"none: {default} lists no host")):
        get_host("gpu2")
    default.parent.mkdir(parents=True)
    default.write_text('[hosts.gpu2]\nssh = "gpu2"\n')
    assert list(load_hosts()) == ["gpu2"] and get_host("gpu2") == Host("gpu2", "gpu2")
    assert _one_line(runctl("status", "b:r_1")) == "runctl: unknown host 'b' (hosts: gpu2)"
    monkeypatch.setenv("RUNCTL_HOSTS", "")  # empty: as unset
    assert hosts_path() == default and list(load_hosts()) == ["gpu2"]
    (home / "mine.toml").write_text('[hosts.gpu3]\nssh = "gpu3"\n')
    monkeypatch.setenv("RUNCTL_HOSTS", "~/mine.toml")  # set: that file (a leading ~ expanded)
    assert hosts_path() == home / "mine.toml" and list(load_hosts()) == ["gpu3"]
    assert _one_line(runctl("status", "b:r_1")) == "runctl: unknown host 'b' (hosts: gpu3)"


# ------------------------------------------------------------------------------ the ssh command
def test_the_far_command_is_quoted_arguments() -> None:
    """Every argument reaches the far runctl as it is (quoted for the far shell); only a leading
    `~` of the folder and the runctl path is the far shell's to expand."""
    nasty = ["status", "local:r_1", "--preset=$(touch /tmp/pwned)", "a b; rm -rf ~", "it's", "`id`", "~/x", "-"]
    host = Host("h", "h", runctl="~/venv/bin/run ctl", dir="~/my research")
    cmd = remote_command(host, nasty)
    assert cmd.startswith("cd ~/'my research' && exec ~/'venv/bin/run ctl' ")
    words = shlex.split(cmd)
    assert words[:2] == ["cd", "~/my research"] and words[3:5] == ["exec", "~/venv/bin/run ctl"]
    assert words[5:] == nasty  # each one word, literally
    assert remote_command(Host("h", "h", dir="/srv/x"), ["runs"]) == "cd /srv/x && exec runctl runs"
    assert remote_command(Host("h", "h", dir="~"), ["runs"]).startswith("cd ~ && ")
    assert remote_command(Host("h", "h", dir="~bob/r"), ["runs"]).startswith("cd ~bob/r && ")
    assert remote_command(Host("h", "h", dir="~$(id)/r"), ["runs"]).startswith("cd '~$(id)/r' && ")


def test_ssh_options_combine_with_the_users(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's ssh_args come first (ssh keeps the first value: theirs win), BatchMode=yes
    always; ConnectTimeout, ServerAlive and multiplexing only where the user's config has none."""
    cm = Path(tempfile.mkdtemp(prefix="rch", dir="/tmp")) / "cm"  # short: a socket path's limit
    monkeypatch.setenv(ssh.ENV_DIR, str(cm))
    plain = tmp_path / "plain_config"
    plain.write_text("Host *\n  User someone\n")
    mine = tmp_path / "mux_config"
    mine.write_text("Host *\n  ControlMaster auto\n  ControlPath ~/.ssh/cm-%C\n  ConnectTimeout 7\n"
                    "  ServerAliveInterval 20\n")
    ssh._options.clear()
    argv = ssh.ssh_argv(Host("a", "box", ("-F", str(plain))), ["runs"], 10)
    assert argv[:3] == ["ssh", "-F", str(plain)] and argv[-3:-1] == ["--", "box"]
    opts = " ".join(argv)
    assert "BatchMode=yes" in opts and "ConnectTimeout=5" in opts and "ServerAliveInterval=5" in opts
    assert f"ControlPath={cm}/%C" in opts and "ControlMaster=auto" in opts
    assert "ControlPersist=60" in opts
    assert cm.stat().st_mode & 0o777 == 0o700
    shutil.rmtree(cm.parent)
    stream = " ".join(ssh.ssh_argv(Host("a", "box", ("-F", str(plain))), ["log"], 10, stream=True))
    assert "ControlMaster=no" in stream and "ControlPersist" not in stream  # never the master
    theirs = " ".join(ssh.ssh_argv(Host("b", "box", ("-F", str(mine))), ["runs"], 10))
    assert "BatchMode=yes" in theirs
    assert "Control" not in theirs and "ConnectTimeout" not in theirs and "ServerAlive" not in theirs


def test_a_hosts_text_is_cleaned() -> None:
    assert clean("ok\x1b[2J\x1b[31mred\x1b[0m\x1b]0;title\x07\r\x00\x9b tail\tend\n") == "okred tail\tend\n"
    assert len(clean("x" * 5000)) == 2000


def test_the_mirror_takes_only_run_ids(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "mirror")
    host = Host("h", "h")
    base = {"run": "r_20260101_000000", "name": "r", "preset": "p", "log": "/far/r.log",
            "run_dir": "/far/runs/r", "pid_file": "/far/r.pid", "created_at": 1.0, "host": "far"}
    m = mirror(host, store, {"state": "training", "manifest": base})
    assert m.backend == "ssh" and m.backend_data["host"] == "h" and m.backend_data["log"] == "/far/r.log"
    assert m.log == str(store.log_path(m.run).absolute()) and store.get(m.run).run == m.run
    for bad in ("../../etc/passwd", "a/b", "", "-rf", 3):
        with pytest.raises(RemoteError, match="not one"):
            mirror(host, store, {"state": "x", "manifest": {**base, "run": bad}})
    with pytest.raises(RemoteError, match="no readable manifest"):
        mirror(host, store, {"state": "damaged", "damaged": {"reason": "x"}, "manifest": base})
    assert sorted(p.name for p in store.training_dir.iterdir()) == [f"{m.run}.json"]


# ------------------------------------------------------------------------------ `runctl log`
def test_log_from_a_byte_follows_until_the_run_ends(runctl, logs_dir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    r = runctl("launch", "stepped", "--json")
    assert r.returncode == 0, r.stderr
    run = json.loads(r.stdout)["run"]
    run_dir, log = logs_dir / "runs" / run, logs_dir / "training" / f"{run}.log"
    (run_dir / "go1").parent.mkdir(parents=True, exist_ok=True)
    (run_dir / "go1").touch()
    assert wait_until(lambda: (run_dir / "done1").exists(), 30, 0.05)
    time.sleep(0.2)
    first = log.read_bytes()
    once = subprocess.run(runctl_cmd(logs_dir, tmp_path / "presets", "log", run, "--from", "7"),
                          capture_output=True, timeout=60)
    assert once.returncode == 0 and once.stdout == first[7:]
    follow = subprocess.Popen(runctl_cmd(logs_dir, tmp_path / "presets", "log", run, "--from", str(len(first)),
                                         "--follow"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    (run_dir / "go2").touch()
    (run_dir / "go3").touch()
    out, err = follow.communicate(timeout=60)
    assert follow.returncode == 0, err
    assert first + out == log.read_bytes() and b"[exit]" in out  # every byte once, to the last
    short = subprocess.run(runctl_cmd(logs_dir, tmp_path / "presets", "log", run, "--from", "999999"),
                           capture_output=True, text=True, timeout=60)
    assert short.returncode == 3 and "fewer than --from 999999" in short.stderr
    assert "--from -1: must be >= 0" in _one_line(runctl("log", run, "--from", "-1"))


def test_a_log_follower_ends_with_its_reader(runctl, logs_dir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    """Over ssh the reader is the session: when it goes (a dropped connection), the far
    `runctl log --follow` goes too, even while the run lives and writes nothing."""
    r = runctl("launch", "stepped", "--json")
    run = json.loads(r.stdout)["run"]
    read, write = os.pipe()
    follow = subprocess.Popen(runctl_cmd(logs_dir, tmp_path / "presets", "log", run, "--follow"),
                              stdout=write, stderr=subprocess.DEVNULL)
    os.close(write)
    time.sleep(1.0)
    assert follow.poll() is None  # the run lives: it follows
    os.close(read)
    follow.wait(timeout=10)
    # and when the process that started it dies (an sshd session killed), without a pipe error
    sh = subprocess.Popen(["sh", "-c", f"{shlex.join(runctl_cmd(logs_dir, tmp_path / 'presets', 'log', run, '--follow'))} "
                                       f"> /dev/null & echo $!; sleep 60"], stdout=subprocess.PIPE, text=True,
                          start_new_session=True)
    assert sh.stdout is not None
    pid = int(sh.stdout.readline())
    time.sleep(1.0)
    assert psutil.pid_exists(pid)
    os.kill(sh.pid, signal.SIGKILL)
    sh.wait()
    assert wait_until(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
                      10, 0.1)


# ------------------------------------------------------------------------------ presets across
def test_presets_export_and_receive(runctl, tmp_path: Path, presets_dir: Path) -> None:  # noqa: ANN001
    r = runctl("presets", "export", "child")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["preset"] == "child" and sorted(data["files"]) == ["baselines.toml", "child.toml", "stepped.toml"]
    far = tmp_path / "far"
    far.mkdir()
    send = {"files": {k: v for k, v in data["files"].items() if k != "baselines.toml"}}

    def receive(payload: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tui.cli", "presets", "receive"], input=json.dumps(payload),
                              capture_output=True, text=True, cwd=far, timeout=60)

    got = receive(send)
    assert got.returncode == 0, got.stderr
    assert sorted(json.loads(got.stdout)["written"]) == ["child.toml", "stepped.toml"]
    assert (far / "presets" / "child.toml").read_text() == send["files"]["child.toml"]
    again = receive(send)
    assert sorted(json.loads(again.stdout)["same"]) == ["child.toml", "stepped.toml"]
    changed = {"files": {**send["files"], "child.toml": 'extends = "stepped"\ndescription = "other"\n'}}
    assert "child.toml exists here with other content" in _one_line(receive(changed))
    assert "not a preset file name" in _one_line(receive({"files": {"../x.toml": ""}}))
    assert "not a preset file name" in _one_line(receive({"files": {"baselines.toml": ""}}))
    bad = receive({"files": {"broken.toml": "max_epochs = 'x'\n"}})
    assert _one_line(bad) and not (far / "presets" / "broken.toml").exists()  # checked, removed


# ------------------------------------------------------------------------------ an unreachable host
@pytest.mark.skipif(shutil.which("ssh") is None, reason="no OpenSSH client")
def test_an_unreachable_host_is_one_line(runctl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    port = free_port()  # nothing listens there
    (tmp_path / "hosts.toml").write_text(
        f'[hosts.gpu3]\nssh = "127.0.0.1"\nssh_args = ["-p", "{port}", "-o", "UserKnownHostsFile=/dev/null"]\n')
    monkeypatch.setenv(ssh.ENV_DIR, str(tmp_path / "cm"))
    r = runctl("launch", "stepped", "--json")
    assert r.returncode == 0, r.stderr
    run = json.loads(r.stdout)["run"]
    t0 = time.monotonic()
    r = runctl("runs")
    assert time.monotonic() - t0 < 10 and r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith("host ") and lines[1].startswith("local ") and run in lines[1]
    assert lines[-1].startswith(f"gpu3: unreachable (ssh: connect to host 127.0.0.1 port {port}: Connection refused")
    rows = runctl("runs", "--json")
    assert [x["host"] for x in json.loads(rows.stdout)] == ["local"]
    assert rows.stderr.startswith("runctl: gpu3: unreachable (ssh: ")
    assert _one_line(runctl("status", f"gpu3:{run}")).startswith("runctl: gpu3: unreachable (ssh: connect")
    assert _one_line(runctl("status", "elsewhere")).startswith("runctl: unknown run 'elsewhere' here or on gpu3")
    assert runctl("status", run).returncode == 0  # this machine's run: no host asked


# ------------------------------------------------------------------------------ the TUI, no host up
@pytest.mark.skipif(shutil.which("ssh") is None, reason="no OpenSSH client")
def test_the_runs_screen_says_a_bad_hosts_file_and_a_host_down(tmp_path: Path, runctl) -> None:  # noqa: ANN001
    import asyncio

    from app_fixtures import wait_for
    from textual.widgets import Static

    from tui.app.app import RunctlApp
    from tui.app.screens.runs import RunsScreen
    from tui.presets.registry import PresetRegistry
    from tui.runs.remote import Remote

    r = runctl("launch", "stepped", "--json")
    run = json.loads(r.stdout)["run"]
    hosts = tmp_path / "hosts.toml"
    hosts.write_text("[hosts.gpu3]\nssh = 3\n")
    store = RunStore(tmp_path / "_logs")

    async def go() -> None:
        app = RunctlApp(store, None, PresetRegistry(tmp_path / "presets"), poll_interval=0.05,
                        probe=None, readonly=True, remote=Remote(store.logs_dir, readonly=True))
        async with app.run_test(size=(140, 40)) as pilot:
            await pilot.pause(0.3)
            await pilot.press("R")
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), 10)
            screen = app.screen
            assert isinstance(screen, RunsScreen)
            box = screen.query_one("#runs-hosts", Static)
            await wait_for(pilot, lambda: "hosts.gpu3: ssh: give the destination" in str(box.render()), 10)
            assert run in screen.views and screen.views[run].host is None  # this machine's runs stay
            hosts.write_text(f'[hosts.gpu3]\nssh = "127.0.0.1"\nssh_args = ["-p", "{free_port()}"]\n')
            screen.action_refresh()
            await wait_for(pilot, lambda: "gpu3: unreachable (ssh: " in str(box.render()), 15)
            assert "hosts.gpu3: ssh" not in str(box.render())
            await wait_for(pilot, lambda: screen.views[run].host == "local", 10)  # among hosts: "local"

    asyncio.run(asyncio.wait_for(go(), 60))


def test_a_runs_metric_files_listed_and_read_for_a_mirror(tmp_path: Path, runctl) -> None:  # noqa: ANN001
    """`runctl log RUN --files` lists the metric files under a run's folder as its sources find
    them; `--file PATH --from N --limit L` gives their bytes; nothing else is given out."""
    from tui.log.sources import SourceConfig
    from tui.runs.store import Manifest, RunStore

    store = RunStore(tmp_path / "_logs")
    run = "m_20261205_120000"
    run_dir = store.run_dir(run).absolute()
    (run_dir / "tb").mkdir(parents=True)
    (run_dir / "tb" / "events.out.tfevents.1.box.1.0").write_bytes(b"0123456789")
    (run_dir / "version_0").mkdir()
    (run_dir / "version_0" / "metrics.csv").write_text("epoch,val_loss\n0,0.5\n")
    (run_dir / "ckpt.pt").write_bytes(b"not a metric file")
    store.training_dir.mkdir(parents=True)
    store.log_path(run).write_text("")
    cfg = SourceConfig(files=(("csv", f"{run_dir}/**/metrics.csv"),
                              ("tensorboard", f"{run_dir}/**/events.out.tfevents.*"),
                              ("jsonl", "/elsewhere/**/metrics.jsonl")))
    store.save(Manifest(run=run, name="m", preset="p", log=str(store.log_path(run)), run_dir=str(run_dir),
                        pid_file=str(store.pid_path("m")), created_at=1.7e9, host="h", kind="command",
                        sources=cfg.to_json()))
    r = runctl("log", run, "--files")
    assert r.returncode == 0, r.stderr
    listed = {e["path"]: e for e in json.loads(r.stdout)}
    assert set(listed) == {"tb/events.out.tfevents.1.box.1.0", "version_0/metrics.csv"}
    assert listed["tb/events.out.tfevents.1.box.1.0"]["append_only"] is True
    assert listed["version_0/metrics.csv"]["append_only"] is False and listed["version_0/metrics.csv"]["size"] == 21
    r = subprocess.run(runctl_cmd(tmp_path / "_logs", tmp_path / "presets", "log", run, "--file",
                                  "tb/events.out.tfevents.1.box.1.0", "--from", "3", "--limit", "4"),
                       capture_output=True, timeout=60)
    assert r.returncode == 0 and r.stdout == b"3456", r.stderr
    for bad in ("ckpt.pt", "../../etc/passwd", "/etc/passwd"):
        r = runctl("log", run, "--file", bad)
        assert r.returncode == 2 and "is not a metric file" in r.stderr, r.stderr


SAFE_FILES = ["version_0/metrics.csv", "tb/events.out.tfevents.1.box.1.0", "m,v=1 @a+b.jsonl"]
HOSTILE_FILES = [
    "../escape.csv", "a/../../escape.csv", "..", "a/..", "~/escape.csv", "./m.csv", "a/./m.csv",
    ".hidden.csv", "a/.hidden/m.csv", "a//m.csv", "a/",
    "", " m.csv", "-rf.csv", "a\\..\\escape.csv", "m\x00.csv", "m\x1b[2J.csv", "\x1b]0;t\x07m.csv",
    "m\r.csv", "a\nb.csv", "\nm.csv", "m\t.csv", "m\x7f.csv", "m\x9b.csv", "m\u202e.csv", "m\u00e9.csv",
]


def _files_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                  listed: list[object]) -> tuple[list[str], Path]:
    """A remote run's feed asking its host for the run's metric files, the host answering
    `listed` to `runctl log RUN --files`: which paths it then asks for (`--file PATH`), and the
    mirror's run folder the copies go to."""
    from tui.log.sources import SourceConfig
    from tui.runs.backends.ssh import SshLogFeed
    from tui.runs.ssh import Answer
    from tui.runs.store import Manifest

    (tmp_path / "hosts.toml").write_text('[hosts.far]\nssh = "far.invalid"\n')
    store = RunStore(tmp_path / "_logs" / "hosts" / "far")
    run = "m_20261205_120000"
    store.training_dir.mkdir(parents=True)
    store.log_path(run).write_text("")
    m = Manifest(run=run, name="m", preset="p", log=str(store.log_path(run)),
                 run_dir=str(store.run_dir(run)), pid_file=str(store.pid_path("m")), created_at=1.7e9,
                 host="far", kind="command", backend="ssh", backend_data={"host": "far", "run": run},
                 sources=SourceConfig(files=(("csv", "/far/runs/m/**/metrics.csv"),)).to_json())
    asked: list[str] = []

    def call_json(host: Host, args: list[str], timeout: float | None = None, stdin: bytes | None = None) -> object:
        assert host.name == "far" and args == ["log", f"local:{run}", "--files"], args
        return listed

    def call(host: Host, args: list[str], timeout: float | None = None, stdin: bytes | None = None,
             check: bool = True) -> Answer:
        assert args[:3] == ["log", f"local:{run}", "--file"], args
        asked.append(args[3])
        return Answer(0, b"x" if args[4] == "--from=0" else b"", "")

    monkeypatch.setattr(ssh, "call_json", call_json)
    monkeypatch.setattr(ssh, "call", call)
    feed = SshLogFeed(store, m)
    feed._sync_files()
    return asked, feed.files_dir


def test_a_hosts_metric_file_paths_are_plain_relative_paths(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's `--files` answer names files to copy into the mirror's run folder: a path that
    climbs out (`..`), is absolute, hidden, or holds a control character (or anything but plain
    ASCII names) is never asked for and never written; plain relative ones are copied."""
    # absolute paths under tmp_path: a broken filter writes nothing outside the test's folder
    absolute = [f"{tmp_path}/abs/escape.csv", f"/{tmp_path}/abs/escape.csv"]
    entries: list[object] = [{"path": p, "size": 1, "mtime_ns": 1, "append_only": False}
                             for p in (*SAFE_FILES, *HOSTILE_FILES, *absolute)]
    entries += [{"path": 3, "size": 1}, {"path": None}, {"size": 1}, "version_0/metrics.csv", None, 7]
    asked, files_dir = _files_answer(tmp_path, monkeypatch, entries)
    assert asked == SAFE_FILES  # only the plain relative paths, in the host's order
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == sorted([str((files_dir / p).relative_to(tmp_path)) for p in SAFE_FILES]
                             + ["hosts.toml", "_logs/hosts/far/training/m_20261205_120000.log"])
    assert all((files_dir / p).read_bytes() == b"x" for p in SAFE_FILES)
    assert not (tmp_path / "abs").exists() and not list(tmp_path.rglob("escape.csv"))


def test_a_hosts_metric_file_path_with_a_final_newline_is_refused(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    asked, _ = _files_answer(tmp_path, monkeypatch, [{"path": p, "size": 1, "mtime_ns": 1}
                                                     for p in ("m.csv\n", "a/m.csv\n")])
    assert asked == []


# ------------------------------------------------------------------------------ a host's rows are data
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
HOSTILE_ROWS = [
    {"run": "evil_20260101_000000", "state": "\x1b[2J\x1b]0;pwned\x07training\r\n", "name": "n\x1b[31m",
     "error": "boom\x1b[0m\x07", "epoch": "3", "max_epochs": None, "sharpe": "0.5", "started_at": 1e300,
     "pid": "\x1b[5m", "job_id": "\x1b[H42", "gpus": ["0", 1, True], "children": ["../x", "evil_1"],
     "damaged": "yes", "log": "/far/\x1b[2Jx.log", "backend": "\x9bslurm",
     "sweep": {"id": "\x1b[1ms", "index": "x", "values": {"lr\x1b[2J": "\x1b[2J0.1", "n": [float("nan")]}},
     "extra": "\x1b[2J"},
    {"run": "bare_20260101_000001"},  # another runctl version: every other key left out
    {"run": "odd_20260101_000002", "state": None, "sharpe": float("nan"), "val_loss": True,
     "started_at": float("inf"), "epoch": 2.5, "max_epochs": 10 ** 400, "stalled_since": -5,
     "damaged": {"file": "\x1b[2J/f.json", "reason": ["x"]}, "sweep": {"id": 3}, "autopilot": "yes"},
    {"run": "typed_20260101_000003", "state": 3, "slurm_state": ["a"], "log": {"a": 1}, "sharpe": 10 ** 400,
     "started_at": 1.7e9, "children": "evil_1", "gpus": {"0": 1}, "sweep": [1]},
    {"run": "../../etc/passwd", "state": "x"}, {"run": 3}, "not a row", None,
]


def _no_control(text: str) -> None:
    assert not _CONTROL_CHARS.search(text.replace("\n", "")), repr(text)


def test_a_hosts_rows_are_checked_and_cleaned(tmp_path: Path, logs_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A host's `runs --json` rows (a hostile or other-version runctl there): only the keys of a
    row, each of its type, text cleaned; `runctl runs` (text, --json) and the TUI's rows never
    carry an escape sequence and never crash on a missing key or a wrong type."""
    from tests.test_cli import put_run
    from tui.app.actions import host_view
    from tui.cli.main import main
    from tui.runs.remote import ROW_KEYS, Remote

    (tmp_path / "hosts.toml").write_text('[hosts.evil]\nssh = "evil.invalid"\n')
    asked: list[list[str]] = []

    def call_json(host: Host, args: list[str], timeout: float | None = None, stdin: bytes | None = None) -> object:
        asked.append(args)
        assert host.name == "evil" and args[:2] == ["runs", "--json"]
        return HOSTILE_ROWS

    monkeypatch.setattr(ssh, "call_json", call_json)
    put_run(logs_dir, "app_tiny_finished.log", "tiny_20261124_010101")  # this machine's run
    base = ["--logs", str(logs_dir), "--presets", str(ROOT / "presets")]

    assert main([*base, "runs"]) == 0
    out = capsys.readouterr().out
    _no_control(out)
    lines = out.strip().splitlines()
    assert lines[0].startswith("host ") and len(lines) == 1 + 1 + 4, out  # header, local, 4 host rows
    by_run = {ln.split()[1]: ln for ln in lines[1:]}
    assert set(by_run) == {"tiny_20261124_010101", "evil_20260101_000000", "bare_20260101_000001",
                           "odd_20260101_000002", "typed_20260101_000003"}
    assert by_run["evil_20260101_000000"].split()[2] == "training" and "pwned" not in out
    assert by_run["bare_20260101_000001"].split()[2] == "?"  # no state given: `?`, not a crash

    assert main([*base, "runs", "--json"]) == 0
    out = capsys.readouterr().out
    assert "\\u001b" not in out and "\\u009b" not in out and "NaN" not in out and "Infinity" not in out
    rows = {r["run"]: r for r in json.loads(out)}
    far = [r for r in rows.values() if r["host"] == "evil"]
    assert len(far) == 4 and all(set(r) == set(ROW_KEYS) for r in far)  # known keys only, all there
    evil, bare = rows["evil_20260101_000000"], rows["bare_20260101_000001"]
    odd, typed = rows["odd_20260101_000002"], rows["typed_20260101_000003"]
    assert evil["state"] == "training" and evil["name"] == "n" and evil["error"] == "boom"
    assert evil["epoch"] is None and evil["sharpe"] is None and evil["started_at"] is None
    assert evil["pid"] is None and evil["job_id"] == "42" and evil["backend"] == "slurm"
    assert evil["gpus"] == [1] and evil["children"] == ["evil_1"] and evil["damaged"] is None
    assert evil["sweep"] == {"id": "s", "index": None, "values": {"lr": "0.1", "n": [None]}}
    assert bare == {**dict.fromkeys(ROW_KEYS), "run": bare["run"], "state": "?", "host": "evil"}
    assert odd["state"] == "?" and odd["sharpe"] is None and odd["val_loss"] is None
    assert odd["started_at"] is None and odd["epoch"] is None and odd["stalled_since"] is None
    assert odd["max_epochs"] is None and odd["sweep"] is None and odd["autopilot"] is None
    assert odd["damaged"] == {"file": "/f.json", "reason": None}
    assert typed["state"] == "?" and typed["slurm_state"] is None and typed["log"] is None
    assert typed["sharpe"] is None and typed["started_at"] == 1.7e9
    assert typed["children"] is None and typed["gpus"] is None and typed["sweep"] is None

    # the TUI's runs screen lists a host through the same listing: its rows cleaned the same way
    answer, = Remote(logs_dir).listing()
    assert answer.host == "evil" and answer.error is None and len(answer.rows) == 4
    for row in answer.rows:
        v = host_view(answer.host, row)
        _no_control(v.state.state + str(v.state.error) + json.dumps(row))
    assert host_view("evil", answer.rows[0]).state.state == "training"


def test_a_hosts_row_has_the_keys_of_this_machines_rows(logs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The keys a host's row is checked against are those `runs --json` gives (one list each side)."""
    from tests.test_cli import put_run
    from tui.cli.main import main
    from tui.runs.remote import ROW_KEYS

    put_run(logs_dir, "app_tiny_finished.log", "tiny_20261124_010101")
    assert main(["--logs", str(logs_dir), "--presets", str(ROOT / "presets"), "runs", "--json"]) == 0
    row, = json.loads(capsys.readouterr().out)
    assert set(row) == set(ROW_KEYS)


def test_a_hosts_row_carries_its_ic_and_scale_to_the_runs_screen() -> None:
    from tui.app.actions import host_view
    from tui.app.screens.runs import headline

    row = {"run": "tiny_20261124_010101", "state": "finished", "epoch": 3, "max_epochs": 3, "sharpe": 0.2,
           "val_loss": 0.5, "ic_h1": 0.03, "ic_h20": 0.05, "scale_min": 0.4}
    assert headline(host_view("h2", row)) == {"sharpe": 0.2, "ic1": 0.03, "ic20": 0.05, "scale": 0.4, "val": 0.5}
    bare = {"run": "tiny_20261124_010101", "state": "training", "epoch": 1}  # another runctl version's row
    assert headline(host_view("h2", bare)) == dict.fromkeys(("sharpe", "ic1", "ic20", "scale", "val"))
