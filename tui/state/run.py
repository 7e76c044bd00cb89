"""The run state: what a log says about a run, as plain data (no I/O, no Textual).

`tui.log` turns lines into events; `RunState.apply(event)` folds them in (the reducer,
`tui.state.fold`). `RunState.to_json()` is the stable JSON documented in docs/cli.md
(`tui.state.serialize`). The fields and the records a state is made of are `tui.state.records`.
"""

from __future__ import annotations

from typing import Any

from tui.log.events import Event
from tui.state.fold import HANDLERS
from tui.state.records import RunData
from tui.state.serialize import state_json


class RunState(RunData):
    """Everything known about a run from its log (and, for the controller, its manifest)."""

    def apply(self, event: Event) -> None:
        """Fold one `tui.log` event into the state (events of unknown type are ignored)."""
        handler = HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape of docs/cli.md (without controller-only keys)."""
        return state_json(self)
