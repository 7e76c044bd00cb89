"""runctl on another host, through the system's OpenSSH client (docs/design.md, *Backends*).

Every call is `ssh [the host's ssh_args] [runctl's options] -- DEST 'cd DIR && exec RUNCTL ARGS'`:
the user's ssh config, keys, agent, ProxyJump and ControlMaster work as they do for them, and the
far side is runctl itself (`--json` commands), so a host needs nothing but runctl. The arguments
are a list; the one string ssh hands the far shell is built from them with `shlex.quote` (only a
leading `~` of the folder or the runctl path is left to that shell to expand). Nothing a host
answers is ever executed or passed to a shell: its JSON is parsed, its text cleaned of control
characters before it is shown.

runctl's options, and how they combine with the user's (ssh keeps the first value it gets for an
option, and the command line comes before the config files): the host's `ssh_args` first, so they
win over runctl's; then `BatchMode=yes` (never a prompt: a key that needs a passphrase must be in
the agent), and only where `ssh -G` says the user's configuration does not set them:
`ConnectTimeout`, `ServerAliveInterval` / `ServerAliveCountMax` (a dead connection is seen within
15 s), and multiplexing, one connection per host (`ControlMaster=auto`, `ControlPath` in a
runctl-owned folder, `ControlPersist=60`); a user who multiplexes already keeps their own.

Never a hang: every call has a wall-clock timeout (`$RUNCTL_SSH_TIMEOUT`, default 10 s, for a
query; longer for a launch or a kill's grace), after which the ssh process group (started by this
call, not yet reaped: its pid cannot have been reused) is killed. A host that did not answer is
not asked again for `DOWN_S` seconds by this process (each ask would wait as long again); the
error is said instead, and the host is retried after that.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import select
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tui.errors import RunctlError
from tui.runs.hosts import Host, hosts_path

ENV_TIMEOUT = "RUNCTL_SSH_TIMEOUT"  # seconds a query of a host may take, connecting included
ENV_DIR = "RUNCTL_SSH_DIR"  # the folder of runctl's control sockets
TIMEOUT_S = 10.0
CONNECT_S = 5  # ConnectTimeout (at most the call's timeout)
ALIVE_S, ALIVE_COUNT = 5, 3  # ServerAliveInterval, ServerAliveCountMax
PERSIST_S = 60  # ControlPersist: the connection stays this long after the last call
DOWN_S = 5.0  # a host that did not answer is not asked again for this long (by this process)
SOCKET_MAX = 100  # sun_path is 108 bytes; ssh adds ".XXXXXXXXXXXXXXXX" while it binds
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]"  # a CSI sequence (colours, cursor, clear)
                      r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # an OSC one (a window title)
                      r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # any other control character
NO_SSH = "the OpenSSH client `ssh` is not on PATH (apt install openssh-client)"
_NOISE = ("Warning: Permanently added", "Pseudo-terminal will not be allocated")


class Unreachable(RunctlError):
    """The host could not be reached (ssh's own failure, or no answer in time)."""

    def __init__(self, host: str, why: str) -> None:
        super().__init__(f"{host}: unreachable (ssh: {why})")
        self.host, self.why = host, why


class RemoteError(RunctlError):
    """runctl on the host refused or failed (its one line, after the host's name)."""


@dataclass(frozen=True)
class Answer:
    """What a call gave: its exit status, stdout (bytes), stderr (cleaned text)."""

    rc: int
    out: bytes
    err: str


def clean(text: str, limit: int = 2000) -> str:
    """A host's text made safe to show: escape sequences and control characters (but tabs and
    newlines) removed, cut to `limit` characters."""
    return _CONTROL.sub("", text)[:limit]


def clean_data(value: Any, depth: int = 4) -> Any:
    """A host's JSON value made safe to keep and show: strings cleaned (`clean`), numbers finite
    (NaN and infinities: None), lists and objects cleaned item by item (keys: strings only) down
    to `depth` levels (deeper: None); anything else None."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return clean(value)
    if depth <= 0:
        return None
    if isinstance(value, list):
        return [clean_data(x, depth - 1) for x in value]
    if isinstance(value, dict):
        return {clean(k, 200): clean_data(x, depth - 1) for k, x in value.items() if isinstance(k, str)}
    return None


def query_timeout() -> float:
    """`$RUNCTL_SSH_TIMEOUT` (seconds), else TIMEOUT_S."""
    try:
        value = float(os.environ.get(ENV_TIMEOUT, "") or TIMEOUT_S)
    except ValueError:
        raise RunctlError(f"${ENV_TIMEOUT}={os.environ.get(ENV_TIMEOUT)!r}: give seconds, "
                          f"e.g. 10") from None
    return value if value > 0 else TIMEOUT_S


# ------------------------------------------------------------------------------ the command
def _path_word(path: str) -> str:
    """A path for the far shell: quoted, except a leading `~` / `~user` it must expand."""
    m = re.match(r"^(~[A-Za-z0-9._-]*)(/.*)?$", path)
    if m is None:
        return shlex.quote(path)
    rest = (m.group(2) or "").lstrip("/")
    return m.group(1) + ("/" + shlex.quote(rest) if rest else "")


def remote_command(host: Host, args: list[str]) -> str:
    """The one string ssh gives the far shell: `cd DIR && exec RUNCTL ARGS...`, each quoted."""
    words = " ".join(shlex.quote(a) for a in args)
    return f"cd {_path_word(host.dir)} && exec {_path_word(host.runctl)} {words}"


def control_dir() -> Path:
    """runctl's folder for control sockets (`$RUNCTL_SSH_DIR`, else ~/.cache/runctl/ssh, else
    /tmp/runctl-ssh-UID where that path is too long for a socket), private to this user."""
    env = os.environ.get(ENV_DIR)
    d = Path(env).expanduser() if env else Path.home() / ".cache" / "runctl" / "ssh"
    if len(str(d)) + 41 + 17 > SOCKET_MAX:
        d = Path(tempfile.gettempdir()) / f"runctl-ssh-{os.getuid()}"
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = d.stat()
    except OSError as e:
        raise RunctlError(f"cannot create {d} (runctl's ssh sockets): {e.strerror or e}") from None
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise RunctlError(f"{d} (runctl's ssh sockets) is not private to this user; remove it or "
                          f"set ${ENV_DIR}")
    return d


_options: dict[Host, tuple[list[str], list[str]]] = {}  # host -> (options, stream options)
_options_lock = threading.Lock()


def _user_config(host: Host) -> dict[str, str]:
    """What ssh would use for the host (`ssh -G`: the config files and ssh_args applied)."""
    argv = ["ssh", "-G", *host.ssh_args, "--", host.ssh]
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=CONNECT_S, start_new_session=True)
    except FileNotFoundError:
        raise RunctlError(NO_SSH) from None
    except subprocess.TimeoutExpired:
        raise Unreachable(host.name, "`ssh -G` did not answer") from None
    if r.returncode != 0:
        lines = [ln for ln in clean(r.stderr).splitlines() if ln.strip()]
        said = lines[-1] if lines else "ssh -G failed"
        raise RunctlError(f"{host.name}: ssh refuses its settings ({said}; ssh_args in "
                          f"{hosts_path()})")
    out: dict[str, str] = {}
    for line in r.stdout.splitlines():
        key, _, value = line.partition(" ")
        out.setdefault(key.lower(), value.strip())
    return out


def options(host: Host, timeout: float) -> tuple[list[str], list[str]]:
    """runctl's ssh options for the host: (for a call, for a stream: one that never becomes the
    connection's master, so no background process holds its pipes), after what `ssh -G` says."""
    with _options_lock:
        hit = _options.get(host)
    if hit is None:
        user = _user_config(host)
        opts = ["-o", "BatchMode=yes"]
        if user.get("connecttimeout", "none") == "none":
            opts += ["-o", f"ConnectTimeout={max(1, min(CONNECT_S, int(timeout)))}"]
        if user.get("serveraliveinterval", "0") == "0":
            opts += ["-o", f"ServerAliveInterval={ALIVE_S}",
                     "-o", f"ServerAliveCountMax={ALIVE_COUNT}"]
        own_mux = "controlpath" in user or user.get("controlmaster", "false") != "false"
        if own_mux:
            hit = (opts, opts)
        else:
            path = ["-o", f"ControlPath={control_dir()}/%C"]
            hit = ([*opts, "-o", "ControlMaster=auto", *path, "-o", f"ControlPersist={PERSIST_S}"],
                   [*opts, "-o", "ControlMaster=no", *path])
        with _options_lock:
            _options[host] = hit
    return hit


