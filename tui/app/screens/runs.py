"""The runs screen: every run with its state and headline metrics, at the scale of a logs folder
with thousands of runs. Filter as you type (`/`: name, preset, state; every word must match;
`host:NAME` one host, by its exact name), sort by any column (`s` next column, `S` reverse, or
click a header), mark runs (space, `a` all shown) to compare any number of them (`c`) or kill the
running ones (`K`).

The rows come in two steps from the app's loader thread: the manifests first (the screen lists
every run at once), then the states in batches, newest first; later refreshes read only what the
logs gained (`tui.runs.store.RunStore.log_state`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from tui.app.messages import HOSTS_FILE, QueueLoaded, RunsLoaded
from tui.app.screens.compare import CompareScreen
from tui.app.screens.confirm import QueueRemoveScreen
from tui.app.view import (
    STATE_MARKS,
    RunView,
    align,
    clock,
    field_of,
    horizon_value,
    num,
    start_time,
)
from tui.app.widgets.runtable import Column, RunTable
from tui.judge.conditions import own_metrics, own_value
from tui.runs.hosts import LOCAL
from tui.state.records import LIFECYCLE

COLUMNS = (
    Column("mark", " ", max_width=1), Column("run", "Run", max_width=48),  # the id never gives way
    Column("preset", "Preset", max_width=20, min_width=8, give_first=2, drop=3),  # the run id starts with it
    Column("state", "State", max_width=14),
    Column("host", "Host", max_width=12, hide_empty=True),  # issue 19: shown while hosts are listed
    Column("epoch", "Epoch", right=True), Column("sharpe", "Sharpe", right=True),
    Column("ic1", "IC h1", right=True), Column("ic20", "IC h20", right=True, drop=2),
    Column("scale", "SCALE", right=True), Column("val", "Val loss", right=True),
    # a user script's metric, by its name (left out while no run shown has one)
    Column("own", "Own metric", max_width=28, min_width=8, give_first=2, drop=4, hide_empty=True),
    # a sweep's run: its sweep and point (left out while no run shown is one)
    Column("sweep", "Sweep", max_width=30, min_width=6, give_first=3, drop=5, hide_empty=True),
    Column("started", "Started", min_width=5, give_first=1, drop=1),  # the run id says when, too
)
NUMERIC = ("sharpe", "ic1", "ic20", "scale", "val")
SORTABLE = [c.key for c in COLUMNS if c.key != "mark"]
REFRESH_S = 5.0
Loader = Callable[[Callable[[RunsLoaded], object]], None]  # posts the listing, then state batches


def headline(v: RunView) -> dict[str, float | None]:
    """The numbers of a run's latest validated epoch (None: not measured)."""
    recs = [r for r in v.state.epochs if r.validated]
    last = recs[-1] if recs else None
    if last is None:
        return dict.fromkeys(NUMERIC)
    return {"sharpe": last.sharpe, "ic1": horizon_value(last, "ic", 1),
            "ic20": horizon_value(last, "ic", 20), "scale": horizon_value(last, "scale", "all"),
            "val": last.val_loss}


def run_cells(v: RunView, marked: bool = False) -> dict[str, str]:
    """The cells of one run (numbers not yet aligned with the other rows)."""
    st = v.state
    n = v.max_epochs
    nums = headline(v) if v.loaded else dict.fromkeys(NUMERIC)
    return {
        "mark": "◆" if marked else " ",
        "host": v.host or "",
        "run": (v.run or "?").split(":", 1)[-1],  # a host's run: key HOST:RUN, the host a column
        "preset": v.preset.name if v.preset else str(field_of(v.manifest, "preset") or "—"),
        "state": f"{STATE_MARKS.get(st.state, '?')} {st.state}" if v.loaded else "… reading",
        "epoch": f"{st.epoch or 0}/{n or '?'}" if v.loaded else "",
        **{k: (num(x) if v.loaded else "") for k, x in nums.items()},
        "own": own_cell(v) if v.loaded else "",
        "sweep": sweep_cell(v),
        "started": clock(start_time(v)),
    }


