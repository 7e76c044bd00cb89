"""Sweeps: a preset's `[sweep]` points run as queued runs, watched by one detached driver a sweep.

`runctl sweep PRESET` (`start_sweep`): the preset's `[sweep]` table (tui.presets.sweep) gives the
points (a grid, random draws, or an optuna study's trials, asked one at a time); each point is
validated like a launch before anything is written, the sweep's file `_logs/sweeps/<id>.json` is
written, and the points go into the run queue (tui.runs.queue): in order, onto the GPU slots (or
the backend named), at most `parallel` runs of the sweep at once. Runs are named after the sweep
(`<name>-<index>`) and carry their point in their manifest (`sweep`: id, index, values).

The driver (`python -m tui.runs.sweeps --logs DIR ID`, detached in its own session like the queue
runner; its identity in the sweep's file, its output in `_logs/sweeps/<id>.log`) polls the sweep's
runs: one whose checkpoint decision has the `stop_on` level is stopped through `runctl kill`'s
verified path (SIGTERM: its checkpoint is kept, it stays resumable), which frees its slot for the
next point; an optuna sweep reports each validated epoch's objective to its trial, stops a run its
pruner prunes, tells the study each ended trial's value and queues the next trial. When every point
has ended the sweep is done: its best point is recorded and `sweep_done` is notified (once). Every
`runctl` command restarts the driver of an unfinished sweep that died (`wake_sweeps`).

The objective is the sweep's `objective` (else its preset's first criterion's metric) at its latest
evaluation, read as the judge reads criteria (tui.judge.conditions.latest_values); the direction is
the sweep's, else the criterion's (`<` minimizes), else the name's (a loss minimizes).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from tui.errors import RunctlError, write_error
from tui.judge.conditions import TERMINAL, latest_values, lower_is_better, validated, worst
from tui.presets.preset import Preset, PresetError
from tui.presets.sweep import Param, SweepSpec, points, split_entries
from tui.runs import procs
from tui.runs.lock import controller_lock
from tui.runs.store import NAME_RE, RunStore, atomic_write_json

SWEEPS_DIR = "sweeps"
POLL_S = 2.0
KILL_GRACE_S = 60.0  # a stopped run's time to save its checkpoint
NOTIFY_WAIT_S = 180.0  # a done sweep's driver retries its sweep_done note this long, then ends
Say = Callable[[str], None]


class SweepError(RunctlError):
    """A sweep that cannot start or be found; one line."""


@dataclass
class Point:
    """One point of a sweep: its values, the queue item and the run it became, how it ended."""

    index: int
    values: dict[str, Any]
    sets: list[str]
    envs: list[str]
    item: str | None = None  # the queue item
    run: str | None = None
    trial: int | None = None  # an optuna sweep's trial number
    outcome: str | None = None  # finished | crashed | killed | stopped | pruned | failed (never started)
    objective: float | None = None  # the objective at the run's end
    note: str | None = None  # why it was stopped, pruned or failed
    reported: int = 0  # an optuna trial: evaluations reported to its pruner


@dataclass
class Sweep:
    """A sweep's file."""

    id: str
    name: str
    preset: str
    presets_dir: str
    method: str
    metric: str
    horizon: int | str | None
    direction: str  # maximize | minimize
    size: int
    stop_on: str | None = None
    parallel: int | None = None
    backend: str | None = None
    created_at: float = 0.0
    points: list[Point] = field(default_factory=list)
    done_at: float | None = None
    best: int | None = None  # the best point's index
    driver: dict[str, Any] | None = None
    storage: str | None = None  # an optuna sweep's study (a journal file)
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        """Plain JSON."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Sweep:
        """Parse a sweep file's content (unknown keys ignored)."""
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in data.items() if k in known}
        kw["points"] = [Point(**{k: v for k, v in p.items() if k in Point.__dataclass_fields__})
                        for p in kw.get("points", [])]
        return cls(**kw)

    @property
    def op(self) -> str:
        """The comparison the objective is judged with (`<` minimizes)."""
        return "<" if self.direction == "minimize" else ">"

    def better(self, a: float, b: float) -> bool:
        """a is a better objective than b."""
        return a < b if self.direction == "minimize" else a > b


