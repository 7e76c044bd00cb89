"""`train(cfg) -> metrics`: data, model, Lightning Trainer, the log stream, exit reasons."""

from __future__ import annotations

import logging
import math
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from engine import __version__
from engine.config import EngineConfig, non_default_items
from engine.logstream import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_FINISHED, EXIT_TERMINATED

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_FINISHED", "EXIT_TERMINATED", "Terminated", "TrainResult",
           "install_early_sigterm", "log_start", "resume_checkpoint", "train"]

_training_started = False


class Terminated(SystemExit):
    """SIGTERM arrived before training started: nothing to checkpoint."""


def _early_sigterm(signum: int, frame: FrameType | None) -> None:
    # Lightning composes this with its own handler once fit() starts; from then on it only
    # sets a flag and the SIGTERMException path saves a checkpoint.
    if not _training_started:
        raise Terminated(EXIT_TERMINATED)


def install_early_sigterm() -> None:
    """Make SIGTERM during start-up end the process with the documented status and final line."""
    signal.signal(signal.SIGTERM, _early_sigterm)


@dataclass
class TrainResult:
    """What a run produced."""

    reason: str
    status: int
    epochs_completed: int
    best_val_loss: float = math.nan
    metrics: dict[str, Any] = field(default_factory=dict)


def _describe_device(cfg: EngineConfig, log: logging.Logger) -> None:
    import torch

    cuda = torch.cuda.is_available() and cfg.train.trainer.accelerator in ("auto", "gpu", "cuda")
    log.info(f"Using device: {'cuda' if cuda else 'cpu'}")
    if cuda:
        props = torch.cuda.get_device_properties(0)
        log.info(f"GPU: {props.name} ({props.total_memory / 1e9:.1f}GB)")
    else:
        log.info(f"GPU: none (CPU, {torch.get_num_threads()} threads)")
    log.info(f"Precision: {cfg.train.trainer.precision}")


def _devices(cfg: EngineConfig) -> Any:
    d = cfg.train.trainer.devices.strip()
    if d == "auto":
        return "auto"
    if "," in d:
        return [int(x) for x in d.split(",") if x.strip()]
    return int(d) if d.isdigit() else d


