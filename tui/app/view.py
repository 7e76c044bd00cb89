"""What the follower hands to the widgets: frozen snapshots plus pure formatting helpers."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.cells import cell_len

from tui.judge.conditions import max_epochs_of, metric_values, worst
from tui.judge.results import Verdicts
from tui.presets.preset import HORIZON_METRICS, Preset, metric_label
from tui.runs.hosts import LOCAL
from tui.state.records import EpochRecord
from tui.state.run import RunState

ACTIVE = ("launching", "initializing", "training", "validating", "stalled")
STATE_MARKS = {
    "launching": "◌", "initializing": "◔", "training": "●", "validating": "◑", "stalled": "◎",
    "finished": "✔", "crashed": "✖", "killed": "■", "damaged": "⚠",
}


@dataclass(frozen=True)
class RunView:
    """One run as the widgets see it; `state` is a private copy, never mutated after posting."""

    run: str | None
    state: RunState
    preset: Preset | None = None
    verdicts: Verdicts | None = None
    log_path: Path | None = None
    launched_at: float | None = None
    manifest: Any = None
    steps: tuple[tuple[float, float], ...] = ()  # (global step, train loss) of the progress lines
    loaded: bool = True  # False: listed from its manifest, the log not read yet (runs screen)
    notice: str | None = None  # what went wrong around the run (its log, manifest, folder, host): one line
    host: str | None = None  # issue 19: its host ("local": this machine among hosts; None: none)

    @property
    def active(self) -> bool:
        """The run may still write to its log."""
        return self.state.state in ACTIVE

    @property
    def far_host(self) -> str | None:
        """The host it runs on when that is not this machine (None: this machine's run)."""
        return self.host if self.host not in (None, LOCAL) else None

    @property
    def key(self) -> str | None:
        """How commands name it: `HOST:RUN` for a run on a host, else its id (the runs screen's
        row key)."""
        if self.far_host is None or self.run is None or ":" in self.run:
            return self.run
        return f"{self.far_host}:{self.run}"

    @property
    def max_epochs(self) -> int | None:
        """Epochs the run will do (log first, then the preset); a run counted in steps: its steps."""
        return max_epochs_of(self.preset, self.state)

    @property
    def unit(self) -> str:
        """What the run's timeline counts: `epoch`, or `step` for a run without epochs."""
        return self.state.axis


@dataclass(frozen=True)
class ProcView:
    """A psutil/NVML sample of the run's process (alive False: gone or never seen)."""

    pid: int | None
    alive: bool
    status: str = ""
    cpu_percent: float | None = None
    rss: int | None = None
    threads: int | None = None
    children: int | None = None
    read_bytes: int | None = None
    write_bytes: int | None = None
    gpu: str = "no GPU"


def field_of(obj: Any, name: str, default: Any = None) -> Any:
    """`obj.name` or `obj[name]` (manifests may be dataclasses or mappings)."""
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


MISSING = "—"


def num(x: float | None, digits: int = 4) -> str:
    """A value with `digits` significant digits (`0.6312`, `0.02100`, `1235`, `1.235e-05`);
    `—` when missing or not finite. Trailing zeros stay: they are the precision."""
    if x is None or not math.isfinite(x):
        return MISSING
    if x == 0:
        return "0." + "0" * (digits - 1)
    text = f"{x:#.{digits}g}"
    return text[:-1] if text.endswith(".") else text


def align(cells: Sequence[str]) -> list[str]:
    """A column of `num` texts aligned on the decimal point (all of one width); other texts
    (`—`) are right-aligned where the integer part ends."""
    parts = []
    for c in cells:
        head, dot, tail = c.partition(".")
        number = bool(head.lstrip("-").isdigit())
        parts.append((head, dot + tail) if number else (c, ""))
    left = max((len(h) for h, _ in parts), default=0)
    right = max((len(t) for _, t in parts), default=0)
    return [h.rjust(left) + t.ljust(right) for h, t in parts]


def fit(text: str, width: int) -> str:
    """`text` cut to `width` cells, ending in `…` when cut."""
    if width <= 0:
        return ""
    if cell_len(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = cell_len(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def duration(secs: float | None) -> str:
    """`42s`, `3m05s`, `1h02m`; `—` when unknown."""
    if secs is None or not math.isfinite(secs) or secs < 0:
        return "—"
    s = int(round(secs))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def clock(ts: float | None) -> str:
    """Local `HH:MM` of a unix time; `—` when unknown."""
    return "—" if ts is None else time.strftime("%H:%M", time.localtime(ts))


def size(n: int | None) -> str:
    """Bytes as `12.0 MiB`."""
    if n is None:
        return "—"
    v = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if v < 1024 or unit == "GiB":
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1024
    return f"{v:.1f} TiB"


def epoch_seconds(rec: EpochRecord) -> float | None:
    """How long an epoch took (start to its last validation line)."""
    if rec.started_at is None or rec.ended_at is None:
        return None
    return max(0.0, rec.ended_at - rec.started_at)


def mean_epoch_seconds(view: RunView) -> float | None:
    """Measured mean epoch time, else the preset's expectation."""
    done = [d for r in view.state.epochs if r.validated and (d := epoch_seconds(r)) is not None]
    if done:
        return sum(done) / len(done)
    tl = view.preset.timeline if view.preset else None
    return tl.epoch_minutes * 60 if tl and tl.epoch_minutes else None


def start_time(view: RunView) -> float | None:
    """When the run was launched (manifest) or first logged."""
    return view.launched_at or view.state.started_at


def expected_end(view: RunView, epoch: int) -> float | None:
    """The preset's expected end time of `epoch` (launch + setup + epoch x epoch time)."""
    tl = view.preset.timeline if view.preset else None
    t0 = start_time(view)
    if t0 is None or tl is None or tl.epoch_minutes is None:
        return None
    return t0 + ((tl.setup_minutes or 0.0) + epoch * tl.epoch_minutes) * 60


def eta_seconds(view: RunView, now: float) -> float | None:
    """Seconds until the last epoch ends (None: finished or unknown); a run counted in steps:
    until its last step, at its pace (`step_eta_seconds`)."""
    st, n = view.state, view.max_epochs
    if not view.active or n is None:
        return None
    if st.axis == "step":
        return step_eta_seconds(view, n)
    per = mean_epoch_seconds(view)
    if per is None:
        return None
    done = sum(1 for r in st.epochs if r.validated)
    current = st.progress
    if current.epoch is not None and current.epoch > done and current.eta_s is not None:
        return current.eta_s + per * max(0, n - current.epoch)
    if done == 0 and st.epoch is None:
        end = expected_end(view, n)
        return None if end is None else max(0.0, end - now)
    return per * max(0, n - done)


def step_eta_seconds(view: RunView, n: int) -> float | None:
    """A step run's seconds until step `n`: the steps left at its pace, measured over its latest
    steps (`RunData.step_rate`: the log's timestamps, else when each step was read, as a live
    follower sees them), else at its progress bar's rate where that bar counts the run's steps."""
    st, p = view.state, view.state.progress
    step = st.epoch if st.epoch is not None else p.step
    if step is None:
        return None
    rate = st.step_rate()
    if rate is None and p.steps == n and p.steps_per_s:
        rate = p.steps_per_s
    return max(0, n - step) / rate if rate else None


def elapsed_seconds(view: RunView, now: float) -> float | None:
    """Run time so far (to the last log line once the run has ended)."""
    t0 = start_time(view)
    if t0 is None:
        return None
    end = now if view.active else (view.state.last_time or now)
    return max(0.0, end - t0)


def horizon_value(rec: EpochRecord, metric: str, horizon: int | str) -> float | None:
    """`ic`/`rank_ic`/`scale` at one horizon, or the lowest over all ("all")."""
    if horizon == "all":
        vals = [v for m in rec.horizons.values() if (v := getattr(m, metric)) is not None]
        return min(vals) if vals else None
    m = rec.horizons.get(int(horizon))
    return getattr(m, metric) if m else None


# ------------------------------------------------------------------------------------ layout
@dataclass(frozen=True)
class Want:
    """What one panel asks of the rows left: at least `least`, at most `most` (`whole`: `most`
    or nothing more than `least`, for a panel with a compact and a full form)."""

    name: str
    least: int
    most: int
    whole: bool = False


def allocate(rows: int, wants: Sequence[Want]) -> dict[str, int]:
    """Rows by priority: each panel in order gets its least while rows last, then each in order
    grows towards its most. A panel earlier in `wants` is never squeezed for a later one."""
    out = {w.name: 0 for w in wants}
    left = max(0, rows)
    for w in wants:
        out[w.name] = min(w.least, left)
        left -= out[w.name]
    for w in wants:
        more = min(max(0, w.most - out[w.name]), left)
        if w.whole and out[w.name] + more < w.most:
            more = 0
        out[w.name] += more
        left -= more
    return out


# ------------------------------------------------------------------------------------ metrics
def short_label(key: str, label: str) -> str:
    """A column header for a metric: `Val`, `Sharpe`, `IC h20`, `SCALE`, else the label."""
    fixed = {"train_loss": "Train", "val_loss": "Val", "sharpe": "Sharpe", "scale": "SCALE"}
    if key in fixed:
        return fixed[key]
    metric, _, h = key.rpartition("_h")
    if label == key and metric in HORIZON_METRICS and h.isdigit():
        label = metric_label(metric, int(h))
    return label.replace(" (h", " h").replace(" (all h)", "").removesuffix(")")


def epoch_value(rec: EpochRecord, key: str) -> float | None:
    """A metric of one epoch by its table key, read as the judge reads it: `val_loss`, `sharpe`,
    `ic_h20` (one horizon), `scale` (all horizons: the worst), or any name the log carried."""
    metric, _, h = key.rpartition("_h")
    horizon: int | str | None
    if metric in HORIZON_METRICS and h.isdigit():
        horizon = int(h)
    else:
        metric, horizon = key, ("all" if key in HORIZON_METRICS else None)
    return worst(metric_values(rec, metric, horizon), metric, None)
