"""`runctl`: launch, follow, judge, kill and resume training runs (docs/cli.md).

Fast paths (`status`, `runs`, `presets`) import no torch, lightning or textual.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from tui.errors import RunctlError, write_error
from tui.presets.backends import DEFAULT_BACKEND, backend_names

DEFAULT_LOGS = Path("_logs")


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one `runctl: ...` line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise RunctlError(message)


def _epochs_shown(text: str) -> int:
    """`--epochs N`: a whole number >= 0."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of epochs >= 0 (0: all)")
    return n


def _common(p: argparse.ArgumentParser, top: bool) -> None:
    d = {} if top else {"default": argparse.SUPPRESS}
    p.add_argument("--logs", type=Path, metavar="DIR", help="logs directory (default ./_logs)",
                   **({"default": DEFAULT_LOGS} if top else d))
    p.add_argument("--presets", type=Path, metavar="DIR",
                   help="presets directory (default ./presets, else the shipped ones)",
                   **({"default": None} if top else d))


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    p = _Parser(prog="runctl", description="Terminal run controller for ML training runs.")
    _common(p, top=True)
    p.add_argument("--readonly", action="store_true",
                   help="the TUI only watches: no key or command launches, kills or resumes")
    sub = p.add_subparsers(dest="cmd", parser_class=_Parser)

    def cmd(name: str, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        _common(sp, top=False)
        return sp

    sp = cmd("launch", "start a run of PRESET, detached (survives logout)")
    sp.add_argument("preset")
    sp.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    sp.add_argument("--env", dest="envs", action="append", default=[], metavar="NAME=VALUE")
    sp.add_argument("--name", default=None, help="run name (default: the preset's)")
    sp.add_argument("--json", action="store_true", help='print {"run", "pid", "log"} first')
    sp.add_argument("--follow", action="store_true", help="print progress until the run ends")
    sp.add_argument("--autopilot", type=int, nargs="?", const=3, default=0, metavar="N",
                    help="follow verdicts and launch up to N next presets (default 3)")
    sp.add_argument("--queue", action="store_true",
                    help="when the GPUs it needs are taken, wait in the queue instead of failing")
    sp.add_argument("--backend", choices=backend_names(), default=None,
                    help=f"where the run goes (default: the preset's backend, else {DEFAULT_BACKEND})")
    sp.add_argument("--host", default=None, metavar="HOST",
                    help="launch on a host of hosts.toml (its runctl, its preset), or `any`: one "
                         "with a free slot")
    sp.add_argument("--send", action="store_true",
                    help="with --host: send this machine's preset (and its extends chain) there "
                         "first")

    sp = cmd("queue", "presets waiting for GPUs: list, add, remove")
    sp.add_argument("--json", action="store_true")
    qsub = sp.add_subparsers(dest="qcmd", parser_class=_Parser)
    qa = qsub.add_parser("add", help="queue PRESET (validated like launch)")
    _common(qa, top=False)
    qa.add_argument("preset")
    qa.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    qa.add_argument("--env", dest="envs", action="append", default=[], metavar="NAME=VALUE")
    qa.add_argument("--name", default=None, help="run name (default: the preset's)")
    qa.add_argument("--json", action="store_true")
    qr = qsub.add_parser("rm", help="remove a waiting item")
    _common(qr, top=False)
    qr.add_argument("item")

    sp = cmd("runs", "list runs with state and headline metrics (every host's of hosts.toml too)")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--host", default=None, metavar="HOST",
                    help="only this host's runs (`local`: this machine's)")

    sp = cmd("log", "the run's log, raw, from byte N (--follow: until the run ends)")
    sp.add_argument("run")
    sp.add_argument("--from", dest="from_", type=int, default=0, metavar="N",
                    help="start at byte N (default 0)")
    sp.add_argument("--follow", action="store_true", help="go on while the run lives")
    sp.add_argument("--files", action="store_true",
                    help="list the run's metric files under its folder (JSON), instead of its log")
    sp.add_argument("--file", default=None, metavar="PATH",
                    help="one of those files, raw, from --from N, instead of the log")
    sp.add_argument("--limit", type=int, default=0, metavar="BYTES",
                    help="with --file: at most this many bytes (default: to its end)")

    sp = cmd("kill", "SIGTERM the run (checkpoint-and-exit), SIGKILL after the grace period")
    sp.add_argument("run")
    sp.add_argument("--grace", type=float, default=30.0, metavar="S")

    sp = cmd("resume", "continue a stopped run from its last checkpoint, same log")
    sp.add_argument("run")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--follow", action="store_true")

    for name, help_ in (("status", "the run's whole state as plain text or JSON"),
                        ("report", "the run's Markdown status page")):
        sp = cmd(name, help_)
        sp.add_argument("run", nargs="?", default=None)
        sp.add_argument("--log", type=Path, default=None, metavar="FILE", help="read this log")
        sp.add_argument("--preset", dest="preset_name", default=None, metavar="NAME",
                        help="judge with this preset (default: the run's)")
        if name == "status":
            sp.add_argument("--json", action="store_true")
            sp.add_argument("--watch", action="store_true", help="refresh every 2 s until it ends")
            sp.add_argument("--epochs", type=_epochs_shown, default=30, metavar="N",
                            help="the text's timeline shows the latest N epochs (default 30; 0: all)")
        else:
            sp.add_argument("-o", "--output", type=Path, default=None, metavar="FILE")

    sp = cmd("compare", "runs side by side: state, the config that differs, the latest metrics")
    sp.add_argument("runs", nargs="+", metavar="RUN", help="a run id or name, or HOST:RUN (two or more)")
    sp.add_argument("--json", action="store_true")

    sp = cmd("baseline", "add a finished run's latest metrics to presets/baselines.toml")
    sp.add_argument("run")
    sp.add_argument("--as", dest="as_name", default=None, metavar="NAME", help="row name (default: the run id)")
    sp.add_argument("--status", default="", help="free text for the table's Status column")

    sp = cmd("presets", "list, show, check and derive presets")
    psub = sp.add_subparsers(dest="pcmd", parser_class=_Parser, required=True)
    for pname, phelp in (("list", "every preset"), ("show", "one resolved preset"),
                         ("check", "validate preset files"),
                         ("derive", "write a new preset extending NAME"),
                         ("export", "NAME's files (its extends chain, baselines.toml) as JSON, "
                                    "for runctl on another host"),
                         ("receive", "write the preset files of a JSON on stdin (`launch --send` "
                                     "from another host)")):
        _common(psub.add_parser(pname, help=phelp), top=False)
    psub.choices["show"].add_argument("name")
    psub.choices["export"].add_argument("name")
    psub.choices["check"].add_argument("files", nargs="+", type=Path)
    dp = psub.choices["derive"]
    dp.add_argument("name")
    dp.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    dp.add_argument("--env", dest="envs", action="append", default=[], metavar="NAME=VALUE")
    dp.add_argument("--as", dest="new_name", required=True, metavar="NEW")

    sp = cmd("sweep", "queue a preset's [sweep] points as runs; `sweep status NAME` ranks them")
    sp.add_argument("target", metavar="PRESET|status", help="the preset to sweep, or `status`")
    sp.add_argument("sweep_name", nargs="?", default=None, metavar="NAME", help="with `status`: the sweep")
    sp.add_argument("--name", default=None, help="the sweep's name (default: the preset's); runs are NAME-i")
    sp.add_argument("--backend", choices=backend_names(), default=None,
                    help="where its runs go (default: the preset's backend)")
    sp.add_argument("--parallel", type=int, default=None, metavar="N",
                    help="at most N of its runs at once (default: the sweep's parallel, else the GPU slots)")
    sp.add_argument("--host", default=None, metavar="HOST",
                    help="sweep on a host of hosts.toml (its queue, GPU slots and driver)")
    sp.add_argument("--send", action="store_true", help="with --host: send the preset there first")
    sp.add_argument("--json", action="store_true")

    sp = cmd("metrics", "try a preset's metric sources on a recorded log")
    msub = sp.add_subparsers(dest="mcmd", parser_class=_Parser, required=True)
    mt = msub.add_parser("test", help="what each line of LOG (default: stdin) gives, read as PRESET's run would")
    _common(mt, top=False)
    mt.add_argument("preset")
    mt.add_argument("log", nargs="?", type=Path, default=None)
    mt.add_argument("--all", action="store_true", help="every line, also those that give nothing")
    mt.add_argument("--limit", type=int, default=200, metavar="N",
                    help="lines with metrics shown (default 200; 0: all)")

    sp = cmd("notify", "notification settings, the watcher and the latest notifications")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--last", type=int, default=10, metavar="N", help="latest notifications shown (default 10)")
    nsub = sp.add_subparsers(dest="ncmd", parser_class=_Parser)
    nt = nsub.add_parser("test", help="send a test notification to every configured URL now")
    _common(nt, top=False)
    nt.add_argument("--preset", dest="preset_name", default=None, metavar="NAME",
                    help="also the URLs of this preset's [notify]")

    sp = cmd("tui", "the Textual app")
    sp.add_argument("run", nargs="?", default=None)
    sp.add_argument("--log", type=Path, default=None, metavar="FILE")
    sp.add_argument("--launch", default=None, metavar="PRESET")
    sp.add_argument("--serve", action="store_true",
                    help="serve the same app in a browser (textual-serve), e.g. through an SSH tunnel")
    sp.add_argument("--host", default=None, metavar="HOST",
                    help="with --serve: the address to listen on (default localhost)")
    sp.add_argument("--port", type=int, default=None, metavar="PORT",
                    help="with --serve: the port to listen on (default 8000)")
    sp.add_argument("--readonly", action="store_true", default=argparse.SUPPRESS,
                    help="only watch: no key or command launches, kills or resumes")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: user mistakes are one line on stderr and exit status 2."""
    try:
        args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
        if args.readonly and args.cmd not in (None, "tui"):
            raise RunctlError(f"--readonly is for the TUI (`runctl`, `runctl tui`), not `runctl {args.cmd}`")
        from tui.cli import commands

        return commands.dispatch(args)
    except RunctlError as e:
        print(f"runctl: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`| head`, a dropped ssh): nothing to say
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # exit's flush: no error
        return 0
    except OSError as e:  # a write no command wrapped: a full disk is still one line
        import errno

        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        print(f"runctl: {write_error(e.filename or '(a file)', e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

