"""The reducer: how each `tui.log` event changes a run state (one handler per event type).

`RunState.apply(event)` looks the handler up in `HANDLERS` by the event's type; the lifecycle rules
(launching -> initializing -> training -> validating -> finished | crashed | killed, a new attempt
after a resume) live here. No I/O.
"""

from __future__ import annotations

from typing import Any

from tui.log import events as evt
from tui.log.recognise import TRACEBACK
from tui.log.sources import rank
from tui.log.sources.values import is_evaluation
from tui.state.records import STEP_TIMES_MAX, EpochRecord, HorizonMetrics, Progress, RunData, Scalar

GRAD_WARNINGS_MAX = 50
CHECKPOINTS_MAX = 50
TERMINAL = ("finished", "crashed", "killed")


def _current(st: RunData) -> EpochRecord | None:
    """The record of the epoch being run (None before the first epoch start)."""
    return st.epoch_record(st.epoch) if st.epoch is not None else None


_TO_VALIDATING = ("launching", "initializing", "training", "crashed")


def _validating(st: RunData, t: float | None) -> EpochRecord | None:
    """A validation line: the current epoch's record; lifecycle -> validating (a crash that the log
    outlives, e.g. a caught traceback, is not the end)."""
    if st.state in _TO_VALIDATING:
        st.state = "validating"
        st.error = None
    rec = _current(st)
    if rec is not None and t is not None:
        rec.ended_at = t
    return rec


def _start(st: RunData, ev: evt.Start) -> None:
    if ev.kind in st.attempt_starts:
        st.attempts += 1
        st.attempt_starts = [ev.kind]
        st.error = None
        st.exit_reason = None
        st.exit_status = None
        st.progress = Progress()
    else:
        st.attempt_starts.append(ev.kind)
    st.state = "initializing"
    st.source_format = ev.kind if ev.kind in ("engine", "callback") else "atft"
    if ev.pid is not None:
        st.pid = ev.pid
    if st.run is None and ev.run_dir and ev.run_dir != "-":
        st.run = ev.run_dir.rstrip("/").rsplit("/", 1)[-1]


def _phase(st: RunData, ev: evt.Phase) -> None:
    st.phase_details[ev.key] = ev.detail
    if ev.done:
        st.phases[ev.key] = True


def _epoch_start(st: RunData, ev: evt.EpochStart) -> None:
    _begin_epoch(st, ev.epoch, ev.max_epochs, ev.t)
    _training_began(st, ev.epoch, ev.max_epochs)


def _begin_epoch(st: RunData, e: int, max_epochs: int | None, t: float | None) -> EpochRecord:
    """Epoch e of max_epochs began at t: its record."""
    if st.axis == "step":
        _to_epochs(st)
    if st.epochs and st.epochs[-1].epoch >= e:  # a re-run replaces e and drops later ones
        st.epochs = [r for r in st.epochs if r.epoch < e]
    st.epoch = e
    if max_epochs is not None:
        st.max_epochs = max_epochs
    rec = st.epoch_record(e)
    rec.started_at = t
    st.state = "training"
    st.error = None
    return rec


def _training_began(st: RunData, e: int, max_epochs: int | None) -> None:
    """After an epoch start (e of max_epochs: the first one if several): the progress starts
    again at the current epoch, and every begun start-up step is done."""
    st.progress = Progress(epoch=st.epoch, step=0)
    for key in st.phase_details:
        st.phases[key] = True
    st.phases["first_epoch"] = True
    if "first_epoch" not in st.phase_details:
        st.phase_details["first_epoch"] = f"Epoch {e}/{max_epochs}"


def _train_loss(st: RunData, ev: evt.TrainLoss) -> None:
    rec = _current(st)
    if rec is not None:
        rec.train_loss = ev.loss


def _val_loss(st: RunData, ev: evt.ValLoss) -> None:
    if ev.source not in ("val/loss", "main"):
        return  # e.g. the SWA model's loss: not the epoch's
    rec = _validating(st, ev.t)
    if rec is not None:
        rec.val_loss = ev.loss


