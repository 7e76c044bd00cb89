"""The autopilot: a detached supervisor that follows a run and launches the preset its verdict names.

Policy (docs/cli.md): a decided checkpoint whose rule has level `bad` and whose next action names a
preset stops the run now (SIGTERM: checkpoint saved, resumable) and launches that preset; any other
recommendation to launch waits until the run has finished and follows the final recommendation.
A crashed or killed run, or a finished one with nothing to launch, ends the chain. At most N steps.
Each run's log is followed incrementally by one `tui.runs.tail.RunTail` (the reader of `runctl status
--watch`): a poll reads only the bytes appended since the last one.
`python -m tui.runs.autopilot --logs DIR [--presets DIR] --steps N RUN`
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from tui.errors import RunctlError
from tui.runs import procs
from tui.runs.queue import RunQueue, gpus_needed
from tui.runs.queue_runner import start_head
from tui.runs.store import Manifest, RunStore
from tui.runs.tail import RunTail
from tui.state.run import RunState

POLL_S = 2.0
STOP_GRACE_S = 60.0


@dataclass(frozen=True)
class Decision:
    """What the autopilot does now: wait | launch | stop_and_launch | done | halt."""

    action: str
    why: str
    preset: str | None = None
    verdict: str | None = None
    source: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Manifest form."""
        return {"action": self.action, "why": self.why, "preset": self.preset,
                "verdict": self.verdict, "source": self.source}


def decide(st: RunState, verdicts: Any) -> Decision:
    """The policy above, as a pure function of the run state and its verdicts."""
    rec = verdicts.recommendation
    if st.state in ("crashed", "killed"):
        return Decision("halt", f"run {st.state}: {st.error or rec.why}", source=st.state)
    launch = rec.action == "launch" and bool(rec.preset)
    if st.state == "finished":
        if launch:
            return Decision("launch", rec.why, rec.preset, rec.verdict, rec.source)
        return Decision("done", rec.why, verdict=rec.verdict, source=rec.source)
    if launch:
        cp = next((c for c in verdicts.checkpoints if c.title == rec.source), None)
        if cp is not None and cp.status == "decided" and cp.level == "bad":
            return Decision("stop_and_launch", rec.why, rec.preset, rec.verdict, rec.source)
    return Decision("wait", rec.why, verdict=rec.verdict, source=rec.source)


class Autopilot:
    """Follows one chain of runs from `root`, launching at most `steps` of them."""

    def __init__(self, launcher: Any, baselines: Any, steps: int,
                 say: Callable[[str], None] = print, poll_s: float = POLL_S,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.launcher = launcher
        self.store: RunStore = launcher.store
        self.baselines = baselines
        self.steps = steps
        self.say = say
        self.poll_s = poll_s
        self.sleep = sleep
        me = procs.identify(os.getpid())
        self.me = me.to_json() if me else {"pid": os.getpid()}

    def run(self, root: str) -> int:
        """Supervise until the chain ends; 0 unless the chain could not go on."""
        from tui.judge.evaluate import evaluate

        run, step = root, 0
        tail = self._tail(run)
        try:
            while True:
                st = tail.poll()  # liveness, then only the bytes appended since the last poll
                assert tail.manifest is not None  # re-read by each poll (kill / resume update it)
                preset = self.launcher.registry.get(tail.manifest.preset)
                d = decide(st, evaluate(preset, st, self.baselines))
                if d.action == "wait":
                    self.sleep(self.poll_s)
                    continue
                self.say(f"{run}: {d.action} {d.preset or ''} ({d.verdict}: {d.why})")
                if d.action in ("done", "halt"):
                    self._record(run, d)
                    return 0
                if step >= self.steps:
                    self._record(run, replace(d, action="steps_exhausted"))
                    return 0
                try:
                    if d.action == "stop_and_launch":
                        self.say(self.launcher.kill(run, STOP_GRACE_S, by="autopilot"))
                    assert d.preset is not None  # launch decisions name a preset
                    child = self._submit(d.preset, run)
                except RunctlError as e:
                    self._record(run, replace(d, action="failed", why=f"{d.why}; {e}"))
                    return 1
                step += 1
                self._record(run, d, child=child.run)
                info = {"steps": self.steps, "step": step, "root": root, "supervisor": self.me,
                        "decisions": []}
                self._update(child.run, partial(replace, autopilot=info))
                self.say(f"launched {child.run} (pid {child.pid}), step {step}/{self.steps}")
                run = child.run
                tail.close()
                tail = self._tail(run)
        finally:
            tail.close()

    def _submit(self, preset: str, parent: str) -> Manifest:
        """The next step goes through the queue (in order with everything else waiting for GPUs);
        wait until the queue runner has started it."""
        need = gpus_needed(self.launcher, preset)
        queue = RunQueue(self.store)
        item = queue.add(preset, self.launcher.registry.directory, gpus=need, parent=parent)
        self.say(f"queued {item.id}: {preset} (waits for {need} GPU(s))")
        while True:
            now = queue.find(item.id)
            if now is None:
                raise RunctlError(f"queue item {item.id} ({preset}) was removed from the queue")
            if now.error:
                raise RunctlError(f"queue item {item.id} ({preset}) could not start: {now.error}")
            if now.run is not None:
                return self.store.get(now.run)
            waiting = queue.load().waiting
            if waiting and waiting[0].id == item.id:  # at the head: start it here, in order
                if start_head(queue, lambda _: self.launcher, self.say) != "waiting":
                    continue
            else:
                queue.ensure_runner()  # the items ahead are the runner's
            self.sleep(min(self.poll_s, 1.0))

    def _tail(self, run: str) -> RunTail:
        """The run's log followed from its start: one `LogFollower` per run of the chain."""
        m = self.store.get(run)
        return RunTail(self.store, self.store.log_path(m.run), m)

    def _record(self, run: str, d: Decision, child: str | None = None) -> None:
        entry = {**d.to_json(), "at": round(time.time(), 3), "child": child}

        def change(m: Manifest) -> Manifest:
            info = dict(m.autopilot or {"steps": self.steps, "supervisor": self.me})
            info["decisions"] = [*info.get("decisions", []), entry]
            kids = (*m.children, child) if child else m.children
            return replace(m, autopilot=info, children=kids).with_event("autopilot", **entry)

        self._update(run, change)

    def _update(self, run: str, change: Callable[[Manifest], Manifest]) -> None:
        with self.launcher._lock(f"autopilot {run}"):
            self.store.save(change(self.store.get(run)))


def main(argv: list[str] | None = None) -> int:
    """The supervisor process."""
    from tui.presets.baselines import BASELINES_FILE, load_baselines
    from tui.presets.registry import PresetRegistry, find_presets_dir
    from tui.runs.launcher import Launcher

    p = argparse.ArgumentParser(prog="python -m tui.runs.autopilot")
    p.add_argument("--logs", type=Path, required=True)
    p.add_argument("--presets", type=Path, default=None)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("run")
    a = p.parse_args(argv)
    presets_dir = find_presets_dir(a.presets)
    launcher = Launcher(RunStore(a.logs), PresetRegistry(presets_dir))
    pilot = Autopilot(launcher, load_baselines(presets_dir / BASELINES_FILE), a.steps,
                      say=lambda s: print(f"[{time.strftime('%H:%M:%S')}] {s}", flush=True))
    try:
        return pilot.run(a.run)
    except RunctlError as e:
        print(f"autopilot: {e}", flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
