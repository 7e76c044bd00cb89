"""The seed's initialization checklist, ticked as lines arrive: a full list while a phase is
pending or failed, one line once every phase is done (`i` shows the list again)."""

from __future__ import annotations

from textual.markup import escape
from textual.widgets import Static

from tui.state.records import COMMAND_PHASES, PHASES
from tui.state.run import RunState

SHORT = {"device": "device", "hidden_size": "model", "files": "files", "scaler": "scaler",
         "date_filter": "dates", "loaders": "loaders", "first_epoch": "epoch 1",
         "started": "started", "first_output": "output", "first_step": "step", "first_eval": "eval",
         "checkpoint": "ckpt"}
FAILED = ("crashed", "killed")
MOST = max(len(PHASES), len(COMMAND_PHASES))  # rows the longest checklist needs


def phase_marks(st: RunState) -> list[tuple[str, str, str, str]]:
    """(mark, label, detail, key) per phase of the run's checklist (the engine's, or a script's
    own): ✅ seen, ❌ the run ended before it (a checkpoint is not owed by a run that ended), ⏳ not
    yet."""
    out = []
    for key, label, done, detail in st.checklist():
        mark = "✅" if done else "❌" if st.state in FAILED else "➖" if st.state == "finished" else "⏳"
        out.append((mark, label, detail if done else "", key))
    return out


def all_done(st: RunState) -> bool:
    """Every phase was seen (a script's checkpoint is not required)."""
    return all(done or key == "checkpoint" and not st.engine_phases for key, _, done, _ in st.checklist())


class PhaseChecklist(Static):
    """✅ per phase seen, ⏳ pending, ❌ failed; `lines` rows are given to it by the screen."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._text = ""
        self._state = RunState()
        self.expanded = False  # the user asked for the full list (`i`)
        self.lines = 1 + MOST
        self.show(self._state)

    @property
    def full_rows(self) -> int:
        """Rows the full list takes (its title and one per phase of the run's checklist)."""
        return 1 + len(self._state.checklist())

    @property
    def wants_full(self) -> bool:
        """The full list matters: a phase pending or failed, or the user asked for it."""
        return self.expanded or not all_done(self._state)

    def show(self, st: RunState, lines: int | None = None) -> None:
        """Render the phases of a state in `lines` rows (the full list if they fit, else one line)."""
        self._state = st
        if lines is not None:
            self.lines = lines
        marks = phase_marks(st)
        if self.lines > len(marks):
            rows = ["[b]Initialization[/b]"]
            for mark, label, detail, _ in marks:
                rows.append(f" {mark} {label}" + (f" [dim]{escape(detail)}[/dim]" if detail else ""))
            text = "\n".join(rows)
        elif all_done(st):
            text = f"[b]Initialization[/b] ✅ all {len(marks)} phases done [dim](i: the list)[/dim]"
        else:
            short = " ".join(f"{m}{SHORT.get(key, label)}" for m, label, _, key in marks)
            text = f"[b]Init[/b] {short}"
        if text != self._text:
            self._text = text
            self.update(text)
