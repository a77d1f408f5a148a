"""Tests for ``xorlab.apps.sweep``, the ``xorlab-sweep`` app: composition of the grid and its presets, an end-to-end
sweep through the CLI, resuming, and one-line errors for bad input with nothing written."""

from __future__ import annotations

import json

import pytest
from hydra import compose, initialize_config_dir

import xorlab.apps.sweep as sweep_app
from tests.conftest import one_line_error
from xorlab import train
from xorlab.apps.cli import VERSION_BASE, composed_jobs, conf_dir, to_container
from xorlab.core.config import TrainConfig
from xorlab.core.inits import SCHEMES
from xorlab.store.reader import load_curves, load_runs
from xorlab.store.records import run_id
from xorlab.sweep.grid import Grid

EXPERIMENTS = sorted(p.stem for p in (conf_dir("sweep") / "experiment").glob("*.yaml"))


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(conf_dir("sweep")), version_base=VERSION_BASE):
        return compose("sweep", overrides=list(overrides))


def grid_of(cfg) -> Grid:
    return Grid.from_mapping(to_container(cfg.grid))


# ----------------------------------------------------------------------------------------------- composition
def test_default_config():
    cfg = composed()
    sweep_app.check(cfg)
    grid = grid_of(cfg)
    assert len(grid) == 10 and list(grid.axes["seed"]) == list(range(10)) and grid.max_steps == [1000]
    opts = sweep_app.options(cfg, "fallback")
    assert (opts.dir, opts.shard, opts.num_shards) == ("fallback", 0, 1)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_preset_is_a_valid_grid(name):
    cfg = composed(f"experiment={name}")
    grid = grid_of(cfg)
    assert len(grid) >= 1
    sweep_app.options(cfg, "somewhere")  # sweep options are valid too


def test_grid_range_argument_is_one_job_not_a_hydra_sweep():
    argv = sweep_app._quote_grid_ranges(["-m", "grid.seed=range(0,5)", "sweep.shard=range(0,3)", "sweep.num_shards=3"])
    assert argv == ["-m", "grid.seed='range(0,5)'", "sweep.shard=range(0,3)", "sweep.num_shards=3"]
    jobs = composed_jobs("sweep", argv)
    assert [job.sweep.shard for job in jobs] == [0, 1, 2]  # the shard range is a Hydra sweep …
    assert {len(grid_of(job)) for job in jobs} == {5}  # … the grid range is an axis


# ----------------------------------------------------------------------------------------------- the CLI
GRID_ARGS = ["grid.lr=[0.5,1e306]", "grid.max_steps=[20,45]", "grid.init=[zeros,notebook,{name:normal,std:1000.0}]"]


def test_cli_sweep_records_equal_train_and_resumes(tmp_path, cli, same_run, raw_run_ids):
    common = [*GRID_ARGS, "sweep.dir=D", "sweep.log_every=5", "sweep.chunk_size=4", "sweep.engine=numpy"]
    out = cli("xorlab-sweep", "grid.seed=range(0,3)", *common, cwd=tmp_path, script=True)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    assert "trained 36 runs" in out.stdout
    grid = Grid.from_mapping(
        {
            "lr": [0.5, 1e306],
            "max_steps": [20, 45],
            "seed": [0, 1, 2],
            "init": ["zeros", "notebook", {"name": "normal", "std": 1000.0}],
        }
    )
    configs = [c for runs in grid.trajectories() for c in runs]
    runs, curves = load_runs(tmp_path / "D").set_index("run_id"), load_curves(tmp_path / "D")
    assert sorted(runs.index) == sorted(run_id(c) for c in configs)
    statuses = set()
    for cfg in configs:
        res = train(cfg)
        statuses.add(res.status)
        same_run(runs.loc[run_id(cfg)], res, curves[curves["run_id"] == run_id(cfg)], every=5)
    assert {"stuck", "diverged"} <= statuses
    (session,) = (tmp_path / "D" / "sessions").glob("*.json")
    info = json.loads(session.read_text())
    assert info["app"] == "xorlab-sweep" and info["status"] == "finished" and info["grid_runs"] == 36
    assert info["config"]["grid"]["seed"] == "range(0,3)"

    out = cli("xorlab-sweep", "grid.seed=range(0,4)", *common, cwd=tmp_path)  # two more seeds … one more
    assert out.returncode == 0, out.stderr
    assert "trained 12 runs" in out.stdout and "(36 of the 48 distinct runs were already recorded)" in out.stdout
    ids = raw_run_ids(tmp_path / "D")
    assert len(ids) == len(set(ids)) == 48


