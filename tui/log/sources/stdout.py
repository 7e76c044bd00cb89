"""Zero-configuration stdout shapes: what a training script prints, read as metrics as it is.

A line with no log prefix (what `print()` writes) is read when it is, whole:

- an optional position: `step N`, `iter N`, `iteration N`, `epoch N`, `batch N` (any case, `N/M`
  and brackets allowed: `Epoch [2/10]`, several: `Epoch [1/5], Step [100/600]`), then `:`, `,`,
  `|` or `-`;
- then pairs, separated by commas, semicolons, bars or spaces: `name: value`, `name=value` or
  `name value`, where a name is one or two words (`train loss 2.41` -> `train_loss`) of letters,
  digits and `_ . / -`, and a value a number (`nan`/`inf` too) with an optional unit (`12.3ms`,
  `-100.00%`: the number is kept).

nanoGPT's `step 250: train loss 2.4100, val loss 2.5700` and `iter 10: loss 3.9012, time 12.34ms,
mfu -100.00%`, a plain loop's `Epoch 2: train_loss=0.009 val_loss=0.013 val_acc=0.994`,
`loss: 0.23, acc: 0.91`. A line without a position needs a `:`/`=` pair or two pairs (`Loaded 1000`
is not a metric); anything left over (`Saved checkpoint at step 500 to out/`) and the line is not
read. A position alone (`Epoch 3/10`) marks the run's place without a value.

A **tqdm bar** (`Epoch 3:  45%|####5     | 9/20 [00:03<00:04,  2.71it/s, loss=0.323]`, the HF
Trainer's ` 33%|###3      | 16/48 [00:01<00:02, 12.50it/s]`) is progress: its count, total, rate,
ETA and postfix (`loss=0.323`; Lightning's `v_num` left out); not a nested bar (drawn with cursor
moves) nor one described as something else (`Writing model shards`, `Validation DataLoader 0`).
Terminal control sequences are skipped.
"""

from __future__ import annotations

import math
import re

from tui.log.events import Event, Progress, Scalars
from tui.log.prefix import hms_seconds
from tui.log.sources.base import LineSource
from tui.log.sources.values import number, plain

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|NaN|inf|Inf|infinity|Infinity)"
_WORD = r"[A-Za-z_][\w./-]*"
_POS_WORDS = {"epoch": "epoch", "step": "step", "iter": "step", "iteration": "step", "batch": "batch"}
# one position: `step 250`, `Epoch [2/10]`, `iter 10`, `(epoch 3)`
_POS = re.compile(
    r"[\[(]?(?P<w>epoch|step|iteration|iter|batch)\s*[\[(]?\s*(?P<n>\d+)(?:\s*/\s*(?P<m>\d+))?\s*[\])]?[\])]?",
    re.IGNORECASE,
)
_PAIR_POS = {"epoch": "epoch", "step": "step", "iter": "step", "iteration": "step",
             "global_step": "step"}
_POS_SEP = re.compile(r"\s*(?:[:,|]|\s-)\s*|\s+")
# one pair: a name of one or two words, then `:`, `=` or a space, then a number and a unit
_PAIR = re.compile(
    rf"(?P<name>{_WORD}(?: {_WORD})?)(?P<sep>\s*:\s*|=|\s+)(?P<v>{_NUM})(?:ms|us|s|%|x)?(?![\w.])"
)
_PAIR_SEP = re.compile(r"\s*[,;|]\s*|\s+")
_TQDM = re.compile(
    r"(?:(?P<desc>[^|]*?):?\s*)?(?P<pct>\d+)%\|[^|]*\|\s*(?P<n>\d+)/(?P<total>\d+)\s*"
    r"\[(?P<el>[\d:]+)(?:<(?P<eta>[\d:?]+))?,\s*(?:(?P<rate>[\d.]+)(?P<unit>s/it|it/s)|\?it/s)"
    r"(?:,\s*(?P<post>[^\]]*))?\]"
)
_POSTFIX = re.compile(r"([A-Za-z_][\w./-]*)=([^,\s\]]+)")
_EPOCH_DESC = re.compile(r"(?:^|\b)epoch\s*\[?(\d+)", re.IGNORECASE)
_NOT_METRICS = ("Error", "Exception", "Warning")  # `KeyError: 5` is a traceback's last line
_SUMMARY = re.compile(r"(?:^|_)(?:params|parameters|FLOPs)$", re.IGNORECASE)  # a model summary's counts
_SKIP_POSTFIX = ("v_num",)
_TRAINING_DESC = re.compile(r"epoch|train|step|iter|batch", re.IGNORECASE)  # Lightning's logger version, not a metric


def _positions(line: str) -> tuple[dict[str, tuple[int, int | None]], int]:
    """The leading positions (`epoch` / `step` / `batch` -> (n, m)) and where the pairs start."""
    out: dict[str, tuple[int, int | None]] = {}
    pos = 0
    while True:
        m = _POS.match(line, pos)
        if m is None:
            return out, pos
        key = _POS_WORDS[m.group("w").lower()]
        if key in out:
            return out, pos
        out[key] = (int(m.group("n")), int(m.group("m")) if m.group("m") else None)
        end = m.end()
        s = _POS_SEP.match(line, end)
        if s is None:
            if end == len(line):
                return out, end
            out.pop(key)
            return out, pos
        pos = s.end()


