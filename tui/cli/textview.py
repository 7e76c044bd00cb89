"""Plain-text views for a terminal over SSH: `runctl status` and `runctl launch --follow` lines."""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from tui.judge.conditions import MARKS, own_metrics, own_value
from tui.presets.preset import LEVELS
from tui.state.records import PHASES, EpochRecord
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


def epoch_line(rec: EpochRecord, n: int | None, horizon: int, own: Sequence[str] = ()) -> str:
    """One line per validated epoch (the `--follow` and timeline form); `own`: metrics of other
    names (a user script's), shown instead of the engine's Sharpe / IC / SCALE when it has none."""
    line = (f"Epoch {rec.epoch}/{n or '?'}: train_loss={num(rec.train_loss)} "
            f"val_loss={num(rec.val_loss)}")
    if rec.sharpe is not None or rec.horizons or not own:
        h = rec.horizons.get(horizon)
        line += (f" sharpe={num(rec.sharpe)} IC(h{horizon})={num(h.ic if h else None)} "
                 f"SCALE(min)={num(_scale_min(rec), 2)}")
    return line + "".join(f" {k}={num(own_value(rec, k))}" for k in own)


def render_status(
    st: RunState, manifest: dict[str, Any] | None, verdicts: dict[str, Any] | None,
    preset: Any = None, proc: dict[str, Any] | None = None, log: str | None = None,
    slurm: dict[str, Any] | None = None, epochs: int = 30,
) -> str:
    """The whole state as plain text: header, phases, timeline (its latest `epochs`; 0: every
    one), metrics, checkpoints, next."""
    m = manifest or {}
    n = st.max_epochs or (preset.max_epochs if preset is not None else None)
    horizon = preset.default_horizon if preset is not None else 20
    out = [f"run      {st.run or '(log only)'}   state {st.state.upper()}"
           + (f"   epoch {st.epoch or 0}/{n or '?'}" if n or st.epoch else "")]
    if preset is not None:
        out.append(f"preset   {preset.name}" + (f" ({' -> '.join(preset.chain)})"
                                                 if len(preset.chain) > 1 else ""))
    pid = m.get("pid") or st.pid
    if proc:
        out.append(f"pid      {pid} alive  cpu {proc['cpu_percent']}%  rss {proc['rss_mb']} MB  "
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
    out.append(f"log      {log or m.get('log') or '—'}")
    age = f" ({duration(time.time() - st.last_time)} ago)" if st.last_time else ""
    out.append(f"started  {clock(st.started_at or m.get('created_at'))}   last line "
               f"{clock(st.last_time)}{age}")
    if st.error:
        out.append(f"error    {st.error}")
    if st.exit_reason:
        out.append(f"exit     {st.exit_reason} (status {st.exit_status})")
    if m.get("parent") or m.get("children"):
        out.append(f"chain    parent {m.get('parent') or '—'}  children "
                   f"{', '.join(m.get('children') or []) or '—'}")
    out += ["", "Phases"]
    for key, label in PHASES:
        detail = st.phase_details.get(key)
        out.append(f"  [{'x' if st.phases.get(key) else ' '}] {label}" + (f": {detail}" if detail else ""))
    own = own_metrics(preset, st)
    width = {k: max(9, len(k)) for k in own}
    out += ["", "Epochs", f"  {'epoch':>5} {'train_loss':>10} {'val_loss':>10} {'sharpe':>8} "
            f"{'IC(h' + str(horizon) + ')':>9} {'SCALE min':>9} {'time':>8}"
            + "".join(f" {k:>{width[k]}}" for k in own)]
    shown = st.epochs[-epochs:] if epochs > 0 else st.epochs
    if len(shown) < len(st.epochs):
        out.append(f"  ... {len(st.epochs) - len(shown)} earlier epochs (--epochs 0 shows all; "
                   f"--json and `runctl report` have them)")
    for r in shown:
        h = r.horizons.get(horizon)
        took = (r.ended_at - r.started_at) if r.ended_at and r.started_at else None
        out.append(f"  {r.epoch:>5} {num(r.train_loss, 6):>10} {num(r.val_loss, 6):>10} "
                   f"{num(r.sharpe):>8} {num(h.ic if h else None):>9} "
                   f"{num(_scale_min(r), 2):>9} {duration(took):>8}"
                   + "".join(f" {num(own_value(r, k)):>{width[k]}}" for k in own))
    if not st.epochs:
        out.append("  (no epoch yet)")
    p = st.progress
    if p.step is not None and st.state not in ("finished", "crashed", "killed"):
        out.append(f"  progress: epoch {p.epoch} step {p.step}/{p.steps or '?'}  "
                   f"{num(p.steps_per_s, 2)} steps/s  eta {duration(p.eta_s)}  loss {num(p.loss)}")
    if verdicts:
        out += _verdict_lines(verdicts)
    return "\n".join(out) + "\n"


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
        out.append(f"  {mark} {c['title']} (epoch {c['epoch'] or '?'}): {what}")
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
        if st.state != self._state and st.state not in ("training", "validating"):
            self.say(f"state: {st.state}")
        self._state = st.state
        epochs = st.epochs  # sorted by epoch, one record each: only the unsettled tail is looked at
        first = bisect.bisect_right(epochs, self._settled, key=lambda r: r.epoch)
        for i in range(first, len(epochs)):
            r = epochs[i]
            if r.epoch not in self._started and r.started_at is not None:
                self._started.add(r.epoch)
                lr = f" (lr {r.lr:.6f})" if r.lr is not None else ""
                self.say(f"Epoch {r.epoch}/{st.max_epochs or '?'} started{lr}")
            later = i < len(epochs) - 1
            done = r.validated and (r.sharpe is not None or r.metrics_final or later
                                    or st.state in ("finished", "crashed", "killed"))
            if done and r.epoch not in self._reported:
                self._reported.add(r.epoch)
                self.say(epoch_line(r, st.max_epochs, self.horizon, own_metrics(self.preset, st)))
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
            self.say(f"  step {p.step}/{p.steps or '?'} of epoch {p.epoch}  loss {num(p.loss)}  "
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
        self.say(f"run {st.run} {st.state}: {done} epoch(s) validated{tail}")
        r = (verdicts or {}).get("recommendation")
        if r:
            self.say(f"next: {r['action']}" + (f" {r['preset']}" if r.get("preset") else "")
                     + f" — {r['why']}")