def _horizon_metrics(st: RunData, ev: evt.HorizonMetrics) -> None:
    if ev.variant != "z":
        return  # (z, CAL) and (raw) are other views of the same predictions
    rec = _validating(st, ev.t)
    if rec is not None:
        rec.horizons[ev.h] = HorizonMetrics(ev.ic, ev.rank_ic, ev.scale, ev.mae, ev.rmse, ev.hit)
        rec.validated = True
    if ev.scale is not None and ev.scale >= 0.005:
        st.low_variance.pop(ev.h, None)


def _sharpe(st: RunData, ev: evt.Sharpe) -> None:
    rec = _validating(st, ev.t)
    if rec is not None:
        rec.sharpe = ev.value
        rec.validated = True


def _epoch_end(st: RunData, ev: evt.EpochEnd) -> None:
    rec = st.epoch_record(ev.epoch)
    rec.train_loss, rec.val_loss, rec.sharpe = ev.train_loss, ev.val_loss, ev.sharpe
    rec.sharpe_ann, rec.seconds = ev.sharpe_ann, ev.seconds
    rec.ended_at = ev.t if ev.t is not None else rec.ended_at
    rec.validated = True
    if ev.max_epochs is not None:
        st.max_epochs = rec.max_epochs = ev.max_epochs


def _phase_epoch(st: RunData, ev: evt.PhaseEpoch) -> None:
    prev = st.epochs[-1].ended_at if st.epochs else None
    if st.epochs and st.epochs[-1].epoch >= ev.epoch:
        st.epochs = [r for r in st.epochs if r.epoch < ev.epoch]
    st.epoch, st.max_epochs = ev.epoch, ev.max_epochs
    rec = st.epoch_record(ev.epoch)
    rec.started_at, rec.ended_at = prev, ev.t
    rec.train_loss, rec.val_loss, rec.lr = ev.train_loss, ev.val_loss, ev.lr
    st.phases["first_epoch"] = True
    if st.state not in ("finished", "killed"):
        st.state = "validating"


def _phase_val(st: RunData, ev: evt.PhaseValMetrics) -> None:
    rec = _validating(st, ev.t)
    if rec is not None:
        rec.sharpe = ev.sharpe
        rec.validated = True


def _lr(st: RunData, ev: evt.LearningRate) -> None:
    rec = _current(st)
    if rec is not None:
        rec.lr = ev.lr


_OWN_STREAMS = ("engine", "callback", "atft")  # logs that say themselves when training begins


def _progress(st: RunData, ev: evt.Progress) -> None:
    # a training bar of a log that does not say itself when training begins (a script's own tqdm
    # `Epoch 0:  45%|...`, ` 33%|...| 16/48`): training. Any source's bar, not only tqdm's: the
    # fast attach path keeps a read's last Progress only, and it must come to the same state
    if st.state in ("launching", "initializing") and st.source_format not in _OWN_STREAMS:
        st.state = "training"
    st.progress = Progress(ev.epoch, ev.step, ev.steps, ev.steps_per_s, ev.eta_s, ev.loss, ev.postfix)


def _grad_monitor(st: RunData, ev: evt.GradMonitor) -> None:
    st.grad_l2 = {g.name: g.l2 for g in ev.groups}


def _grad_warning(st: RunData, ev: evt.GradWarning) -> None:
    """One entry per (group, kind), in first-seen order, holding the latest text."""
    key = f"{ev.group}: {ev.kind} "
    for i, text in enumerate(st.grad_warnings):
        if text.startswith(key):
            st.grad_warnings[i] = ev.message
            return
    st.grad_warnings.append(ev.message)
    del st.grad_warnings[:-GRAD_WARNINGS_MAX]


def _low_variance(st: RunData, ev: evt.LowVariance) -> None:
    st.low_variance[ev.h] = ev.ratio if ev.ratio is not None else 0.0


