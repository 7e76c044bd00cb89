"""Issue 20: sweeps over the GPU slots, ranked by the preset's objective, stopped early by its own
rules or pruned by an optuna study's pruner, and `sweep_done` notified, with no runctl window open.

The runs are real (tests/scripts/sweep_target.py: val_loss = (x - 0.3)^2 + (y - 1)^2 + 1/(e + 1),
so the best point is known), launched by the real queue runner and followed by the sweep's real
detached driver, on two GPUs declared with RUNCTL_GPUS.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from tests.test_notify import Endpoint
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow
ENV = {"RUNCTL_GPUS": "0,1", "RUNCTL_SWEEP_POLL_S": "0.3"}

BASE = f"""description = "a sweep target"
command = ["{{python}}", "{ROOT}/tests/scripts/sweep_target.py", "--out", "{{run_dir}}",
           "--max-epochs", "{{max_epochs}}"]
override_format = ["--{{key}}", "{{value}}"]
resume_args = ["--resume"]
checkpoint_files = "{{run_dir}}/ckpt.json"
max_epochs = 3

[overrides]
sleep = 0.3

[[criteria]]
metric = "val_loss"
op = "<"
value = 0.5
label = "val_loss below 0.5"
"""

PRESETS = {
    "grid": BASE + """
[sweep]
x = [0.0, 0.3]
y = [0.0, 1.0]
""",
    "rand": BASE + """
[sweep]
method = "random"
samples = 3
seed = 5
x = { low = 0.0, high = 1.0 }
y = [0.5, 1.0]
""",
    "opt": BASE + """
[sweep]
method = "optuna"
trials = 3
seed = 1
x = { low = 0.0, high = 1.0 }
y = [0.0, 1.0]
""",
    "stop": BASE.replace("max_epochs = 3", "max_epochs = 4") + """
[[checkpoints]]
epoch = 1
title = "Epoch 1"
rules = [{ when = [{ metric = "val_loss", op = "<", value = 2.0 }], verdict = "fine", level = "good" },
         { verdict = "hopeless", level = "bad", say = "far from the optimum" }]