# ------------------------------------------------------------------------------------- files
def sweeps_dir(store: RunStore) -> Path:
    """`_logs/sweeps/`."""
    return store.logs_dir / SWEEPS_DIR


def sweep_path(store: RunStore, sweep_id: str) -> Path:
    """`_logs/sweeps/<id>.json`."""
    return sweeps_dir(store) / f"{sweep_id}.json"


def load(store: RunStore, sweep_id: str) -> Sweep:
    """A sweep by id (or by name: its newest); SweepError naming the known ones."""
    path = sweep_path(store, sweep_id) if NAME_RE.match(sweep_id) else None
    if path is None or not path.exists():
        named = sorted((s for s in all_sweeps(store) if s.name == sweep_id), key=lambda s: s.created_at)
        if named:
            return named[-1]
        known = ", ".join(s.id for s in all_sweeps(store)[:8]) or "(none)"
        raise SweepError(f"unknown sweep {sweep_id!r} in {sweeps_dir(store)}; sweeps: {known}")
    try:
        return Sweep.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as e:
        raise SweepError(f"{path}: unreadable sweep file ({e})") from None


def all_sweeps(store: RunStore) -> list[Sweep]:
    """Every readable sweep, newest first."""
    out = []
    for p in sweeps_dir(store).glob("*.json") if sweeps_dir(store).is_dir() else ():
        with contextlib.suppress(OSError, ValueError, TypeError):
            out.append(Sweep.from_json(json.loads(p.read_text(encoding="utf-8"))))
    return sorted(out, key=lambda s: s.created_at, reverse=True)


def save(store: RunStore, sweep: Sweep) -> None:
    """Write a sweep's file atomically (call under the controller lock)."""
    d = sweeps_dir(store)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(d, e, "create") from None
    atomic_write_json(sweep_path(store, sweep.id), sweep.to_json())


# --------------------------------------------------------------------------------- objective
def objective_of(preset: Preset, spec: SweepSpec) -> tuple[str, int | str | None, str]:
    """(metric, horizon, direction) a sweep ranks its points by."""
    crit = next((c for c in preset.criteria if c.condition is not None), None)
    if spec.objective is not None:
        metric = spec.objective
        horizon = crit.condition.horizon if crit is not None and crit.condition is not None \
            and crit.metric == metric else None
        if horizon is None and metric in ("ic", "rank_ic", "scale"):
            horizon = preset.default_horizon
        op = crit.condition.op if crit is not None and crit.condition is not None and crit.metric == metric else None
    elif crit is not None and crit.condition is not None:
        metric, horizon, op = crit.metric, crit.condition.horizon, crit.condition.op
    else:
        raise SweepError(f"{preset.path}: sweep: no objective: set sweep.objective = \"METRIC\" or add a "
                         f"criterion (its metric is the objective)")
    direction = spec.direction
    if direction is None:
        if op in ("<", "<="):
            direction = "minimize"
        elif op in (">", ">="):
            direction = "maximize"
        else:
            direction = "minimize" if lower_is_better(metric) else "maximize"
    return metric, horizon, direction


def objective_value(sweep: Sweep, st: Any) -> float | None:
    """The objective at a run's latest evaluation (None: not measured)."""
    return worst(latest_values(st, validated(st), sweep.metric, sweep.horizon), sweep.metric, sweep.op)


# ----------------------------------------------------------------------------------- optuna
def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise SweepError("method = \"optuna\" needs the optuna package: pip install optuna") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def study(sweep: Sweep) -> Any:
    """The sweep's optuna study (a journal file beside the sweep's: no database server)."""
    optuna = _optuna()
    from optuna.storages import JournalStorage

    try:
        from optuna.storages.journal import JournalFileBackend
    except ImportError:  # optuna < 4
        from optuna.storages import JournalFileStorage as JournalFileBackend
    assert sweep.storage is not None
    return optuna.create_study(
        study_name=sweep.id, storage=JournalStorage(JournalFileBackend(sweep.storage)),
        direction=sweep.direction, load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=sweep.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1))