def _checkpoint(st: RunData, ev: evt.Checkpoint) -> None:
    if ev.path:
        _add_checkpoints(st, (ev.path,))
    if ev.best and ev.val_loss is not None:
        st.best_val_loss = ev.val_loss


def _add_checkpoints(st: RunData, paths: list[str] | tuple[str, ...]) -> None:
    """Each path not listed yet, in order; the last CHECKPOINTS_MAX kept (no path twice)."""
    checkpoints = st.checkpoints
    seen = set(checkpoints)
    for path in paths:
        if path not in seen:
            seen.add(path)
            checkpoints.append(path)
            if len(checkpoints) > CHECKPOINTS_MAX:
                seen.discard(checkpoints.pop(0))


def _hot_run(st: RunData, ev: evt.HotRun) -> None:
    """Each sub-block as its lines' events would fold: the epoch start's handler, then what the
    other lines write (each field its last value; the validating transition once, as the first
    validation line makes it and the others leave it), the cleared low-variance flags. What
    nothing in a run reads is done once, after it: the checklist and progress of its epoch starts,
    its checkpoint paths."""
    low_variance = st.low_variance
    first: tuple[int, int, float] | None = None
    run_paths: list[str] = []
    for es, lr, tl, vl, sh, vt, flags, horizons, pops, paths in ev.blocks:
        rec = None
        if es is not None:
            first = first or es
            rec = _begin_epoch(st, es[0], es[1], es[2])
        if flags:
            if flags & evt.HOT_VALIDATING and st.state in _TO_VALIDATING:
                st.state = "validating"
                st.error = None
            if rec is None and st.epoch is not None:  # flags & HOT_CURRENT: each such line calls _current
                rec = st.epoch_record(st.epoch)
            if rec is not None:
                if lr is not None:
                    rec.lr = lr
                if tl is not None:
                    rec.train_loss = tl
                if vl is not None:
                    rec.val_loss = vl
                if sh is not None:
                    rec.sharpe = sh
                if vt is not None:
                    rec.ended_at = vt
                for h, ic, ric, scale, mae, rmse, hit in horizons:
                    rec.horizons[h] = HorizonMetrics(ic, ric, scale, mae, rmse, hit)
                if flags & evt.HOT_VALIDATED:
                    rec.validated = True
        for h in pops:
            low_variance.pop(h, None)
        run_paths += paths
    if first is not None:
        _training_began(st, first[0], first[1])
    if run_paths:
        _add_checkpoints(st, run_paths)


def _complete(st: RunData, ev: evt.Complete) -> None:
    st.state = "finished"


def _best(st: RunData, ev: evt.BestValLoss) -> None:
    st.best_val_loss = ev.loss


def _achieved(st: RunData, ev: evt.AchievedSharpe) -> None:
    st.achieved_sharpe = ev.value


def _wrapper(st: RunData, ev: evt.WrapperResult) -> None:
    if ev.ok:
        st.state = "finished"
    else:
        st.state = "crashed"
        st.error = st.error or ev.message
        st.last_error = ev.message


def _error(st: RunData, ev: evt.Error) -> None:
    st.last_error = ev.message
    if ev.fatal:
        st.state = "crashed"
        st.error = ev.message


def _warning(st: RunData, ev: evt.Warning) -> None:
    st.last_warning = ev.message


def _signal(st: RunData, ev: evt.Signal) -> None:
    st.state = "killed"


def _exit(st: RunData, ev: evt.Exit) -> None:
    st.exit_reason, st.exit_status = ev.reason, ev.status
    if ev.reason == "finished":
        st.state = "finished"
    elif ev.reason == "terminated":
        st.state = "killed"
    elif ev.reason == "requeued":  # Slurm runs it again: waiting to restart, not an end
        st.state = "launching"
    else:
        st.state = "crashed"
        st.error = st.error or f"[exit] reason={ev.reason} status={ev.status}"


def _tb_start(st: RunData, ev: evt.TracebackStart) -> None:
    st.state = "crashed"
    st.error = st.error or TRACEBACK + ":"


def _tb_end(st: RunData, ev: evt.TracebackEnd) -> None:
    st.state = "crashed"
    st.error = ev.error
    st.last_error = ev.error


