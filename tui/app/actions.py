"""The key actions of the Textual app (launch, next step, kill, resume, runs, export) and the workers
they start; `tui.app.app.RunctlApp` adds the start-up, the follower and the notifications.

`RunActions` is the app's base class: it declares the parts `RunctlApp.__init__` sets (a run store,
a launcher, a preset registry, the baseline table, a clock) and uses them; nothing here follows a log.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App

from tui.app.messages import HOSTS_FILE, QueueLoaded, RunsLoaded
from tui.app.screens.confirm import KillScreen
from tui.app.screens.launch import LaunchRequest, LaunchScreen
from tui.app.screens.main import MainScreen
from tui.app.screens.runs import RunsScreen
from tui.app.view import ACTIVE, RunView, field_of
from tui.errors import RunctlError
from tui.judge.report import render_report
from tui.presets.baselines import Baselines
from tui.presets.preset import Preset
from tui.presets.registry import derive, resolve
from tui.runs.gpus import box_gpus, held
from tui.runs.hosts import LOCAL, split_target
from tui.runs.queue import RunQueue, gpus_needed
from tui.runs.store import DAMAGED
from tui.state.records import EpochRecord, HorizonMetrics
from tui.state.run import RunState

CHANGING = ("launch", "next", "kill", "resume", "kill_marked", "queue_preset", "unqueue")  # what --readonly takes away
RUNS_BATCH_S = 0.5  # the runs screen gets the states read so far this often (once if quick)
READ_SWITCH_S = 0.0005  # the GIL switch interval while reading logs for it (Python's: 5 ms)


@dataclass(frozen=True)
class HostRun:
    """A run on a host as the app follows it (issue 19): the host, the store of its mirror, and
    its preset and baselines as the host has them (None: they could not be copied)."""

    name: str
    store: Any
    preset: Preset | None = None
    baselines: Baselines | None = None


class RunActions(App[int]):
    """The actions bound to keys (and the command palette) and what they need from the app."""

    # Set by RunctlApp.__init__.
    store: Any
    launcher: Any
    registry: Any
    remote: Any  # tui.runs.remote.Remote: the hosts of hosts.toml (None: none asked)
    baselines: Baselines | None
    clock: Callable[[], float]
    kill_grace: float
    reports_dir: Path | None
    main: MainScreen

    def attach(self, manifest: Any, log: Path | None = None, host: HostRun | None = None) -> None:
        """Follow a run (RunctlApp starts the follower)."""
        raise NotImplementedError

    # ------------------------------------------------------------------------ runs on hosts
    def host_run(self, host: str, run: str) -> tuple[Any, HostRun]:
        """A host's run made ready to follow (off the UI thread): its mirror refreshed from the
        host, its preset and baselines copied from there (without them: no verdicts)."""
        m, preset, baselines = self.remote.prepared(host, run)
        return m, HostRun(host, self.remote.store(host), preset, baselines)

    @work(thread=True, exit_on_error=False, name="attach")
    def attach_remote(self, host: str, run: str) -> None:
        """Follow a run on a host (its mirror and log copy made first, in a thread: a host that
        does not answer is a toast, never a frozen screen)."""
        try:
            m, hr = self.host_run(host, run)
        except RunctlError as e:
            self.call_from_thread(self.notify, str(e), title=f"{host}:{run}", severity="error",
                                  markup=False)
            if self.view is None:
                self.call_from_thread(self.action_runs)
            return
        self.call_from_thread(self.attach, m, None, hr)

    def open_run(self, key: str) -> None:
        """Follow the run a key names: `HOST:RUN` on its host, else this machine's."""
        host, run = split_target(key)
        if host is None or host == LOCAL:
            self.attach(self.store.get(run))
        else:
            self.attach_remote(host, run)

    @property
    def view(self) -> RunView | None:
        """The latest snapshot of the followed run."""
        return self.main.view

    def preset_for(self, manifest: Any, cache: dict[tuple[Any, ...], Preset | None] | None = None
                   ) -> Preset | None:
        """The manifest's preset with its --set/--env applied (None: unknown); `cache` keeps the
        resolved presets of one listing (a thousand runs share a few presets)."""
        name = field_of(manifest, "preset")
        if not name or self.registry is None:
            return None
        if cache is not None:
            key = (name, tuple(field_of(manifest, "sets", ())), tuple(field_of(manifest, "envs", ())))
            if key not in cache:
                cache[key] = self.preset_for(manifest)
            return cache[key]
        try:
            base = self.registry.get(name)
        except RunctlError:
            return None
        try:
            return resolve(base, field_of(manifest, "sets", ()), field_of(manifest, "envs", ()))
        except RunctlError:
            return base

    # ------------------------------------------------------------------------ read-only
    readonly: bool

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Read-only: the actions that launch, kill or resume are gone (keys, footer, palette);
        otherwise the READ-ONLY footer item is."""
        if action == "readonly_info":
            return self.readonly
        return not (self.readonly and action in CHANGING)

    def action_readonly_info(self) -> None:
        """Say what read-only means."""
        self.notify("read-only: watching only; nothing is launched, killed or resumed from here",
                    title="READ-ONLY")

    # ------------------------------------------------------------------------ actions
    def action_launch(self, initial: str | None = None, queue: bool = False) -> None:
        """Pick a preset, edit it, launch it (or save it as a new preset; `queue`: wait for GPUs)."""
        presets: dict[str, Preset | str] = {}
        for name in self.registry.names():
            try:
                presets[name] = self.registry.get(name)
            except RunctlError as e:
                presets[name] = str(e)
        current = field_of(self.view.manifest if self.view else None, "preset")
        self.push_screen(LaunchScreen(presets, initial or current),
                         self._queue_chosen if queue else self._launch_chosen)

    def _queue_chosen(self, req: LaunchRequest | None) -> None:
        if req is not None and not req.save_as:
            self.do_queue(req)
        elif req is not None:
            self._launch_chosen(req)

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

    def _launched(self, manifest: Any, text: str, host: HostRun | None = None) -> None:
        if self.screen is not self.main and isinstance(self.screen, RunsScreen):
            self.pop_screen()
        self.attach(manifest, None, host)
        self.notify(text, title="Run started")

    def action_next(self) -> None:
        """Apply the recommended next step (launch its preset, or resume)."""
        v = self.view
        rec = v.verdicts.recommendation if v and v.verdicts else None
        if rec is None:
            self.notify("No recommendation yet", severity="warning")
        elif rec.action == "launch" and rec.preset and v is not None and v.far_host is not None:
            self._launch_on(v.far_host, rec.preset)  # a host's run: its next one there too
        elif rec.action == "launch" and rec.preset:
            self.do_launch(LaunchRequest(rec.preset))
        elif rec.action == "resume":
            self.action_resume()
        else:
            steps = "; ".join(rec.steps)
            self.notify(f"{rec.why}" + (f" — {steps}" if steps else ""), title=f"Next: {rec.action}")

    @work(thread=True, exit_on_error=False, name="launch")
    def _launch_on(self, host: str, preset: str) -> None:
        """Launch a preset on a host (its runctl, its preset), then follow it."""
        started, _ = self.remote.launch(host, preset)
        if "queued" in started:
            self.call_from_thread(self.notify, f"queued {started['queued']} on {host}",
                                  title="Queued")
            return
        m, hr = self.host_run(host, started["run"])
        text = f"launched {host}:{m.run} (pid {m.pid} on {host})"
        self.call_from_thread(self._launched, m, text, hr)

    def killable(self, v: RunView) -> bool:
        """The run may be killed: a live state, or a damaged manifest whose run's process (found
        from its log's pid line and pid file, verified) still runs on this machine."""
        if v.run is None:
            return False
        if v.state.state in ACTIVE:
            return True
        if v.state.state != DAMAGED or v.far_host is not None or v.manifest is None:
            return False
        try:
            return bool(self.store.is_running(v.manifest))
        except RunctlError:
            return False

    def action_kill(self) -> None:
        """Confirm, then SIGTERM (checkpoint) and SIGKILL after the grace period."""
        v = self.view
        if v is None or not self.killable(v):
            self.notify("No running run to kill", severity="warning")
            return
        pid = field_of(v.manifest, "pid") or v.state.pid

        def answered(yes: bool | None) -> None:
            if yes:
                self._kill([v.key or ""])

        self.push_screen(KillScreen([(v.key or "?", pid)], self.kill_grace), answered)

    def kill_runs(self, views: list[RunView]) -> None:
        """Confirm, then kill each of these runs in turn (the runs screen's marked ones)."""
        if self.readonly:
            return
        targets = [(v.run or "?", field_of(v.manifest, "pid") or v.state.pid) for v in views]

        def answered(yes: bool | None) -> None:
            if yes:
                self._kill([run for run, _ in targets])

        self.push_screen(KillScreen(targets, self.kill_grace), answered)

    @work(thread=True, exit_on_error=False, name="kill")
    def _kill(self, runs: list[str]) -> None:
        for run in runs:
            def say(text: str, run: str = run) -> None:
                self.call_from_thread(self.notify, text, title=f"kill {run}", markup=False)

            host, rid = split_target(run)
            try:
                if host is None or host == LOCAL:
                    result = self.launcher.kill(rid, self.kill_grace, say=say)
                else:  # a host's run: its runctl kills it (issue 19)
                    result = self.remote.kill(host, rid, self.kill_grace, say=say)
            except RunctlError as e:
                self.call_from_thread(self.notify, str(e), title=f"kill {run}", severity="error",
                                      markup=False)
                continue
            self.call_from_thread(self.notify, str(result), title=f"{run} stopped", markup=False)

    def action_resume(self) -> None:
        """Resume the followed run from its last checkpoint."""
        v = self.view
        if v is None or v.run is None:
            self.notify("No run to resume", severity="warning")
            return
        self._resume(v.key or v.run)

    @work(thread=True, exit_on_error=False, name="resume")
    def _resume(self, run: str) -> None:
        host, rid = split_target(run)
        if host is not None and host != LOCAL:  # a host's run: its runctl resumes it (issue 19)
            self.remote.resume(host, rid)
            m, hr = self.host_run(host, rid)
            self.call_from_thread(self._launched, m, f"resumed {run} (pid {m.pid} on {host})", hr)
            return
        m = self.launcher.resume(rid)
        self.call_from_thread(self._launched, m, f"resumed {run} (pid {field_of(m, 'pid')})")

    def action_runs(self) -> None:
        """Show every run (again: back to the main screen)."""
        if isinstance(self.screen, RunsScreen):
            self.screen.dismiss(None)
            return
        self.push_screen(RunsScreen(self.load_runs, readonly=self.readonly, queue_loader=self.load_queue),
                         self._run_chosen)

    def load_queue(self) -> QueueLoaded:
        """The queue and the box's GPUs (in the runs screen's worker thread)."""
        try:
            gpus = box_gpus()
            held_now = held(self.store) if gpus else {}
            items = RunQueue(self.store).load().waiting
        except RunctlError as e:
            return QueueLoaded([], [], [], error=str(e))
        return QueueLoaded(items, gpus, [g for g in gpus if g not in held_now])

    def action_queue_preset(self) -> None:
        """Pick a preset to wait in the queue for its GPUs (the launch picker, then queued)."""
        self.action_launch(queue=True)

    @work(thread=True, exit_on_error=False, name="queue")
    def do_queue(self, req: LaunchRequest) -> None:
        """Validate like a launch, queue it, wake the runner."""
        try:
            need = gpus_needed(self.launcher, req.preset, list(req.sets), list(req.envs), req.name)
            queue = RunQueue(self.store)
            item = queue.add(req.preset, self.registry.directory, list(req.sets), list(req.envs),
                             name=req.name, gpus=need)
            queue.ensure_runner()
        except RunctlError as e:
            self.call_from_thread(self.notify, str(e), severity="error")
            return
        self.call_from_thread(self.notify, f"queued {item.id}: {item.preset} waits for {need} GPU(s)",
                              title="Queued")
        self.call_from_thread(self._refresh_runs)

    @work(thread=True, exit_on_error=False, name="unqueue")
    def unqueue(self, item: str) -> None:
        """Take a waiting item out of the queue."""
        try:
            gone = RunQueue(self.store).remove(item)
        except RunctlError as e:
            self.call_from_thread(self.notify, str(e), severity="error")
            return
        self.call_from_thread(self.notify, f"removed {gone.id} ({gone.preset}) from the queue")
        self.call_from_thread(self._refresh_runs)

    def _refresh_runs(self) -> None:
        if isinstance(self.screen, RunsScreen):
            self.screen.action_refresh()

    def _run_chosen(self, run: str | None) -> None:
        if run is not None and (self.view is None or self.view.key != run):
            self.open_run(run)
        elif run is None and self.view is None:
            self.call_later(self.action_runs)  # nothing to go back to

    def load_runs(self, post: Callable[[RunsLoaded], object]) -> None:
        """Every run for the runs screen (in its worker thread): the listing from the manifests
        first, then the states, newest first, those read so far every `RUNS_BATCH_S`."""
        cache: dict[tuple[Any, ...], Preset | None] = {}
        manifests = self.store.runs()
        hosts = self._hosts(post)
        here = LOCAL if hosts else None  # among hosts, this machine's runs say so

        def view(m: Any, st: RunState | None) -> RunView:
            return RunView(run=m.run, state=st or RunState(run=m.run), preset=self.preset_for(m, cache),
                           log_path=Path(m.log), launched_at=m.created_at, manifest=m,
                           loaded=st is not None, host=here)

        post(RunsLoaded([view(m, None) for m in manifests], done=not manifests, listing=True))
        if hosts:
            self._list_hosts(post, {m.log for m in manifests})
        switch = sys.getswitchinterval()
        sys.setswitchinterval(READ_SWITCH_S)  # the UI thread waits less for the GIL meanwhile
        try:
            self._read_states(manifests, view, post)
        finally:
            sys.setswitchinterval(switch)

    # ------------------------------------------------------------------------ hosts' runs
    _hosts_busy: threading.Event | None = None

    def _hosts(self, post: Callable[[RunsLoaded], object]) -> list[str]:
        """The hosts of hosts.toml (a mistake in it: said on the runs screen, no host asked)."""
        if self.remote is None:
            return []
        try:
            hosts = list(self.remote.hosts)
        except RunctlError as e:
            post(RunsLoaded([], done=False, listing=True, host=HOSTS_FILE, error=str(e)))
            return []
        post(RunsLoaded([], done=False, listing=True, host=HOSTS_FILE))  # (fixed: the line goes)
        return hosts

    def _list_hosts(self, post: Callable[[RunsLoaded], object], here: set[str]) -> None:
        """Every host's runs, in a thread of their own (a host that does not answer costs its
        timeout there, never the local listing's), one message per host; one listing at a time."""
        if self._hosts_busy is not None and self._hosts_busy.is_set():
            return
        busy = self._hosts_busy = threading.Event()
        busy.set()

        def run() -> None:
            try:
                for answer in self.remote.listing():
                    views = [host_view(answer.host, row) for row in answer.rows
                             if row.get("log") not in here]  # a host that is this machine: once
                    post(RunsLoaded(views, done=False, listing=True, host=answer.host,
                                    error=answer.error))
            except RunctlError as e:
                post(RunsLoaded([], done=False, listing=True, host=HOSTS_FILE, error=str(e)))
            finally:
                busy.clear()

        threading.Thread(target=run, name="hosts listing", daemon=True).start()

    def compare_views(self, views: list[RunView]) -> None:
        """Compare runs from any host: the hosts' runs read whole first (their logs copied to the
        mirror, in a thread), then the compare screen."""
        self._compare(views)

    @work(thread=True, exit_on_error=False, name="compare")
    def _compare(self, views: list[RunView]) -> None:
        from tui.app.screens.compare import CompareScreen

        full = []
        for v in views:
            if v.far_host is None or v.run is None:
                full.append(v)
                continue
            host, run = split_target(v.key or v.run)
            try:
                m, hr = self.host_run(host or v.far_host, run)
                st = hr.store.state(m, resume=False)
            except RunctlError as e:
                self.call_from_thread(self.notify, str(e), title=f"compare {v.run}",
                                      severity="error", markup=False)
                return
            full.append(RunView(run=v.run, state=st, preset=hr.preset, log_path=Path(m.log),
                                launched_at=m.created_at, manifest=m, host=v.host))
        self.call_from_thread(self.push_screen, CompareScreen(full))

    def _read_states(self, manifests: list[Any], view: Callable[[Any, RunState | None], RunView],
                     post: Callable[[RunsLoaded], object]) -> None:
        batch: list[RunView] = []
        sent = time.monotonic()
        for i, m in enumerate(manifests):
            batch.append(view(m, self.store.state(m, resume=False)))  # no recommendation on this screen
            last = i == len(manifests) - 1
            if last or time.monotonic() - sent >= RUNS_BATCH_S:
                post(RunsLoaded(batch, done=last))
                batch, sent = [], time.monotonic()

    def action_export(self) -> None:
        """Write the Markdown status page of the followed run and say where."""
        v = self.view
        if v is None:
            self.notify("No run attached", severity="warning")
            return
        from tui.judge.evaluate import evaluate

        preset = v.preset or Preset(name="(unknown)", path=Path("-"))
        verdicts = v.verdicts or evaluate(preset, v.state, self.baselines)
        manifest = v.manifest.to_json() if hasattr(v.manifest, "to_json") else dict(v.manifest or {})
        text = render_report(preset, v.state, verdicts, manifest, baselines=self.baselines, now=self.clock())
        directory = self.reports_dir or (Path(self.store.logs_dir) / "reports" if self.store else Path.cwd())
        path = directory / f"{v.run or 'run'}_status.md"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as e:  # e.g. watching a colleague's read-only logs folder
            self.notify(f"cannot write {path}: {e.strerror or e}", severity="error")
            return
        self.notify(str(path), title="Report written")


