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

    def __init__(self, targets: list[tuple[str, int | None]], grace: float) -> None:
        super().__init__(id="kill")
        if len(targets) == 1:
            run, pid = targets[0]
            what = f"[b]Kill {escape(run)}[/b] (pid {pid or '?'})?"
        else:
            shown = targets[:8]
            what = f"[b]Kill {len(targets)} runs[/b], one after the other?\n" + "\n".join(
                f"  {escape(run)} (pid {pid or '?'})" for run, pid in shown)
            if len(targets) > len(shown):
                what += f"\n  … and {len(targets) - len(shown)} more"
        self._text = (
            f"{what}\n\n"
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


class QueueRemoveScreen(ModalScreen["str | None"]):
    """Pick a waiting queue item to take out of the queue (Enter), Esc keeps them all."""

    BINDINGS = [Binding("escape", "pick(None)", "Cancel")]

    def __init__(self, items: list[tuple[str, str]]) -> None:
        super().__init__(id="queue-rm")
        self._items = items  # (id, text)

    def compose(self) -> ComposeResult:
        from textual.widgets import OptionList
        from textual.widgets.option_list import Option

        with Vertical(id="queue-rm-box"):
            yield Static("[b]Remove from the queue[/b] (Enter removes, Esc keeps)")
            yield OptionList(*(Option(escape(text), id=item) for item, text in self._items), id="queue-rm-list")

    def on_option_list_option_selected(self, event: object) -> None:
        """Enter on an item: remove it."""
        option = getattr(event, "option", None)
        self.dismiss(getattr(option, "id", None))

    def action_pick(self, item: str | None) -> None:
        """Close, removing `item` (None: nothing)."""
        self.dismiss(item)
