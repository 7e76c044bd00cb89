"""HuggingFace Trainer output: the dicts it prints, and its `trainer_state.json`.

Printed dicts (a line source): the Trainer prints one dict per logging step and per evaluation,
between its tqdm bars, e.g. `{'loss': 0.6931, 'grad_norm': 0.52, 'learning_rate': 4.5e-05,
'epoch': 0.31}` and `{'eval_loss': 0.43, 'eval_accuracy': 0.925, 'epoch': 1.0}` (transformers 5
quotes every value: `{'loss': '0.6807', ..., 'epoch': '0.3125'}`; an evaluation's dict follows
tqdm's cursor-up escape, `\x1b[A{'eval_loss': ...}`, which is skipped); any other line
that is one JSON object of numbers reads the same way (`{"step": 10, "loss": 0.5}`). The names are
kept as printed (`eval_loss`); `epoch` (completed epochs, 0.31 is in epoch 1) and `step`
(`global_step`, `iter`) place the values.

`trainer_state.json` (a file source): the Trainer writes it into every `checkpoint-N/` folder (and
the output folder with `save_state()`); its `log_history` has every logged dict with its global
`step`. Each file is read again when it changes (a small JSON file); an entry already read (the
same entry in an older checkpoint's history) is not emitted twice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from tui.log.events import Event
from tui.log.sources.base import FileSource, LineSource
from tui.log.sources.files import GlobWatch
from tui.log.sources.values import dict_scalars, parse_dict

STATE_MAX = 64 << 20  # a trainer_state.json larger than this is not read


def parse(line: str) -> Event | None:
    """A line that is one dict of numbers -> Scalars."""
    d = parse_dict(line)
    return dict_scalars(d, "hf") if d is not None else None


class TrainerState:
    """Every `trainer_state.json` under a glob: the `log_history` entries not read before."""

    def __init__(self, pattern: str) -> None:
        self.watch = GlobWatch(pattern)
        self._seen: set[str] = set()

    def poll(self) -> Sequence[Event]:
        """Events of the entries that are new since the last poll (oldest file first)."""
        out: list[Event] = []
        for name in self.watch.files():
            if not self.watch.changed(name, STATE_MAX):
                continue
            try:
                with open(name, encoding="utf-8") as fh:
                    data = json.load(fh)
            except (OSError, ValueError):
                continue  # being written: its next change reads it again
            history = data.get("log_history") if isinstance(data, dict) else None
            for entry in history if isinstance(history, list) else ():
                if not isinstance(entry, dict):
                    continue
                ident = json.dumps(entry, sort_keys=True, default=str)
                if ident in self._seen:
                    continue
                self._seen.add(ident)
                ev = dict_scalars(entry, "hf_state")
                if ev is not None:
                    out.append(ev)
        return out


EXAMPLES = (
    "{'loss': 0.6931, 'grad_norm': 0.5213, 'learning_rate': 4.5e-05, 'epoch': 0.31}",
    "{'loss': '0.6807', 'grad_norm': '0.2117', 'learning_rate': '0.001833', 'epoch': '0.3125'}",
    "\x1b[A{'eval_loss': '0.6934', 'eval_accuracy': '0.4688', 'epoch': '1'}",
    "{'eval_loss': 0.4312, 'eval_accuracy': 0.925, 'eval_runtime': 0.21, 'epoch': 1.0}",
    "{'train_runtime': 12.3, 'train_samples_per_second': 62.4, 'train_loss': 0.4102, 'epoch': 3.0}",
    '{"step": 10, "loss": 0.5, "lr": 0.001}',
)

SOURCE = LineSource(
    name="hf",
    title="printed dicts of numbers (the HF Trainer's `{'eval_loss': ..., 'epoch': 1.0}`, JSON lines)",
    parse=parse,
    examples=EXAMPLES,
    prefilter=re.compile(rb"\{[ \t]*['\"]"),
)

STATE_SOURCE = FileSource(
    name="hf_state",
    title="the HF Trainer's trainer_state.json (log_history, with steps)",
    preset_key="trainer_state",
    default_glob="{run_dir}/**/trainer_state.json",
    reader=TrainerState,
)
