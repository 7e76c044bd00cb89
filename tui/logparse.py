"""Log line -> typed event, for both our engine's log and the original ATFT pipeline's log.

Pure: no I/O, no state beyond `LineParser`'s traceback context. `tui.follow` feeds it bytes
from a file; `RunState.apply` folds the events (docs/log-format.md, shared atft-pipeline.md).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from tui.events import (  # noqa: F401 - re-exported: callers use logparse.<Event>
    AchievedSharpe,
    Activity,
    BestValLoss,
    Checkpoint,
    Complete,
    EpochEnd,
    EpochStart,
    Error,
    Event,
    Exit,
    GradGroup,
    GradMonitor,
    GradWarning,
    HorizonMetrics,
    LearningRate,
    LowVariance,
    Phase,
    PhaseEpoch,
    PhaseValMetrics,
    Progress,
    Reset,
    Sharpe,
    Signal,
    Start,
    TracebackEnd,
    TracebackStart,
    TrainingStart,
    TrainLoss,
    ValLoss,
    Warning,
    WrapperResult,
)

if TYPE_CHECKING:
    from tui.runstate import RunState



# ---------------------------------------------------------------- prefixes and timestamps

_TS = r"(\d{4}-\d\d-\d\d \d\d:\d\d):(\d\d),(\d{3})"
HYDRA_RE = re.compile(r"\[" + _TS + r"\]\[([^\]\[\n]{1,200})\]\[([A-Z]{3,8})\] - ")
WRAPPER_RE = re.compile(_TS + r" - (\S{1,200}) - ([A-Z]{3,8}) - ")
_EMOJI_RE = re.compile(r"[^\x00-\x7f]+\s*")
_MINUTES: dict[str, float] = {}


def _unix(minute: str, sec: str, ms: str) -> float | None:
    """'YYYY-mm-dd HH:MM', 'SS', 'mmm' (local time) -> unix seconds, cached per minute."""
    base = _MINUTES.get(minute)
    if base is None:
        try:
            base = time.mktime(time.strptime(minute, "%Y-%m-%d %H:%M"))
        except (ValueError, OverflowError):
            return None
        if len(_MINUTES) > 4096:
            _MINUTES.clear()
        _MINUTES[minute] = base
    return base + int(sec) + int(ms) / 1000.0


def split_prefix(line: str) -> tuple[float | None, str | None, str | None, str, str]:
    """line -> (t, logger, level, message, fragment before the prefix); level None: no prefix."""
    m = HYDRA_RE.match(line) or WRAPPER_RE.match(line)
    if m is None and "][" in line:
        m = HYDRA_RE.search(line)
    if m is None:
        return None, None, None, line, ""
    level = m.group(5)
    if level == "CRITICAL":
        level = "ERROR"
    return _unix(m.group(1), m.group(2), m.group(3)), m.group(4), level, line[m.end():], line[: m.start()]


def line_time(line: str) -> float | None:
    """The timestamp of a log line, None when it has no prefix."""
    return split_prefix(line)[0]


# ---------------------------------------------------------------- numbers


def num(text: str | None) -> float | None:
    """'0.35' -> 0.35; 'nan' (or unparsable) -> None; inf stays inf."""
    if text is None:
        return None
    try:
        x = float(text.rstrip(",);s%"))
    except ValueError:
        return None
    return None if math.isnan(x) else x


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _hms(text: str | None) -> float | None:
    """'01:02:03' / '02:03' -> seconds."""
    if not text or "?" in text:
        return None
    try:
        parts = [int(p) for p in text.split(":")]
    except ValueError:
        return None
    secs = 0
    for p in parts:
        secs = secs * 60 + p
    return float(secs)


# ---------------------------------------------------------------- messages

_KV_RE = re.compile(r"([\w/]+(?:\(yhat/y\))?)=(\S+)")
_EPOCH_RE = re.compile(r"(?:\[\w{1,20}\] )?Epoch (\d+)/(\d+)\s*$")
_PHASE_EPOCH_RE = re.compile(
    r"Epoch (\d+)/(\d+): Train Loss=([^,\s]+), Val Loss=([^,\s]+)(?:, LR=(\S+))?"
)
_TAG_VAL_RE = re.compile(r"\[(\w{1,20})\] Validation loss: (\S+)")
_VALM_RE = re.compile(r"Val metrics \(([^)]*)\) +h=(\d+):(.*)")
_PHASE_VALM_RE = re.compile(
    r"Val Metrics\s*- Sharpe: ([^,\s]+), IC: ([^,\s]+), RankIC: ([^,\s]+)(?:, HitRate\(h1\): (\S+))?"
)
_SHARPE_RE = re.compile(r"Sharpe: (\S+)\s*$")
_LOWVAR_RE = re.compile(r"Low prediction variance for horizon (\d+): scale_ratio=([^,\s]+)(?:, yhat_std=(\S+))?")
_GRADW_RE = re.compile(r"\[GRAD-MONITOR\] ([\w.\-]+): (\w+) gradients(?: \(l2=([^,)\s]+))?")
_GRADS_RE = re.compile(r"\[GRAD-MONITOR\] step=(\d+) epoch=(\d+) batch=(\d+) ?(.*)")
_GROUP_RE = re.compile(
    r"([\w.\-]+):l2=(\S+) max=(\S+) grad=(\d+)/(\d+) small=(\d+) none=(\d+)"
)
_EXIT_RE = re.compile(r"\[exit\] reason=(\w+)(?: status=(-?\d+))?(?: epochs_completed=(\d+))?")
_START_RE = re.compile(r"runctl engine (\S+) starting: pid=(\d+)(?: run_dir=(\S+))?")
_TRAIN_START_RE = re.compile(r"Starting training: max_epochs=(\d+)(?: steps_per_epoch=(\d+))?")
_CKPT_RE = re.compile(r"Checkpoint saved: (.+?)(?: \(epoch=(\d+)\))?\s*$")
_BEST_RE = re.compile(r"Best model saved \((\w+)\) \(val_loss: ([^)\s]+)\)")
_TQDM_RE = re.compile(
    r"Epoch (\d+):\s+(?:(\d+)%\|[^|]*\|\s*(\d+)/(\d+)|(\d+)it)\s+\[([\d:]+)(?:<([\d:?]+))?,\s+"
    r"(?:([\d.]+)(s/it|it/s)|\?it/s)(?:, loss=([^\],\s]+))?"
)
TRACEBACK = "Traceback (most recent call last)"


def _kv(text: str) -> dict[str, str]:
    return dict(_KV_RE.findall(text))


def _split(pair: str | None) -> tuple[int | None, int | None]:
    """'3/10' -> (3, 10)."""
    if not pair or "/" not in pair:
        return _int(pair), None
    a, _, b = pair.partition("/")
    return _int(a), _int(b)


def _tagged(m: str, t: float | None, lv: str | None) -> Event | None:
    """Messages that start with a `[tag]`."""
    if m.startswith("[progress] "):
        kv = _kv(m)
        e, n = _split(kv.get("epoch"))
        s, total = _split(kv.get("step"))
        return Progress(e, n, s, total, num(kv.get("steps/s")), _hms(kv.get("eta")),
                        num(kv.get("loss")), t=t, level=lv)
    if m.startswith("[GRAD-MONITOR] "):
        g = _GRADS_RE.match(m)
        if g:
            groups = tuple(
                GradGroup(x[0], num(x[1]), num(x[2]), int(x[3]), int(x[4]), int(x[5]), int(x[6]))
                for x in _GROUP_RE.findall(g.group(4))
            )
            return GradMonitor(int(g.group(1)), int(g.group(2)), int(g.group(3)), groups, t=t, level=lv)
        w = _GRADW_RE.match(m)
        if w:
            return GradWarning(w.group(1), w.group(2), num(w.group(3)), m[15:], t=t, level=lv)
        return None
    if m.startswith("[exit] "):
        x = _EXIT_RE.match(m)
        if x:
            return Exit(x.group(1), _int(x.group(2)), _int(x.group(3)), t=t, level=lv)
        return None
    if m.startswith("[error] "):
        return Error(m, fatal=True, t=t, level=lv)
    if m.startswith("[signal] "):
        return Signal(m[9:].split(" ", 1)[0].rstrip(":"), t=t, level=lv)
    if m.startswith("[epoch-end] "):
        kv = _kv(m)
        e, n = _split(kv.get("epoch"))
        if e is None:
            return None
        return EpochEnd(e, n, num(kv.get("train_loss")), num(kv.get("val_loss")), num(kv.get("sharpe")),
                        num(kv.get("sharpe_ann")), num(kv.get("time")), t=t, level=lv)
    if m.startswith("[data-filter] Global minimum date filter"):
        return Phase("date_filter", m, t=t, level=lv)
    x = _EPOCH_RE.match(m)
    if x:
        return EpochStart(int(x.group(1)), int(x.group(2)), t=t, level=lv)
    x = _TAG_VAL_RE.match(m)
    if x:
        return ValLoss(num(x.group(2)), x.group(1), t=t, level=lv)
    return None


def _message(m: str, t: float | None, lv: str | None, fmt: str) -> Event | None:
    """A log message (prefix removed) -> event."""
    m = m.lstrip()
    emoji = ""
    if m and m[0] > "\x7f":
        e = _EMOJI_RE.match(m)
        if e:
            emoji, m = e.group(0).strip(), m[e.end():]
    if not m:
        return None
    c = m[0]
    if c == "[":
        return _tagged(m, t, lv)
    if fmt == "wrapper":
        low = m.lower()
        if low.endswith("pipeline started"):
            return Start("wrapper", t=t, level=lv)
        if "pipeline completed successfully" in low or "pipeline succeeded" in low:
            return WrapperResult(True, m, t=t, level=lv)
        if lv == "ERROR" and (emoji.startswith("\u274c") or m.startswith("Training failed")):
            return WrapperResult(False, m, t=t, level=lv)
    if c == "E":
        x = _EPOCH_RE.match(m)
        if x:
            return EpochStart(int(x.group(1)), int(x.group(2)), t=t, level=lv)
        x = _PHASE_EPOCH_RE.match(m)
        if x:
            return PhaseEpoch(int(x.group(1)), int(x.group(2)), num(x.group(3)), num(x.group(4)),
                              num(x.group(5)), t=t, level=lv)
    elif c == "S":
        if m.startswith("Sharpe: "):
            x = _SHARPE_RE.match(m)
            if x:
                return Sharpe(num(x.group(1)), t=t, level=lv)
        elif m.startswith("Starting training"):
            x = _TRAIN_START_RE.match(m)
            if x:
                return TrainingStart(int(x.group(1)), _int(x.group(2)), t=t, level=lv)
        elif m.startswith("Starting production training"):
            return Start("trainer", t=t, level=lv)
    elif c == "V":
        x = _VALM_RE.match(m)
        if x:
            kv = _kv(x.group(3))
            variant = x.group(1).replace(" ", "").lower()
            return HorizonMetrics(int(x.group(2)), num(kv.get("IC")), num(kv.get("RankIC")),
                                  num(kv.get("SCALE(yhat/y)")), num(kv.get("MAE")), num(kv.get("RMSE")),
                                  num(kv.get("HIT")), variant, t=t, level=lv)
        x = _PHASE_VALM_RE.match(m)
        if x:
            return PhaseValMetrics(num(x.group(1)), num(x.group(2)), num(x.group(3)), num(x.group(4)),
                                   t=t, level=lv)
    elif m.startswith("train/total_loss: "):
        return TrainLoss(num(m[18:].strip()), t=t, level=lv)
    elif m.startswith("val/loss: "):
        return ValLoss(num(m[10:].strip()), t=t, level=lv)
    elif m.startswith("Learning rate: "):
        return LearningRate(num(m[15:].strip()), t=t, level=lv)
    elif m.startswith("Low prediction variance"):
        x = _LOWVAR_RE.match(m)
        if x:
            return LowVariance(int(x.group(1)), num(x.group(2)), num(x.group(3)), t=t, level=lv)
    elif m.startswith("=== Training Complete"):
        return Complete(t=t, level=lv)
    elif m.startswith("Best validation loss: "):
        return BestValLoss(num(m[22:].strip()), t=t, level=lv)
    elif m.startswith("Best model saved"):
        x = _BEST_RE.match(m)
        if x:
            return Checkpoint(None, None, True, num(x.group(2)), t=t, level=lv)
    elif m.startswith("Checkpoint saved: "):
        x = _CKPT_RE.match(m)
        if x:
            return Checkpoint(x.group(1), _int(x.group(2)), t=t, level=lv)
    elif m.startswith("Achieved Sharpe Ratio: "):
        return AchievedSharpe(num(m[23:].strip()), t=t, level=lv)
    elif m.startswith(("GPU: ", "Using device: ")):
        return Phase("device", m, t=t, level=lv)
    elif m.startswith("Found hidden_size="):
        return Phase("hidden_size", m, t=t, level=lv)
    elif m.startswith("Found ") and " train, " in m:
        return Phase("files", m, t=t, level=lv)
    elif m.startswith("Fitting OnlineRobustScaler"):
        return Phase("scaler", m, False, t=t, level=lv)
    elif m.startswith(("OnlineRobustScaler fitted", "Iterable datasets ready")):
        return Phase("scaler", m, t=t, level=lv)
    elif m.startswith("Creating data loaders"):
        return Phase("loaders", m, False, t=t, level=lv)
    elif m.startswith("Data loaders created"):
        return Phase("loaders", m, t=t, level=lv)
    elif m.startswith("runctl engine "):
        x = _START_RE.match(m)
        if x:
            return Start("engine", _int(x.group(2)), x.group(3), x.group(1), t=t, level=lv)
    return None


def _bare(line: str) -> Event | None:
    """A line with no log prefix: a traceback start or a tqdm fragment."""
    s = line.strip()
    if not s:
        return None
    if TRACEBACK in s:
        return TracebackStart()
    return tqdm_progress(s)


def tqdm_progress(text: str, t: float | None = None, level: str | None = None) -> Progress | None:
    """A tqdm fragment `Epoch 1: 9it [00:35,  3.69s/it, loss=0.3544]` -> Progress."""
    if "Epoch " not in text:
        return None
    x = _TQDM_RE.search(text)
    if x is None:
        return None
    step = _int(x.group(3) or x.group(5))
    rate = num(x.group(8))
    if rate is not None and x.group(9) == "s/it":
        rate = 1.0 / rate if rate > 0 else None
    return Progress(int(x.group(1)), None, step, _int(x.group(4)), rate, _hms(x.group(7)),
                    num(x.group(10)), "tqdm", t=t, level=level)


Continuation = tuple[float | None, str]  # (t, level) of a prefix whose message is empty


def parse_prefixed(line: str) -> tuple[str | None, Event | None, Continuation | None]:
    """line -> (level, event, continuation); continuation: the message went on the next line."""
    t, _logger, lv, msg, frag = split_prefix(line)
    if lv is None:
        return None, _bare(line), None
    if not msg.strip():
        return lv, None, (t, lv)  # logger.info("\n=== Training Complete ===")
    ev = _message(msg, t, lv, "hydra" if line.startswith("[") or frag else "wrapper")
    if ev is None:
        if lv == "WARNING":
            ev = Warning(msg.strip(), t=t, level=lv)
        elif lv == "ERROR":
            ev = Error(msg.strip(), t=t, level=lv)
        elif frag:
            ev = tqdm_progress(frag, t, lv)
    return lv, ev, None


def parse_continuation(line: str, cont: Continuation) -> Event | None:
    """The bare line after an empty-message log line: that line's message."""
    return _message(line, cont[0], cont[1], "hydra") or _bare(line)