def ssh_argv(host: Host, args: list[str], timeout: float, stream: bool = False) -> list[str]:
    """`ssh ssh_args OPTIONS -- DEST COMMAND` for runctl ARGS on the host."""
    call_opts, stream_opts = options(host, timeout)
    return ["ssh", *host.ssh_args, *(stream_opts if stream else call_opts), "--", host.ssh,
            remote_command(host, args)]


# ------------------------------------------------------------------------------- the calls
_down: dict[str, tuple[float, str]] = {}  # host -> (asked again after, why it did not answer)
_down_lock = threading.Lock()


def _check_down(host: Host) -> None:
    with _down_lock:
        hit = _down.get(host.name)
    if hit is not None and time.monotonic() < hit[0]:
        raise Unreachable(host.name, hit[1])


def mark_down(host: Host, why: str) -> None:
    """The host did not answer: calls in the next DOWN_S seconds say so at once."""
    with _down_lock:
        _down[host.name] = (time.monotonic() + DOWN_S, why)


def mark_up(host: Host) -> None:
    """The host answered."""
    with _down_lock:
        _down.pop(host.name, None)


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """Kill the process group of an ssh this process started and has not reaped (its pid is
    still that process's: a zombie keeps it), then reap it."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def ssh_failure(err: str) -> str:
    lines = [ln.strip() for ln in err.splitlines() if ln.strip() and not ln.startswith(_NOISE)]
    last = lines[-1] if lines else "connection failed"
    return last[len("ssh: "):] if last.startswith("ssh: ") else last


def call(host: Host, args: list[str], timeout: float | None = None, stdin: bytes | None = None,
         check: bool = True) -> Answer:
    """Run `runctl ARGS` on the host and wait at most `timeout` s (default: a query's).

    Unreachable: ssh failed (exit 255) or no answer in time. With `check`, a far runctl that
    exits non-zero is a RemoteError carrying its `runctl: ...` line (after the host's name).
    """
    timeout = query_timeout() if timeout is None else timeout
    _check_down(host)
    argv = ssh_argv(host, args, timeout)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.TemporaryFile() as inp:
        if stdin is not None:
            inp.write(stdin)
            inp.seek(0)
        try:
            proc = subprocess.Popen(argv, stdin=inp if stdin is not None else subprocess.DEVNULL,
                                    stdout=out, stderr=err, start_new_session=True)
        except FileNotFoundError:
            raise RunctlError(NO_SSH) from None
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            why = f"no answer within {timeout:g}s"
            mark_down(host, why)
            raise Unreachable(host.name, why) from None
        except BaseException:
            kill_group(proc)
            raise
        out.seek(0)
        err.seek(0)
        answer = Answer(rc, out.read(), clean(err.read().decode("utf-8", "replace"), 20000))
    if rc == 255:
        why = ssh_failure(answer.err)
        mark_down(host, why)
        raise Unreachable(host.name, why)
    mark_up(host)
    if check and rc != 0:
        raise remote_error(host, answer)
    return answer


def remote_error(host: Host, answer: Answer) -> RemoteError:
    """The far side's failure as one line: its `runctl: ...` line, else its last line."""
    lines = [ln.strip() for ln in answer.err.splitlines()
             if ln.strip() and not ln.startswith(_NOISE)]
    said = [ln[len("runctl: "):] for ln in lines if ln.startswith("runctl: ")]
    if said:
        return RemoteError(f"{host.name}: {said[-1]}")
    if answer.rc == 127:
        return RemoteError(f"{host.name}: {lines[-1] if lines else 'runctl not found'} (runctl = "
                           f"\"/path/to/runctl\" for hosts.{host.name} in {hosts_path()})")
    last = lines[-1] if lines else f"runctl exited with status {answer.rc}"
    return RemoteError(f"{host.name}: {last}")


def call_json(host: Host, args: list[str], timeout: float | None = None,
              stdin: bytes | None = None) -> Any:
    """`call`, its stdout's JSON (the last line that is JSON: runctl prints one per answer)."""
    answer = call(host, args, timeout, stdin=stdin)
    return parse_json(host, answer.out)


def parse_json(host: Host, out: bytes) -> Any:
    """The JSON a far runctl printed (data only); RemoteError if there is none."""
    text = out.decode("utf-8", "replace").strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    for line in reversed(text.splitlines()):
        with contextlib.suppress(ValueError):
            return json.loads(line)
    shown = clean(text[:200]) or "nothing"
    raise RemoteError(f"{host.name}: runctl there answered no JSON ({shown}); is runctl there "
                      f"this version?")


# ------------------------------------------------------------------------------- a stream
class Stream:
    """`runctl ARGS` on the host with its stdout read as it comes (a log followed): the ssh
    process in its own group, stderr to a temporary file, never the connection's master."""

    def __init__(self, host: Host, args: list[str]) -> None:
        self.host = host
        _check_down(host)
        self._err: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        try:
            self.proc = subprocess.Popen(ssh_argv(host, args, query_timeout(), stream=True),
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=self._err, start_new_session=True)
        except BaseException:
            self._err.close()
            raise
        assert self.proc.stdout is not None
        self._fd = self.proc.stdout.fileno()

    def read(self, wait: float) -> bytes | None:
        """What came within `wait` s (b"": nothing yet); None once the stream ended."""
        ready, _, _ = select.select([self._fd], [], [], wait)
        if not ready:
            return None if self.proc.poll() is not None and not self._pending() else b""
        data = os.read(self._fd, 1 << 16)
        if data:
            return data
        return None

    def _pending(self) -> bool:
        ready, _, _ = select.select([self._fd], [], [], 0)
        return bool(ready)

    def finish(self, timeout: float = 5.0) -> Answer:
        """The ended stream's exit status and stderr (killed if it does not end in `timeout`)."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(self.proc)
            rc = self.proc.returncode if self.proc.returncode is not None else -9
        self._err.seek(0)
        err = clean(self._err.read().decode("utf-8", "replace"), 20000)
        self.close()
        return Answer(rc, b"", err)

    def close(self) -> None:
        """Stop it (its process group killed if it still runs) and close its files."""
        kill_group(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._err.close()
