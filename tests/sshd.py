"""Real OpenSSH servers for the ssh tests (`make test-ssh`; tests/test_ssh.py, test_ssh_app.py).

Each `Sshd` is `sshd -D -f CONF` on 127.0.0.1 only, on a port found free, with its own host key
and an AuthorizedKeysFile in its temp folder holding the client key made here; `StrictModes no`,
`UsePAM no`, `PermitRootLogin yes` (the tests run as root on CI), `LogLevel INFO` (its log has a
line per authenticated connection: `Sshd.accepted`). Its sessions get the host's own
environment through `SetEnv` (its GPUs, GPU reservation folder, an absent notify.toml and hosts
file), so two servers on one machine are two hosts. `Hosts.write()` writes the hosts file the
controller reads ($RUNCTL_HOSTS), `runctl` there being this checkout's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
RUNCTL = str(Path(sys.executable).parent / "runctl")
ENABLED = os.environ.get("RUNCTL_SSH_TESTS") == "1"  # set by `make test-ssh`
if ENABLED and SSHD is None:  # `make test-ssh` must not pass by skipping everything
    raise RuntimeError("RUNCTL_SSH_TESTS=1 but no sshd on PATH or at /usr/sbin/sshd "
                       "(tests/cluster/sshd.sh install puts Debian's openssh-server there)")

STEP = """description = "the stepped stand-in trainer, on {host}"
max_epochs = {epochs}
cwd = "{root}"
gpus = {gpus}
command = ["{{python}}", "tests/scripts/stepped_train.py", "{{run_dir}}", "{{max_epochs}}"]
resume_args = ["--resume", "{{ckpt}}"]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path) -> Path:
    """An ed25519 key pair without a passphrase at `path` (and `path`.pub)."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "runctl-test", "-f", str(path)],
                   check=True, timeout=30)
    return path


@dataclass
class Sshd:
    """One sshd: a host named `name` whose runctl runs in `dir`."""

    name: str
    base: Path  # the server's own folder (config, host key, log)
    dir: Path  # the host's runctl folder: presets/, _logs/
    client_key: Path
    gpus: str = "0"
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    stopped: bool = field(default=False)

    def start(self) -> Sshd:
        self.base.mkdir(parents=True, exist_ok=True)
        (self.dir / "presets").mkdir(parents=True, exist_ok=True)
        if not (self.base / "host_key").exists():
            keygen(self.base / "host_key")
        shutil.copy(f"{self.client_key}.pub", self.base / "authorized_keys")
        self.port = self.port or free_port()
        env = (f"RUNCTL_GPUS={self.gpus} RUNCTL_GPU_DIR={self.base}/gpus RUNCTL_NOTIFY={self.base}/notify.toml "
               f"RUNCTL_HOSTS={self.base}/hosts.toml")
        (self.base / "sshd_config").write_text(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {self.base}/host_key
AuthorizedKeysFile {self.base}/authorized_keys
PidFile {self.base}/sshd.pid
StrictModes no
UsePAM no
PermitRootLogin yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
MaxSessions 100
MaxStartups 100
LogLevel INFO
SetEnv {env}
""")
        with contextlib.suppress(OSError):
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
        assert SSHD is not None
        log = open(self.base / "sshd.log", "ab")  # noqa: SIM115 - the server's, closed with it
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.base / "sshd_config")],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                self.stopped = False
                return self
            assert self.proc.poll() is None, (self.base / "sshd.log").read_text()
            time.sleep(0.05)
        raise AssertionError(f"sshd on port {self.port} did not listen: {(self.base / 'sshd.log').read_text()}")

    def tree(self) -> list[psutil.Process]:
        """The listener and every process under it (its connections and their commands)."""
        if self.proc is None:
            return []
        try:
            top = psutil.Process(self.proc.pid)
            return [top, *top.children(recursive=True)]
        except psutil.Error:
            return []

    def accepted(self) -> int:
        """The connections this server has authenticated so far (its log's `Accepted publickey`
        lines: sshd logs one per connection at LogLevel INFO, however many sessions it carries)."""
        try:
            return (self.base / "sshd.log").read_text(errors="replace").count("Accepted publickey for ")
        except FileNotFoundError:
            return 0

    def drop_connections(self) -> int:
        """Kill every connection (the listener stays): what a dropped network looks like to ssh."""
        if self.proc is None:
            return 0
        try:
            conns = psutil.Process(self.proc.pid).children()
        except psutil.Error:
            return 0
        for p in conns:
            with contextlib.suppress(psutil.Error):
                p.kill()
        return len(conns)

    def freeze(self) -> None:
        """SIGSTOP the server and its connections: a host that answers nothing."""
        for p in self.tree():
            with contextlib.suppress(psutil.Error):
                p.send_signal(signal.SIGSTOP)

    def stop(self) -> None:
        """Kill the server and its connections (SIGCONT first: a frozen one too)."""
        procs = self.tree()
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.send_signal(signal.SIGCONT)
                p.kill()
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        psutil.wait_procs(procs, timeout=5)
        self.stopped = True

    def entry(self) -> str:
        """This host's table of the hosts file."""
        args = ["-i", str(self.client_key), "-p", str(self.port), "-o", "StrictHostKeyChecking=no",
                "-o", f"UserKnownHostsFile={self.base}/known_hosts", "-o", "LogLevel=ERROR"]
        quoted = ", ".join(f'"{a}"' for a in args)
        return (f'[hosts.{self.name}]\nssh = "127.0.0.1"\nssh_args = [{quoted}]\n'
                f'runctl = "{RUNCTL}"\ndir = "{self.dir}"\n')

    def preset(self, name: str = "step", epochs: int = 3, gpus: int = 0) -> None:
        """A stepped stand-in preset in the host's presets folder."""
        (self.dir / "presets").mkdir(parents=True, exist_ok=True)
        (self.dir / "presets" / f"{name}.toml").write_text(
            STEP.format(host=self.name, epochs=epochs, root=ROOT, gpus=gpus))

    def run_dir(self, run: str) -> Path:
        return self.dir / "_logs" / "runs" / run

    def log(self, run: str) -> Path:
        return self.dir / "_logs" / "training" / f"{run}.log"

    def go(self, run: str, epoch: int) -> None:
        """Let the stepped trainer of `run` do epoch `epoch`."""
        d = self.run_dir(run)
        d.mkdir(parents=True, exist_ok=True)
        (d / f"go{epoch}").touch()