def parse_full(line: str) -> tuple[str | None, Event | None]:
    """line -> (level, event); the level also for lines that make no event."""
    lv, ev, _ = parse_prefixed(line)
    return lv, ev


def parse_line(line: str) -> Event | None:
    """One log line (no newline) -> its event, or None for noise."""
    return parse_full(line)[1]


def is_traceback_error(line: str) -> bool:
    """Inside a traceback: is this the non-indented last line that names the error?"""
    if not line or line[0] in " \t" or not line.strip():
        return False
    s = line.lstrip()
    if s.startswith((TRACEBACK, "Traceback", "During handling of the above", "The above exception")):
        return False
    if split_prefix(line)[2] is not None:
        return False
    return tqdm_progress(s) is None


class LineParser:
    """Lines -> events with the context a line lacks: a traceback, a message on the next line."""

    def __init__(self) -> None:
        self.in_traceback = False
        self.cont: Continuation | None = None

    def feed(self, line: str) -> tuple[str | None, Event | None]:
        """One line -> (level, event)."""
        if self.in_traceback and is_traceback_error(line):
            self.in_traceback = False
            self.cont = None
            return None, TracebackEnd(line.strip())
        cont, self.cont = self.cont, None
        lv, ev, self.cont = parse_prefixed(line)
        if cont is not None and lv is None:
            ev = parse_continuation(line, cont)
        if isinstance(ev, TracebackStart):
            self.in_traceback = True
        return lv, ev


def parse_lines(lines: Iterable[str], parser: LineParser | None = None) -> list[Event]:
    """The plain line loop: every line's event plus one closing Activity (the reference reader)."""
    parser = parser or LineParser()
    out: list[Event] = []
    n = warnings = errors = 0
    first: float | None = None
    last: float | None = None
    for line in lines:
        n += 1
        lv, ev = parser.feed(line)
        if lv is not None:
            if lv == "WARNING":
                warnings += 1
            elif lv == "ERROR":
                errors += 1
            t = line_time(line)
            if t is not None:
                last = t
                if first is None:
                    first = t
        if ev is not None:
            out.append(ev)
    out.append(Activity(n, warnings, errors, first, t=last))
    return out


def apply(state: RunState, event: Event) -> None:
    """Fold one event into `state` (see RunState.apply)."""
    state.apply(event)
