"""`runctl metrics test PRESET [LOG]`: what a preset's metric sources read from each line of a log.

The log (a file, or stdin) is read as a run of that preset would read it: the runctl stream and the
pipeline's lines, the preset's `[metrics] patterns`, the zero-configuration stdout shapes; each line
that gives metrics is printed with the source that read it, then a summary: the timeline's points,
the metric names found, and where each name the preset judges on comes from. Files beside a run's
log (CSV, TensorBoard, JSON lines) are not part of it: this is for trying patterns on recorded
output before a run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

from tui.cli.textview import num, say
from tui.errors import RunctlError
from tui.log import events as evt
from tui.log.lines import LineAssembler
from tui.log.parse import LineParser
from tui.log.scan import RegionScanner
from tui.log.sources import line_set
from tui.state.run import RunState

if TYPE_CHECKING:
    from tui.cli.context import Context

_BUILTIN = {evt.TrainLoss: ("train_loss", "loss"), evt.ValLoss: ("val_loss", "loss"),
            evt.Sharpe: ("sharpe", "value"), evt.LearningRate: ("lr", "lr")}


def _lines(fh: IO[bytes]) -> Iterator[str]:
    """The stream's lines as runctl reads a log (`\\r` ends a line too), decoded."""
    assembler = LineAssembler()
    while True:
        data = fh.read(1 << 20)
        if not data:
            break
        for buf, start, end in assembler.feed(data):
            yield from buf[start:end - 1].decode("utf-8", "replace").split("\n")
    if assembler.partial:
        yield assembler.partial.decode("utf-8", "replace")


def describe(ev: evt.Event) -> tuple[str, str] | None:
    """(source, what it gives) of an event that carries metrics or a position; None otherwise."""
    if isinstance(ev, evt.Scalars):
        where = [f"{k}={v}" for k, v in (("epoch", ev.epoch), ("step", ev.step)) if v is not None]
        values = [f"{k}={num(v)}" for k, v in ev.values]
        return ev.source, " ".join(where + values) or "(a position)"
    if isinstance(ev, evt.Metrics):
        return ("runctl" if ev.source == "log" else ev.source,
                f"epoch={ev.epoch} " + " ".join(f"{k}={num(v)}" for k, v in ev.values))
    if type(ev) in _BUILTIN:
        name, attr = _BUILTIN[type(ev)]
        return "runctl", f"{name}={num(getattr(ev, attr))}"
    if isinstance(ev, evt.HorizonMetrics):
        return "runctl", f"h={ev.h} ic={num(ev.ic)} rank_ic={num(ev.rank_ic)} scale={num(ev.scale)}"
    if isinstance(ev, evt.EpochStart):
        return "runctl", f"epoch {ev.epoch}/{ev.max_epochs or '?'} starts"
    if isinstance(ev, evt.EpochEnd):
        return "runctl", (f"epoch={ev.epoch} train_loss={num(ev.train_loss)} val_loss={num(ev.val_loss)} "
                          f"sharpe={num(ev.sharpe)}")
    if isinstance(ev, evt.PhaseEpoch):
        return "atft", f"epoch={ev.epoch} train_loss={num(ev.train_loss)} val_loss={num(ev.val_loss)}"
    if isinstance(ev, evt.Progress):
        post = " ".join(f"{k}={num(v)}" for k, v in ev.postfix)
        return ev.source if ev.source == "tqdm" else "runctl", (
            f"progress step {ev.step}/{ev.steps or '?'}" + (f" {post}" if post else ""))
    return None


def cmd_metrics(ctx: Context, a: argparse.Namespace) -> int:
    """`runctl metrics test PRESET [LOG]`."""
    preset = ctx.registry.get(a.preset)
    config = preset.source_config("RUN_DIR", "RUN")
    scanner = RegionScanner(False, line_set(config))
    parser = LineParser()
    state = RunState()
    state.kind = "engine" if preset.is_engine else "command"
    shown = with_metrics = n = 0
    if a.log is None:
        fh: IO[bytes] = sys.stdin.buffer
    else:
        try:
            fh = open(a.log, "rb")  # noqa: SIM115 - closed below
        except OSError as e:
            raise RunctlError(f"cannot read {a.log}: {e.strerror or e}") from None
    try:
        for n, line in enumerate(_lines(fh), 1):
            lv, ev = parser.feed(line)
            ev = scanner.other_event(line, lv, ev)
            if ev is None:
                if a.all:
                    say(f"{n:>6}  {'·':<11} {line[:100]}")
                continue
            state.apply(ev)
            got = describe(ev)
            if got is None:
                if a.all:
                    say(f"{n:>6}  {'·':<11} {type(ev).__name__}")
                continue
            with_metrics += 1
            if shown < a.limit or a.limit == 0:
                shown += 1
                say(f"{n:>6}  {got[0]:<11} {got[1]}")
    finally:
        if fh is not sys.stdin.buffer:
            fh.close()
    if a.limit and with_metrics > shown:
        say(f"   ... {with_metrics - shown} more line(s) with metrics (--limit 0 shows all)")
    _summary(preset, state, n, with_metrics, config.log_format)
    return 0


def _summary(preset: object, state: RunState, n: int, with_metrics: int, log_format: str) -> None:
    from tui.presets.preset import METRICS

    points = [r for r in state.epochs if r.validated or state.axis == "epoch"]
    span = f" ({points[0].epoch}..{points[-1].epoch})" if points else ""
    say("")
    say(f"{n} line(s), {with_metrics} with metrics; timeline: {len(points)} point(s) by "
        f"{state.axis}{span}" + ("" if log_format == "auto" else f"; log_format = {log_format!r}"))
    names: dict[str, str] = {}
    for r in state.epochs:
        for k in r.metrics:
            names.setdefault(k, "timeline")
        for k in ("train_loss", "val_loss", "sharpe"):
            if getattr(r, k) is not None:
                names.setdefault(k, "timeline")
    for k in state.latest:
        names.setdefault(k, "latest value")
    for k, _ in state.progress.postfix:
        names.setdefault(k, "progress bar")
    if names:
        say("metrics: " + ", ".join(f"{k}" + ("" if w == "timeline" else f" ({w})")
                                    for k, w in sorted(names.items())))
    wanted = []
    for c in getattr(preset, "criteria", ()):
        if c.condition is not None:
            wanted.append((c.condition.metric, f"criterion {c.label!r}"))
    for cp in getattr(preset, "checkpoints", ()):
        wanted += [(c.metric, f"checkpoint {cp.title!r}") for r in cp.rules for c in r.when]
    for metric, where in dict.fromkeys(wanted):
        found = metric in names or metric in METRICS and any(
            r.horizons or getattr(r, metric, None) is not None for r in state.epochs)
        say(f"  {'✅' if found else '❌'} {metric}: {where}"
            + ("" if found else " — not in this log (a file source, or another name?)"))
