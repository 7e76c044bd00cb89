"""The seed's initialization checklist, ticked as lines arrive."""

from __future__ import annotations

from textual.markup import escape
from textual.widgets import Static

from tui.state.records import PHASES
from tui.state.run import RunState


class PhaseChecklist(Static):
    """✅ for each phase seen in the log, ⏳ for the rest."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._text = ""
        self.show(RunState())

    def show(self, st: RunState) -> None:
        """Render the phases of a state."""
        lines = ["[b]Initialization[/b]"]
        for key, label in PHASES:
            done = st.phases.get(key, False)
            detail = st.phase_details.get(key, "") if done else ""
            detail = detail if len(detail) <= 60 else detail[:59] + "…"
            mark = "✅" if done else ("❌" if st.state in ("crashed", "killed") else "⏳")
            lines.append(f" {mark} {label}" + (f" [dim]{escape(detail)}[/dim]" if detail else ""))
        text = "\n".join(lines)
        if text != self._text:
            self._text = text
            self.update(text)