def _training_start(st: RunData, ev: evt.TrainingStart) -> None:
    st.max_epochs = ev.max_epochs


def _activity(st: RunData, ev: evt.Activity) -> None:
    st.lines += ev.lines
    st.warnings += ev.warnings
    st.errors += ev.errors
    if st.started_at is None and ev.first_t is not None:
        st.started_at = ev.first_t
    if ev.t is not None:
        st.last_time = ev.t
    if st.state == "launching" and ev.lines:
        st.state = "initializing"


# Logged names that fill a record's built-in fields when no dedicated line did.
_BUILTIN_NAMES = {"val_loss": "val_loss", "val/loss": "val_loss", "train_loss": "train_loss",
                  "train/total_loss": "train_loss", "sharpe": "sharpe"}


def _put(rec: EpochRecord, values: tuple[tuple[str, float | None], ...], rank: int) -> None:
    """Values into a record, each unless a source of a better (lower) rank gave that name there;
    the logged names of built-in fields fill them when no dedicated line did (a field a logged
    name filled follows that name's kept value: the documented order decides it too)."""
    prev = {k: rec.metrics.get(k) for k, _ in values if k in _BUILTIN_NAMES}
    if rank == 0 and rec.ranks is None:
        rec.metrics.update(values)
        kept = values
    else:
        ranks = rec.ranks if rec.ranks is not None else {}
        kept = tuple((k, v) for k, v in values if ranks.get(k, 0 if k in rec.metrics else rank) >= rank)
        if kept:
            rec.metrics.update(kept)
            if rank:
                if rec.ranks is None:
                    rec.ranks = ranks
                ranks.update((k, rank) for k, _ in kept)
            elif rec.ranks is not None:
                for k, _ in kept:
                    rec.ranks.pop(k, None)
    for name, v in kept:
        fld = _BUILTIN_NAMES.get(name)
        if fld is not None:
            cur = getattr(rec, fld)
            was = prev.get(name)
            if cur is None or was is not None and (cur == was or cur != cur and was != was):
                setattr(rec, fld, v)


def _metrics(st: RunData, ev: evt.Metrics) -> None:
    rec = st.epoch_record(ev.epoch)
    _put(rec, ev.values, 0 if ev.source == "log" else rank(ev.source))
    if ev.final:
        rec.metrics_final = rec.validated = True
    if ev.source == "csv":  # the metrics file of a script whose log has no epoch lines
        if st.epoch is None or ev.epoch > st.epoch:
            st.epoch = ev.epoch
        if st.state in ("launching", "initializing"):
            st.state = "training"
        if st.source_format is None:
            st.source_format = "csv"
    elif ev.epoch == st.epoch:
        _validating(st, ev.t)


def _remember(st: RunData, values: tuple[tuple[str, float | None], ...], step: int | None,
              epoch: int | None, rank_: int, t: float | None) -> None:
    """Each value as its metric's latest, unless a better-ranked source gave that name."""
    latest = st.latest
    for k, v in values:
        old = latest.get(k)
        if old is None or old.rank >= rank_:
            latest[k] = Scalar(v, step, epoch, rank_, t)


def _step_time(st: RunData, step: int, t: float | None, source: str) -> None:
    """A step run reached `step` at `t` (its line's time, else when it was read): a sample of its
    pace, counted by one source (the first that gave a step: another may lag behind it). One per
    distinct time (the latest step then); a step lower than the last one is a new process (a
    resume) and starts the samples again."""
    t = t if t is not None else st.read_at
    if t is None:
        return
    if st.pace_source != source:
        if st.pace_source is not None:
            return
        st.pace_source = source
    times = st.step_times
    if times:
        last_t, last_s = times[-1]
        if step < last_s:
            times.clear()
        elif t <= last_t:
            if step > last_s:
                times[-1] = (last_t, step)
            return
    times.append((t, step))
    if len(times) > STEP_TIMES_MAX:
        del times[0]


