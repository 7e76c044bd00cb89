"""The recommendation bar: the next action and the key that applies it, under the header."""

from __future__ import annotations

from textual.markup import escape
from textual.widgets import Static

from tui.judge.results import Recommendation

KEYS = {"launch": "n", "resume": "n"}


def recommendation_text(rec: Recommendation | None, readonly: bool = False) -> str:
    """`Next: launch var_floor  n apply — why` (the key first: a narrow terminal cuts the end)."""
    if rec is None:
        tail = "" if readonly else "   [b]l[/b] launch"
        return f"Next: [dim]nothing to recommend (no preset known)[/dim]{tail}"
    what = rec.action
    if rec.action == "launch" and rec.preset:
        what = f"launch {rec.preset}"
    text = f"Next: [b]{escape(what)}[/b]"
    if rec.action in KEYS and not readonly:
        text += f" [reverse] {KEYS[rec.action]} [/reverse] apply"
    text += f" — {escape(rec.why)}"
    if rec.alternatives:
        text += f" [dim](or {escape(', '.join(rec.alternatives))})[/dim]"
    return text


class RecommendationBar(Static):
    """One line under the header: what to do now."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__("Next: waiting for a run", **kwargs)  # type: ignore[arg-type]
        self._text = ""

    def show(self, rec: Recommendation | None, readonly: bool = False) -> None:
        """Render a recommendation."""
        text = recommendation_text(rec, readonly)
        if text != self._text:
            self._text = text
            self.update(text)
            self.set_class(rec is not None and rec.action in KEYS and not readonly, "-actionable")
