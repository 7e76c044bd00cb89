"""Numbers and dicts of numbers as scripts print and write them, shared by the metric sources.

`number` reads one printed number; `parse_dict` one printed dict (JSON, or a Python dict's repr:
the HF Trainer prints `{'loss': 0.6931, 'learning_rate': 5e-05, 'epoch': 0.31}`); `dict_scalars`
turns such a dict into a `Scalars` event: its position keys (`step`, `global_step`, `iter`,
`iteration`, `epoch`) place it, its other numbers are the values.
"""

from __future__ import annotations

import ast
import json
import math
import re
from typing import Any

from tui.log.events import Scalars

STEP_KEYS = ("step", "global_step", "iter", "iteration", "iter_num")
DICT_MAX = 16 << 10  # a longer line is not read as a dict
_BARE = re.compile(r"(?<![\w'\"])(-?)(nan|inf)(?![\w'\"])")  # repr(float('nan')) is not a literal


_EVAL_NAME = re.compile(r"(?:^|[_./ -])(?:val|valid|validation|eval|evaluation|test)(?:$|[_./ -])",
                        re.IGNORECASE)


def is_eval_name(name: str) -> bool:
    """A metric that an evaluation makes (`val_loss`, `eval_accuracy`, `loss/val`, `test_acc`)."""
    return _EVAL_NAME.search(name) is not None


def is_evaluation(ev: Scalars) -> bool:
    """The point is an evaluation: said by its source, or (`auto`) one of its names says so."""
    return ev.kind == "eval" or ev.kind == "auto" and any(is_eval_name(k) for k, _ in ev.values)


def number(text: str) -> float | None:
    """A printed number -> float; nan -> None (inf kept, as the runctl stream's `num`)."""
    try:
        x = float(text)
    except ValueError:
        return None
    return None if math.isnan(x) else x


def value_of(v: Any) -> tuple[bool, float | None]:
    """(is a number, its value): ints and floats (not bools), numeric strings; nan -> None."""
    if isinstance(v, bool):
        return False, None
    if isinstance(v, (int, float)):
        x = float(v)
        return True, None if math.isnan(x) else x
    if isinstance(v, str):
        x2 = number(v.strip())
        if x2 is not None or v.strip().lower() == "nan":
            return True, x2
    return False, None


ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")  # a terminal control sequence (tqdm's cursor moves)


def plain(text: str) -> str:
    """The text without terminal control sequences."""
    return ANSI.sub("", text) if "\x1b" in text else text


def parse_dict(text: str) -> dict[str, Any] | None:
    """A line that is one dict (JSON, or a Python repr) -> the dict, else None."""
    t = plain(text).strip()
    if len(t) < 2 or t[0] != "{" or t[-1] != "}" or len(t) > DICT_MAX:
        return None
    try:
        d = json.loads(t)
    except ValueError:
        try:
            d = ast.literal_eval(_BARE.sub(lambda m: "None" if m.group(2) == "nan" else m.group(1) + "1e999", t))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None
    return d if isinstance(d, dict) else None


def hf_epoch(v: float) -> int:
    """An HF Trainer epoch (completed epochs, fractional: 0.31 is in epoch 1, 1.0 ends epoch 1)
    -> the 1-based epoch it belongs to."""
    return max(1, math.ceil(v - 1e-9))


def dict_scalars(d: dict[str, Any], source: str) -> Scalars | None:
    """A dict of numbers -> Scalars (None: no number in it). An `epoch` that is an int is as
    printed (0- or 1-based); a float or a string (the HF Trainer's `0.3125`, transformers 5's
    `'1.25'`) counts completed epochs: 0.3125 is in epoch 1, 1 ends epoch 1."""
    values: list[tuple[str, float | None]] = []
    step: int | None = None
    epoch: int | None = None
    printed = False
    for k, v in d.items():
        if not isinstance(k, str):
            continue
        ok, x = value_of(v)
        if not ok:
            continue
        if k in STEP_KEYS and x is not None and math.isfinite(x) and x == int(x) and step is None:
            step = int(x)
        elif k == "epoch" and x is not None and math.isfinite(x) and x >= 0:
            if isinstance(v, int):  # as printed: 0- or 1-based
                epoch, printed = int(x), True
            else:  # the HF Trainer's completed epochs (0.3125, '1.25', '1')
                epoch = hf_epoch(x)
        else:
            values.append((k, x))
    if not values and step is None and epoch is None:
        return None
    return Scalars(tuple(values), step=step, epoch=epoch, source=source, printed=printed)