[sweep]
x = [0.3, 3.0]
stop_on = "bad"
""",
}


@pytest.fixture
def presets(tmp_path: Path) -> Path:
    d = tmp_path / "presets"
    d.mkdir()
    for name, text in PRESETS.items():
        (d / f"{name}.toml").write_text(text)
    return d


def _sweep(runctl, presets: Path, preset: str, *extra: str, env: dict | None = None) -> str:  # noqa: ANN001
    r = runctl("--presets", str(presets), "sweep", preset, "--json", *extra, env={**ENV, **(env or {})})
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["sweep"]


def _status(runctl, presets: Path, sweep: str) -> dict:  # noqa: ANN001
    r = runctl("--presets", str(presets), "sweep", "status", sweep, "--json", env=ENV)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _done(runctl, presets: Path, sweep: str, timeout: float = 120) -> dict:  # noqa: ANN001
    got: dict = {}

    def done() -> bool:
        got.update(_status(runctl, presets, sweep))
        return got["done"]

    assert wait_until(done, timeout, 0.5), got
    return got


def test_a_grid_over_two_gpus_two_at_a_time_ranked(runctl, presets: Path) -> None:
    sweep = _sweep(runctl, presets, "grid")
    most = 0

    def watch() -> bool:
        nonlocal most
        r = runctl("runs", "--json", env=ENV)
        runs = json.loads(r.stdout)
        live = [x for x in runs if x["state"] in ("launching", "initializing", "training", "validating")]
        most = max(most, len(live))
        assert len(live) <= 2, live  # two GPUs: never a third run at once
        gpus = [g for x in live for g in x["gpus"]]
        assert len(gpus) == len(set(gpus)), live  # no GPU handed out twice
        return _status(runctl, presets, sweep)["done"]

    assert wait_until(watch, 150, 0.3)
    got = _status(runctl, presets, sweep)
    points = got["points"]
    assert len(points) == 4 and all(p["state"] == "finished" for p in points), points
    assert most == 2
    best = points[0]
    assert best["rank"] == 1 and best["values"] == {"x": "0.3", "y": "1"}, points
    assert best["objective"] == pytest.approx(0.25, abs=1e-6)
    assert [p["rank"] for p in points] == [1, 2, 3, 4]
    assert got["best"] == best["index"]
    objectives = [p["objective"] for p in points]
    assert objectives == sorted(objectives)  # minimized: val_loss below ...
    # each run carries its point, named after the sweep
    runs = json.loads(runctl("runs", "--json", env=ENV).stdout)
    assert sorted(r["name"] for r in runs) == [f"grid-{i}" for i in range(4)]
    by_run = {p["run"]: p for p in points}
    for r in runs:  # from the run's manifest
        p = by_run[r["run"]]
        assert r["sweep"] == {"id": sweep, "index": p["index"], "values": p["values"]}, r["sweep"]
    text = runctl("--presets", str(presets), "sweep", "status", sweep, env=ENV).stdout
    assert "rank" in text and "val_loss" in text and "x" in text and "finished" in text


def test_random_and_optuna_sweeps(runctl, presets: Path) -> None:
    rand = _sweep(runctl, presets, "rand", "--parallel", "1")
    opt = _sweep(runctl, presets, "opt")
    most = 0

    def rand_done() -> bool:  # two GPUs free, but --parallel 1: one rand run at a time
        nonlocal most
        runs = json.loads(runctl("runs", "--json", env=ENV).stdout)
        live = [x for x in runs if x["name"].startswith("rand-")
                and x["state"] in ("launching", "initializing", "training", "validating")]
        most = max(most, len(live))
        return _status(runctl, presets, rand)["done"]

    assert wait_until(rand_done, 150, 0.3)
    assert most == 1
    got = _status(runctl, presets, rand)
    assert len(got["points"]) == 3 and all(p["state"] == "finished" for p in got["points"])
    for p in got["points"]:
        assert 0.0 <= float(p["values"]["x"]) <= 1.0 and p["values"]["y"] in ("0.5", "1")
    got = _done(runctl, presets, opt, timeout=150)
    assert got["method"] == "optuna" and got["size"] == 3
    assert [p["trial"] for p in sorted(got["points"], key=lambda p: p["index"])] == [0, 1, 2]
    assert all(p["state"] == "finished" and p["objective"] is not None for p in got["points"])
    assert got["points"][0]["rank"] == 1
    for p in got["points"]:  # the values as passed to the run, text like a grid's
        assert isinstance(p["values"]["x"], str) and 0.0 <= float(p["values"]["x"]) <= 1.0
        assert p["values"]["y"] in ("0.0", "1.0", "0", "1"), p["values"]


def test_early_stop_by_the_presets_own_rule_and_sweep_done_notified(runctl, presets: Path,
                                                                   tmp_path: Path) -> None:
    ep = Endpoint()
    try:
        notify = tmp_path / "notify.toml"
        notify.write_text(f'urls = ["json://127.0.0.1:{ep.port}/hook", "ntfy://127.0.0.1:{ep.port}/runs"]\n'
                          'on = ["sweep_done"]\n')
        env = {"RUNCTL_NOTIFY": str(notify)}
        sweep = _sweep(runctl, presets, "stop", env=env)
        got = _done(runctl, presets, sweep)
        by_x = {p["values"]["x"]: p for p in got["points"]}
        good, bad = by_x["0.3"], by_x["3"]
        assert good["state"] == "finished"
        assert bad["state"] == "stopped" and "hopeless" in bad["note"], bad
        # stopped with its checkpoint kept: resumable
        st = json.loads(runctl("--presets", str(presets), "status", bad["run"], "--json", env=ENV).stdout)
        assert st["state"] == "killed" and st["resume"]["from"], st["resume"]
        assert wait_until(lambda: ep.forms(sweep, "sweep_done") == ["json", "ntfy"], 30, 0.3), ep.posts
        time.sleep(1.0)
        assert ep.forms(sweep, "sweep_done") == ["json", "ntfy"]  # once to each
        for note in ep.notes(sweep, "sweep_done"):
            body = note["data"]["message"]
            assert body.splitlines()[:2] == [f"sweep: {sweep}", f"host: {socket.gethostname()}"], body
            assert f"runctl sweep status {sweep}" in body and "1 of 2 runs finished" in body
            assert "x=0.3" in body  # the best point
    finally:
        ep.server.shutdown()


def test_an_optuna_trial_that_goes_bad_is_pruned_by_the_studys_pruner(runctl, presets: Path,
                                                                     logs_dir: Path, tmp_path: Path) -> None:
    # the third start of the script adds 10 to its val_loss (whatever x the sampler drew): the
    # median pruner, after two finished trials, prunes it at its first reported epoch
    starts = tmp_path / "starts.txt"
    (presets / "prune.toml").write_text(BASE.replace("max_epochs = 3", "max_epochs = 6").replace(
        "sleep = 0.3", f'sleep = 0.4\ncount_in = "{starts}"\nbad_from = 2') + """
