"""A log message -> typed event: the regex table and the recognisers of both formats' messages.

`tui.log.parse` splits off a line's prefix (`tui.log.prefix`) and hands the message here: our engine's
`[tag]` lines, the original pipeline's hydra and wrapper messages, bare tqdm fragments and
tracebacks (docs/log-format.md, shared atft-pipeline.md). Pure.
"""

from __future__ import annotations

import re

from tui.log.events import (
    AchievedSharpe,
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
    Metrics,
    Phase,
    PhaseEpoch,
    PhaseValMetrics,
    Progress,
    Sharpe,
    Signal,
    Start,
    TracebackStart,
    TrainingStart,
    TrainLoss,
    ValLoss,
    WrapperResult,
)
from tui.log.prefix import hms_seconds, num, to_int

# ---------------------------------------------------------------- the regex table

_KV_RE = re.compile(r"([\w/]+(?:\(yhat/y\))?)=(\S+)")
_EPOCH_RE = re.compile(r"(?:\[\w{1,20}\] )?Epoch (\d+)/(\d+)\s*$")
_PHASE_EPOCH_RE = re.compile(
    r"Epoch (\d+)/(\d+): Train Loss=([^,\s]+), Val Loss=([^,\s]+)(?:, LR=(\S+))?"
)
_TAG_VAL_RE = re.compile(r"\[(\w{1,20})\] Validation loss: (\S+)")
_VALM_RE = re.compile(r"Val metrics \(([^)]*)\) +h=(\d+):(.*)")
# `Val metrics` as the original pipeline and our engine write them: _VALM_RE and its _kv template
# in one match
_VALM_ATFT_RE = re.compile(r"Val metrics \(([^)]*)\) +h=(\d+): MAE=(\S+) RMSE=(\S+) R2=(\S+) IC=(\S+) "
                           r"NAIVE_RMSE=(\S+) SCALE\(yhat/y\)=(\S+) CAL=(\S+)")
_VALM_ENGINE_RE = re.compile(r"Val metrics \(([^)]*)\) +h=(\d+): MAE=(\S+) RMSE=(\S+) IC=(\S+) RankIC=(\S+) "
                             r"SCALE\(yhat/y\)=(\S+) HIT=(\S+)")
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
_START_RE = re.compile(r"runctl (engine|callback) (\S+) starting: pid=(\d+)(?: run_dir=(\S+))?")
_METRIC_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_./-]*)=(\S+)")
_TRAIN_START_RE = re.compile(r"Starting training: max_epochs=(\d+)(?: steps_per_epoch=(\d+))?")
_CKPT_RE = re.compile(r"Checkpoint saved: (.+?)(?: \(epoch=(\d+)\))?\s*$")
_BEST_RE = re.compile(r"Best model saved \((\w+)\) \(val_loss: ([^)\s]+)\)")
_TQDM_RE = re.compile(
    r"Epoch (\d+):\s+(?:(\d+)%\|[^|]*\|\s*(\d+)/(\d+)|(\d+)it)\s+\[([\d:]+)(?:<([\d:?]+))?,\s+"
    r"(?:([\d.]+)(s/it|it/s)|\?it/s)(?:, loss=([^\],\s]+))?"
)
_POSTFIX_RE = re.compile(r"([A-Za-z_][\w./-]*)=([^,\s\]]+)")  # a tqdm postfix's `name=value`
_EMOJI_RE = re.compile(r"[^\x00-\x7f]+\s*")
TRACEBACK = "Traceback (most recent call last)"


# ---------------------------------------------------------------- recognisers


# The per-horizon metrics of both formats, exactly as written: one match instead of a findall (half
# the cost of the line). A text that matches is one `key=value` per space-separated token, so it
# gives the same dict as the findall; anything else falls back to it.
_KV_TEMPLATES = tuple(
    (re.compile(" " + " ".join(re.escape(k) + r"=(\S+)" for k in keys)), keys)
    for keys in (("MAE", "RMSE", "R2", "IC", "NAIVE_RMSE", "SCALE(yhat/y)", "CAL"),  # the original
                 ("MAE", "RMSE", "IC", "RankIC", "SCALE(yhat/y)", "HIT"))  # our engine
)