class Hosts:
    """Two hosts (two servers, two folders) and the controller's hosts file."""

    def __init__(self, tmp: Path, names: tuple[str, ...] = ("h1", "h2")) -> None:
        self.tmp = tmp
        self.sock_dir = Path(tempfile.mkdtemp(prefix="rcs", dir="/tmp"))  # short: a socket path's limit
        key = keygen(tmp / "client_key")
        self.servers = {n: Sshd(n, tmp / f"sshd-{n}", tmp / n, key) for n in names}
        self.file = tmp / "hosts.toml"

    def __getitem__(self, name: str) -> Sshd:
        return self.servers[name]

    def start(self) -> Hosts:
        for s in self.servers.values():
            s.start()
        self.write()
        return self

    def write(self) -> None:
        self.file.write_text("\n".join(s.entry() for s in self.servers.values()))

    def env(self) -> dict[str, str]:
        """The controller's environment: this hosts file, runctl's sockets folder."""
        return {"RUNCTL_HOSTS": str(self.file), "RUNCTL_SSH_DIR": str(self.sock_dir),
                "RUNCTL_SSH_TIMEOUT": "4"}

    def close(self) -> None:
        for s in self.servers.values():
            s.stop()
        shutil.rmtree(self.sock_dir, ignore_errors=True)
