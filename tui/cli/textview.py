"""Plain-text views for a terminal over SSH: `runctl status` and `runctl launch --follow` lines."""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from tui.judge.conditions import MARKS, max_epochs_of, own_metrics, own_value
from tui.presets.preset import LEVELS
from tui.state.records import EpochRecord
from tui.state.run import RunState

Say = Callable[[str], None]


def say(text: str) -> None:
    """One line to stdout, flushed (pipes, SSH)."""
    print(text, flush=True)


def num(v: float | None, digits: int = 4) -> str:
    """A number or an em dash."""
    return "—" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def clock(t: float | None) -> str:
    """Local `YYYY-mm-dd HH:MM:SS` or a dash."""
    return "—" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def duration(s: float | None) -> str:
    """`HH:MM:SS`."""
    if s is None or not math.isfinite(s):
        return "—"
    s = max(0, int(s))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _scale_min(rec: EpochRecord) -> float | None:
    vals = [m.scale for m in rec.horizons.values() if m.scale is not None and math.isfinite(m.scale)]
    return min(vals) if vals else None


def epoch_line(rec: EpochRecord, n: int | None, horizon: int, own: Sequence[str] = (),
               axis: str = "epoch") -> str:
    """One line per validated epoch (the `--follow` and timeline form); `own`: metrics of other
    names (a user script's), shown instead of the engine's Sharpe / IC / SCALE when it has none."""
    line = (f"{'Step' if axis == 'step' else 'Epoch'} {rec.epoch}/{n or '?'}: train_loss={num(rec.train_loss)} "
            f"val_loss={num(rec.val_loss)}")
    if rec.sharpe is not None or rec.horizons or not own:
        h = rec.horizons.get(horizon)
        line += (f" sharpe={num(rec.sharpe)} IC(h{horizon})={num(h.ic if h else None)} "
                 f"SCALE(min)={num(_scale_min(rec), 2)}")
    return line + "".join(f" {k}={num(own_value(rec, k))}" for k in own)