def host_view(host: str, row: dict[str, Any]) -> RunView:
    """A host's run as the runs screen lists it, from its `runs --json` row (data: every value
    checked for its type): its state, epoch, latest Sharpe, validation loss, IC and SCALE."""

    def number(key: str) -> float | None:
        x = row.get(key)
        return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None

    def whole(key: str) -> int | None:
        x = row.get(key)
        return x if isinstance(x, int) and not isinstance(x, bool) else None

    def text(key: str) -> str | None:
        x = row.get(key)
        return x if isinstance(x, str) else None

    st = RunState(run=row["run"], state=text("state") or "?", epoch=whole("epoch"),
                  max_epochs=whole("max_epochs"), error=text("error"),
                  stalled_since=number("stalled_since"))
    sharpe, val = number("sharpe"), number("val_loss")
    ic1, ic20, scale = number("ic_h1"), number("ic_h20"), number("scale_min")
    if any(x is not None for x in (sharpe, val, ic1, ic20, scale)):
        # the row's headline as one epoch record: IC at h1 and h20; the lowest SCALE on h1's (the
        # runs screen shows only the lowest; attached, the run is read whole from its host)
        horizons = {1: HorizonMetrics(ic=ic1, scale=scale)} if ic1 is not None or scale is not None else {}
        if ic20 is not None:
            horizons[20] = HorizonMetrics(ic=ic20)
        st.epochs = [EpochRecord(epoch=st.epoch or 1, sharpe=sharpe, val_loss=val, validated=True,
                                 horizons=horizons)]
    return RunView(run=f"{host}:{row['run']}", state=st, launched_at=number("started_at"),
                   manifest=row, loaded=True, host=host)
