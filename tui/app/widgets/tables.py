"""Filling a small DataTable (the metric table, the timeline) from rows of text cells.

Columns get explicit widths, computed from the cells: Textual's auto width measures rows on
idle and a header drawn before that keeps the label widths (a snapshot caught it). When the
widths, the columns or the rows' order change, the table is rebuilt (a few dozen rows); else only
the cells that changed are updated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable


@dataclass
class Filled:
    """What a table shows now: its columns with widths, its rows and their cells."""

    columns: list[tuple[str, str, int]] = field(default_factory=list)
    rows: dict[str, dict[str, str]] = field(default_factory=dict)


def fill(table: DataTable[Text], shown: Filled, columns: Sequence[tuple[str, str]],
         rows: Mapping[str, Mapping[str, str]]) -> Filled:
    """Show `rows` (row key -> column key -> text) under `columns` ((key, label)); returns what
    is shown now (pass it back next time)."""
    widths = [(key, label, max([cell_len(label), *(cell_len(r.get(key, "")) for r in rows.values())]))
              for key, label in columns]
    if widths != shown.columns or list(rows) != list(shown.rows):
        table.clear(columns=True)
        for key, label, w in widths:
            table.add_column(label, key=key, width=w)
        for rk, cells in rows.items():
            table.add_row(*(Text(cells.get(k, "")) for k, _, _ in widths), key=rk)
    else:
        for rk, cells in rows.items():
            old = shown.rows[rk]
            for key, _, _ in widths:
                if old.get(key, "") != cells.get(key, ""):
                    table.update_cell(rk, key, Text(cells.get(key, "")))
    return Filled(widths, {rk: dict(c) for rk, c in rows.items()})
