"""Presets: shipped files, extends, bad inputs, resolve/derive, baselines table."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import tui
from engine import config as ec
from tui.presets.baselines import add_baseline, load_baselines
from tui.presets.preset import PresetError
from tui.presets.registry import PresetRegistry, derive, find_presets_dir, resolve

SHIPPED = Path(__file__).resolve().parent.parent / "presets"
REG = PresetRegistry(SHIPPED)
STORY = ["baseline", "exp1_sharpe", "exp2_cosine", "smoke_v2", "full_perday", "head_std010",
         "var_floor", "layerscale_01", "layerscale_10", "smoke", "tiny", "atft_pipeline"]


def test_shipped_names() -> None:
    assert sorted(STORY) == REG.names()


@pytest.mark.parametrize("name", STORY)
def test_shipped_preset_loads_resolves_validates(name: str) -> None:
    p = REG.get(name)
    assert p.description
    assert p.max_epochs is not None
    cfg = resolve(p).validate()
    if p.is_engine:
        assert cfg is not None and cfg.train.trainer.max_epochs == p.max_epochs
        ec.check(p.override_args(), environ=p.env)
    else:  # the original pipeline's preset: its own command, checked without the engine
        assert cfg is None and p.log_format == "atft" and (p.workdir / p.command[1]).is_file()
    assert REG.check_file(p.path) == []
    names = set(REG.names())
    for action in p.next.values():
        assert {a for a in (action.preset, *action.alternatives) if a} <= names


def test_smoke_v2_is_the_seed_config() -> None:
    p = REG.get("smoke_v2")
    args = p.engine_args()
    assert args[:2] == ["--max-epochs", "10"]
    assert "model.layer_scale=1.0" in args and "model.layer_norm=false" in args
    assert "model.output_init_std=0.05" in args
    assert p.env["SHARPE_WEIGHT"] == "0.5" and p.env["RANKIC_WEIGHT"] == "0.2"  # from exp1_sharpe
    assert p.env["CS_IC_WEIGHT"] == "0.1" and p.env["HUBER_WEIGHT"] == "0.1"
    assert "PRED_HEAD_DROPOUT" in p.env
    cfg = p.validate()
    assert cfg.loss.sharpe_weight == 0.5 and cfg.model.layer_norm is False
    assert [cp.at(p.max_epochs) for cp in p.checkpoints] == [1, 5, 10]
    final = p.checkpoints[-1].rules[0]
    assert {c.metric for c in final.when} == {"scale", "sharpe"}  # ANDed conditions
    assert p.next["launch_full"].preset == "full_perday"
    assert p.next["variance_collapsed"].alternatives == ("var_floor", "layerscale_01", "layerscale_10")
    assert p.criteria[0].label == "Training completes without crashes (10 epochs)"
    ic = p.criteria[2].condition
    assert ic is not None and ic.horizon == 20  # default_horizon applied


def test_extends_chain_and_merge() -> None:
    full = REG.get("full_perday")
    assert full.chain == ("full_perday", "smoke_v2", "exp1_sharpe", "baseline")
    assert full.extends == "smoke_v2" and full.max_epochs == 25
    assert full.validate().train.trainer.max_epochs == 25
    assert [cp.at(25) for cp in full.checkpoints] == [1, 25]
    head = REG.get("head_std010")
    assert head.overrides["model.output_init_std"] == 0.10
    assert head.overrides["model.layer_scale"] == 1.0  # inherited
    assert head.checkpoints == REG.get("smoke_v2").checkpoints
    assert REG.get("var_floor").validate().loss.variance_floor > 0
    assert REG.get("layerscale_01").overrides["model.layer_scale"] == 0.1
    assert REG.get("layerscale_10").overrides["model.layer_scale"] == 10.0
    assert REG.get("exp2_cosine").validate().train.scheduler.name == "cosine"


def test_tiny_is_small() -> None:
    cfg = REG.get("tiny").validate()
    assert cfg.train.trainer.max_epochs == 2 and cfg.model.hidden_size == 16
    assert cfg.train.trainer.limit_train_batches == 20 and cfg.data.seq_len == 10


def _write(d: Path, name: str, text: str) -> Path:
    p = d / f"{name}.toml"
    p.write_text(text, encoding="utf-8")
    return p


BAD = {
    "broken": ('description = "x"\nmax_epochs = 3\noverrides = {\n', "line 3"),
    "unknown_top": ('description = "x"\nmax_epoch = 3\n', "unknown key 'max_epoch'; allowed: description"),
    "unknown_criterion_key": (
        '[[criteria]]\nmetric = "sharpe"\nop = ">"\nvalue = 0.1\nlabel = "s"\nhoirzon = 1\n',
        "criteria #1: unknown key 'hoirzon'"),
    "wrong_type": ('max_epochs = "ten"\n', "max_epochs: expected an integer, got string 'ten'"),
    "malformed_metric": ('[[criteria]]\nmetric = "val acc"\nop = ">"\nvalue = 0.1\nlabel = "s"\n',
                         "metric 'val acc' is not a metric name"),
    "horizon_of_own_metric": ('[[criteria]]\nmetric = "val_acc"\nhorizon = 5\nop = ">"\nvalue = 0.1\nlabel = "s"\n',
                              "metric 'val_acc' has no horizon"),
    "bad_op": ('[[criteria]]\nmetric = "sharpe"\nop = "=>"\nvalue = 0.1\nlabel = "s"\n',
               "op '=>' is not one of"),
    "bad_override_value": ('[overrides]\nmodel.hidden_size = "big"\n', "model.hidden_size"),
    "unknown_override": ('[overrides]\n"model.hiden_size" = 16\n', "unknown config key 'model.hiden_size'"),
    "bad_env": ('[env]\nSHARPE_WEIGHT = "lots"\n', "SHARPE_WEIGHT"),
    "lower_env": ('[env]\nsharpe_weight = "0.5"\n', "UPPER_SNAKE_CASE"),
    "bad_rule": ('[[checkpoints]]\nepoch = 1\nrules = [{ verdict = "a", levle = "good" }]\n',
                 "rules #1: unknown key 'levle'"),
    "bad_epoch": ('[[checkpoints]]\nepoch = 0\nrules = [{ verdict = "a" }]\n', "epoch 0 must be"),
    "epoch_and_step": ('[[checkpoints]]\nepoch = 1\nstep = 5\nrules = [{ verdict = "a" }]\n',
                       "one of 'epoch' or 'step'"),
    "bad_override_format": ('command = ["true"]\noverride_format = "--{key}"\n', "use {key} and {value}"),
    "bad_pattern": ('[metrics]\npatterns = ["loss=(?P<loss>[0-9.]+"]\n', "not a regular expression"),
    "pattern_names_nothing": ('[metrics]\npatterns = ["loss=[0-9.]+"]\n', "names nothing"),
    "bad_metrics_key": ('[metrics]\ntensorbord = "x"\n', "unknown key 'tensorbord'"),
    "bad_max_steps": ('max_steps = 0\n', "max_steps: 0 must be > 0"),
    "horizon_on_sharpe": ('[[criteria]]\nmetric = "sharpe"\nhorizon = 5\nop = ">"\nvalue = 0\nlabel = "s"\n',
                          "has no horizon"),
    "both_epochs": ('max_epochs = 3\n[overrides]\n"train.trainer.max_epochs" = 4\n', "both set"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_preset_is_one_line_error_naming_file(tmp_path: Path, case: str) -> None:
    text, expected = BAD[case]
    _write(tmp_path, case, text)
    with pytest.raises(PresetError) as e:
        PresetRegistry(tmp_path).get(case)
    msg = str(e.value)
    assert "\n" not in msg and f"{case}.toml" in msg and expected in msg, msg


@pytest.mark.parametrize(("metric", "hint"), [("sharp", "did you mean 'sharpe'"),
                                               ("eval_loss", "did you mean 'val_loss'"),
                                               ("ic20", "ic at horizon 20")])
def test_a_near_miss_of_a_builtin_is_a_warning_not_a_refusal(tmp_path: Path, metric: str, hint: str) -> None:
    """The script's own names (the HF Trainer's `eval_loss`) are fine; the hint is only a warning."""
    p = _write(tmp_path, "own", f'[[criteria]]\nmetric = "{metric}"\nop = "<"\nvalue = 0.5\nlabel = "s"\n')
    preset = PresetRegistry(tmp_path).get("own")
    assert preset.criteria[0].metric == metric
    problems = PresetRegistry(tmp_path).check_file(p)
    assert problems and all(x.startswith("warning: ") for x in problems), problems
    assert hint in problems[0] and "own.toml" in problems[0]


def test_bad_file_reported_by_check_file(tmp_path: Path) -> None:
    p = _write(tmp_path, "x", 'description = "x"\nmax_epochs = 3\n[next.improved]\npreset = "nope"\n')
    errors = PresetRegistry(tmp_path).check_file(p)
    assert any("unknown preset 'nope'" in e for e in errors)
    assert any("no checkpoint rule gives this verdict" in e for e in errors)
    broken = _write(tmp_path, "y", "a = 1\nb = = 2\n")
    [err] = PresetRegistry(tmp_path).check_file(broken)
    assert "y.toml" in err and "line" in err


def test_cross_field_error_names_file(tmp_path: Path) -> None:
    _write(tmp_path, "odd", '[overrides]\nmodel.hidden_size = 10\nmodel.attention_heads = 4\n')
    p = PresetRegistry(tmp_path).get("odd")
    with pytest.raises(PresetError, match=r"odd\.toml: model\.hidden_size=10 must be divisible"):
        p.validate()


def test_missing_parent_and_cycle(tmp_path: Path) -> None:
    _write(tmp_path, "child", 'extends = "ghost"\n')
    with pytest.raises(PresetError, match=r"child\.toml: extends 'ghost', which does not exist"):
        PresetRegistry(tmp_path).get("child")
    _write(tmp_path, "a", 'extends = "b"\n')
    _write(tmp_path, "b", 'extends = "a"\n')
    with pytest.raises(PresetError, match="extends cycle: a -> b -> a"):
        PresetRegistry(tmp_path).get("a")


def test_unknown_preset_lists_existing() -> None:
    with pytest.raises(PresetError) as e:
        REG.get("smoke_v3")
    assert "unknown preset 'smoke_v3'" in str(e.value) and "smoke_v2" in str(e.value)
    with pytest.raises(PresetError):
        REG.get("baselines")  # the baseline table is not a preset


def test_resolve_sets_and_envs() -> None:
    p = resolve(REG.get("smoke_v2"), ["model.layer_scale=0.5", "train.trainer.max_epochs=3",
                                      "data.path=/data/x.parquet"], ["SHARPE_WEIGHT=0.7", "MY_TAG=abc"])
    assert p.overrides["model.layer_scale"] == 0.5 and p.max_epochs == 3
    args = p.engine_args()
    assert args[:4] == ["--max-epochs", "3", "--data-path", "/data/x.parquet"]
    assert p.env["SHARPE_WEIGHT"] == "0.7" and p.validate().loss.sharpe_weight == 0.7
    assert p.unknown_env() == ["MY_TAG"]
    for sets, envs, expected in [
        (["model.layer_scale=big"], [], "--set model.layer_scale=big: model.layer_scale"),
        (["model.nope=1"], [], "unknown config key"),
        (["model.layer_scale"], [], "key=value"),
        ([], ["SHARPE_WEIGHT=x"], "--env SHARPE_WEIGHT=x: SHARPE_WEIGHT"),
        ([], ["lower=1"], "UPPER_SNAKE_CASE"),
        (["model.hidden_size=10"], [], "must be divisible"),
    ]:
        with pytest.raises(PresetError, match=expected):
            resolve(REG.get("smoke_v2"), sets, envs)


def test_derive_writes_loadable_preset_and_refuses_overwrite(tmp_path: Path) -> None:
    for f in SHIPPED.glob("*.toml"):
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    reg = PresetRegistry(tmp_path)
    path = derive(reg, "smoke_v2", ["model.output_init_std=0.2", "train.trainer.max_epochs=4"],
                  ["PRED_HEAD_DROPOUT=0.2"], "head_std020", tmp_path)
    assert path == tmp_path / "head_std020.toml"
    p = reg.get("head_std020")
    assert p.extends == "smoke_v2" and p.max_epochs == 4
    assert p.overrides["model.output_init_std"] == 0.2 and p.env["PRED_HEAD_DROPOUT"] == "0.2"
    assert p.checkpoints == reg.get("smoke_v2").checkpoints
    assert reg.check_file(path) == []
    with pytest.raises(PresetError, match="already exists"):
        derive(reg, "smoke_v2", [], [], "head_std020", tmp_path)
    with pytest.raises(PresetError, match="preset name"):
        derive(reg, "smoke_v2", [], [], "../evil", tmp_path)
    with pytest.raises(PresetError, match="model.layer_scale"):
        derive(reg, "smoke_v2", ["model.layer_scale=x"], [], "bad", tmp_path)
    assert not (tmp_path / "bad.toml").exists()
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]


def test_find_presets_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_presets_dir(tmp_path / "x") == tmp_path / "x"
    monkeypatch.chdir(tmp_path)
    assert find_presets_dir(None) == Path(tui.__file__).resolve().parent.parent / "presets"
    (tmp_path / "presets").mkdir()
    assert find_presets_dir(None) == tmp_path / "presets"


def test_baselines_table(tmp_path: Path) -> None:
    b = load_baselines(SHIPPED / "baselines.toml")
    assert [r.name for r in b.runs] == ["Baseline (50ep)", "Exp1 (25ep)", "Exp2 (25ep)"]
    assert b.runs[0].metrics == {"sharpe": 0.0818, "ic_h20": -0.0603, "scale": 0.0}
    assert b.get(None) is b.runs[0] and b.get("Exp2 (25ep)").config == "Cosine LR"
    with pytest.raises(PresetError, match="no baseline 'nope'"):
        b.get("nope")
    path = tmp_path / "baselines.toml"
    path.write_text((SHIPPED / "baselines.toml").read_text(encoding="utf-8"), encoding="utf-8")
    out = add_baseline(path, "Smoke V2 (10ep)", "per-day loss", {"sharpe": 0.11, "ic_h20": -0.01,
                       "scale": 0.3, "val_loss": float("nan"), "train_loss": None},
                       status="✅ Variance restored", preset="smoke_v2")
    assert out.runs[-1].metrics == {"sharpe": 0.11, "ic_h20": -0.01, "scale": 0.3}
    assert out.runs[-1].preset == "smoke_v2" and len(out.runs) == 4
    assert path.read_text(encoding="utf-8").startswith("# The baseline table")  # comments kept
    with pytest.raises(PresetError, match="already exists"):
        add_baseline(path, "Smoke V2 (10ep)", "x", {})
    with pytest.raises(PresetError, match="'val acc' is not a metric name"):
        add_baseline(path, "Other", "x", {"val acc": 0.1})
    assert add_baseline(path, "Own", "x", {"ic20": 0.1, "eval_loss": 0.4}).runs[-1].metrics == {
        "ic20": 0.1, "eval_loss": 0.4}  # the script's own names (a near-miss is not refused)
    tomllib.loads(path.read_text(encoding="utf-8"))
    fresh = add_baseline(tmp_path / "new.toml", "First", "Default", {"sharpe": 0.1})
    assert fresh.runs[0].name == "First"
    bad = tmp_path / "bad.toml"
    bad.write_text('[[runs]]\nname = "x"\nmetrics = { "sharpe ratio" = 1.0 }\n', encoding="utf-8")
    with pytest.raises(PresetError, match=r"bad\.toml: runs #1 metrics: metric 'sharpe ratio' is not"):
        load_baselines(bad)


def test_baselines_module_stands_alone(tmp_path: Path) -> None:
    """The baseline table loads without the preset registry; its errors are PresetErrors."""
    import subprocess
    import sys

    code = ("import sys, tui.presets.baselines as b\n"
            f"t = b.load_baselines({str(SHIPPED / 'baselines.toml')!r})\n"
            "print(len(t.runs), 'tui.presets.registry' in sys.modules, 'tui.presets.parse' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       cwd=Path(__file__).resolve().parent.parent)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["3", "False", "False"]
    from tui.presets.baselines import load_baselines as load

    bad = tmp_path / "baselines.toml"
    bad.write_text("runs = 1\n", encoding="utf-8")
    with pytest.raises(PresetError, match=r"baselines\.toml: runs: expected an array of tables"):
        load(bad)
