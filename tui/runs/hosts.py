"""Other GPU boxes, as the user lists them: the hosts file (docs/cli.md, *Hosts*).

`$RUNCTL_HOSTS`, else `~/.config/runctl/hosts.toml`:

    [hosts.gpu2]
    ssh = "gpu2"                      # the destination as ssh takes it (an alias of ~/.ssh/config)
    ssh_args = ["-F", "/path/config"] # optional, before runctl's own options on every ssh call
    runctl = "/opt/venv/bin/runctl"   # runctl there (default: `runctl` on its PATH)
    dir = "~/research"                # where runctl runs there: its presets/ and _logs/

The file holds where a host is and how to reach it, never a secret: keys, passwords and agents stay
OpenSSH's. A mistake in it is one line naming the file and the key (`HostsError`), raised only by
a command that needs a host. A run on a host is named `HOST:RUN` (run ids and host names hold no
`:`); `local:RUN` is always this machine's, whatever the file says, which is how runctl calls
itself on a host (the far side never asks hosts of its own).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tui.errors import RunctlError

ENV_HOSTS = "RUNCTL_HOSTS"  # the hosts file, where it is not ~/.config/runctl/hosts.toml
LOCAL = "local"  # this machine, in `--host local`, `local:RUN` and the runs listing's host column
ANY = "any"  # `launch --host any`: the host with a free slot
RESERVED = (LOCAL, ANY)
HOST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
KEYS = ("ssh", "ssh_args", "runctl", "dir")


class HostsError(RunctlError):
    """The hosts file is wrong, or names no such host (one line)."""


@dataclass(frozen=True)
class Host:
    """One host of the file: its name (`gpu2`), how ssh reaches it, runctl there and its folder."""

    name: str
    ssh: str  # the destination, as `ssh DEST` takes it
    ssh_args: tuple[str, ...] = ()
    runctl: str = "runctl"
    dir: str = "~"


def hosts_path() -> Path:
    """`$RUNCTL_HOSTS`, else `~/.config/runctl/hosts.toml`."""
    env = os.environ.get(ENV_HOSTS)
    return Path(env).expanduser() if env else Path.home() / ".config" / "runctl" / "hosts.toml"


def load_hosts(path: Path | None = None) -> dict[str, Host]:
    """Every host of the file, in its order ({}: no file). HostsError on any mistake in it."""
    path = path or hosts_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise HostsError(f"{path}: cannot be read ({e.strerror or e})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise HostsError(f"{path}: not valid TOML ({e})") from None
    extra = [k for k in data if k != "hosts"]
    if extra:
        raise HostsError(f"{path}: unknown key {extra[0]!r}; the file holds [hosts.NAME] tables")
    table = data.get("hosts", {})
    if not isinstance(table, dict):
        raise HostsError(f"{path}: hosts: expected [hosts.NAME] tables")
    return {name: _host(path, name, spec) for name, spec in table.items()}


def _host(path: Path, name: str, spec: object) -> Host:
    where = f"{path}: hosts.{name}"
    if not HOST_RE.match(name) or name in RESERVED:
        why = "is reserved" if name in RESERVED else "use letters, digits, '_', '-', '.'"
        raise HostsError(f"{where}: the name {name!r} {why}")
    if not isinstance(spec, dict):
        raise HostsError(f"{where}: expected a table (ssh = \"DEST\")")
    for k in spec:
        if k not in KEYS:
            raise HostsError(f"{where}: unknown key {k!r}; allowed: {', '.join(KEYS)}")
    dest = spec.get("ssh")
    if not isinstance(dest, str) or not dest.strip():
        raise HostsError(f"{where}: ssh: give the destination as ssh takes it (ssh = \"{name}\")")
    if dest.startswith("-") or any(c.isspace() for c in dest):
        raise HostsError(f"{where}: ssh: {dest!r} is not a destination (no spaces, no leading '-'; "
                         f"options go in ssh_args)")
    args = spec.get("ssh_args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise HostsError(f"{where}: ssh_args: expected a list of strings (one argument each)")
    out = {"runctl": "runctl", "dir": "~"}
    for k in ("runctl", "dir"):
        v = spec.get(k, out[k])
        if not isinstance(v, str) or not v.strip() or "\n" in v or "\0" in v:
            raise HostsError(f"{where}: {k}: expected a path (a string)")
        out[k] = v
    return Host(name=name, ssh=dest, ssh_args=tuple(args), runctl=out["runctl"], dir=out["dir"])


def get_host(name: str, hosts: dict[str, Host] | None = None) -> Host:
    """The host of that name; HostsError naming the file's hosts if there is none."""
    hosts = load_hosts() if hosts is None else hosts
    host = hosts.get(name)
    if host is None:
        known = ", ".join(hosts) or f"none: {hosts_path()} lists no host"
        raise HostsError(f"unknown host {name!r} (hosts: {known})")
    return host


def split_target(text: str) -> tuple[str | None, str]:
    """`HOST:RUN` -> (HOST, RUN) (`local:RUN`: ("local", RUN)); a bare `RUN` -> (None, RUN)."""
    host, sep, run = text.partition(":")
    if not sep:
        return None, text
    if not host or not run:
        raise HostsError(f"{text!r}: give RUN or HOST:RUN")
    return host, run
