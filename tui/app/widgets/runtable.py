"""A table of many runs that draws only the rows on screen (Textual's line API).

Textual's DataTable measures every cell of every row it holds (0.3 s for 1,000 rows of eleven
columns on the dev box) each time it is rebuilt, so filtering as you type over a large logs
folder would lag. Here the screen hands over the rows in order and their cells as text; setting
them costs a width pass, drawing costs the visible rows only. Cut cells end in an ellipsis. When
the row is wider than the table, flexible columns give way first, then the least needed ones are
left out (`Column.drop`), so a small terminal shows what matters without scrolling sideways.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.app.view import fit


@dataclass(frozen=True)
class Column:
    """A column: key, header, right-aligned (numbers), widest it may get."""

    key: str
    label: str
    right: bool = False
    max_width: int = 40
    min_width: int = 0  # > 0: the column gives way (down to this) when the row is too wide
    give_first: int = 0  # columns that give way do so lowest first (ties: left to right)
    drop: int = 0  # > 0: hidden when the row is too wide even after giving way (lowest first)
    hide_empty: bool = False  # hidden while no row shown has anything in it


class RunTable(ScrollView, can_focus=True):
    """Rows of cells with a fixed header, a cursor and marks; Enter selects, a header click sorts."""

    COMPONENT_CLASSES = {"runtable--header", "runtable--cursor", "runtable--marked", "runtable--odd"}
    DEFAULT_CSS = """
    RunTable { height: 1fr; }
    RunTable > .runtable--header { text-style: bold; background: $panel; }
    RunTable > .runtable--cursor { background: $accent 60%; }
    RunTable:focus > .runtable--cursor { background: $accent; }
    RunTable > .runtable--marked { color: $warning; text-style: bold; }
    RunTable > .runtable--odd { background: $boost; }
    """
    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
    ]

    @dataclass
    class Selected(Message):
        """Enter (or a double click) on a row."""

        key: str

    @dataclass
    class HeaderClicked(Message):
        """A click on a column's header."""

        column: str

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.columns: list[Column] = []
        self.keys: list[str] = []
        self.cells: Mapping[str, Mapping[str, str]] = {}
        self.marked: set[str] = set()
        self.sort: tuple[str, bool] | None = None  # (column, descending)
        self.cursor = 0
        self._widths: list[int] = []
        self._shown: list[int] = []  # the columns drawn, by index (the others are dropped or empty)

    # ------------------------------------------------------------------------ data
    @property
    def row_count(self) -> int:
        """Rows shown."""
        return len(self.keys)

    @property
    def cursor_key(self) -> str | None:
        """The key of the row under the cursor."""
        return self.keys[self.cursor] if 0 <= self.cursor < len(self.keys) else None

    def row(self, index: int) -> list[str]:
        """The cells of one shown row, in column order."""
        cells = self.cells[self.keys[index]]
        return [cells.get(c.key, "") for c in self.columns]

    def set_rows(self, columns: Sequence[Column], keys: Sequence[str],
                 cells: Mapping[str, Mapping[str, str]], keep: str | None = None) -> None:
        """Show `keys` in this order; the cursor stays on `keep` (or its row number)."""
        self.columns, self.keys, self.cells = list(columns), list(keys), cells
        if keep is not None and keep in cells:
            with contextlib.suppress(ValueError):
                self.cursor = self.keys.index(keep)
        self.cursor = max(0, min(self.cursor, len(self.keys) - 1))
        self._measure()
        self.refresh()
        self._show_cursor()

    def _measure(self) -> None:
        widths = []
        rows = [self.cells[k] for k in self.keys]
        for c in self.columns:
            texts = {r.get(c.key, "") for r in rows}  # many rows share a text (state, preset)
            w = max([cell_len(c.label) + 2, *(len(t) if t.isascii() else cell_len(t) for t in texts)])
            widths.append(min(w, c.max_width))
        avail = self.scrollable_content_region.width or self.size.width or 120
        cols = self.columns
        shown = [i for i, c in enumerate(cols) if not (c.hide_empty and rows and not any(r.get(c.key) for r in rows))]

        def narrowest(ids: list[int]) -> int:  # the row with every flexible column at its minimum
            return sum(min(widths[i], cols[i].min_width or widths[i]) for i in ids) + len(ids) - 1

        for i in sorted((i for i in shown if cols[i].drop), key=lambda i: cols[i].drop):
            if narrowest(shown) <= avail:
                break
            shown.remove(i)  # the least needed columns go rather than scroll sideways
        spare = avail - (sum(widths[i] for i in shown) + len(shown) - 1)
        for i in sorted(shown, key=lambda i: cols[i].give_first):  # flexible columns give way,
            c = cols[i]  # the least needed first
            if spare >= 0:
                break
            if c.min_width and widths[i] > c.min_width:
                give = min(widths[i] - c.min_width, -spare)
                widths[i] -= give
                spare += give
        self._widths, self._shown = widths, shown
        self.virtual_size = Size(sum(widths[i] for i in shown) + len(shown) - 1, len(self.keys) + 1)

    def on_resize(self) -> None:
        """Column widths follow the width."""
        self._measure()
        self.refresh()

    # ------------------------------------------------------------------------ drawing
    def _line(self, texts: list[str], style: Style, marked_style: Style | None = None) -> Strip:
        segs = []
        for n, i in enumerate(self._shown):
            c, w = self.columns[i], self._widths[i]
            t = fit(texts[i], w)
            pad = " " * (w - cell_len(t))
            segs.append(Segment(pad + t if c.right else t + pad,
                                marked_style if (marked_style and c.key == "mark") else style))
            if n < len(self._shown) - 1:
                segs.append(Segment(" ", style))
        return Strip(segs)

    def render_line(self, y: int) -> Strip:
        """The header on the first line, then the rows scrolled into view."""
        width = self.scrollable_content_region.width
        scroll_x, scroll_y = self.scroll_offset
        base = self.rich_style
        if y == 0:
            style = base + self.get_component_rich_style("runtable--header")
            labels = []
            for c in self.columns:
                arrow = ""
                if self.sort and self.sort[0] == c.key:
                    arrow = " ▼" if self.sort[1] else " ▲"
                labels.append(c.label + arrow)
            strip = self._line(labels, style)
        else:
            i = scroll_y + y - 1
            if i >= len(self.keys):
                return Strip.blank(width, base)
            style = base
            if i % 2:
                style = style + self.get_component_rich_style("runtable--odd")
            if i == self.cursor:
                style = style + self.get_component_rich_style("runtable--cursor")
            marked = style + self.get_component_rich_style("runtable--marked")
            strip = self._line(self.row(i), style, marked if self.keys[i] in self.marked else None)
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    # ------------------------------------------------------------------------ cursor
    @property
    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _show_cursor(self) -> None:
        top = round(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor > top + self._page - 1:
            self.scroll_to(y=self.cursor - self._page + 1, animate=False, immediate=True)

    def move_to(self, index: int) -> None:
        """Put the cursor on row `index` (clamped)."""
        old = self.cursor
        self.cursor = max(0, min(index, len(self.keys) - 1))
        if old != self.cursor:
            self.refresh()  # two lines would do; a refresh of the visible rows is cheap
        self._show_cursor()

    def action_cursor(self, delta: int) -> None:
        """One row up or down."""
        self.move_to(self.cursor + delta)

    def action_page(self, delta: int) -> None:
        """A page up or down."""
        self.move_to(self.cursor + delta * self._page)

    def action_jump(self, index: int) -> None:
        """First or last row."""
        self.move_to(index if index >= 0 else len(self.keys) - 1)

    def key_enter(self, event: events.Key) -> None:
        """Enter selects the row under the cursor."""
        if self.cursor_key is not None:
            event.stop()
            self.post_message(self.Selected(self.cursor_key))

    def on_click(self, event: events.Click) -> None:
        """A header click sorts by that column; a row click moves the cursor (twice: selects)."""
        if event.y == 0:
            x = event.x + round(self.scroll_x)
            for i in self._shown:
                w = self._widths[i]
                if x < w + 1:
                    self.post_message(self.HeaderClicked(self.columns[i].key))
                    return
                x -= w + 1
            return
        self.move_to(round(self.scroll_y) + event.y - 1)
        if event.chain >= 2 and self.cursor_key is not None:
            self.post_message(self.Selected(self.cursor_key))