[sweep]
method = "optuna"
trials = 3
seed = 2
x = { low = 0.0, high = 1.0 }
""")
    sweep = _sweep(runctl, presets, "prune")
    got = _done(runctl, presets, sweep, timeout=150)
    points = sorted(got["points"], key=lambda p: p["index"])
    assert [p["state"] for p in points] == ["finished", "finished", "pruned"], points
    pruned = points[2]
    assert "by the study's pruner" in pruned["note"], pruned
    # stopped long before its sixth epoch, its checkpoint kept
    st = json.loads(runctl("--presets", str(presets), "status", pruned["run"], "--json", env=ENV).stdout)
    assert st["state"] == "killed" and len(st["epochs"]) < 6, st["state"]
    assert st["resume"]["from"], st["resume"]
    # the study was told: two complete trials, one pruned, and the best is a finished one
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    (journal,) = (logs_dir / "sweeps").glob("*.optuna.log")
    study = optuna.load_study(study_name=sweep, storage=JournalStorage(JournalFileBackend(str(journal))))
    states = [t.state.name for t in sorted(study.trials, key=lambda t: t.number)]
    assert states == ["COMPLETE", "COMPLETE", "PRUNED"], states
    assert got["best"] in (points[0]["index"], points[1]["index"])


def test_a_stop_that_fails_is_tried_again_at_the_next_poll(presets: Path, logs_dir: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # the driver in this process (no detached one), its first `kill` refused: the bad run is
    # judged again and stopped at a later poll, not left running while recorded as stopped
    from tui.presets.registry import PresetRegistry
    from tui.runs import sweeps
    from tui.runs.launcher import Launcher
    from tui.runs.store import RunStore

    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(sweeps, "ensure_driver", lambda store, sweep_id: None)
    store = RunStore(logs_dir)
    launcher = Launcher(store, PresetRegistry(presets))
    sweep = sweeps.start_sweep(store, launcher, "stop", presets, say=lambda _: None)
    said: list[str] = []
    driver = sweeps.Driver(store, sweep.id, say=said.append)
    real = driver._launcher
    refused = []

    class Refusing:
        def kill(self, run: str, **kw: object) -> str:
            if not refused:
                refused.append(run)
                raise sweeps.RunctlError(f"another runctl holds the lock of {run}")
            return real().kill(run, **kw)

    monkeypatch.setattr(driver, "_launcher", Refusing)
    assert wait_until(driver.step, 120, 0.3), said
    by_x = {p.values["x"]: p for p in sweeps.load(store, sweep.id).points}
    assert refused == [by_x["3"].run] and any("could not stop it" in s for s in said), said
    assert by_x["3"].outcome == "stopped"
    assert store.state(store.get(by_x["3"].run or "")).state == "killed"  # stopped for real
    assert by_x["0.3"].outcome == "finished"


def test_mistakes_are_one_line_and_queue_nothing(runctl, presets: Path, tmp_path: Path) -> None:
    (presets / "plain.toml").write_text(BASE)
    r = runctl("--presets", str(presets), "sweep", "plain", env=ENV)
    assert r.returncode == 2 and "no [sweep] table" in r.stderr and "Traceback" not in r.stderr
    (presets / "badpoint.toml").write_text(BASE + '\n[sweep]\n"max_epochs" = [2, -1]\n')
    r = runctl("--presets", str(presets), "sweep", "badpoint", env=ENV)
    assert r.returncode == 2 and "sweep point #1" in r.stderr, r.stderr
    r = runctl("--presets", str(presets), "sweep", "status", "nope", env=ENV)
    assert r.returncode == 2 and "unknown sweep 'nope'" in r.stderr
    assert not (tmp_path / "_logs" / "training" / "queue.json").exists() or \
        not json.loads((tmp_path / "_logs" / "training" / "queue.json").read_text())["waiting"]