def _distributions(params: tuple[Param, ...]) -> dict[str, Any]:
    optuna = _optuna()
    dist = optuna.distributions
    out: dict[str, Any] = {}
    for p in params:
        if p.range is None:
            out[p.key] = dist.CategoricalDistribution(list(p.choices))
        elif p.range.integer:
            out[p.key] = dist.IntDistribution(int(p.range.low), int(p.range.high), log=p.range.log)
        else:
            out[p.key] = dist.FloatDistribution(p.range.low, p.range.high, log=p.range.log)
    return out


def ask(sweep: Sweep, spec: SweepSpec, index: int) -> Point:
    """The study's next trial as the sweep's point `index`."""
    trial = study(sweep).ask(_distributions(spec.params))
    entries = [p.entry(trial.params[p.key]) for p in spec.params]
    sets, envs = split_entries(entries, spec.params)
    return Point(index, _values(entries), sets, envs, trial=trial.number)  # text, as a grid's


def _trial(s: Any, number: int) -> Any:
    """A live handle on trial `number` (optuna's Trial over the study's storage)."""
    import optuna

    frozen = next(t for t in s.get_trials(deepcopy=False) if t.number == number)
    return optuna.trial.Trial(s, frozen._trial_id)


# ------------------------------------------------------------------------------------- start
def start_sweep(store: RunStore, launcher: Any, preset_name: str, presets_dir: Path,
                name: str | None = None, backend: str | None = None, parallel: int | None = None,
                say: Say = print) -> Sweep:
    """Validate every point, write the sweep's file, queue its points, start its driver."""
    from tui.presets.registry import resolve
    from tui.runs.queue import RunQueue, gpus_needed

    preset = launcher.registry.get(preset_name)
    spec: SweepSpec | None = preset.sweep
    if spec is None:
        raise SweepError(f"{preset.path}: no [sweep] table: nothing to sweep (docs/presets.md, [sweep])")
    name = name or preset_name
    if not NAME_RE.match(name):
        raise SweepError(f"--name {name!r}: use letters, digits, '_', '-', '.'")
    if parallel is not None and parallel < 1:
        raise SweepError(f"--parallel {parallel}: must be >= 1")
    metric, horizon, direction = objective_of(preset, spec)
    if parallel is None:
        parallel = spec.parallel or (1 if spec.method == "optuna" else None)
    now = time.time()
    sweep_id = f"{name}_{time.strftime('%Y%m%d_%H%M%S', time.localtime(now))}"
    n = 1
    while sweep_path(store, sweep_id).exists():
        n += 1
        sweep_id = f"{name}_{time.strftime('%Y%m%d_%H%M%S', time.localtime(now))}_{n}"
    sweep = Sweep(id=sweep_id, name=name, preset=preset_name, presets_dir=str(Path(presets_dir).resolve()),
                  method=spec.method, metric=metric, horizon=horizon, direction=direction,
                  size=spec.size or 0, stop_on=spec.stop_on, parallel=parallel, backend=backend,
                  created_at=round(now, 3), seed=spec.seed)
    if spec.method == "optuna":
        _optuna()
        sweep.storage = str((sweeps_dir(store) / f"{sweep_id}.optuna.log").resolve())
        first = min(parallel or 1, spec.trials or 1)
        try:
            sweeps_dir(store).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise write_error(sweeps_dir(store), e, "create") from None
        sweep.points = [ask(sweep, spec, i) for i in range(first)]
    else:
        for i, entries in enumerate(points(spec)):
            sets, envs = split_entries(entries, spec.params)
            sweep.points.append(Point(i, _values(entries), sets, envs))
    needs = []
    for p in sweep.points:  # each point exactly as its launch will check it, before anything is queued
        try:
            resolve(preset, p.sets, p.envs)
            needs.append(gpus_needed(launcher, preset_name, p.sets, p.envs, f"{name}-{p.index}", backend))
        except PresetError as e:
            raise SweepError(f"sweep point #{p.index} ({', '.join(p.sets + p.envs)}): {e}") from None
    queue = RunQueue(store)
    with controller_lock(store.logs_dir, f"sweep {sweep_id}"):
        save(store, sweep)
        for p, need in zip(sweep.points, needs, strict=True):
            _queue_point(queue, sweep, p, need)
        save(store, sweep)
    queue.ensure_runner()
    ensure_driver(store, sweep.id)
    say(f"sweep {sweep.id}: {len(sweep.points)} run(s) queued"
        + (f" of {spec.trials} trials" if spec.method == "optuna" else "")
        + (f", {parallel} at a time" if parallel else "") + f"; objective {metric} ({direction})")
    return sweep