def test_cli_sweep_uses_the_compiled_engine_by_default(tmp_path, cli):
    """xorlab-sweep trains with the numba kernel unless told otherwise, and records which engine ran."""
    out = cli("xorlab-sweep", "grid.seed=[0,1,2]", "grid.max_steps=50", "sweep.dir=S", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    runs = load_runs(tmp_path / "S")
    assert set(runs["engine"]) == {"compiled"} and "note:" not in out.stdout
    assert "; engine compiled; store " in out.stdout  # the sweep says which engine it uses, before training
    more = cli(
        "xorlab-sweep", "grid.seed=[0,1,2,3]", "grid.max_steps=50", "sweep.dir=S", "sweep.engine=numpy", cwd=tmp_path
    )
    assert more.returncode == 0, more.stderr
    assert "note: this store already holds runs trained with engine compiled" in more.stdout
    assert load_runs(tmp_path / "S").set_index("seed")["engine"].to_dict() == {
        0: "compiled",
        1: "compiled",
        2: "compiled",
        3: "numpy",
    }
    expected = {run_id(c): train(c) for c in (TrainConfig(max_steps=50, seed=s) for s in range(3))}
    for _, row in runs.iterrows():
        res = expected[row["run_id"]]
        assert row["status"] == res.status and abs(row["final_loss"] - res.final_loss) <= 1e-9 * res.final_loss


def test_the_sweep_says_where_the_engines_agree_less(tmp_path, cli):
    """At 1 < lr <= 3 the compiled engine's outcomes match the reference less often: the sweep says so there
    (with the measured figure), and only there and only for the compiled engine."""
    from xorlab.engine.agreement import AGREEMENT

    edge = cli("xorlab-sweep", "grid.lr=[0.5,2,3,5]", "grid.max_steps=5", "sweep.dir=A", cwd=tmp_path)
    assert edge.returncode == 0, edge.stderr
    (note,) = [line for line in edge.stdout.splitlines() if "note:" in line]
    assert "at 1 < lr ≤ 3 (2 of the grid's lr values)" in note and "sweep.engine=numpy" in note
    assert f"{100 * AGREEMENT['1 < lr <= 3']:.1f} %" in note
    for store, args in (("B", ["grid.lr=[0.5,1,5]"]), ("C", ["grid.lr=[2]", "sweep.engine=numpy"])):
        calm = cli("xorlab-sweep", *args, "grid.max_steps=5", f"sweep.dir={store}", cwd=tmp_path)
        assert calm.returncode == 0 and "note:" not in calm.stdout, (args, calm.stdout)


def test_cli_sweep_dir_is_also_the_run_dir(tmp_path, cli):
    """``sweep.dir`` alone puts Hydra's files and the records in one place (conf/sweep/hydra/output)."""
    out = cli("xorlab-sweep", "grid.seed=[0,1]", "grid.max_steps=5", "sweep.dir=S", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["S"]
    assert (tmp_path / "S" / ".hydra" / "config.yaml").exists() and len(load_runs(tmp_path / "S")) == 2


def test_cli_relative_store_resumes_under_chdir_and_runtime_cwd(tmp_path, cli):
    """A relative sweep.dir means the launch directory even with hydra.job.chdir=true, so a re-run resumes;
    ``${hydra:runtime.cwd}`` resolves (it once failed pre-validation)."""
    args = ["grid.seed=[0,1,2]", "grid.max_steps=5", "hydra.job.chdir=true"]
    first = cli("xorlab-sweep", *args, "sweep.dir=rel/store", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = cli("xorlab-sweep", *args, "sweep.dir=${hydra:runtime.cwd}/rel/store", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "trained 0 runs" in again.stdout and "(3 of the 3 distinct runs were already recorded)" in again.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rel"]


def test_cli_store_defaults_to_hydra_output_dir(tmp_path, cli):
    out = cli("xorlab-sweep", "grid.seed=[0,1]", "grid.max_steps=5", "hydra.run.dir=out", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert sorted(load_runs(tmp_path / "out")["seed"]) == [0, 1]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


BAD = [
    (["grid.lr=[]"], "grid.lr"),
    (["grid.lr=[0.1,abc]"], "grid.lr"),
    (["grid.init=[notebook,foo]"], "grid.init"),
    (["grid.seed=range(0,5,0)"], "grid.seed"),
    (["grid.lr=linspace(0,1,5)"], "grid.lr"),  # a space is validated value by value
    (["grid.lr=logspace(1,2)"], "grid.lr"),
    (["grid.init=[{name:normal,std:logspace(0,400,3)}]"], "grid.init.std"),
    (["grid.max_steps=[10,0]"], "grid.max_steps"),
    (["grid.init=[{name:normal,std:-1}]"], "grid.init.std"),
    (["grid.foo=1"], "grid.foo"),
    (["sweep.dir=/proc/xorlab-no-such-dir"], "sweep.dir"),  # permission bits say yes, mkdir says no
    (["sweep.shard=4", "sweep.num_shards=4"], "sweep.shard"),
    (["sweep.chunk_size=0"], "sweep.chunk_size"),
    (["-m", "sweep.shard=0,5", "sweep.num_shards=2"], "sweep.shard"),
    (["sweep.dir={inputs}/afile/sub"], "sweep.dir"),
    (["sweep.dir={inputs}/afile"], "sweep.dir"),
    (["sweep.dir={inputs}/old_store"], "sweep.dir"),
    (["grid.lr=[[0.1]]"], "grid.lr"),  # unhashable: once a TypeError traceback
    (["grid.lr=${x}"], "grid.lr"),  # an interpolation that does not resolve
    (["grid.init=[{name:uniform,a:1e308}]"], "grid.init.a"),  # once failed mid-sweep after writing a store
    (["grid.seed=9223372036854775808"], "grid.seed"),  # once a pyarrow error after training
    (["grid.seed=[1,4294967296]", "grid.rng=legacy"], "grid.seed"),  # once failed after committing chunks
    (["grid.seed=range(0,1000000000)"], "grid"),  # once a MemoryError
    (["grid.seed=range(0,1000000)", "grid.rng_skip=range(0,1000)"], "grid"),  # once planned for hours
    (["+sweep.foo=1"], "sweep.foo"),  # a typo with + is an unknown key too
    (["+grid.foo=1"], "grid.foo"),
    (["+foo=1"], "foo"),
    (["--config-name", "sweep", "-m", "grid.lr=0.1,-1"], "grid.lr"),  # extra Hydra flags: still checked first
]


@pytest.mark.parametrize(("args", "field"), BAD, ids=[" ".join(args) for args, _ in BAD])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, forked_cli, args, field):
    inputs, cwd = tmp_path / "inputs", tmp_path / "cwd"
    (inputs / "old_store").mkdir(parents=True)
    cwd.mkdir()
    (inputs / "afile").write_text("a regular file")
    manifest = inputs / "old_store" / "xorlab-store.json"
    manifest.write_text(json.dumps({"format": "xorlab-store", "version": 999, "created": "then"}))
    before = {p: p.read_bytes() for p in inputs.rglob("*") if p.is_file()}
    if not any(a.startswith("sweep.dir=") for a in args):
        args = [*args, "sweep.dir=store"]  # inside cwd: created only if the check let it through
    out = forked_cli("xorlab-sweep", *(a.replace("{inputs}", str(inputs)) for a in args), cwd=cwd)
    line = one_line_error(out, "xorlab-sweep", field)
    if any("old_store" in a for a in args):  # names the store and why it is refused
        assert str(inputs / "old_store") in line and "version" in line
    if args[0] == "grid.init=[notebook,foo]":
        assert all(name in line for name in SCHEMES)
    assert list(cwd.iterdir()) == []
    assert {p: p.read_bytes() for p in inputs.rglob("*") if p.is_file()} == before


def test_each_app_help_lists_only_its_own_groups(tmp_path, cli):
    sweep_help = cli("xorlab-sweep", "--help", cwd=tmp_path).stdout
    train_help = cli("xorlab-train", "--help", cwd=tmp_path).stdout
    assert "experiment: demo, failure_modes, init_comparison, lr_sensitivity, notebook_replay" in sweep_help
    assert "init:" not in sweep_help.split("== The composed config")[0].split("== Presets")[1]
    assert "experiment: notebook_replay\n" in train_help and "init: from_file, he_normal" in train_help
    assert "demo" not in train_help
    assert list(tmp_path.iterdir()) == []


def test_grid_spaces_are_axes_also_inside_an_init_entry():
    argv = sweep_app._quote_grid_ranges(["grid.lr=logspace(-1,0,3)", "grid.init=[{name:normal,std:linspace(1,2,2)}]"])
    assert argv == ["grid.lr='logspace(-1,0,3)'", "grid.init=[{name:normal,std:'linspace(1,2,2)'}]"]
    (job,) = composed_jobs("sweep", argv)
    grid = grid_of(job)
    assert grid.axes["lr"] == [0.1, 0.316227766017, 1.0]
    assert [p for _, p in grid.axes["init"]] == [(("std", 1.0),), (("std", 2.0),)]


def test_each_app_help_describes_its_own_options_grid_syntax_and_examples(tmp_path, cli):
    """Guards a found bug: --help was Hydra's generic text, nothing about the grid syntax or the engines."""
    import dataclasses

    from xorlab.core.config import TrainConfig
    from xorlab.core.inits import SCHEMES
    from xorlab.sweep.options import SweepOptions

    sweep_help = cli("xorlab-sweep", "--help", cwd=tmp_path).stdout
    train_help = cli("xorlab-train", "--help", cwd=tmp_path).stdout
    assert sweep_help.startswith("xorlab-sweep: ") and train_help.startswith("xorlab-train: ")
    assert "{name: normal, std: [0.01, 0.1, 1]}" in sweep_help and "range(a,b[,step])" in sweep_help
    assert "grid.init='[notebook,{name:normal,std:[0.01,0.1,1,10]}]'" in sweep_help
    assert all(name in sweep_help for name in SCHEMES)  # every init scheme, none forgotten
    for axis in (f.name for f in dataclasses.fields(TrainConfig) if f.name != "init_params"):
        assert f"\n  {axis} " in sweep_help and f"\n  {axis} " in train_help, axis  # every grid axis / field
    for option in SweepOptions.__dataclass_fields__:  # every sweep option is described
        assert f"  {option}" in sweep_help or f", {option}" in sweep_help or f"; {option}:" in sweep_help, option
    assert "compiled (numba" in sweep_help and "numpy (the bit-exact reference)" in sweep_help
    assert "init.std" in train_help and "-m seed='range(0,20)'" in train_help and "xorlab-report" in train_help
    assert "powered by Hydra" not in sweep_help and "powered by Hydra" not in train_help
    assert "--hydra-help" in sweep_help and "--hydra-help" in train_help
    assert list(tmp_path.iterdir()) == []
