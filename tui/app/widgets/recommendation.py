"""The recommendation bar: the next action and the key that applies it."""

from __future__ import annotations

from textual.markup import escape
from textual.widgets import Static

from tui.judge.results import Recommendation

KEYS = {"launch": "n", "resume": "n"}


def recommendation_text(rec: Recommendation | None) -> str:
    """`Next: launch var_floor — why  [n] apply`."""
    if rec is None:
        return "Next: [dim]nothing to recommend (no preset known)[/dim]   [b]l[/b] launch"
    what = rec.action
    if rec.action == "launch" and rec.preset:
        what = f"launch {rec.preset}"
    text = f"Next: [b]{escape(what)}[/b] — {escape(rec.why)}"
    if rec.alternatives:
        text += f" [dim](or {escape(', '.join(rec.alternatives))})[/dim]"
    if rec.action in KEYS:
        text += f"   [reverse] {KEYS[rec.action]} [/reverse] apply"
    return text


class RecommendationBar(Static):
    """One line under the panels: what to do now."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__("Next: waiting for a run", **kwargs)  # type: ignore[arg-type]
        self._text = ""

    def show(self, rec: Recommendation | None) -> None:
        """Render a recommendation."""
        text = recommendation_text(rec)
        if text != self._text:
            self._text = text
            self.update(text)
            self.set_class(rec is not None and rec.action in KEYS, "-actionable")
