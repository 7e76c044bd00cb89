"""Kill confirmation: y sends SIGTERM, then SIGKILL after the grace period."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Static


class KillScreen(ModalScreen[bool]):
    """`y` confirms, anything bound to n/Esc cancels."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes, kill"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "Cancel"),
    ]

    def __init__(self, run: str, pid: int | None, grace: float) -> None:
        super().__init__(id="kill")
        self._text = (
            f"[b]Kill {escape(run)}[/b] (pid {pid or '?'})?\n\n"
            f"  1. SIGTERM now: the engine saves a checkpoint and stops (resume with r)\n"
            f"  2. SIGKILL after {grace:.0f} s if it is still running\n\n"
            "[b]y[/b] kill · [b]n[/b]/Esc keep running"
        )

    def compose(self) -> ComposeResult:
        with Vertical(id="kill-box"):
            yield Static(self._text)

    def action_answer(self, yes: bool) -> None:
        """Close with the answer."""
        self.dismiss(yes)
