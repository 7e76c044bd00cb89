"""The Textual app: one run followed live, the next step one key away (docs/design.md)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState, get_current_worker

from tui.errors import RunctlError
from tui.messages import CheckpointDecided, RunEnded
from tui.presets import (
    BASELINES_FILE,
    Baselines,
    Preset,
    PresetError,
    derive,
    load_baselines,
    resolve,
)
from tui.report import render_report
from tui.screens.confirm import KillScreen
from tui.screens.launch import LaunchRequest, LaunchScreen
from tui.screens.main import MainScreen
from tui.screens.runs import RunsScreen
from tui.widgets.proc_probe import sample_process
from tui.widgets.run_watch import Probe, RunWatch, default_follower
from tui.widgets.view import ACTIVE, RunView, field_of

POLL_S = 0.25  # the follower posts at most 4 snapshots a second
IDLE_POLL_S = 0.5  # ...and polls half as often once the log has been quiet for 2 s


class RunctlApp(App[int]):
    """Built from injected parts: a run store, a launcher and a preset registry."""

    CSS_PATH = "runctl.tcss"
    TITLE = "runctl"
    BINDINGS = [
        Binding("l", "launch", "Launch"),
        Binding("n", "next", "Next step"),
        Binding("k", "kill", "Kill"),
        Binding("r", "resume", "Resume"),
        Binding("R", "runs", "Runs"),
        Binding("e", "export", "Export"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self, store: Any, launcher: Any, registry: Any, *, baselines: Baselines | None = None,
        run: str | None = None, log: Path | None = None, launch: str | None = None,
        clock: Callable[[], float] = time.time, probe: Probe | None = sample_process,
        follower_factory: Callable[[Path], Any] = default_follower, poll_interval: float = POLL_S,
        kill_grace: float = 30.0, reports_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.store, self.launcher, self.registry = store, launcher, registry
        self.baselines = baselines if baselines is not None else self._load_baselines()
        self.clock, self.probe, self.follower_factory = clock, probe, follower_factory
        self.poll_interval, self.kill_grace = poll_interval, kill_grace
        self.reports_dir = reports_dir
        self._start = (run, log, launch)
        self.main = MainScreen(clock)
        self.follower: RunWatch | None = None

    # ------------------------------------------------------------------------ start-up
    def _load_baselines(self) -> Baselines | None:
        directory = getattr(self.registry, "directory", None)
        try:
            return load_baselines(Path(directory) / BASELINES_FILE) if directory else None
        except PresetError:
            return None

    async def on_mount(self) -> None:
        """Attach to what the command line asked for, else the newest active run, else list runs."""
        await self.push_screen(self.main)
        run, log, launch = self._start
        if launch:
            self.do_launch(LaunchRequest(launch))
        elif log is not None:
            self.attach(self.store.for_log(log) if self.store else None, Path(log))
        elif run:
            self.attach(self.store.get(run))
        else:
            active = next((m for m in self.store.runs() if self.store.is_running(m)), None)
            if active is not None:
                self.attach(active)
            else:
                self.action_runs()

    def preset_for(self, manifest: Any) -> Preset | None:
        """The manifest's preset with its --set/--env applied (None: unknown)."""
        name = field_of(manifest, "preset")
        if not name or self.registry is None:
            return None
        try:
            base = self.registry.get(name)
        except RunctlError:
            return None
        try:
            return resolve(base, field_of(manifest, "sets", ()), field_of(manifest, "envs", ()))
        except RunctlError:
            return base

    # ------------------------------------------------------------------------ following
    def attach(self, manifest: Any, log: Path | None = None) -> None:
        """Follow a run (replaces the current follower)."""
        run = field_of(manifest, "run")
        path = Path(log if log is not None else field_of(manifest, "log") or self.store.log_path(run))
        self.follower = RunWatch(
            self.main.post_message, path, self.follower_factory(path), run=run, manifest=manifest,
            preset=self.preset_for(manifest), baselines=self.baselines,
            store=self.store if manifest is not None else None, probe=self.probe, clock=self.clock,
        )
        self.main.reset()
        self.sub_title = run or str(path)
        self._follow(self.follower)

    @work(thread=True, exclusive=True, group="follow", exit_on_error=False, name="follower")
    def _follow(self, watch: RunWatch) -> None:
        """The one follower: poll the log, post chunks and snapshots, sleep."""
        worker = get_current_worker()
        quiet = 0
        while not worker.is_cancelled:
            quiet = 0 if watch.step() else quiet + 1
            idle = quiet * self.poll_interval >= 2.0
            time.sleep(max(self.poll_interval, IDLE_POLL_S) if idle else self.poll_interval)

    @property
    def view(self) -> RunView | None:
        """The latest snapshot of the followed run."""
        return self.main.view

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            err = event.worker.error
            msg = str(err) if isinstance(err, RunctlError) else f"{type(err).__name__}: {err}"
            self.notify(msg, title=event.worker.name or "error", severity="error", timeout=10)

    @on(CheckpointDecided)
    def _checkpoint(self, message: CheckpointDecided) -> None:
        self.bell()
        self.notify(f"{message.mark} {message.say}", title=message.title, timeout=15)

    @on(RunEnded)
    def _ended(self, message: RunEnded) -> None:
        self.bell()
        severity: Literal["information", "error"] = "information" if message.state == "finished" else "error"
        self.notify(message.detail, title=f"{message.run}: {message.state}", severity=severity, timeout=20)

    # ------------------------------------------------------------------------ actions
    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The keys, also in the command palette."""
        yield from super().get_system_commands(screen)
        for b in self.BINDINGS:
            assert isinstance(b, Binding)
            yield SystemCommand(f"{b.description} ({b.key})", f"runctl: {b.description.lower()}",
                                lambda a=b.action: self.run_action(a))
        yield SystemCommand("Filter log (/)", "regex filter on the log pane",
                            lambda: self.main.action_filter())

    def action_launch(self, initial: str | None = None) -> None:
        """Pick a preset, edit it, launch it (or save it as a new preset)."""
        presets: dict[str, Preset | str] = {}
        for name in self.registry.names():
            try:
                presets[name] = self.registry.get(name)
            except RunctlError as e:
                presets[name] = str(e)
        current = field_of(self.view.manifest if self.view else None, "preset")
        self.push_screen(LaunchScreen(presets, initial or current), self._launch_chosen)

    def _launch_chosen(self, req: LaunchRequest | None) -> None:
        if req is None:
            return
        if req.save_as:
            try:
                path = derive(self.registry, req.preset, req.sets, req.envs, req.save_as)
            except RunctlError as e:
                self.notify(str(e), severity="error")
                return
            self.notify(f"saved preset {req.save_as}: {path}", title="Preset saved")
            return
        self.do_launch(req)

    @work(thread=True, exit_on_error=False, name="launch")
    def do_launch(self, req: LaunchRequest) -> None:
        """Start a run detached, then follow it."""
        m = self.launcher.launch(req.preset, list(req.sets), list(req.envs), req.name)
        self.call_from_thread(self._launched, m, f"launched {field_of(m, 'run')} (pid {field_of(m, 'pid')})")

    def _launched(self, manifest: Any, text: str) -> None:
        if self.screen is not self.main and isinstance(self.screen, RunsScreen):
            self.pop_screen()
        self.attach(manifest)
        self.notify(text, title="Run started")

    def action_next(self) -> None:
        """Apply the recommended next step (launch its preset, or resume)."""
        v = self.view
        rec = v.verdicts.recommendation if v and v.verdicts else None
        if rec is None:
            self.notify("No recommendation yet", severity="warning")
        elif rec.action == "launch" and rec.preset:
            self.do_launch(LaunchRequest(rec.preset))
        elif rec.action == "resume":
            self.action_resume()
        else:
            steps = "; ".join(rec.steps)
            self.notify(f"{rec.why}" + (f" — {steps}" if steps else ""), title=f"Next: {rec.action}")

    def action_kill(self) -> None:
        """Confirm, then SIGTERM (checkpoint) and SIGKILL after the grace period."""
        v = self.view
        if v is None or v.run is None or v.state.state not in ACTIVE:
            self.notify("No running run to kill", severity="warning")
            return
        pid = field_of(v.manifest, "pid") or v.state.pid

        def answered(yes: bool | None) -> None:
            if yes:
                self._kill(v.run or "")

        self.push_screen(KillScreen(v.run, pid, self.kill_grace), answered)

    @work(thread=True, exit_on_error=False, name="kill")
    def _kill(self, run: str) -> None:
        def say(text: str) -> None:
            self.call_from_thread(self.notify, text, title=f"kill {run}")

        result = self.launcher.kill(run, self.kill_grace, say=say)
        self.call_from_thread(self.notify, str(result), title=f"{run} stopped")

    def action_resume(self) -> None:
        """Resume the followed run from its last checkpoint."""
        v = self.view
        if v is None or v.run is None:
            self.notify("No run to resume", severity="warning")
            return
        self._resume(v.run)

    @work(thread=True, exit_on_error=False, name="resume")
    def _resume(self, run: str) -> None:
        m = self.launcher.resume(run)
        self.call_from_thread(self._launched, m, f"resumed {run} (pid {field_of(m, 'pid')})")

    def action_runs(self) -> None:
        """Show every run (again: back to the main screen)."""
        if isinstance(self.screen, RunsScreen):
            self.screen.dismiss(None)
            return
        self.push_screen(RunsScreen(self.load_runs), self._run_chosen)

    def _run_chosen(self, run: str | None) -> None:
        if run is not None and (self.view is None or self.view.run != run):
            self.attach(self.store.get(run))
        elif run is None and self.view is None:
            self.call_later(self.action_runs)  # nothing to go back to

    def load_runs(self) -> list[RunView]:
        """Every run with its state (called from the runs screen's worker thread)."""
        out = []
        for m in self.store.runs():
            st = self.store.state(m)
            out.append(RunView(run=m.run, state=st, preset=self.preset_for(m),
                               log_path=Path(m.log), launched_at=m.created_at, manifest=m))
        return out

    def action_export(self) -> None:
        """Write the Markdown status page of the followed run and say where."""
        v = self.view
        if v is None:
            self.notify("No run attached", severity="warning")
            return
        from tui.verdicts import evaluate

        preset = v.preset or Preset(name="(unknown)", path=Path("-"))
        verdicts = v.verdicts or evaluate(preset, v.state, self.baselines)
        manifest = v.manifest.to_json() if hasattr(v.manifest, "to_json") else dict(v.manifest or {})
        text = render_report(preset, v.state, verdicts, manifest, baselines=self.baselines, now=self.clock())
        directory = self.reports_dir or (Path(self.store.logs_dir) / "reports" if self.store else Path.cwd())
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{v.run or 'run'}_status.md"
        path.write_text(text, encoding="utf-8")
        self.notify(str(path), title="Report written")


def run_app(
    logs_dir: Path, presets_dir: Path | None, run: str | None, log: Path | None,
    launch: str | None, serve: bool = False, host: str = "localhost", port: int = 8000,
) -> int:
    """`runctl tui`: build the parts and run the app (or serve it in a browser)."""
    from tui.launcher import Launcher
    from tui.presets import PresetRegistry, find_presets_dir
    from tui.store import RunStore

    store = RunStore(logs_dir)
    registry = PresetRegistry(find_presets_dir(presets_dir))
    if serve:
        if launch is not None:  # launch once here; every browser session then attaches to it
            run, launch = Launcher(store, registry).launch(launch).run, None
        from tui.serve import serve_app

        return serve_app(logs_dir, presets_dir, run, log, launch, host=host, port=port)
    app = RunctlApp(store, Launcher(store, registry), registry, run=run, log=log, launch=launch)
    app.run()
    return app.return_code or 0