def _to_epochs(st: RunData) -> None:
    """A run read as counted in steps turned out to have epochs: its timeline is by epoch (the
    step points go; their values stay each metric's latest)."""
    st.axis, st.epochs, st.epoch = "epoch", [], None


def _scalars(st: RunData, ev: evt.Scalars) -> None:
    """A source's named numbers at a point: each its metric's latest; on the timeline when the
    point is an epoch, or an evaluation at a step of a run that has no epochs (tui.log.events)."""
    r = rank(ev.source)
    epoch = ev.epoch
    if epoch is not None and ev.printed:  # as the script printed it: its first one says the base
        if st.epoch_base is None:
            st.epoch_base = 0 if epoch == 0 else 1
        epoch = max(1, epoch + 1 - st.epoch_base)
    if ev.epochs is not None:
        st.max_epochs = ev.epochs
    if ev.steps is not None and epoch is None:
        st.max_steps = ev.steps
    values = ev.values
    _remember(st, values, ev.step, epoch, r, ev.t)
    if st.source_format is None:
        st.source_format = ev.source
    if st.state in ("launching", "initializing") and (values or epoch is not None or ev.step is not None):
        st.state = "training"
    evaluation = is_evaluation(ev)
    rec: EpochRecord | None = None
    if epoch is not None:
        if st.axis == "step":
            _to_epochs(st)
        rec = st.epoch_record(epoch)
        if st.epoch is None or epoch > st.epoch:
            st.epoch = epoch
            st.phases["first_epoch"] = True
            st.phase_details.setdefault("first_epoch", f"Epoch {epoch}")
        if not values and rec.started_at is None:
            rec.started_at = ev.t
    elif ev.step is not None:
        if st.axis == "epoch" and (st.epochs or st.epoch is not None):
            return  # a step of a run with epochs, and no epoch to put it in: only the latest
        st.axis = "step"
        st.epoch = ev.step  # the latest step (a resumed run counts again from its checkpoint's)
        _step_time(st, ev.step, ev.t, ev.source)
        if evaluation:
            rec = st.epoch_record(ev.step)
    elif st.epoch is not None and values and st.axis == "epoch":
        rec = st.epoch_record(st.epoch)  # a value with no position: the current epoch's (a step
        # run's: only its latest, as the step it came at is not known)
    if rec is None:
        return
    if ev.step is not None:
        rec.step = ev.step
    if values:
        _put(rec, values, r)
    if evaluation:
        rec.validated = rec.metrics_final = True
        if ev.t is not None:
            rec.ended_at = ev.t


def _reset(st: RunData, ev: evt.Reset) -> None:
    """The log was truncated, rotated or deleted under its reader: what was read stays (epochs
    are never dropped because the file shrank); the change is recorded."""
    st.log_event = ev.kind


HANDLERS: dict[type, Any] = {
    evt.Start: _start, evt.Phase: _phase, evt.EpochStart: _epoch_start, evt.TrainLoss: _train_loss,
    evt.ValLoss: _val_loss, evt.HorizonMetrics: _horizon_metrics, evt.Metrics: _metrics, evt.Sharpe: _sharpe, evt.EpochEnd: _epoch_end,
    evt.PhaseEpoch: _phase_epoch, evt.PhaseValMetrics: _phase_val, evt.LearningRate: _lr,
    evt.Progress: _progress, evt.GradMonitor: _grad_monitor, evt.GradWarning: _grad_warning,
    evt.LowVariance: _low_variance, evt.Checkpoint: _checkpoint, evt.Complete: _complete,
    evt.BestValLoss: _best, evt.AchievedSharpe: _achieved, evt.WrapperResult: _wrapper,
    evt.Error: _error, evt.Warning: _warning, evt.Signal: _signal, evt.Exit: _exit,
    evt.TracebackStart: _tb_start, evt.TracebackEnd: _tb_end, evt.TrainingStart: _training_start,
    evt.Activity: _activity, evt.Reset: _reset, evt.HotRun: _hot_run, evt.Scalars: _scalars,
}