def sweep_of(v: RunView) -> tuple[str, int] | None:
    """(sweep id, point index) of a sweep's run (its manifest's `sweep`), else None."""
    sweep = field_of(v.manifest, "sweep")
    if not isinstance(sweep, dict) or not sweep.get("id"):
        return None
    return str(sweep["id"]), int(sweep.get("index") or 0)


def sweep_cell(v: RunView) -> str:
    """`grid_20261205_191232 #2`: the run's sweep and its point."""
    s = sweep_of(v)
    return f"{s[0]} #{s[1]}" if s is not None else ""


def _sweep_time(sweep_id: str) -> float | None:
    """When a sweep started, from its id (`<name>_<YYYYmmdd_HHMMSS>`)."""
    stamp = "_".join(sweep_id.rsplit("_", 2)[-2:])
    try:
        return time.mktime(time.strptime(stamp, "%Y%m%d_%H%M%S"))
    except ValueError:
        return None


def own_cell(v: RunView) -> str:
    """The first metric of another name the run's preset judges on (or the run logs): `val_acc 0.9375`."""
    names = own_metrics(v.preset, v.state, limit=1)
    recs = [r for r in v.state.epochs if r.validated]
    if not names or not recs:
        return ""
    return f"{names[0]} {num(own_value(recs[-1], names[0]))}"


def sort_value(v: RunView, column: str, cells: dict[str, str] | None = None) -> tuple[Any, ...]:
    """A key for sorting by `column` (rows with nothing to compare go last); `cells`: the run's
    `run_cells`, if at hand."""
    if column in NUMERIC:
        x = headline(v)[column] if v.loaded else None
        return (x is None or not math.isfinite(x), x if x is not None and math.isfinite(x) else 0.0)
    if column == "state":
        st = v.state.state
        return (not v.loaded, LIFECYCLE.index(st) if st in LIFECYCLE else len(LIFECYCLE))
    if column == "epoch":
        return (not v.loaded, v.state.epoch or 0)
    if column in ("started", "sweep"):  # a sweep's runs together, at its start, in point order
        s = sweep_of(v)
        at = _sweep_time(s[0]) if s is not None else None
        if column == "sweep" and s is None:
            return (True, (0.0, 0))
        return (False, (at if at is not None else start_time(v) or 0.0, -(s[1] if s else 0)))
    return (False, (cells or run_cells(v))[column].lower())


HOST_TOKEN = "host:"  # `host:NAME` in the filter: the runs of that host only, by its exact name


def matches(cells: dict[str, str], words: list[str]) -> bool:
    """Every word is in the run's host, name, preset, state or sweep (case-insensitive); a
    `host:NAME` word instead names the run's host exactly (`host:local`: this machine's; several:
    any of them; a bare `host:`, still being typed, is left out)."""
    hosts = {w[len(HOST_TOKEN):] for w in words if w.startswith(HOST_TOKEN)} - {""}
    if hosts and (cells.get("host") or LOCAL).lower() not in hosts:
        return False
    hay = (f"{cells.get('host', '')} {cells['run']} {cells['preset']} {cells['state']} "
           f"{cells.get('sweep', '')}").lower()
    return all(w in hay for w in words if not w.startswith(HOST_TOKEN))