def render_status(
    st: RunState, manifest: dict[str, Any] | None, verdicts: dict[str, Any] | None,
    preset: Any = None, proc: dict[str, Any] | None = None, log: str | None = None,
    slurm: dict[str, Any] | None = None, epochs: int = 30, reading: str | None = None,
) -> str:
    """The whole state as plain text: header, phases, timeline (its latest `epochs`; 0: every
    one), metrics, checkpoints, next. `reading`: the file read when it is not the log path (a
    log renamed away or deleted under the run: its process's stdout)."""
    m = manifest or {}
    n = max_epochs_of(preset, st) if preset is not None else st.budget
    horizon = preset.default_horizon if preset is not None else 20
    out = [f"run      {st.run or '(log only)'}   state {st.state.upper()}"
           + (f"   {st.axis} {st.epoch or 0}/{n or '?'}" if n or st.epoch is not None else "")]
    if preset is not None:
        out.append(f"preset   {preset.name}" + (f" ({' -> '.join(preset.chain)})"
                                                 if len(preset.chain) > 1 else ""))
    pid = m.get("pid") or st.pid
    if proc:
        trainer = f" (trainer pid {proc['pid']})" if proc.get("pid") not in (None, pid) else ""
        out.append(f"pid      {pid} alive{trainer}  cpu {proc['cpu_percent']}%  rss {proc['rss_mb']} MB  "
                   f"up {duration(proc['elapsed_s'])}")
    elif pid:
        out.append(f"pid      {pid} " + ("(not running)" if manifest else "(from the log; no manifest)"))
    if slurm:
        reason = f" ({slurm['reason']})" if slurm.get("reason") else ""
        out.append(f"slurm    job {slurm['job_id']} {slurm.get('state') or 'unknown to Slurm'}{reason}"
                   + (f" on {slurm['node']}" if slurm.get("node") else "")
                   + (f"  elapsed {slurm['elapsed']}" if slurm.get("elapsed") else "")
                   + (f" / limit {slurm['time_limit']}" if slurm.get("time_limit") else "")
                   + (f"  restarts {slurm['restarts']}" if slurm.get("restarts") else "")
                   + (f"  (jobs {', '.join(slurm['job_ids'])})" if len(slurm.get("job_ids") or []) > 1 else ""))
    out.append(f"log      {log or m.get('log') or '—'}" + (f"  [{log_event_text(st.log_event, reading)}]"
                                                             if st.log_event else ""))
    age = f" ({duration(time.time() - st.last_time)} ago)" if st.last_time else ""
    out.append(f"started  {clock(m.get('created_at') or st.started_at)}   last line "
               f"{clock(st.last_time)}{age}")
    last = next((h for h in reversed(m.get("history") or []) if h.get("event") == "resume"), None)
    if last is not None:
        out.append(f"resumed  {clock(last.get('at'))}" + (f" from {last['ckpt']}" if last.get("ckpt") else "")
                   + (f" ({last['note']})" if last.get("note") else ""))
    if st.state == "stalled" and st.stalled_since is not None:
        out.append(f"stalled  alive, but no log line, metric or checkpoint since {clock(st.stalled_since)} "
                   f"({duration(time.time() - st.stalled_since)} ago; stall_after "
                   f"{duration(st.stall_after)}): runctl kill {st.run or 'RUN'} stops it")
    if st.error:
        out.append(f"error    {st.error}")
    if st.exit_reason:
        out.append(f"exit     {st.exit_reason} (status {st.exit_status})")
    if m.get("parent") or m.get("children"):
        out.append(f"chain    parent {m.get('parent') or '—'}  children "
                   f"{', '.join(m.get('children') or []) or '—'}")
    out += ["", "Phases"]
    for _, label, done, detail in st.checklist():
        out.append(f"  [{'x' if done else ' '}] {label}" + (f": {detail}" if detail else ""))
    own = own_metrics(preset, st)
    width = {k: max(9, len(k)) for k in own}
    unit = st.axis
    engine = st.engine_phases or any(r.sharpe is not None or r.horizons for r in st.epochs)
    out += ["", f"{unit.capitalize()}s", f"  {unit:>5} {'train_loss':>10} {'val_loss':>10} "
            + (f"{'sharpe':>8} {'IC(h' + str(horizon) + ')':>9} {'SCALE min':>9} " if engine else "")
            + f"{'time':>8}" + "".join(f" {k:>{width[k]}}" for k in own)]
    timeline = st.epochs if st.axis == "epoch" else [r for r in st.epochs if r.validated]
    shown = timeline[-epochs:] if epochs > 0 else timeline
    if len(shown) < len(timeline):
        out.append(f"  ... {len(timeline) - len(shown)} earlier {unit}s (--epochs 0 shows all; "
                   f"--json and `runctl report` have them)")
    for r in shown:
        h = r.horizons.get(horizon)
        took = (r.ended_at - r.started_at) if r.ended_at and r.started_at else None
        out.append(f"  {r.epoch:>5} {num(r.train_loss, 6):>10} {num(r.val_loss, 6):>10} "
                   + (f"{num(r.sharpe):>8} {num(h.ic if h else None):>9} {num(_scale_min(r), 2):>9} "
                      if engine else "")
                   + f"{duration(took):>8}"
                   + "".join(f" {num(own_value(r, k)):>{width[k]}}" for k in own))
    if not shown:
        out.append(f"  (no {'epoch' if unit == 'epoch' else 'evaluation'} yet)")
    p = st.progress
    if p.step is not None and st.state not in ("finished", "crashed", "killed"):
        where = f"epoch {p.epoch} " if p.epoch is not None else ""
        out.append(f"  progress: {where}step {p.step}/{p.steps or '?'}  "
                   f"{num(p.steps_per_s, 2)} steps/s  eta {duration(p.eta_s)}  loss {num(p.loss)}")
    latest = _off_timeline(st, own)
    if latest:
        out += ["", "Latest", *latest]
    if verdicts:
        out += _verdict_lines(verdicts)
    return "\n".join(out) + "\n"


def _off_timeline(st: RunState, own: Sequence[str]) -> list[str]:
    """The latest value of each metric the timeline does not show (per-step numbers, files' scalars
    off the timeline), at most 12, by name."""
    on = set(own) | {"train_loss", "val_loss", "sharpe"}
    rows = [(k, x) for k, x in sorted(st.latest_values().items()) if k not in on]
    out = []
    for k, x in rows[:12]:
        where = f"step {x.step}" if x.step is not None else f"epoch {x.epoch}" if x.epoch is not None else ""
        out.append(f"  {k:<24} {num(x.value):>10}  {where}".rstrip())
    if len(rows) > 12:
        out.append(f"  ... {len(rows) - 12} more (--json has them)")
    return out


def log_event_text(event: str | None, reading: str | None = None) -> str:
    """What happened to a run's log, for the status header."""
    where = f"; reading {reading}, which the run writes" if reading else ""
    return {"truncated": "the log was truncated; the epochs read before are kept",
            "rotated": f"the log was renamed away (rotated){where}",
            "deleted": f"the log was deleted{where}"}.get(event or "", event or "")


