"""The Markdown status page of a run, shaped like the researcher's hand-written one (the seed)."""

from __future__ import annotations

import datetime as dt
import math
import shlex
import time
from collections.abc import Mapping
from typing import Any

from engine import config as ec
from tui.judge.conditions import TERMINAL, epoch_complete, max_epochs_of, own_metrics, own_value
from tui.judge.results import Verdicts
from tui.presets.baselines import Baselines
from tui.presets.preset import METRICS, Preset, PresetError, split_metric_key, value_text
from tui.state.run import RunState

TREND = {"up": "↗ up", "down": "↘ down", "flat": "→ flat", None: "—"}
RULE = "\n---\n"


def _num(v: float | None, digits: int = 4) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def _metric_num(label: str, v: float | None) -> str:
    return _num(v, 2 if label.startswith("SCALE") else 4)


def _ts(value: Any) -> float | None:
    """Unix seconds from a number or an ISO string (manifests differ)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            d = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return (d if d.tzinfo else d.replace(tzinfo=dt.UTC)).timestamp()
    return None


def _hm(t: float | None) -> str:
    return "—" if t is None else dt.datetime.fromtimestamp(t, dt.UTC).strftime("%H:%M UTC")


def _full(t: float | None) -> str:
    return "—" if t is None else dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _status_line(state: RunState, n: int | None) -> str:
    ep = f"epoch {state.epoch}/{n or '?'}" if state.epoch else ""
    if state.state == "launching":
        return "⏳ **LAUNCHING**"
    if state.state == "initializing":
        todo = [label for _, label, done, _ in state.checklist() if not done]
        return f"✅ **ACTIVE** - Initializing ({'waiting for: ' + todo[0] if todo else 'almost ready'})"
    if state.state in ("training", "validating"):
        return f"✅ **ACTIVE** - {state.state.capitalize()} {ep}"
    if state.state == "stalled":
        return (f"⚠️ **STALLED** - alive at {ep or 'startup'}, but no output since "
                f"{_full(state.stalled_since)}")
    if state.state == "finished":
        return "✅ **FINISHED** - all epochs complete"
    if state.state == "killed":
        return f"⏹️ **KILLED** - stopped at {ep or 'startup'}"
    return f"❌ **CRASHED** - {state.error or 'see log'}"


def _header(preset: Preset, state: RunState, m: Mapping[str, Any], log: str, n: int | None) -> list[str]:
    title = m.get("run") or state.run or preset.name
    launched = _ts(m.get("launched_at") or m.get("started_at") or m.get("created_at")) or state.started_at
    chain = " → ".join(f"`{c}`" for c in preset.chain) or f"`{preset.name}`"
    return [
        f"# {title} - Monitoring Status", "",
        f"**Launch Time**: {_full(launched)}  ",
        f"**PID**: {m.get('pid') or state.pid or '—'}  ",
        f"**Status**: {_status_line(state, n)}  ",
        f"**Log**: `{log}`  ",
        f"**Preset**: {chain}",
    ]


def _objective(preset: Preset, v: Verdicts) -> list[str]:
    lines = ["## 🎯 Test Objective", "", preset.description or "(no description)", ""]
    if v.criteria:
        lines.append("**Success Criteria**:")
        for c in v.criteria:
            value = "" if c.value is None or c.label.startswith("Training") else f" (now {_num(c.value)})"
            lines.append(f"- {c.mark} {c.label}{value}")
    return lines


def _current(state: RunState, v: Verdicts, n: int | None, now: float) -> list[str]:
    lines = [f"## 📊 Current Status ({_hm(now)})", "", "**Initialization Phase**:"]
    for _, label, ok, detail in state.checklist():
        lines.append(f"- {'✅' if ok else '⏳'} {label}{': ' + detail if detail else ''}")
    done = sum(1 for r in state.epochs if epoch_complete(state, r))
    lines.append("")
    if n:
        filled = round(20 * min(done, n) / n)
        lines.append(f"**Epoch**: {state.epoch or 0}/{n} ({done} complete) "
                     f"`[{'#' * filled}{'.' * (20 - filled)}]` {100 * done / n:.0f}%  ")
    p = state.progress
    if p.step is not None and state.state not in TERMINAL:
        eta = f", ETA {p.eta_s / 60:.1f} min" if p.eta_s is not None and math.isfinite(p.eta_s) else ""
        lines.append(f"**Step**: {p.step}/{p.steps or '?'} in epoch {p.epoch}{eta}  ")
    if state.started_at is not None:
        lines.append(f"**Runtime**: ~{max(0.0, now - state.started_at) / 60:.0f} minutes elapsed  ")
    if state.warnings or state.errors:
        lines.append(f"**Log**: {state.warnings} warnings, {state.errors} errors  ")
    vc = v.variance_collapse
    if vc.detected:
        lines += ["", f"> ⚠️ **Variance collapse**: SCALE(yhat/y) = 0.00 at h={list(vc.horizons)} "
                      f"from epoch {vc.first_epoch}{' (still collapsed)' if vc.latest else ''}"]
    return lines


def _settings(p: Preset) -> dict[str, str]:
    """A command preset's settings, flat: what its run is launched with."""
    assert p.command is not None
    out = {"command": shlex.join(p.command), "cwd": str(p.workdir),
           "max_epochs": str(p.max_epochs) if p.max_epochs is not None else "(unset)"}
    out.update({f"env {k}": v for k, v in p.env.items()})
    out.update({k: value_text(v) for k, v in p.overrides.items()})
    return out


