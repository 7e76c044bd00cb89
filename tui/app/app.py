"""The Textual app: one run followed live, the next step one key away (docs/design.md)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

from textual import on, work
from textual.app import SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState, get_current_worker

from tui.app.actions import HostRun, RunActions
from tui.app.messages import CheckpointDecided, RunEnded, RunNotice
from tui.app.proc_probe import sample_process
from tui.app.screens.launch import LaunchRequest
from tui.app.screens.main import MainScreen
from tui.app.view import field_of
from tui.app.widgets.run_watch import Probe, RunWatch, default_follower
from tui.errors import RunctlError
from tui.presets.baselines import BASELINES_FILE, Baselines, load_baselines
from tui.presets.preset import PresetError

POLL_S = 0.25  # the follower posts at most 4 snapshots a second
IDLE_POLL_S = 0.5  # ...and polls half as often once the log has been quiet for 2 s


class RunctlApp(RunActions):
    """Built from injected parts: a run store, a launcher and a preset registry; the key actions are
    `RunActions` (tui.app.actions)."""

    CSS_PATH = "runctl.tcss"
    TITLE = "runctl"
    BINDINGS = [
        Binding("question_mark", "readonly_info", "READ-ONLY", key_display="?"),
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
        kill_grace: float = 30.0, reports_dir: Path | None = None, readonly: bool = False,
        remote: Any = None,
    ) -> None:
        super().__init__()
        self.readonly = readonly
        self.store, self.launcher, self.registry = store, launcher, registry
        self.remote = remote  # issue 19: the hosts of hosts.toml (tui.runs.remote.Remote), or None
        self.baselines = baselines if baselines is not None else self._load_baselines()
        self.clock, self.probe, self.follower_factory = clock, probe, follower_factory
        self.poll_interval, self.kill_grace = poll_interval, kill_grace
        self.reports_dir = reports_dir
        self._start = (run, log, launch)
        self.main = MainScreen(clock, readonly=readonly)
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
        if launch and not self.readonly:
            self.do_launch(LaunchRequest(launch))
        elif log is not None:
            self.attach(self.store.for_log(log) if self.store else None, Path(log))
        elif run:
            self.open_run(run)  # `HOST:RUN`: a run on a host
        else:
            active = next((m for m in self.store.runs() if self.store.is_running(m)), None)
            if active is not None:
                self.attach(active)
            else:
                self.action_runs()

    # ------------------------------------------------------------------------ following
    def attach(self, manifest: Any, log: Path | None = None, host: HostRun | None = None) -> None:
        """Follow a run (replaces the current follower). `host`: a run on a host, its manifest
        the mirror's: followed through its store (the copy of its log kept growing by its
        backend's feed), judged with the host's preset and baselines."""
        run = field_of(manifest, "run")
        store = host.store if host is not None else self.store
        path = Path(log if log is not None else field_of(manifest, "log") or store.log_path(run))
        if self.follower is not None:
            self.follower.close()
        feed = store.backend(manifest).log_feed(store, manifest) if host is not None else None
        self.follower = RunWatch(
            self.main.post_message, path, self.follower_factory(path), run=run, manifest=manifest,
            preset=host.preset if host is not None else self.preset_for(manifest),
            baselines=host.baselines if host is not None else self.baselines,
            store=store if manifest is not None else None, probe=self.probe, clock=self.clock,
            feed=feed, host=host.name if host is not None else None,
        )
        self.main.reset()
        self.sub_title = f"{host.name}:{run}" if host is not None else run or str(path)
        self._follow(self.follower)

    def on_unmount(self) -> None:
        """The followed run's feed stops with the app (a host's log stream)."""
        if self.follower is not None:
            self.follower.close()

    @work(thread=True, exclusive=True, group="follow", exit_on_error=False, name="follower")
    def _follow(self, watch: RunWatch) -> None:
        """The one follower: poll the log, post chunks and snapshots, sleep."""
        worker = get_current_worker()
        quiet = 0
        while not worker.is_cancelled:
            quiet = 0 if watch.step() else quiet + 1
            idle = quiet * self.poll_interval >= 2.0
            time.sleep(max(self.poll_interval, IDLE_POLL_S) if idle else self.poll_interval)

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

    @on(RunNotice)
    def _notice(self, message: RunNotice) -> None:
        """The followed run's files or host went wrong: a toast (the header keeps the line)."""
        if message.text:
            self.notify(message.text, title=message.run or "run", severity="warning", timeout=15)

    @on(RunEnded)
    def _ended(self, message: RunEnded) -> None:
        self.bell()
        severity: Literal["information", "error"] = "information" if message.state == "finished" else "error"
        self.notify(message.detail, title=f"{message.run}: {message.state}", severity=severity, timeout=20)

    # ------------------------------------------------------------------------ actions (RunActions)
    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The keys, also in the command palette."""
        yield from super().get_system_commands(screen)
        for b in self.BINDINGS:
            assert isinstance(b, Binding)
            if not self.check_action(b.action, ()):
                continue
            yield SystemCommand(f"{b.description} ({b.key})", f"runctl: {b.description.lower()}",
                                lambda a=b.action: self.run_action(a))
        yield SystemCommand("Filter log (/)", "regex filter on the log pane",
                            lambda: self.main.action_filter())


def run_app(
    logs_dir: Path, presets_dir: Path | None, run: str | None, log: Path | None,
    launch: str | None, serve: bool = False, host: str = "localhost", port: int = 8000,
    readonly: bool = False,
) -> int:
    """`runctl tui`: build the parts and run the app (or serve it in a browser); `readonly`: no
    key or command launches, kills or resumes (the launcher is not even built)."""
    from tui.presets.registry import PresetRegistry, find_presets_dir
    from tui.runs.launcher import Launcher
    from tui.runs.store import RunStore

    store = RunStore(logs_dir)
    registry = PresetRegistry(find_presets_dir(presets_dir))
    if readonly and launch is not None:
        raise RunctlError("--launch and --readonly exclude each other")
    if serve:
        if launch is not None:  # launch once here; every browser session then attaches to it
            run, launch = Launcher(store, registry).launch(launch).run, None
        from tui.app.serve import serve_app

        return serve_app(logs_dir, presets_dir, run, log, launch, host=host, port=port,
                         readonly=readonly)
    launcher = None if readonly else Launcher(store, registry)
    from tui.runs.remote import Remote as Hosts

    app = RunctlApp(store, launcher, registry, run=run, log=log, launch=launch, readonly=readonly,
                    remote=Hosts(logs_dir, readonly=readonly))
    app.run()
    return app.return_code or 0
