"""`python -m engine synth | train | check | keys`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from engine.config import (
    KEY_TYPES,
    ConfigError,
    _type_name,
    apply_env,
    apply_mapping,
    apply_overrides,
    default_config,
    get_key,
    load_config_file,
    set_key,
    validate,
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake in one line with exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"engine: {message}", file=sys.stderr)
        raise SystemExit(2)


def _resolve(args: argparse.Namespace, environ: dict[str, str] | None) -> tuple:
    cfg = default_config()
    if args.config:
        apply_mapping(cfg, load_config_file(args.config), args.config)
    applied = apply_env(cfg, environ) if environ is not None else []
    if getattr(args, "max_epochs", None) is not None:
        set_key(cfg, "train.trainer.max_epochs", args.max_epochs, from_text=True)
    if getattr(args, "data_path", None):
        set_key(cfg, "data.path", args.data_path, from_text=True)
    apply_overrides(cfg, args.overrides)
    validate(cfg)
    return cfg, applied


def _train_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m engine train", description="Train ATFT-GAT-FAN on a parquet panel.")
    p.add_argument("--max-epochs", type=str, default=None, help="same as train.trainer.max_epochs=N")
    p.add_argument("--data-path", default=None, help="parquet file or folder with train/ val/ test/")
    p.add_argument("--run-dir", default=None, help="checkpoints and metrics.csv go here")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/last.ckpt")
    p.add_argument("--config", default=None, help="TOML file of config keys")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    return p


def cmd_train(argv: list[str]) -> int:
    """Train; the exit status is documented in docs/log-format.md."""
    from engine.runfiles import write_exit
    from engine.train import (
        EXIT_BAD_INPUT,
        EXIT_FAILED,
        EXIT_TERMINATED,
        Terminated,
        install_early_sigterm,
        log_start,
    )

    install_early_sigterm()
    args = _train_parser().parse_args(argv)
    from engine.logstream import setup_logger

    log = setup_logger()
    run_dir = Path(args.run_dir) if args.run_dir else None
    epochs = 0
    try:
        cfg, applied = _resolve(args, dict(os.environ))
        if args.resume and run_dir is None:
            raise ConfigError("--resume needs --run-dir")
        log_start(log, cfg, run_dir, applied)
        from engine.data import DataError
        from engine.train import train

        try:
            result = train(cfg, run_dir, args.resume, log)
        except (DataError, FileNotFoundError) as e:
            raise ConfigError(str(e)) from None
    except ConfigError as e:
        write_exit("error", EXIT_BAD_INPUT, 0, f"bad input: {e}")
        log.error(f"[error] bad input: {e}")
        log.error(f"[exit] reason=error status={EXIT_BAD_INPUT} epochs_completed=0")
        return EXIT_BAD_INPUT
    except Terminated:
        write_exit("terminated", EXIT_TERMINATED, epochs)
        log.warning("[signal] SIGTERM received: saving checkpoint and stopping")
        log.info(f"[exit] reason=terminated status={EXIT_TERMINATED} epochs_completed={epochs}")
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        write_exit("error", EXIT_FAILED, epochs, "interrupted: KeyboardInterrupt")
        log.error(f"[exit] reason=error status={EXIT_FAILED} epochs_completed={epochs}")
        return EXIT_FAILED
    except Exception as e:  # an engine bug: keep the traceback on stderr, end with a final line
        import traceback

        from engine.runfiles import is_disk_full

        reason = "disk_full" if is_disk_full(e, run_dir) else "error"
        write_exit(reason, EXIT_FAILED, epochs, f"{'disk full' if reason == 'disk_full' else 'internal'}: "
                                                f"{e.__class__.__name__}: {e}")
        if reason == "error":
            traceback.print_exc()
        log.error(f"[error] {'disk full' if reason == 'disk_full' else 'internal'}: {e.__class__.__name__}: {e}")
        log.error(f"[exit] reason={reason} status={EXIT_FAILED} epochs_completed={epochs}")
        return EXIT_FAILED
    return result.status  # the stream wrote the final lines ([signal] / [error], then [exit])


def cmd_check(argv: list[str]) -> int:
    """Validate a configuration without importing torch."""
    p = _Parser(prog="python -m engine check", description="Validate config keys (no torch import).")
    p.add_argument("--config", default=None)
    p.add_argument("--max-epochs", type=str, default=None)
    p.add_argument("--data-path", default=None)
    p.add_argument("overrides", nargs="*", metavar="key=value")
    args = p.parse_args(argv)
    try:
        cfg, _ = _resolve(args, dict(os.environ))
    except ConfigError as e:
        print(f"engine: {e}", file=sys.stderr)
        return 2
    from engine.config import non_default_items

    items = non_default_items(cfg)
    print("ok" + ("" if not items else ": " + " ".join(f"{k}={v}" for k, v in items)))
    return 0


def cmd_keys(argv: list[str]) -> int:
    """List every accepted key with its type and default."""
    cfg = default_config()
    for key in sorted(KEY_TYPES):
        print(f"{key}  ({_type_name(KEY_TYPES[key])}, default {get_key(cfg, key)!r})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Dispatch the engine's subcommands."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"train": cmd_train, "check": cmd_check, "keys": cmd_keys}
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m engine {synth,train,check,keys} ...", file=sys.stderr)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name == "synth":
        from engine.synth import synth_main

        return synth_main(rest)
    if name not in commands:
        print(f"engine: unknown command {name!r}; use synth, train, check or keys", file=sys.stderr)
        return 2
    return commands[name](rest)


if __name__ == "__main__":
    sys.exit(main())