def _command_changes(preset: Preset, base: Preset | None) -> list[str]:
    cfg = _settings(preset)
    ref = _settings(base) if base is not None and base.command is not None else {}
    name = f"`{base.name}`" if base else "nothing set"
    lines = ["## 🔍 Key Changes vs Baseline", "", f"### What's Different (vs {name})", ""]
    diff = [k for k in cfg if cfg[k] != ref.get(k)]
    lines += [f"- `{k}`: {ref.get(k, '(unset)')} → **{cfg[k]}**" for k in diff] \
        or ["- (nothing: same configuration)"]
    same = [k for k in cfg if k not in diff]
    lines += ["", "### What's Same", ""] + ([f"- `{k}` = {cfg[k]}" for k in same] or ["- (nothing)"])
    lines += ["", "**Command**:", "```bash", shlex.join(preset.command or ()), "```"]
    return lines


def _changes(preset: Preset, base: Preset | None) -> list[str]:
    if not preset.is_engine:
        return _command_changes(preset, base)
    try:
        own = preset.validate()
        other = base.validate() if base is not None and base.is_engine else ec.default_config()
        assert own is not None and other is not None
        cfg, ref = ec.to_flat_dict(own), ec.to_flat_dict(other)
    except PresetError as e:
        return ["## 🔍 Key Changes vs Baseline", "", f"(cannot resolve the configuration: {e})"]
    env_key = {key: name for name, key in ec.ENV_KEYS.items() if name in preset.env}
    name = f"`{base.name}`" if base else "engine defaults"
    lines = ["## 🔍 Key Changes vs Baseline", "", f"### What's Different (vs {name})", ""]
    diff = [k for k in cfg if cfg[k] != ref[k]]
    for k in diff:
        via = f" (via `{env_key[k]}`)" if k in env_key else ""
        lines.append(f"- `{k}`: {value_text(ref[k])} → **{value_text(cfg[k])}**{via}")
    if not diff:
        lines.append("- (nothing: same configuration)")
    same = [k for k in list(preset.overrides) + [ec.ENV_KEYS[e] for e in preset.env if e in ec.ENV_KEYS]
            if k in cfg and cfg[k] == ref[k]]
    lines += ["", "### What's Same (set explicitly, equal to the baseline)", ""]
    lines += [f"- `{k}` = {value_text(cfg[k])}" for k in dict.fromkeys(same)] or ["- (nothing)"]
    lines += ["", "**Environment**:", "```bash"]
    lines += [f"{k}={shlex.quote(val)}" for k, val in preset.env.items()] or ["# (none)"]
    lines += ["```", "", "**Training Config**:",
              f"- Max epochs: {cfg['train.trainer.max_epochs']}",
              f"- Batch size: {cfg['train.batch.train_batch_size']}",
              f"- Precision: {cfg['train.trainer.precision']}",
              f"- Grad monitoring: {'on, every ' + str(cfg['train.grad_monitor_every']) if cfg['train.grad_monitor'] else 'off'}"]
    return lines