def _values(entries: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for e in entries:
        k, _, v = e.partition("=")
        out[k] = v
    return out


def _queue_point(queue: Any, sweep: Sweep, p: Point, need: int) -> None:
    item = queue.add(sweep.preset, Path(sweep.presets_dir), p.sets, p.envs, name=f"{sweep.name}-{p.index}",
                     gpus=need, backend=sweep.backend,
                     sweep={"id": sweep.id, "index": p.index, "values": p.values, "parallel": sweep.parallel})
    p.item = item.id


# ------------------------------------------------------------------------------------ status
def rank(store: RunStore, sweep: Sweep) -> list[dict[str, Any]]:
    """The sweep's points, best objective first (those without one last, by index): each with its
    values, run, state, objective, outcome and note."""
    rows: list[dict[str, Any]] = []
    for p in sweep.points:
        state, value = "queued" if p.outcome is None else p.outcome, p.objective
        if p.run is not None:
            with contextlib.suppress(RunctlError):
                m = store.get(p.run)
                st = store.state(m)
                state = p.outcome if p.outcome in ("stopped", "pruned") else st.state
                value = objective_value(sweep, st) if value is None else value
        rows.append({"index": p.index, "values": p.values, "run": p.run, "state": state, "objective": value,
                     "outcome": p.outcome, "note": p.note, "trial": p.trial})
    sign = 1.0 if sweep.direction == "minimize" else -1.0
    rows.sort(key=lambda r: (r["objective"] is None, sign * float(r["objective"] or 0.0), r["index"]))
    for i, r in enumerate(rows, 1):
        r["rank"] = i if r["objective"] is not None else None
    return rows


# ------------------------------------------------------------------------------------ driver
def driver_alive(sweep: Sweep) -> bool:
    """The sweep's driver process is alive (identity checked)."""
    return procs.is_running(procs.identity_from(sweep.driver))


def ensure_driver(store: RunStore, sweep_id: str) -> procs.Identity | None:
    """Start the sweep's driver unless it is done or its driver is alive."""
    with controller_lock(store.logs_dir, f"sweep driver {sweep_id}"):
        sweep = load(store, sweep_id)
        if sweep.done_at is not None:
            return None
        if driver_alive(sweep):
            return procs.identity_from(sweep.driver)
        cmd = [sys.executable, "-m", "tui.runs.sweeps", "--logs", str(store.logs_dir.resolve()), sweep.id]
        ident = procs.spawn_detached(cmd, sweeps_dir(store) / f"{sweep.id}.log")
        sweep.driver = ident.to_json()
        try:
            save(store, sweep)
        except RunctlError:
            procs.signal_group(ident, signal.SIGKILL)
            raise
        return ident


def wake_sweeps(store: RunStore) -> None:
    """Every `runctl` command: restart the driver of an unfinished sweep whose driver died."""
    if not sweeps_dir(store).is_dir():
        return
    for s in all_sweeps(store):
        if s.done_at is None and not driver_alive(s):
            with contextlib.suppress(RunctlError):
                ensure_driver(store, s.id)


class Driver:
    """One sweep's driver: follow its runs, stop or prune, tell the study, finish it."""

    def __init__(self, store: RunStore, sweep_id: str, say: Say = print) -> None:
        from tui.presets.registry import PresetRegistry

        self.store = store
        self.sweep_id = sweep_id
        self.say = say
        sweep = load(store, sweep_id)
        self.registry = PresetRegistry(sweep.presets_dir)
        self.spec: SweepSpec | None = None
        self._study: Any = None

    def _launcher(self) -> Any:
        from tui.runs.launcher import Launcher

        return Launcher(self.store, self.registry)

    def _preset(self, sweep: Sweep, m: Any) -> Preset | None:
        from tui.presets.registry import resolve

        try:
            base = self.registry.get(sweep.preset)
            self.spec = self.spec or base.sweep
            return resolve(base, m.sets, m.envs)
        except RunctlError:
            return None

    def step(self) -> bool:
        """One poll; True when the sweep is done."""
        from tui.runs.queue import RunQueue

        queue = RunQueue(self.store)
        with controller_lock(self.store.logs_dir, f"sweep {self.sweep_id}"):
            sweep = load(self.store, self.sweep_id)
        stops: list[tuple[Point, str]] = []
        for p in sweep.points:
            if p.outcome is not None:
                continue
            if p.run is None and p.item is not None:
                item = queue.find(p.item)
                if item is not None and item.run:
                    p.run = item.run
                elif item is not None and item.error:
                    p.outcome, p.note = "failed", item.error
                    self._tell(sweep, p, None)
                    continue
            if p.run is None:
                continue
            try:
                m = self.store.get(p.run)
            except RunctlError:
                continue
            st = self.store.state(m)
            if st.state in TERMINAL:
                p.objective = objective_value(sweep, st)
                if p.note and p.note.startswith(("stopped", "pruned")):
                    p.outcome = p.note.split(":", 1)[0]
                else:
                    p.outcome = st.state
                self._tell(sweep, p, p.objective if st.state == "finished" or p.outcome == "stopped" else None)
                self.say(f"point #{p.index} {p.run}: {p.outcome}, {sweep.metric} = {p.objective}")
                continue
            if p.note is None:
                why = self._stop_reason(sweep, p, m, st)
                if why is not None:
                    p.note = why
                    stops.append((p, why))
        self._more_trials(sweep, queue)
        done = all(p.outcome is not None for p in sweep.points) and len(sweep.points) >= sweep.size
        if done:
            ranked = [p for p in sweep.points if p.objective is not None]
            best = None
            for p in ranked:
                if best is None or sweep.better(p.objective, best.objective):  # type: ignore[arg-type]
                    best = p
            sweep.best = best.index if best is not None else None
            sweep.done_at = round(time.time(), 3)
        with controller_lock(self.store.logs_dir, f"sweep {self.sweep_id}"):
            current = load(self.store, self.sweep_id)
            sweep.driver = current.driver
            save(self.store, sweep)
        for p, why in stops:  # outside the lock: kill takes it, and waits for the checkpoint
            self.say(f"point #{p.index} {p.run}: {why}; stopping it")
            try:
                self._launcher().kill(p.run or "", grace=KILL_GRACE_S, say=self.say, by=f"sweep {sweep.id}")
            except RunctlError as e:  # not stopped: the next poll judges it again (and retries)
                self.say(f"point #{p.index} {p.run}: could not stop it: {e}")
                self._forget_stop(p.index)
        if done:
            self._notify(sweep)
        return done

    def _forget_stop(self, index: int) -> None:
        """A stop that failed: drop its note, so the run is not recorded as stopped."""
        with controller_lock(self.store.logs_dir, f"sweep {self.sweep_id}"):
            sweep = load(self.store, self.sweep_id)
            for p in sweep.points:
                if p.index == index and p.outcome is None:
                    p.note = None
            save(self.store, sweep)

    def _stop_reason(self, sweep: Sweep, p: Point, m: Any, st: Any) -> str | None:
        """Why a live run of the sweep should stop now (its rules said `stop_on`; its trial was
        pruned), else None."""
        preset = self._preset(sweep, m)
        if preset is None:
            return None
        if sweep.stop_on is not None:
            from tui.judge.judging import checkpoint_results

            for cp in checkpoint_results(preset, st):
                if cp.status == "decided" and cp.level == sweep.stop_on:
                    return f"stopped: {cp.title} decided {cp.verdict} ({cp.level})"
        if sweep.method == "optuna" and p.trial is not None:
            evals = [r for r in validated(st)]
            s = self._get_study(sweep)
            trial = None
            for i, rec in enumerate(evals[p.reported:], p.reported + 1):
                vals = latest_values(st, evals[:i], sweep.metric, sweep.horizon)
                v = worst(vals, sweep.metric, sweep.op)
                if v is None:
                    continue
                trial = trial or _trial(s, p.trial)
                trial.report(v, rec.epoch)
                p.reported = i
            if trial is not None and trial.should_prune():
                return f"pruned: at {st.axis} {evals[p.reported - 1].epoch} by the study's pruner"
        return None

    def _get_study(self, sweep: Sweep) -> Any:
        if self._study is None:
            self._study = study(sweep)
        return self._study

    def _tell(self, sweep: Sweep, p: Point, value: float | None) -> None:
        if sweep.method != "optuna" or p.trial is None:
            return
        import optuna

        state = optuna.trial.TrialState
        s = self._get_study(sweep)
        with contextlib.suppress(RuntimeError, ValueError):  # told already (a restarted driver)
            if p.outcome == "pruned":
                s.tell(p.trial, state=state.PRUNED)
            elif value is None:
                s.tell(p.trial, state=state.FAIL)
            else:
                s.tell(p.trial, value)

    def _more_trials(self, sweep: Sweep, queue: Any) -> None:
        """An optuna sweep: ask and queue trials while it has room (`parallel`) and trials left."""
        if sweep.method != "optuna" or self.spec is None and self.registry.get(sweep.preset).sweep is None:
            return
        spec = self.spec = self.spec or self.registry.get(sweep.preset).sweep
        assert spec is not None
        from tui.runs.queue import gpus_needed

        while len(sweep.points) < sweep.size:
            open_ = sum(1 for p in sweep.points if p.outcome is None)
            if open_ >= (sweep.parallel or 1):
                return
            p = ask(sweep, spec, len(sweep.points))
            need = gpus_needed(self._launcher(), sweep.preset, p.sets, p.envs, f"{sweep.name}-{p.index}",
                               sweep.backend)
            _queue_point(queue, sweep, p, need)
            sweep.points.append(p)
            queue.ensure_runner()
            self.say(f"trial {p.trial} queued as point #{p.index}: {p.values}")

    def _notify(self, sweep: Sweep) -> None:
        """`sweep_done`, once, where notifications are configured (never raises)."""
        try:
            from tui.runs.notify import Notifier, destinations, load_user_config, routes, sweep_note

            preset = self.registry.get(sweep.preset)
            urls = destinations(routes(load_user_config(), preset.notify, str(preset.path)), "sweep_done")
            if not urls:
                return
            best = next((p for p in sweep.points if p.index == sweep.best), None)
            what = (f"{sum(p.outcome == 'finished' for p in sweep.points)} of {len(sweep.points)} runs "
                    f"finished; objective {sweep.metric} ({sweep.direction})")
            best_text = (f"#{best.index} {best.run}: {sweep.metric} = {best.objective:.6g} "
                         f"({', '.join(f'{k}={v}' for k, v in best.values.items())})") if best and best.objective is not None else None
            note = sweep_note(sweep.id, socket.gethostname(), what, best_text, f"runctl sweep status {sweep.id}")
            notifier = Notifier(self.store.training_dir, say=self.say)
            notifier.offer(note, urls)
            deadline = time.monotonic() + NOTIFY_WAIT_S
            while notifier.pending() and time.monotonic() < deadline:  # its retries, then it ends
                time.sleep(1.0)
                notifier.pump()
        except Exception as e:  # noqa: BLE001 - a notification never stops the sweep
            self.say(f"sweep_done notification: {e}")

    def run(self, poll_s: float = POLL_S) -> int:
        """Poll until the sweep is done."""
        while True:
            try:
                if self.step():
                    self.say(f"sweep {self.sweep_id} done")
                    return 0
            except RunctlError as e:
                self.say(f"sweep {self.sweep_id}: {e}")
            time.sleep(poll_s)


def main(argv: list[str] | None = None) -> int:
    """The driver process."""
    p = argparse.ArgumentParser(prog="python -m tui.runs.sweeps")
    p.add_argument("--logs", type=Path, required=True)
    p.add_argument("sweep")
    a = p.parse_args(argv)

    def say(text: str) -> None:
        print(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {text}", flush=True)

    store = RunStore(a.logs)
    try:
        driver = Driver(store, a.sweep, say)
    except RunctlError as e:
        say(f"sweep driver: {e}")
        return 2
    poll = float(os.environ.get("RUNCTL_SWEEP_POLL_S", POLL_S))
    return driver.run(poll)


if __name__ == "__main__":
    sys.exit(main())