def _verdict_lines(v: dict[str, Any]) -> list[str]:
    b = v.get("baseline")
    out = ["", f"Metrics vs baseline ({b['name'] if b else 'none'})",
           f"  {'metric':<24} {'target':>10} {'baseline':>9} {'current':>9} {'best':>9} "
           f"{'trend':>6}  status"]
    for r in v.get("table", []):
        out.append(f"  {r['metric']:<24} {r['target'] or '—':>10} {num(r['baseline']):>9} "
                   f"{num(r['current']):>9} {num(r['best']):>9} {r['trend'] or '—':>6}  {r['status']}")
    out += ["", "Success criteria"]
    out += [f"  {MARKS.get(c['status'], '?')} {c['label']}" for c in v.get("criteria", [])]
    out += ["", "Checkpoints"]
    for c in v.get("checkpoints", []):
        mark = LEVELS.get(c.get("level") or "", "⏳" if c["status"] == "pending" else "➖")
        what = f"{c['verdict']}: {c['say']}" if c["status"] == "decided" else c["status"]
        out.append(f"  {mark} {c['title']} ({c.get('axis', 'epoch')} {c['epoch'] if c['epoch'] is not None else '?'}): {what}")
    r = v.get("recommendation") or {}
    out += ["", f"Recommendation: {r.get('action', '—')}"
            + (f" {r['preset']}" if r.get("preset") else "") + f" — {r.get('why', '')}"]
    if r.get("command"):
        out.append(f"  command: {r['command']}")
    if r.get("alternatives"):
        out.append(f"  alternatives: {', '.join(r['alternatives'])}")
    out += [f"  - {s}" for s in r.get("steps", [])]
    return out


class ProgressPrinter:
    """Turns successive RunStates into one line per new happening (for `launch --follow`)."""

    def __init__(self, say: Say, horizon: int = 20, progress_every_s: float = 15.0,
                 preset: Any = None) -> None:
        self.preset = preset
        self.say = say
        self.horizon = horizon
        self.progress_every_s = progress_every_s
        self._state: str | None = None
        self._started: set[int] = set()
        self._reported: set[int] = set()
        self._decided: set[str] = set()
        self._settled = 0  # epochs (by number) up to which every one is reported: not looked at again
        self._last_progress = 0.0
        self._last_where: tuple[int | None, int | None] = (None, None)  # never print a step twice

    def update(self, st: RunState, verdicts: dict[str, Any] | None = None) -> None:
        """Print what is new in `st` since the last call."""
        if st.state != self._state and (st.state not in ("training", "validating") or self._state == "stalled"):
            since = f" (no output since {clock(st.stalled_since)})" if st.state == "stalled" else ""
            self.say(f"state: {st.state}{since}")
        self._state = st.state
        epochs = st.epochs  # sorted by epoch, one record each: only the unsettled tail is looked at
        first = bisect.bisect_right(epochs, self._settled, key=lambda r: r.epoch)
        for i in range(first, len(epochs)):
            r = epochs[i]
            if r.epoch not in self._started and r.started_at is not None:
                self._started.add(r.epoch)
                lr = f" (lr {r.lr:.6f})" if r.lr is not None else ""
                self.say(f"{st.axis.capitalize()} {r.epoch}/{st.budget or '?'} started{lr}")
            later = i < len(epochs) - 1
            if st.axis == "step" and not r.validated:
                continue
            done = r.validated and (r.sharpe is not None or r.metrics_final or later
                                    or st.state in ("finished", "crashed", "killed"))
            if done and r.epoch not in self._reported:
                self._reported.add(r.epoch)
                self.say(epoch_line(r, st.budget, self.horizon, own_metrics(self.preset, st), st.axis))
        for i in range(first, len(epochs)):
            if epochs[i].epoch not in self._reported:
                break
            self._settled = epochs[i].epoch
        p = st.progress
        now = time.monotonic()
        where = (p.epoch, p.step)
        if (p.step and st.state == "training" and where != self._last_where
                and now - self._last_progress >= self.progress_every_s):
            self._last_progress, self._last_where = now, where
            of = f" of epoch {p.epoch}" if p.epoch is not None else ""
            self.say(f"  step {p.step}/{p.steps or '?'}{of}  loss {num(p.loss)}  "
                     f"eta {duration(p.eta_s)}")
        for c in (verdicts or {}).get("checkpoints", []):
            if c["status"] == "decided" and c["title"] not in self._decided:
                self._decided.add(c["title"])
                mark = LEVELS.get(c.get("level") or "", "")
                self.say(f"{mark} {c['title']}: {c['verdict']} — {c['say']}")

    def end(self, st: RunState, verdicts: dict[str, Any] | None = None) -> None:
        """The closing lines."""
        done = len(self._reported)
        tail = f" ({st.error})" if st.error else ""
        what = "evaluation(s)" if st.axis == "step" else "epoch(s) validated"
        self.say(f"run {st.run} {st.state}: {done} {what}{tail}")
        r = (verdicts or {}).get("recommendation")
        if r:
            self.say(f"next: {r['action']}" + (f" {r['preset']}" if r.get("preset") else "")
                     + f" — {r['why']}")