def _timeline(preset: Preset, state: RunState, launched: float | None, n: int | None) -> list[str]:
    recs = [r for r in state.epochs if r.started_at is not None]
    durations = [r.ended_at - r.started_at for r in recs
                 if r.started_at is not None and r.ended_at is not None
                 and r.ended_at > r.started_at and epoch_complete(state, r)]
    measured = sum(durations) / len(durations) if durations else None
    tl = preset.timeline
    plan_first = launched + tl.setup_minutes * 60 if launched and tl.setup_minutes is not None else None
    plan_epoch = tl.epoch_minutes * 60 if tl.epoch_minutes is not None else None
    first = recs[0].started_at if recs else None
    by_epoch = {r.epoch: r for r in state.epochs}
    rows = [("Launch", launched, launched), ("First epoch training start", plan_first, first)]
    # reached, though the log gave it no time (a script's lines carry none): done, not pending
    reached = {"First epoch training start": bool(state.epochs) or state.progress.step is not None}
    marks = sorted({k for cp in preset.checkpoints if (k := cp.at(n))} | ({n} if n else set()))
    for k in marks:
        planned = plan_first + k * plan_epoch if plan_first and plan_epoch else None
        rec = by_epoch.get(k)
        actual = rec.ended_at if rec and epoch_complete(state, rec) else None
        label = f"Epoch {k} {'complete (final evaluation)' if k == n else 'validation'}"
        reached[label] = rec is not None and epoch_complete(state, rec)
        rows.append((label, planned, actual))
    lines = ["## 📋 Expected Timeline", "", "| Milestone | Planned | Actual / projected |",
             "|-----------|---------|--------------------|"]
    for label, planned, actual in rows:
        shown = _hm(actual)
        if actual is None and reached.get(label):
            shown = "✅ (no time in the log)"
        elif actual is None:
            k = int(label.split()[1]) if label.startswith("Epoch ") else None
            proj = (first + k * measured) if first and measured and k else None
            shown = f"~{_hm(proj)} (projected)" if proj else "⏳"
        lines.append(f"| {label} | {('~' + _hm(planned)) if planned else '—'} | {shown} |")
    total = [f"~{(tl.setup_minutes or 0) + n * tl.epoch_minutes:.0f} minutes planned"
             if n and tl.epoch_minutes is not None else None,
             f"~{n * measured / 60:.0f} minutes of training at {measured / 60:.1f} min/epoch measured"
             if n and measured else None]
    return (lines + ["", f"**Total Runtime**: {'; '.join(t for t in total if t) or 'unknown'}"]
            + _epoch_table(preset, state))


