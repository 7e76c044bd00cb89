"""The run header: name, preset, state, pid, elapsed, ETA and two progress bars."""

from __future__ import annotations

from collections.abc import Callable

from rich.markup import escape
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, ProgressBar, Static

from tui.app.view import STATE_MARKS, RunView, duration, elapsed_seconds, eta_seconds, field_of
from tui.presets.backends import DEFAULT_BACKEND
from tui.runs.backend import backend_named


class RunHeader(Vertical):
    """Who, what state, how far, how long."""

    def __init__(self, clock: Callable[[], float], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._clock = clock
        self._view: RunView | None = None
        self._texts: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Static("no run attached: press R for runs, l to launch", id="run-title")
        with Horizontal(classes="bar-row"):
            yield Label("epoch", id="epoch-label", classes="bar-label")
            yield ProgressBar(total=100, show_eta=False, id="epoch-bar")
            yield Label("", id="epoch-detail", classes="bar-detail")
        with Horizontal(classes="bar-row", id="run-row"):
            yield Label("run", id="run-label", classes="bar-label")
            yield ProgressBar(total=100, show_eta=False, id="run-bar")
            yield Label("", id="run-detail", classes="bar-detail")

    def on_mount(self) -> None:
        """Elapsed time ticks once a second (no file access: it only re-reads the clock)."""
        self.set_interval(1.0, self._tick)

    @property
    def rows(self) -> int:
        """Rows it takes: 3, or 2 when compact (the run bar folded into the epoch line)."""
        return 2 if self.compact else 3

    @property
    def compact(self) -> bool:
        """The run's progress bar is left out (short terminals)."""
        return self.has_class("-compact")

    def set_compact(self, compact: bool) -> None:
        """Fold the run bar into the epoch line (or show it again)."""
        if compact != self.compact:
            self.set_class(compact, "-compact")
            self.query_one("#run-row").display = not compact
            self.styles.height = self.rows
            if self._view is not None:
                self.show(self._view)

    def _set(self, widget_id: str, text: str) -> None:
        if self._texts.get(widget_id) != text:
            self._texts[widget_id] = text
            self.query_one(f"#{widget_id}", Static).update(text)

    def _tick(self) -> None:
        if self._view is not None and self._view.active:
            self._title(self._view)

    def _title(self, v: RunView) -> None:
        st, now = v.state, self._clock()
        preset = v.preset.name if v.preset else "—"
        label = backend_named(field_of(v.manifest, "backend") or DEFAULT_BACKEND).label(v.manifest) \
            if v.manifest is not None else None
        pid = label or f"pid {v.state.pid or '—'}"  # where it runs: its pid, or its job (`job 42`)
        mark = STATE_MARKS.get(st.state, "?")
        eta = eta_seconds(v, now)
        tail = f"ETA {duration(eta)}" if v.active else (st.exit_reason or st.state)
        if st.state == "stalled" and st.stalled_since is not None:
            tail = f"silent {duration(now - st.stalled_since)}"
        notice = f"  [b yellow]⚠ {escape(v.notice)}[/]" if v.notice else ""
        self._set("run-title", f"[b]{v.run or '(log)'}[/b]  [b]{preset}[/b]  {mark} [b]{st.state}[/b]"
                  f"  {tail}  up {duration(elapsed_seconds(v, now))}  {pid}{notice}")

    def show(self, v: RunView) -> None:
        """Render a snapshot."""
        self._view = v
        self._title(v)
        st, p = v.state, v.state.progress
        n = v.max_epochs
        done = sum(1 for r in st.epochs if r.validated)
        if st.state == "finished" and n:
            done = n
        epoch_bar = self.query_one("#epoch-bar", ProgressBar)
        if st.axis == "step" and not p.steps:  # a run counted in steps, with no progress bar of its own
            epoch_bar.update(total=n or None, progress=st.epoch or 0)
            detail = f"{st.epoch or 0}/{n or '?'} steps"
        elif p.steps and p.step is not None:
            step = p.steps if p.epoch is not None and p.epoch <= done else p.step
            epoch_bar.update(total=p.steps, progress=step)
            unit = "/s" if self.compact else " steps/s"
            rate = f"{p.steps_per_s:.2f}{unit}" if p.steps_per_s else f"—{unit}"
            detail = f"{step}/{p.steps} · {rate}"
        else:
            detail = "waiting for steps"
        if self.compact and n:
            detail += f" · run {done}/{n}"
        self._set("epoch-detail", detail)
        self._set("epoch-label", f"{st.axis} {st.epoch if st.epoch is not None else '—'}/{n or '—'}")
        run_bar = self.query_one("#run-bar", ProgressBar)
        if n and st.axis == "step":  # a run counted in steps: how far along its steps it is
            run_bar.update(total=n, progress=min(n, st.epoch or 0))
            evals = sum(1 for r in st.epochs if r.validated)
            self._set("run-detail", f"{evals} evaluation{'s' if evals != 1 else ''}")
        elif n:
            partial = (p.step / p.steps) if (p.steps and p.step is not None and (p.epoch or 0) > done) else 0.0
            run_bar.update(total=n, progress=min(n, done + partial))
            self._set("run-detail", f"{done}/{n} epochs")
        else:
            self._set("run-detail", "")
