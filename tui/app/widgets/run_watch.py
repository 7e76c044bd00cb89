"""The one reader: follows a run's log and process, and posts snapshots and line chunks.

Runs inside the app's single follower thread worker; nothing here touches a widget. The log is read
once per poll, by the follower (`tui.state.follow.LogFollower(path, keep_lines=MAX_CHUNK)`): its events
fold into the state, its raw lines go to the log pane as one `LogChunk`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.message import Message

from tui.app.messages import (
    CheckpointDecided,
    LogChunk,
    ProcSample,
    RunEnded,
    RunNotice,
    RunSnapshot,
)
from tui.app.view import ProcView, RunView, duration, field_of
from tui.judge.conditions import TERMINAL
from tui.judge.evaluate import evaluate
from tui.judge.results import Verdicts
from tui.log.events import Progress as ProgressEvent
from tui.log.parse import parse_line
from tui.presets.backends import DEFAULT_BACKEND
from tui.presets.baselines import Baselines
from tui.presets.preset import Preset
from tui.runs.backend import backend_named
from tui.runs.store import live_state, sources_of_log
from tui.state.run import RunState

MAX_CHUNK = 5000  # the log pane keeps no more than this many lines
MAX_STEPS = 4000  # progress points kept for the per-step chart (halved, every other one, when full)
MAX_STEP_LINES = 200  # progress lines parsed per poll at most (a flood is sampled)
STEP_LOSS_NAMES = ("loss", "train_loss", "train/loss")  # a script's printed per-step train loss


def _printed_step_loss(line: str) -> tuple[float, float] | None:
    """(step, train loss) of a script's printed line that has both (the stdout source's reading:
    `iter 10: loss 3.9012, time 12.3ms`), else None."""
    from tui.log.sources import stdout

    ev = stdout.parse(line)
    step = getattr(ev, "step", None)
    if step is None:
        return None
    values = dict(getattr(ev, "values", ()))
    for name in STEP_LOSS_NAMES:
        v = values.get(name)
        if v is not None and v == v:
            return float(step), float(v)
    return None
PROC_EVERY_S = 1.0
MANIFEST_EVERY_S = 1.0

Post = Callable[[Message], Any]
Probe = Callable[[Any], ProcView | None]


def default_follower(path: Path) -> Any:
    """`tui.state.follow.LogFollower(path)`, keeping the raw lines the log pane shows (and reading
    the metrics CSV its manifest names, for a script with no runctl callback)."""
    from tui.state.follow import LogFollower

    return LogFollower(path, keep_lines=MAX_CHUNK, sources=sources_of_log(path))


class RunWatch:
    """One run: its follower (events -> state, and raw lines), its manifest and its process.

    The follower is a `LogFollower` with `keep_lines` (see `default_follower`), or anything with its
    `poll()`, `state` and `take_lines()`.
    """

    def __init__(
        self, post: Post, log: Path, follower: Any, *, run: str | None = None, manifest: Any = None,
        preset: Preset | None = None, baselines: Baselines | None = None, store: Any = None,
        probe: Probe | None = None, clock: Callable[[], float] = time.time,
        feed: Any = None, host: str | None = None,
    ) -> None:
        self.post, self.log, self.follower = post, log, follower
        self.feed, self.host = feed, host  # issue 19: a run on a host: its log's copy kept growing
        self.run, self.manifest, self.preset, self.baselines = run, manifest, preset, baselines
        self.store, self.probe, self.clock = store, probe, clock
        self._first = True
        self._decided: set[str] = set()
        self._last_state: str | None = None
        self._next_proc = 0.0
        self._next_manifest = 0.0
        self._manifest_mtime: float | None = None
        self._alive: bool | None = None
        self.steps: list[tuple[float, float]] = []
        self._progress_steps = False  # progress lines seen: they alone feed the per-step chart
        self._seen_once = False  # the log's read mark looked at (its first read: a cut log's epochs back)
        self.view: RunView | None = None
        self.notice: str | None = None  # what went wrong around the run, one line (RunNotice)
        self._had_run_dir = False
        if store is not None and manifest is not None and hasattr(follower, "writer"):
            # a log renamed away or deleted under the run: read where its process writes
            follower.writer = lambda: store.writer_file(self.manifest) if self.manifest is not None else None

    def _collect_steps(self, lines: list[str], reset: bool) -> None:
        """(global step, loss) of the progress lines read, for the per-step chart.

        The state's fold keeps only the latest progress line, so they are read from the raw
        lines (both formats, through `parse_line`); a flood is sampled to `MAX_STEP_LINES`. A
        script's run (`kind = "command"`) without progress lines: its printed per-step train loss
        (nanoGPT's `iter 10: loss 3.90, ...`, `step 250: train loss 2.41`: the stdout source's
        reading, a line with a step and a `loss`/`train_loss`/`train/loss` value).
        """
        steps = self.steps
        if reset:
            steps.clear()
            self._progress_steps = False
        script = field_of(self.manifest, "kind") == "command"
        cand = [ln for ln in lines if "[progress] " in ln or ("Epoch " in ln and "it" in ln)
                or script and not self._progress_steps and "loss" in ln]
        if len(cand) > MAX_STEP_LINES:
            every = len(cand) // MAX_STEP_LINES + 1
            cand = cand[::-every][::-1]
        for ln in cand:
            ev = parse_line(ln)
            if isinstance(ev, ProgressEvent) and ev.loss is not None and ev.step is not None:
                x = float(ev.step if not (ev.epoch and ev.steps) else (ev.epoch - 1) * ev.steps + ev.step)
                y = float(ev.loss)
                if not self._progress_steps:  # progress lines are the chart's, whatever else says
                    self._progress_steps = True
                    steps.clear()
            elif script and not self._progress_steps and (got := _printed_step_loss(ln)) is not None:
                x, y = got
            else:
                continue
            while steps and steps[-1][0] >= x:  # a resumed attempt goes back: the curve restarts there
                steps.pop()
            steps.append((x, y))
        if len(steps) > MAX_STEPS:
            self.steps = steps[::2]

    def step(self) -> bool:
        """Read what is new; post at most one chunk, one snapshot and one process sample.

        Returns whether the log grew (the caller polls less often while it does not).
        """
        now = time.monotonic()
        if self.feed is not None:  # a run on a host: the copy of its log brought up to date first
            self.feed.poll()
        events = self.follower.poll()
        if self.store is not None and self.feed is None and hasattr(self.manifest, "damaged") \
                and hasattr(self.follower, "state"):  # a log cut under the run loses nothing (tui.runs.seen)
            self.store.seen_read(self.manifest, self.follower.state, not self._seen_once)
            self._seen_once = True
        raw = self.follower.take_lines()
        if raw is not None:
            self._collect_steps(raw.lines, raw.reset)
            self.post(LogChunk(raw.lines[-MAX_CHUNK:], reset=raw.reset or self._first,
                               skipped=raw.skipped + max(0, len(raw.lines) - MAX_CHUNK)))
        changed = bool(events) or self._first
        if now >= self._next_manifest:
            self._next_manifest = now + MANIFEST_EVERY_S
            changed |= self._refresh_manifest()
            changed |= self._check_notice()
        if now >= self._next_proc and self.probe is not None:
            self._next_proc = now + PROC_EVERY_S
            proc = self.probe(self.manifest)
            alive = bool(proc and proc.alive)
            changed |= alive != self._alive
            self._alive = alive
            self.post(ProcSample(proc))
        if changed:
            self._snapshot()
        self._first = False
        return bool(events or (raw is not None and raw.lines))

    def close(self) -> None:
        """Stop what keeps a host's log copy growing (nothing for a run of this machine)."""
        if self.feed is not None:
            self.feed.close()

    def _check_notice(self) -> bool:
        """Post a RunNotice when what is wrong around the run changed (never a frozen screen)."""
        text = self._problems()
        if text == self.notice:
            return False
        self.notice = text
        self.post(RunNotice(self.run, text))
        return True

    def _problems(self) -> str | None:
        """One line: the log truncated / rotated / deleted / unreadable, the manifest gone or
        damaged, the run folder gone, the scheduler not answering (None: nothing)."""
        notes: list[str] = []
        down = getattr(self.feed, "error", None)
        if down:  # the stream of a host's log dropped: said, and started again (backends.ssh)
            notes.append(f"{down}; its log is followed again once it answers")
        event = getattr(getattr(self.follower, "state", None), "log_event", None)
        reading = getattr(self.follower, "reading", None)
        if event == "truncated":
            notes.append("log truncated: the epochs read before are kept")
        elif event in ("rotated", "deleted"):
            notes.append(f"log {'renamed away' if event == 'rotated' else 'deleted'}"
                         + (f": reading {reading}, which the run writes" if reading else ""))
        if not self.log.exists() and event != "deleted" and not reading:
            notes.append(f"the log {self.log} is gone")
        elif self.log.exists() and not os.access(self.log, os.R_OK):
            notes.append(f"cannot read {self.log}: permission denied")
        if self.store is not None and self.run is not None:
            path = self.store.manifest_path(self.run)
            if not path.exists():
                notes.append(f"the run's manifest {path} is gone")
            elif field_of(self.manifest, "damaged"):
                notes.append(f"manifest {path.name} damaged: {field_of(self.manifest, 'damaged')}")
            run_dir = field_of(self.manifest, "run_dir")
            if run_dir:
                here = Path(run_dir).is_dir()
                if self._had_run_dir and not here:
                    notes.append(f"the run folder {run_dir} is gone (its checkpoints with it)")
                self._had_run_dir = self._had_run_dir or here
            why = getattr(self.store, "job_errors", {}).get(self.run)
            if why:  # its scheduler could not be asked (`Slurm: ...`)
                title = backend_named(field_of(self.manifest, "backend") or DEFAULT_BACKEND).title
                notes.append(f"{title}: {why}")
            if self._alive and self.manifest is not None:  # judged again each tick: a silence
                st = self._state()  # changes the state with no new line (tui.state.stall)
                if st.state == "stalled" and st.stalled_since is not None:
                    since = time.strftime("%H:%M:%S", time.localtime(st.stalled_since))
                    notes.append(f"stalled: alive, but no output since {since} "
                                 f"(stall_after {duration(st.stall_after)})")
        return "; ".join(notes) or None

    def _refresh_manifest(self) -> bool:
        if self.store is None or self.run is None:
            return False
        try:
            mtime = self.store.manifest_path(self.run).stat().st_mtime
        except OSError:
            return False
        if mtime == self._manifest_mtime:
            return False
        self._manifest_mtime = mtime
        try:
            self.manifest = self.store.get(self.run)
        except Exception:  # noqa: BLE001 - a half-written manifest: try again next time
            return False
        return True

    def _state(self) -> RunState:
        return live_state(self.follower.state, self.store, self.manifest, self._alive, self.run)

    def _snapshot(self) -> None:
        st = self._state()
        verdicts: Verdicts | None = None
        if self.preset is not None:
            verdicts = evaluate(self.preset, st, self.baselines)
        launched = field_of(self.manifest, "created_at")
        self.view = RunView(run=self.run or st.run, state=st, preset=self.preset, verdicts=verdicts,
                            log_path=self.log, launched_at=launched, manifest=self.manifest,
                            steps=tuple(self.steps), notice=self.notice, host=self.host)
        self.post(RunSnapshot(self.view))
        self._notify(st, verdicts)

    def _notify(self, st: RunState, verdicts: Verdicts | None) -> None:
        decided = [c for c in (verdicts.checkpoints if verdicts else ()) if c.status == "decided"]
        if not self._first:
            for cp in decided:
                if cp.title not in self._decided:
                    self.post(CheckpointDecided(self.view.run if self.view else None, cp.title,
                                                cp.mark, f"{cp.verdict}: {cp.say}"))
            if st.state in TERMINAL and self._last_state not in TERMINAL:
                detail = st.error or st.exit_reason or st.state
                self.post(RunEnded(self.view.run if self.view else None, st.state, detail))
        self._decided = {c.title for c in decided}
        self._last_state = st.state