def _epoch_table(preset: Preset, state: RunState) -> list[str]:
    """Every epoch (a run counted in steps: every evaluation) with the columns `status` shows:
    the losses, the engine's metrics where the run has them, the script's own metrics."""
    step = state.axis == "step"
    recs = [r for r in state.epochs if r.validated] if step else state.epochs
    lines = ["", f"**{'Evaluations by step' if step else 'Epochs'}**:", ""]
    if not recs:
        return lines + [f"(no {'evaluation' if step else 'epoch'} yet)"]
    own = own_metrics(preset, state)
    engine = state.engine_phases or any(r.sharpe is not None or r.horizons for r in state.epochs)
    h = preset.default_horizon
    head = ["Step" if step else "Epoch", "train_loss", "val_loss",
            *(["Sharpe", f"IC (h{h})", "SCALE min"] if engine else []), "Ended", *own]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in recs:
        cells = [str(r.epoch), _num(r.train_loss), _num(r.val_loss)]
        if engine:
            at = r.horizons.get(h)
            scales = [x.scale for x in r.horizons.values() if x.scale is not None and math.isfinite(x.scale)]
            cells += [_num(r.sharpe), _num(at.ic if at else None), _num(min(scales) if scales else None, 2)]
        cells += [_hm(r.ended_at), *(_num(own_value(r, k)) for k in own)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _checkpoints(v: Verdicts, preset: Preset) -> list[str]:
    lines = ["## 🚨 Critical Checkpoints"]
    rules = {cp.title: cp.rules for cp in preset.checkpoints}
    for c in v.checkpoints:
        lines += ["", f"### {c.title} ({c.where})"]
        if c.look_for:
            lines += ["", "**Look for**:"] + [f"- {x}" for x in c.look_for]
        lines += ["", "**Decision**:"]
        for r in rules.get(c.title, ()):
            cond = " and ".join(x.describe() for x in r.when) or "otherwise"
            lines.append(f"- If {cond} → {r.mark} {r.say or r.verdict}")
        values = ", ".join(f"{k} = {_metric_num(k, x)}" for k, x in c.values)
        result = {
            "pending": "⏳ Pending", "not_reached": "➖ Not reached (the run ended before this epoch)",
            "no_data": f"➖ No decision: the metrics were not measured ({values or 'no values'})",
        }.get(c.status, f"{c.mark} **{c.verdict}**: {c.say} ({values})")
        lines.append(f"\n**Result**: {result}")
    return lines if v.checkpoints else lines + ["", "(this preset defines no checkpoints)"]


def _baselines(v: Verdicts, baselines: Baselines | None, name: str) -> list[str]:
    lines = ["## 📊 Baseline Comparison", ""]
    runs = baselines.runs if baselines else ((v.baseline,) if v.baseline else ())
    if runs:
        own = sorted({k for b in runs for k in b.metrics if split_metric_key(k)[0] not in METRICS})
        lines += ["**Previous Experiments**:", "",
                  "| Experiment | Config | Sharpe | IC (h20) | SCALE | " + "".join(f"{k} | " for k in own)
                  + "Status |",
                  "|------------|--------|--------|----------|-------|" + "---|" * len(own) + "--------|"]
        for b in runs:
            lines.append(f"| {b.name} | {b.config} | {_num(b.metrics.get('sharpe'))} | "
                         f"{_num(b.metrics.get('ic_h20'))} | {_num(b.metrics.get('scale'), 2)} | "
                         + "".join(f"{_num(b.metrics.get(k))} | " for k in own) + f"{b.status} |")
        lines.append("")
    ref = f" (baseline: {v.baseline.name})" if v.baseline else ""
    lines += [f"**Current {name}**{ref}:", "",
              "| Metric | Target | Baseline | Current | Best | Trend | Status |",
              "|--------|--------|----------|---------|------|-------|--------|"]
    for r in v.table:
        lines.append(f"| **{r.label}** | {r.target or '—'} | {_metric_num(r.label, r.baseline)} | "
                     f"{_metric_num(r.label, r.current)} | {_metric_num(r.label, r.best)} | "
                     f"{TREND[r.trend]} | {r.status} |")
    return lines


def _monitoring(run: str, pid: Any, log: str, n: int | None) -> list[str]:
    q = shlex.quote(log)
    return ["## 🔧 Monitoring Commands", "", "### Quick Status", "```bash",
            "# Process status", f"ps -p {pid or 'PID'} -o pid,stat,%cpu,etime --no-headers", "",
            "# Latest log output", f"tail -30 {q}", "", "# Find epoch completions",
            f'grep -E "Epoch [0-9]+/{n or "[0-9]+"}" {q} | tail -5', "```", "",
            "### Real-Time Monitoring", "```bash",
            f'tail -f {q} | grep -E "Epoch|train/total_loss|val/loss|SCALE|Sharpe"',
            f'tail -f {q} | grep "Val metrics"', "```", "", "### Critical Metrics Extraction", "```bash",
            f'grep "SCALE(yhat/y)" {q}', f'grep "Sharpe:" {q}', f'grep "IC=" {q} | grep "h=20"', "```",
            "", "### With runctl", "```bash", f"runctl status {run}", f"runctl watch {run}",
            f"runctl report {run}", f"runctl kill {run}", "```"]


def _next(v: Verdicts, preset: Preset) -> list[str]:
    r = v.recommendation
    lines = ["## 🎯 Next Actions Based on Results", "",
             f"**Now**: **{r.action.upper()}**{f' `{r.preset}`' if r.preset else ''} - {r.why}"
             + (f" (from {r.source})" if r.source else "")]
    if r.steps:
        lines += ["", "**Steps**:"] + [f"{i}. {s}" for i, s in enumerate(r.steps, 1)]
    if r.alternatives:
        lines += ["", "**Possible Next Steps**: " + ", ".join(f"`{a}`" for a in r.alternatives)]
    if r.command:
        lines += ["", "**Command**:", "```bash", r.command, "```"]
    if preset.next:
        lines += ["", "**Decision map** (verdict → next):", ""]
        for a in preset.next.values():
            lines.append(f"- `{a.verdict}` → {f'launch `{a.preset}`' if a.preset else 'no launch'}: {a.why}")
    return lines


def _next_checkpoint(v: Verdicts) -> str:
    pending = [c for c in v.checkpoints if c.status == "pending"]
    return f"{pending[0].title} ({pending[0].where})" if pending else "none left"


def render_report(
    preset: Preset, state: RunState, verdicts: Verdicts, manifest: Mapping[str, Any] | None = None,
    *, baselines: Baselines | None = None, baseline_preset: Preset | None = None,
    now: float | None = None,
) -> str:
    """The run's status page as Markdown (paste-able into a doc)."""
    m = manifest or {}
    n = max_epochs_of(preset, state)
    now = now if now is not None else (state.last_time or time.time())
    log = str(m.get("log") or m.get("log_path") or "(unknown log)")
    run = str(m.get("run") or state.run or preset.name)
    launched = _ts(m.get("launched_at") or m.get("started_at") or m.get("created_at")) or state.started_at
    parts = [
        _header(preset, state, m, log, n), _objective(preset, verdicts), _current(state, verdicts, n, now),
        _changes(preset, baseline_preset), _timeline(preset, state, launched, n),
        _checkpoints(verdicts, preset), _baselines(verdicts, baselines, run),
        _monitoring(run, m.get("pid") or state.pid, log, n), _next(verdicts, preset),
        [f"**Last Updated**: {_full(now)} ({state.state})  ",
         f"**Status**: {_status_line(state, n)}  ",
         f"**Next Checkpoint**: {_next_checkpoint(verdicts)}  ",
         "", "*Generated by runctl from the run's log.*"],
    ]
    return RULE.join("\n".join(p) + "\n" for p in parts)