class RunsScreen(Screen[str | None]):
    """Enter opens the run under the cursor; `/` filters; `s`/`S` sort; space marks."""

    BINDINGS = [
        Binding("enter", "open", "Open", show=False),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("s", "sort", "Sort"),
        Binding("S", "reverse", "Reverse", show=False),
        Binding("space", "mark", "Mark"),
        Binding("a", "mark_all", "Mark all", show=False),
        Binding("c", "compare", "Compare"),
        Binding("K", "kill_marked", "Kill marked"),
        Binding("Q", "queue_preset", "Queue"),
        Binding("x", "unqueue", "Unqueue"),
        Binding("g", "refresh", "Refresh", show=False),
        Binding("escape", "escape", "Back"),
    ]

    def __init__(self, loader: Loader, readonly: bool = False,
                 queue_loader: Callable[[], QueueLoaded] | None = None) -> None:
        super().__init__(id="runs")
        self._loader = loader
        self._queue_loader = queue_loader
        self.queue: QueueLoaded | None = None
        self.readonly = readonly
        self.views: dict[str, RunView] = {}
        self.marked: list[str] = []  # in marking order (compare colours follow it)
        self.filter_text = ""
        self.sort_column = "started"
        self.sort_descending = True
        self.loaded = False  # every state read at least once
        self._raw: dict[str, dict[str, str]] = {}  # run -> cells, numbers not aligned yet
        self._sort_keys: dict[str, dict[str, tuple[Any, ...]]] = {}  # run -> column -> sort key
        self._cells: dict[str, dict[str, str]] = {}
        self.host_errors: dict[str, str] = {}  # issue 19: host -> why it did not answer (rows kept)

    def compose(self) -> ComposeResult:
        yield Static("", id="runs-title")
        yield Input(placeholder="filter: words in the name, preset or state; host:NAME one host "
                                "(Enter/Esc: back to the list)", id="runs-filter")
        yield RunTable(id="runs-table")
        yield Static("", id="runs-empty")
        yield Static("", id="runs-hosts")
        yield Static("", id="runs-queue")
        yield Footer()

    def on_mount(self) -> None:
        """Load now and every few seconds (in a thread: the store reads files)."""
        self.query_one("#runs-filter", Input).display = False
        self.query_one("#runs-queue", Static).display = False  # shown once there is a queue or GPUs
        self.query_one("#runs-hosts", Static).display = False  # shown while a host does not answer
        self.query_one(RunTable).focus()
        self._title()
        self.action_refresh()
        self.set_interval(REFRESH_S, self.action_refresh)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Read-only: no bulk kill, no queue changes."""
        return not (self.readonly and action in ("kill_marked", "queue_preset", "unqueue"))

    # ------------------------------------------------------------------------ loading
    @work(thread=True, exclusive=True, group="runs", exit_on_error=False)
    def action_refresh(self) -> None:
        """Reload the run list: manifests first, then the states in batches; then the queue."""
        if self._queue_loader is not None:
            self.post_message(self._queue_loader())
        self._loader(self.post_message)

    @on(RunsLoaded)
    def _loaded(self, message: RunsLoaded) -> None:
        changed = False
        if message.listing and message.host is not None:  # one host's runs (issue 19)
            changed = self._host_listed(message)
        elif message.listing:  # the manifests: every run there is, states to follow
            names = {v.run or "?" for v in message.views}
            for v in message.views:
                if (v.run or "?") not in self.views:
                    changed |= self._put(v)
            for gone in [k for k, v in self.views.items() if v.far_host is None and k not in names]:
                del self.views[gone], self._raw[gone], self._sort_keys[gone]
                changed = True
        else:
            for v in message.views:
                changed |= self._put(v)
        if message.done and not self.loaded:
            self.loaded, changed = True, True
        if changed:
            self._cells = self._aligned()
            self._show()

    def _host_listed(self, message: RunsLoaded) -> bool:
        """A host's listing: its rows replace what it showed; a host that did not answer keeps
        its rows as last seen and is said in one line (asked again at the next refresh)."""
        host = message.host or ""
        if message.error is not None:
            changed = self.host_errors.get(host) != message.error
            self.host_errors[host] = message.error
        else:
            changed = self.host_errors.pop(host, None) is not None
            names = {v.run or "?" for v in message.views}
            for gone in [k for k, v in self.views.items() if v.far_host == host and k not in names]:
                del self.views[gone], self._raw[gone], self._sort_keys[gone]
                changed = True
            for v in message.views:
                changed |= self._put(v)
        box = self.query_one("#runs-hosts", Static)
        again = f": its runs as last seen, asked again every {REFRESH_S:g} s"
        box.update("\n".join(escape(why) + ("" if name == HOSTS_FILE else again)
                              for name, why in self.host_errors.items()))
        box.display = bool(self.host_errors)
        return changed

    @on(QueueLoaded)
    def _queue_loaded(self, message: QueueLoaded) -> None:
        self.queue = message
        box = self.query_one("#runs-queue", Static)
        if message.error:
            box.update(f"[b]Queue[/b]: {message.error}")
        elif not message.items:
            box.update("" if not message.gpus else
                       f"[b]Queue[/b] empty · GPUs free {len(message.free)} of {len(message.gpus)}")
        else:
            parts = [f"{n}. {i.id} {i.preset}" + (f" ({i.name})" if i.name and i.name != i.preset else "")
                     + f" · {i.gpus} GPU{'s' if i.gpus != 1 else ''} · since {clock(i.added_at)}"
                     for n, i in enumerate(message.items, 1)]
            box.update(f"[b]Queue[/b] {len(message.items)} waiting · GPUs free {len(message.free)} of "
                       f"{len(message.gpus)}\n  " + "\n  ".join(parts[:5])
                       + (f"\n  … and {len(parts) - 5} more" if len(parts) > 5 else ""))
        box.display = bool(message.items or message.gpus or message.error)

    def action_queue_preset(self) -> None:
        """Pick a preset (and changes) to wait in the queue for GPUs."""
        queue = getattr(self.app, "action_queue_preset", None)
        if queue is not None:
            queue()

    def action_unqueue(self) -> None:
        """Take a waiting item out of the queue."""
        items = self.queue.items if self.queue is not None else []
        if not items:
            self.notify("The queue is empty", severity="warning")
            return

        def chosen(item: str | None) -> None:
            remove = getattr(self.app, "unqueue", None)
            if item is not None and remove is not None:
                remove(item)

        self.app.push_screen(QueueRemoveScreen([(i.id, f"{i.id} {i.preset} · {i.gpus} GPU(s)") for i in items]),
                             chosen)

    def _put(self, v: RunView) -> bool:
        """Keep one run's view; False if its row reads the same as before."""
        k = v.run or "?"
        raw = run_cells(v, k in self.marked)
        self.views[k] = v
        if self._raw.get(k) == raw:
            return False
        self._raw[k] = raw
        self._sort_keys[k] = {c: sort_value(v, c, raw) for c in SORTABLE}
        return True

    def _aligned(self) -> dict[str, dict[str, str]]:
        cells = {k: dict(c) for k, c in self._raw.items()}
        keys = list(cells)
        for col in NUMERIC:
            for k, text in zip(keys, align([cells[k][col] for k in keys]), strict=True):
                cells[k][col] = text
        return cells

    # ------------------------------------------------------------------------ showing
    def _visible(self) -> list[str]:
        words = self.filter_text.lower().split()
        keys = [k for k, c in self._cells.items() if not words or matches(c, words)]
        col, desc = self.sort_column, self.sort_descending
        vals = {k: self._sort_keys[k][col] for k in keys}
        missing = [k for k in keys if vals[k][0]]
        present = sorted((k for k in keys if not vals[k][0]), key=lambda k: vals[k][1], reverse=desc)
        return present + missing

    def _show(self) -> None:
        table = self.query_one(RunTable)
        keys = self._visible()
        table.marked = set(self.marked)
        table.sort = (self.sort_column, self.sort_descending)
        table.set_rows(COLUMNS, keys, self._cells, keep=table.cursor_key)
        empty = ""
        if not self.views and self.loaded:
            empty = "No runs yet in this logs folder" + ("." if self.readonly else ": press [b]l[/b] to launch one.")
        elif self.views and not keys:
            empty = f"No run matches {self.filter_text!r}: / to change the filter."
        self.query_one("#runs-empty", Static).update(empty)
        self._title()

    def _title(self) -> None:
        table = self.query_one(RunTable)
        n, total = table.row_count, len(self.views)
        shown = f"{n} of {total}" if n != total else f"{total}"
        what = f" · filter [b]{self.filter_text}[/b]" if self.filter_text else ""
        reading = "" if self.loaded else " · reading states…"
        marks = f" · {len(self.marked)} marked" if self.marked else ""
        label = next(c.label for c in COLUMNS if c.key == self.sort_column)
        arrow = "▼" if self.sort_descending else "▲"
        ro = " · [reverse] READ-ONLY [/reverse]" if self.readonly else ""
        self.query_one("#runs-title", Static).update(
            f"[b]Runs[/b] {shown}{what} · sort {label} {arrow}{marks}{reading}{ro}")

    # ------------------------------------------------------------------------ filter and sort
    def action_filter(self) -> None:
        """Show and focus the filter input."""
        box = self.query_one("#runs-filter", Input)
        box.display = True
        box.value = self.filter_text
        box.focus()

    @on(Input.Changed, "#runs-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self._show()

    @on(Input.Submitted, "#runs-filter")
    def _filter_done(self) -> None:
        self._close_filter()

    def _close_filter(self) -> None:
        box = self.query_one("#runs-filter", Input)
        box.display = bool(self.filter_text)
        self.query_one(RunTable).focus()

    def action_sort(self, column: str | None = None) -> None:
        """Sort by the next column (or `column`)."""
        if column is None:
            column = SORTABLE[(SORTABLE.index(self.sort_column) + 1) % len(SORTABLE)]
        if column == self.sort_column:
            self.sort_descending = not self.sort_descending
        else:
            self.sort_column = column
            self.sort_descending = column in (*NUMERIC, "started", "epoch", "sweep")
        self._show()

    def action_reverse(self) -> None:
        """Reverse the order."""
        self.sort_descending = not self.sort_descending
        self._show()

    @on(RunTable.HeaderClicked)
    def _header_clicked(self, message: RunTable.HeaderClicked) -> None:
        if message.column in SORTABLE:
            self.action_sort(message.column)

    # ------------------------------------------------------------------------ marks and actions
    def _remark(self) -> None:
        for k, cells in self._cells.items():
            cells["mark"] = self._raw[k]["mark"] = "◆" if k in self.marked else " "
        table = self.query_one(RunTable)
        table.marked = set(self.marked)
        table.refresh()
        self._title()

    def action_mark(self) -> None:
        """Mark / unmark the run under the cursor and move down."""
        table = self.query_one(RunTable)
        run = table.cursor_key
        if run is None:
            return
        if run in self.marked:
            self.marked.remove(run)
        else:
            self.marked.append(run)
        table.action_cursor(1)
        self._remark()

    def action_mark_all(self) -> None:
        """Mark every run shown (all shown already marked: unmark them)."""
        shown = self.query_one(RunTable).keys
        if all(k in self.marked for k in shown):
            self.marked = [k for k in self.marked if k not in set(shown)]
        else:
            self.marked += [k for k in shown if k not in self.marked]
        self._remark()

    def action_open(self) -> None:
        """Attach the main screen to the run under the cursor."""
        run = self.query_one(RunTable).cursor_key
        if run is not None:
            self.dismiss(run)

    @on(RunTable.Selected)
    def _selected(self, message: RunTable.Selected) -> None:
        self.dismiss(message.key)

    def action_compare(self) -> None:
        """Compare the marked runs (one marked: with the run under the cursor)."""
        names = [n for n in self.marked if n in self.views]
        cur = self.query_one(RunTable).cursor_key
        if len(names) < 2 and cur is not None and cur not in names:
            names.append(cur)
        if len(names) < 2:
            self.notify("Mark two runs or more with space, then press c", severity="warning")
            return
        views = [self.views[n] for n in names]
        full = getattr(self.app, "compare_views", None)
        if full is not None and any(v.far_host is not None for v in views):
            full(views)  # a host's run: read whole from its host first (issue 19)
            return
        self.app.push_screen(CompareScreen(views))

    def action_kill_marked(self) -> None:
        """Kill the marked runs that are still running (after a confirmation)."""
        views = [self.views[n] for n in self.marked if n in self.views]
        killable = getattr(self.app, "killable", lambda v: v.active)
        running = [v for v in views if v.loaded and killable(v)]
        if not running:
            self.notify("No marked run is running", severity="warning")
            return
        kill = getattr(self.app, "kill_runs", None)
        if kill is not None:
            kill(running)

    def action_escape(self) -> None:
        """Esc in the filter input closes it (the filter stays); else back."""
        if self.focused is self.query_one("#runs-filter", Input):
            self._close_filter()
        else:
            self.action_back()

    def action_back(self) -> None:
        """Back to the main screen (stays here if no run is attached)."""
        self.dismiss(None)
