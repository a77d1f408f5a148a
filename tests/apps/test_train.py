"""Tests for ``xorlab.apps.train``, the ``xorlab-train`` app: config composition, the printed table, the record it
writes, its return value, and one-line errors for bad input with nothing written."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

import xorlab
import xorlab.apps.train as train_app
from tests.conftest import one_line_error
from xorlab.apps.cli import VERSION_BASE, composed_jobs, conf_dir
from xorlab.core.config import TrainConfig
from xorlab.core.inits import PARAM_SHAPES, SCHEMES
from xorlab.engine.batch import train
from xorlab.engine.results import TrainResult
from xorlab.store.reader import load_curves, load_runs
from xorlab.store.records import run_id


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(conf_dir("train")), version_base=VERSION_BASE):
        return compose("train", overrides=list(overrides))


def table_lines(res: TrainResult, every: int = 20) -> list[str]:
    """The notebook's print statements, applied to ``res``."""
    m = res.config.max_steps
    lines = [f"{step}/{m}: loss = {res.losses[step]:.3f}" for step in range(0, m, every)]
    return [*lines, f"Final loss = {res.final_loss:.3f}"]


# ----------------------------------------------------------------------------------------------- composition
def test_default_config_is_the_notebook_run():
    assert train_app.check(composed()) == TrainConfig(lr=0.1, max_steps=1000, seed=0, init="notebook")


def test_overrides_reach_every_field():
    cfg = composed(
        "init=normal",
        "init.std=0.5",
        "lr=0.3",
        "max_steps=10",
        "seed=4",
        "rng=legacy",
        "rng_skip=2",
        "loss_threshold=0.1",
    )
    assert train_app.check(cfg) == TrainConfig(
        lr=0.3,
        max_steps=10,
        seed=4,
        init="normal",
        init_params={"std": 0.5},
        rng="legacy",
        rng_skip=2,
        loss_threshold=0.1,
    )
    assert train_app.check(composed("init=he_uniform")).init_params == {"gain": 1.0}


def test_notebook_replay_preset_composes():
    assert train_app.check(composed("experiment=notebook_replay")) == TrainConfig(
        lr=0.1, max_steps=1000, seed=1337, init="notebook", rng="legacy", rng_skip=144
    )


def test_glob_multirun_composes_every_scheme():
    jobs = composed_jobs("train", ["-m", "init=glob(*,exclude=from_file)", "seed=0,1"])
    assert len(jobs) == 2 * (len(SCHEMES) - 1)
    configs = [train_app.check(cfg) for cfg in jobs]
    assert {c.init for c in configs} == set(SCHEMES) - {"from_file"}
    assert {(c.init, c.seed) for c in configs} == {(s, k) for s in SCHEMES if s != "from_file" for k in (0, 1)}


