"""The typed engine config: overrides, env, TOML, errors, and the torch-free check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.config import ConfigError, check, config_keys, non_default_items


def test_defaults_validate() -> None:
    cfg = check()
    assert cfg.model.horizons == [1, 5, 10, 20]
    assert cfg.train.trainer.precision == "bf16-mixed"
    assert non_default_items(cfg) == []


@pytest.mark.parametrize(
    "override",
    [
        "model.hidden_size=32",
        "data.seq_len=10",
        "data.min_date=2018-01-01",
        "train.batch.train_batch_size=512",
        "train.optimizer.lr=3e-4",
        "train.trainer.precision=32-true",
        "train.trainer.max_epochs=3",
        "train.trainer.devices=2",
        "train.trainer.strategy=ddp",
    ],
)
def test_issue_keys_are_accepted(override: str) -> None:
    key, _value = override.split("=", 1)
    cfg = check([override])
    assert key in config_keys()
    assert key in dict(non_default_items(cfg))


def test_types_are_converted() -> None:
    cfg = check(["model.layer_norm=true", "model.quantiles=[0.1, 0.5, 0.9]", "train.optimizer.lr=0.01"])
    assert cfg.model.layer_norm is True
    assert cfg.model.quantiles == [0.1, 0.5, 0.9]
    assert cfg.train.optimizer.lr == 0.01


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("model.hiden_size=3", ["unknown config key 'model.hiden_size'", "model.hidden_size"]),
        ("hidden_size=64", ["did you mean model.hidden_size"]),
        ("model.hidden_size=abc", ["model.hidden_size", "'abc'", "integer"]),
        ("train.trainer.precision=fp8", ["fp8", "bf16-mixed", "32-true"]),
        ("data.min_date=yesterday", ["data.min_date", "YYYY-MM-DD"]),
        ("model.head_dropout=1.5", ["model.head_dropout", "[0, 1)"]),
        ("model.layer_norm=maybe", ["model.layer_norm", "true/false"]),
        ("novalue", ["key=value"]),
    ],
)
def test_bad_overrides_name_key_and_allowed(override: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        check([override])
    message = str(info.value)
    assert "\n" not in message
    for w in words:
        assert w in message


def test_env_overrides_apply_and_are_checked() -> None:
    cfg = check(environ={"SHARPE_WEIGHT": "0.5", "RANKIC_WEIGHT": "0.2", "PRED_HEAD_DROPOUT": "0.2"})
    assert (cfg.loss.sharpe_weight, cfg.loss.rankic_weight, cfg.model.head_dropout) == (0.5, 0.2, 0.2)
    with pytest.raises(ConfigError, match="SHARPE_WEIGHT"):
        check(environ={"SHARPE_WEIGHT": "lots"})


def test_toml_config_file(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[model]\nhidden_size = 32\n[train.trainer]\nmax_epochs = 3\n')
    cfg = check(config_file=f)
    assert cfg.model.hidden_size == 32 and cfg.train.trainer.max_epochs == 3
    f.write_text("[model]\nhidden_size = 'big'\n")
    with pytest.raises(ConfigError, match="c.toml: model.hidden_size"):
        check(config_file=f)
    f.write_text("[model\n")
    with pytest.raises(ConfigError, match=r"c.toml: invalid TOML.*line 1"):
        check(config_file=f)


def test_cross_field_checks() -> None:
    with pytest.raises(ConfigError, match="horizon_weights"):
        check(["model.horizons=[1,5]"])
    with pytest.raises(ConfigError, match="embargo_days"):
        check(["data.embargo_days=5"])


def test_check_cli_imports_no_torch() -> None:
    code = (
        "import sys, runpy; sys.argv=['engine','check','model.hidden_size=32'];"
        "from engine.__main__ import main; rc=main(sys.argv[1:]);"
        "assert 'torch' not in sys.modules and 'lightning' not in sys.modules, 'torch imported';"
        "sys.exit(rc)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "model.hidden_size=32" in r.stdout
    bad = subprocess.run([sys.executable, "-m", "engine", "check", "model.hidden=1"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "model.hidden_size" in bad.stderr
    assert "Traceback" not in bad.stderr