def _kv(text: str) -> dict[str, str]:
    for template, keys in _KV_TEMPLATES:
        m = template.fullmatch(text)
        if m is not None:
            return dict(zip(keys, m.groups(), strict=True))
    return dict(_KV_RE.findall(text))


def _split(pair: str | None) -> tuple[int | None, int | None]:
    """'3/10' -> (3, 10)."""
    if not pair or "/" not in pair:
        return to_int(pair), None
    a, _, b = pair.partition("/")
    return to_int(a), to_int(b)


def _tagged(m: str, t: float | None, lv: str | None) -> Event | None:
    """Messages that start with a `[tag]`."""
    if m.startswith("[progress] "):
        kv = _kv(m)
        e, n = _split(kv.get("epoch"))
        s, total = _split(kv.get("step"))
        return Progress(e, n, s, total, num(kv.get("steps/s")), hms_seconds(kv.get("eta")),
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
            return Exit(x.group(1), to_int(x.group(2)), to_int(x.group(3)), t=t, level=lv)
        return None
    if m.startswith("[error] "):
        return Error(m, fatal=True, t=t, level=lv)
    if m.startswith("[signal] "):
        return Signal(m[9:].split(" ", 1)[0].rstrip(":"), t=t, level=lv)
    if m.startswith("[metrics] "):
        pairs = _METRIC_TOKEN.findall(m, 10)
        if not pairs or pairs[0][0] != "epoch" or to_int(pairs[0][1]) is None:
            return None
        return Metrics(int(pairs[0][1]), tuple((k, num(v)) for k, v in pairs[1:]), t=t, level=lv)
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


def message_event(m: str, t: float | None, lv: str | None, fmt: str) -> Event | None:
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
                return TrainingStart(int(x.group(1)), to_int(x.group(2)), t=t, level=lv)
        elif m.startswith("Starting production training"):
            return Start("trainer", t=t, level=lv)
    elif c == "V":
        x = _VALM_ENGINE_RE.fullmatch(m)
        if x:
            v, h, mae, rmse, ic, ric, scale, hit = x.groups()
            return HorizonMetrics(int(h), num(ic), num(ric), num(scale), num(mae), num(rmse), num(hit),
                                  v.replace(" ", "").lower(), t=t, level=lv)
        x = _VALM_ATFT_RE.fullmatch(m)
        if x:
            return HorizonMetrics(int(x.group(2)), num(x.group(6)), None, num(x.group(8)), num(x.group(3)),
                                  num(x.group(4)), None, x.group(1).replace(" ", "").lower(), t=t, level=lv)
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
            return Checkpoint(x.group(1), to_int(x.group(2)), t=t, level=lv)
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
    elif m.startswith("runctl "):
        x = _START_RE.match(m)
        if x:
            return Start(x.group(1), to_int(x.group(3)), x.group(4), x.group(2), t=t, level=lv)
    return None


def bare_event(line: str) -> Event | None:
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
    step = to_int(x.group(3) or x.group(5))
    rate = num(x.group(8))
    if rate is not None and x.group(9) == "s/it":
        rate = 1.0 / rate if rate > 0 else None
    end = text.find("]", x.start(6))
    post = tuple((k, num(v)) for k, v in _POSTFIX_RE.findall(text, x.start(6), end if end >= 0 else len(text))
                 if k != "v_num")  # Lightning's logger version, not a metric
    return Progress(int(x.group(1)), None, step, to_int(x.group(4)), rate, hms_seconds(x.group(7)),
                    num(x.group(10)), "tqdm", postfix=post, t=t, level=level)