# ----------------------------------------------------------------------------------------------- run()
def test_run_returns_final_loss_and_records(tmp_path, capsys, same_run):
    cfg = composed("init=he_normal", "seed=2", "lr=0.7", "max_steps=60", "print_every=7", "log_every=4")
    expected = xorlab.train(train_app.check(cfg))
    assert train_app.run(cfg, str(tmp_path / "out")) == expected.final_loss
    printed = capsys.readouterr().out.splitlines()
    assert printed[: 60 // 7 + 2] == table_lines(expected, every=7)
    runs = load_runs(tmp_path / "out")
    assert list(runs["run_id"]) == [run_id(expected.config)]
    same_run(runs.iloc[0], expected, load_curves(tmp_path / "out"), every=4)


def test_train_is_the_engine_function_whatever_is_imported():
    """The app lives in xorlab.apps: importing it leaves ``xorlab.train`` the library function (no module that
    doubles as a function), and the app module does not pull in pandas/pyarrow before it writes a record."""
    assert xorlab.train is train
    code = (
        "import sys, xorlab.apps.train\n"
        "from xorlab import train\n"
        "from xorlab.engine.batch import train as engine_train\n"
        "assert train is engine_train, train\n"
        "heavy = sorted(m for m in ('pandas', 'pyarrow', 'scipy', 'matplotlib', 'seaborn') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout == "ok\n", out.stderr


# ----------------------------------------------------------------------------------------------- the CLI
def test_cli_prints_table_and_records_the_run(tmp_path, cli, same_run):
    out = cli("xorlab-train", "max_steps=200", "seed=3", "lr=0.5", "hydra.run.dir=out", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    expected = xorlab.train(TrainConfig(max_steps=200, seed=3, lr=0.5))
    lines = out.stdout.splitlines()
    assert lines[:11] == table_lines(expected)
    preds = [float(line.split(" = ")[1]) for line in lines[11:15]]
    np.testing.assert_allclose(preds, expected.predictions, rtol=0, atol=5e-9)
    assert lines[15].startswith(f"status: {expected.status}")
    runs = load_runs(tmp_path / "out")
    assert len(runs) == 1
    same_run(runs.iloc[0], expected, load_curves(tmp_path / "out"), every=1)
    (session,) = (tmp_path / "out" / "sessions").glob("*.json")
    info = json.loads(session.read_text())
    assert info["app"] == "xorlab-train" and info["status"] == "finished" and info["config"]["lr"] == 0.5
    assert set(p.name for p in tmp_path.iterdir()) == {"out"}


def test_console_script_replays_the_notebook(tmp_path, cli):
    out = cli("xorlab-train", "experiment=notebook_replay", "hydra.run.dir=replay", cwd=tmp_path, script=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    for printed in ("0/1000: loss = 0.708", "20/1000: loss = 0.689", "840/1000: loss = 0.009"):
        assert printed in lines
    assert len(load_runs(tmp_path / "replay")) == 1


def write_npz(path, **arrays) -> None:
    np.savez(path, **{k: np.full(s, 0.25) for k, s in PARAM_SHAPES.items()} | arrays)


BAD = [
    (["lr=0"], "lr"),
    (["lr=-1"], "lr"),
    (["lr=nan"], "lr"),
    (["lr=abc"], "lr"),
    (["max_steps=0"], "max_steps"),
    (["max_steps=1.5"], "max_steps"),
    (["seed=-1"], "seed"),
    (["init=foo"], "init"),
    (["rng=foo"], "rng"),
    (["init=from_file"], "init.path"),
    (["init=from_file", "init.path={inputs}/missing.npz"], "init.path"),
    (["init=from_file", "init.path={inputs}/corrupt.npz"], "init.path"),
    (["init=from_file", "init.path={inputs}/shape.npz"], "init.path"),
    (["init=normal", "init.std=-1"], "init.std"),
    (["init.std=0.5"], "init.std"),  # the notebook init takes no std
    (["print_every=0"], "print_every"),
    (["log_every=0"], "log_every"),
    (["nosuchkey=1"], "nosuchkey"),  # unknown key without +: named, with the allowed ones
    (["-m", "seed=0,-1"], "seed"),  # every job of a multirun is checked before any runs
    (["-m", "init=he_normal,foo"], "init"),
    (["lr=${foo}"], "lr"),  # an interpolation that does not resolve: once an OmegaConf traceback
    (["seed=${oc.env:XORLAB_NO_SUCH_VARIABLE}"], "seed"),
    (["max_steps=1000000000"], "max_steps"),  # would not fit in memory: once a MemoryError traceback
    (["init=uniform", "init.a=1e308"], "init.a"),  # U(±a) overflows: once an OverflowError traceback
    (["init=xavier_uniform", "init.gain=1e308"], "init.gain"),
    (["seed=18446744073709551616"], "seed"),  # once trained, then crashed writing the record
    (["rng=legacy", "seed=4294967296"], "seed"),  # RandomState takes 32-bit seeds
    (["rng_skip=100000001"], "rng_skip"),
    (["+lrr=5"], "lrr"),  # a typo with + once trained the default run silently
    (["+init.foo=1"], "init.foo"),
    (["--config-name=train", "lr=-1"], "lr"),  # other Hydra flags no longer switch pre-validation off
    (["hydra.job.chdir=true", "-m", "seed=1,-1"], "seed"),
    (["hydra.run.dir=/proc/xorlab-test"], "hydra.run.dir"),  # once a traceback from Hydra's mkdir
    (["hydra.run.dir={inputs}/corrupt.npz/run"], "hydra.run.dir"),  # under a file
    (["-m", "seed=0,1", "hydra.sweep.dir=/proc/xorlab-test"], "hydra.sweep.dir"),
]


@pytest.mark.parametrize(("args", "field"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, forked_cli, args, field):
    inputs, cwd = tmp_path / "inputs", tmp_path / "cwd"
    inputs.mkdir()
    cwd.mkdir()
    (inputs / "corrupt.npz").write_bytes(b"PK\x03\x04 not really a zip")
    write_npz(inputs / "shape.npz", w1=np.zeros((3, 4)))
    out = forked_cli("xorlab-train", *(a.replace("{inputs}", str(inputs)) for a in args), cwd=cwd)
    line = one_line_error(out, "xorlab-train", field)
    if args == ["init=foo"]:
        assert all(name in line for name in SCHEMES)
    if "nosuchkey=1" in args:
        assert "nosuchkey" in line
    if args == ["+lrr=5"]:
        assert "allowed: lr, max_steps" in line
    assert list(cwd.iterdir()) == []
    assert sorted(p.name for p in inputs.iterdir()) == ["corrupt.npz", "shape.npz"]