def pairs(text: str, pos: int = 0) -> list[tuple[str, float | None, bool]] | None:
    """`name value` pairs covering text[pos:] whole -> [(name, value, keyed)] (`keyed`: written
    with `:` or `=`), None when anything else is there."""
    out: list[tuple[str, float | None, bool]] = []
    n = len(text)
    while pos < n:
        m = _PAIR.match(text, pos)
        if m is None:
            return None
        name = m.group("name").replace(" ", "_").rstrip("./-")
        if not name or name.endswith(_NOT_METRICS) or _SUMMARY.search(name):
            return None
        out.append((name, number(m.group("v")), m.group("sep").strip() != ""))
        pos = m.end()
        if pos == n:
            break
        s = _PAIR_SEP.match(text, pos)
        if s is None:
            return None
        pos = s.end()
    return out


def parse(line: str) -> Event | None:
    """One line (no log prefix) -> a Scalars / Progress event, or None."""
    if "%|" in line:
        return tqdm_bar(line)
    text = plain(line).strip()
    if not text or len(text) > 4096:
        return None
    found, start = _positions(text)
    got = pairs(text.rstrip(".;,"), start)
    if got is None:
        return None
    if not found:
        if not got or not (any(k for _, _, k in got) or len(got) >= 2):
            return None
    elif start < len(text) and not got:
        return None
    epoch, epochs = found.get("epoch", (None, None))
    step, steps = found.get("step", (None, None))
    for name, v, _ in got:  # `epoch=3 step=120 loss=...`: positions written as pairs
        key = _PAIR_POS.get(name.lower())
        if key is not None and v is not None and math.isfinite(v) and v == int(v) and v >= 0:
            if key == "epoch" and epoch is None:
                epoch = int(v)
            elif key == "step" and step is None:
                step = int(v)
    got = [g for g in got if g[0].lower() not in _PAIR_POS]
    if epoch is not None and step is None and "batch" in found:
        step, steps = found["batch"]  # `Epoch [1/5], Batch [100/600]`: the step inside the epoch
    return Scalars(tuple((k, v) for k, v, _ in got), step=step, epoch=epoch, source="stdout",
                   epochs=epochs, steps=steps, printed=epoch is not None)


def tqdm_bar(text: str) -> Progress | None:
    """A tqdm bar -> Progress (count, total, rate, ETA, postfix). Not a nested bar (one drawn
    with cursor moves: the HF Trainer's evaluation bar) nor one whose description says it is
    something else than training (`Writing model shards`, `Validation DataLoader 0`)."""
    if "\x1b[" in text:
        return None
    m = _TQDM.search(text)
    if m is None:
        return None
    if m.group("desc") and not _TRAINING_DESC.search(m.group("desc")):
        return None
    rate = number(m.group("rate")) if m.group("rate") else None
    if rate is not None and m.group("unit") == "s/it":
        rate = 1.0 / rate if rate > 0 else None
    desc = m.group("desc") or ""
    e = _EPOCH_DESC.search(desc)
    post = tuple((k, number(v)) for k, v in _POSTFIX.findall(m.group("post") or "")
                 if k not in _SKIP_POSTFIX)
    return Progress(int(e.group(1)) if e else None, None, int(m.group("n")), int(m.group("total")), rate,
                    hms_seconds(m.group("eta")), dict(post).get("loss"), "tqdm", postfix=post)


# every line `parse` reads has a digit (a position, a tqdm bar, a number) or, with none, a value
# written as `_NUM`'s nan / inf (`val loss nan`); a terminal control sequence may split a word
PREFILTER = re.compile(rb"\d|nan|NaN|inf|Inf|\x1b")

EXAMPLES = (
    "step 250: train loss 2.4100, val loss 2.5700",
    "iter 10: loss 3.9012, time 12.34ms, mfu -100.00%",
    "Epoch 2: train_loss=0.0090 val_loss=0.0130 val_acc=0.9940",
    "Epoch [1/5], Step [100/600], Loss: 0.2198",
    "epoch 3 | loss 0.2000 | acc 0.9000",
    "loss: 0.23, acc: 0.91",
    "train loss 2.41, val loss 2.57",
    "val loss nan, val acc inf",
    "Epoch 3/10",
    "Epoch 3:  45%|####5     | 9/20 [00:03<00:04,  2.71it/s, loss=0.323, v_num=0]",
    " 33%|###3      | 16/48 [00:01<00:02, 12.50it/s]",
)

SOURCE = LineSource(
    name="stdout",
    title="printed metrics: `step N: name value, ...`, `name=value`, `name: value`, tqdm bars",
    parse=parse,
    examples=EXAMPLES,
    prefilter=PREFILTER,
)
