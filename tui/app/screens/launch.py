"""The launch picker: filter presets as you type, see the resolved run, edit, launch or save."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from tui.errors import RunctlError
from tui.presets.preset import Preset, value_text
from tui.presets.registry import resolve

ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


@dataclass(frozen=True)
class LaunchRequest:
    """What the picker asks the app to do: launch `preset` with changes, or save it as `save_as`."""

    preset: str
    sets: list[str] = field(default_factory=list)
    envs: list[str] = field(default_factory=list)
    name: str | None = None
    save_as: str | None = None


def parse_changes(text: str) -> tuple[list[str], list[str]]:
    """`--set k=v --env NAME=V k=v NAME=V` -> (sets, envs); UPPER_CASE names are env vars."""
    sets: list[str] = []
    envs: list[str] = []
    kind: str | None = None
    for tok in shlex.split(text):
        if tok in ("--set", "-s", "--env", "-e"):
            kind = "env" if tok in ("--env", "-e") else "set"
            continue
        name = tok.partition("=")[0]
        if "=" not in tok:
            raise RunctlError(f"{tok!r}: expected key=value or NAME=value")
        is_env = kind == "env" or (kind is None and ENV_NAME.match(name) is not None)
        (envs if is_env else sets).append(tok)
        kind = None
    return sets, envs


def describe(p: Preset) -> str:
    """Description, env, overrides and the engine command line of a resolved preset."""
    lines = [f"[b]{escape(p.name)}[/b]" + (f" [dim](extends {escape(p.extends)})[/dim]" if p.extends else ""),
             escape(p.description or "(no description)"), "", "[b]env[/b]"]
    lines += [f"  {escape(k)}={escape(v)}" for k, v in p.env.items()] or ["  (none)"]
    lines += ["[b]overrides[/b]"]
    if p.max_epochs is not None:
        lines.append(f"  max_epochs={p.max_epochs}")
    lines += [f"  {escape(k)}={escape(value_text(v))}" for k, v in p.overrides.items()]
    if p.max_epochs is None and not p.overrides:
        lines.append("  (none)")
    lines += ["", f"[b]{'engine' if p.is_engine else 'command'}[/b]", "  " + escape(p.command_text())]
    return "\n".join(lines)


class LaunchScreen(ModalScreen[LaunchRequest | None]):
    """Modal: preset list filtered by the top input, details on the right, changes below."""

    BINDINGS = [
        Binding("escape", "dismiss_none", "Cancel"),
        Binding("down", "move(1)", "Next preset", show=False),
        Binding("up", "move(-1)", "Previous preset", show=False),
        Binding("ctrl+s", "save", "Save as preset"),
    ]

    def __init__(self, presets: dict[str, Preset | str], initial: str | None = None) -> None:
        super().__init__(id="launch")
        self._presets = presets  # name -> Preset, or the error text of a broken file
        self._initial = initial

    def compose(self) -> ComposeResult:
        with Vertical(id="launch-box"):
            yield Label("[b]Launch[/b]  type to filter · ↑↓ choose · Enter launch · ctrl+s save as preset · Esc cancel")
            yield Input(placeholder="filter presets", id="preset-filter")
            with Horizontal(id="launch-main"):
                yield OptionList(id="preset-list")
                with VerticalScroll(id="preset-details-box", can_focus=False):
                    yield Static("", id="preset-details")
            yield Input(placeholder="changes: key=value NAME=value (--set/--env style)", id="changes")
            yield Input(placeholder="run name (optional; with ctrl+s: the new preset's name)", id="run-name")
            yield Static("", id="launch-error")

    def on_mount(self) -> None:
        """Fill the list; preselect the initial preset."""
        self._fill("")
        ol = self.query_one(OptionList)
        if self._initial:
            for i in range(ol.option_count):
                if ol.get_option_at_index(i).id == self._initial:
                    ol.highlighted = i
        self.query_one("#preset-filter", Input).focus()
        self._preview()

    def _fill(self, text: str) -> None:
        ol = self.query_one(OptionList)
        ol.clear_options()
        needle = text.lower().strip()
        for name in self._presets:
            if needle in name.lower():
                ol.add_option(Option(name, id=name))
        if ol.option_count:
            ol.highlighted = 0

    @property
    def selected(self) -> str | None:
        """The highlighted preset name."""
        ol = self.query_one(OptionList)
        if ol.highlighted is None or not ol.option_count:
            return None
        return ol.get_option_at_index(ol.highlighted).id

    def _request(self) -> LaunchRequest | None:
        """The request the inputs describe (None, with the error shown, if invalid)."""
        name = self.selected
        error = self.query_one("#launch-error", Static)
        if name is None:
            error.update("[red]no preset matches[/red]")
            return None
        p = self._presets[name]
        try:
            if not isinstance(p, Preset):
                raise RunctlError(p)
            sets, envs = parse_changes(self.query_one("#changes", Input).value)
            resolved = resolve(p, sets, envs)
        except (RunctlError, ValueError) as e:
            error.update(f"[red]{escape(str(e))}[/red]")
            return None
        error.update("")
        self.query_one("#preset-details", Static).update(describe(resolved))
        run_name = self.query_one("#run-name", Input).value.strip() or None
        return LaunchRequest(name, sets, envs, run_name)

    def _preview(self) -> None:
        self._request()

    @on(Input.Changed, "#preset-filter")
    def _filter(self, event: Input.Changed) -> None:
        self._fill(event.value)
        self._preview()

    @on(Input.Changed, "#changes")
    def _changes(self) -> None:
        self._preview()

    @on(OptionList.OptionHighlighted)
    def _highlighted(self) -> None:
        self._preview()

    @on(Input.Submitted)
    @on(OptionList.OptionSelected)
    def _launch(self) -> None:
        req = self._request()
        if req is not None:
            self.dismiss(req)

    def action_move(self, delta: int) -> None:
        """Move the highlight in the preset list (works while typing in an input)."""
        ol = self.query_one(OptionList)
        if ol.option_count:
            ol.highlighted = ((ol.highlighted or 0) + delta) % ol.option_count

    def action_save(self) -> None:
        """Save the edited preset under the name typed in the run-name field."""
        req = self._request()
        if req is None:
            return
        if not req.name:
            self.query_one("#launch-error", Static).update("[red]type the new preset's name first[/red]")
            self.query_one("#run-name", Input).focus()
            return
        self.dismiss(LaunchRequest(req.preset, req.sets, req.envs, None, save_as=req.name))

    def action_dismiss_none(self) -> None:
        """Close without launching."""
        self.dismiss(None)