def train(cfg: EngineConfig, run_dir: Path | None, resume: bool, log: logging.Logger) -> TrainResult:
    """Train per cfg; write checkpoints and metrics.csv under run_dir; return how it ended.

    The run's final lines (`=== Training Complete ===` / `[signal]` / `[error]`, then `[exit]`)
    are already written when this returns.
    """
    global _training_started
    import lightning as L
    import torch

    from engine.callbacks import EngineStream, GradMonitor
    from engine.data import prepare_data
    from engine.lit_module import EngineModule
    from engine.logstream import quiet_libraries
    from engine.stream import run_fit

    quiet_libraries()  # after importing lightning, which resets its own loggers' levels

    tc = cfg.train.trainer
    log.info(f"Random seed: {cfg.train.seed}")
    L.seed_everything(cfg.train.seed, workers=True, verbose=False)
    if torch.get_num_threads() > (os.cpu_count() or 1):
        torch.set_num_threads(os.cpu_count() or 1)
    _describe_device(cfg, log)
    log.info(f"Found hidden_size={cfg.model.hidden_size} at path: model.hidden_size")

    data = prepare_data(cfg, log.info, log.warning)

    module = EngineModule(cfg, data.n_features, data.return_channel, data.n_stocks, data.train, data.val)
    n_params = sum(p.numel() for p in module.model.parameters())
    log.info(f"Model: ATFT-GAT-FAN hidden_size={cfg.model.hidden_size} params={n_params:,}")
    lw = cfg.loss
    log.info(
        "[LOSS-PER-DAY] enabled: Sharpe/RankIC/CS-IC/Huber computed per trading day (group_day); "
        f"weights sharpe={lw.sharpe_weight:g} rankic={lw.rankic_weight:g} cs_ic={lw.cs_ic_weight:g} "
        f"huber={lw.huber_weight:g} listnet={lw.listnet_weight:g} ranknet={lw.ranknet_weight:g} "
        f"exposure={lw.exposure_weight:g} turnover={lw.turnover_weight:g} variance_floor={lw.variance_floor:g}"
    )
    log.info(f"[PRED-HEAD-INIT] {module.model.head_init_summary()}")
    if cfg.train.ema_decay > 0:
        log.info(f"[EMA] weight average on: decay={cfg.train.ema_decay:g}; validation uses the averaged weights, checkpoints "
                 "keep both")

    # The shared stream (engine.stream) writes epochs, progress, losses, [metrics], summaries,
    # checkpoints (run_dir/checkpoints), the SIGTERM checkpoint and the final [exit] line.
    ckpt_dir = run_dir / "checkpoints" if run_dir else None
    stream = EngineStream(log, tc.progress_every, run_dir)
    callbacks: list[L.Callback] = [stream]
    if cfg.train.grad_monitor:
        callbacks.append(GradMonitor(cfg.train.grad_monitor_every, log))

    trainer = L.Trainer(
        max_epochs=tc.max_epochs,
        precision=tc.precision,  # type: ignore[arg-type]
        accelerator="gpu" if tc.accelerator == "cuda" else tc.accelerator,
        devices=_devices(cfg),
        strategy=tc.strategy,
        num_nodes=tc.num_nodes,
        gradient_clip_val=tc.gradient_clip_val or None,
        limit_train_batches=tc.limit_train_batches or None,
        limit_val_batches=tc.limit_val_batches or None,
        callbacks=callbacks,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,  # the stream saves its own
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        default_root_dir=str(run_dir) if run_dir else None,
        deterministic=False,
    )

    ckpt_path = None
    if resume:
        if ckpt_dir is None:
            raise FileNotFoundError("--resume needs --run-dir")
        ckpt_path = resume_checkpoint(ckpt_dir, log)  # the stream logs "Resuming from ..." once restored

    _training_started = True
    t0 = time.monotonic()
    status = run_fit(trainer, module, ckpt_path=ckpt_path)
    if stream.reason != "finished":
        return TrainResult(stream.reason or "error", status, stream.epochs_completed)
    best = stream.best_val_loss if math.isfinite(stream.best_val_loss) else math.nan
    metrics: dict[str, Any] = {"train_time_s": time.monotonic() - t0}
    ev = module.last_eval
    if ev is not None:
        metrics.update(sharpe=ev.sharpe, sharpe_ann=ev.sharpe_ann,
                       ic={h: ev.per_horizon[h]["ic"] for h in module.horizons})
    return TrainResult("finished", status, stream.epochs_completed, best, metrics)


def resume_checkpoint(ckpt_dir: Path, log: logging.Logger) -> str | None:
    """What `--resume` continues from: `last.ckpt`, else (it is missing or would not load) the
    newest intact `epoch=NNN.ckpt`; each damaged one is named in a warning. None: start again from
    epoch 1 (said); FileNotFoundError when the folder holds no checkpoint at all."""
    from engine.runfiles import epoch_checkpoints, first_intact

    last = ckpt_dir / "last.ckpt"
    candidates = [p for p in (last, *epoch_checkpoints(ckpt_dir)) if p.exists()]
    found, bad = first_intact(candidates)
    for path, problem in bad:
        log.warning(f"[resume] checkpoint {path} is damaged ({problem}); not resuming from it")
    if found is not None:
        if bad:
            log.warning(f"[resume] resuming from {found} instead")
        return str(found)
    if bad:
        log.warning(f"[resume] no intact checkpoint in {ckpt_dir}; starting again from epoch 1")
    elif (ckpt_dir / "interrupted.ckpt").exists():
        log.warning(f"Resuming: no completed epoch in {ckpt_dir}; starting again from epoch 1")
    else:
        raise FileNotFoundError(f"--resume: no checkpoint in {ckpt_dir}")
    return None


def log_start(log: logging.Logger, cfg: EngineConfig, run_dir: Path | None,
              env_applied: list[tuple[str, str, str]]) -> None:
    """The first lines: version, pid, run dir, non-default config, env overrides."""
    log.info(f"runctl engine {__version__} starting: pid={os.getpid()} run_dir={run_dir or '-'}")
    items = " ".join(f"{k}={v}" for k, v in non_default_items(cfg))
    log.info(f"Config: {items or '(defaults)'}")
    for name, _key, value in env_applied:
        log.info(f"[EnvOverride] {name} = {value} (via environment)")
