"""Tests for ``xorlab.sweep.runner``: a sweep's records equal separate ``xorlab.train`` runs bit for bit, whatever the
chunking, sharding or resuming; planning and chunking; option validation."""

from __future__ import annotations

import pandas as pd
import pytest

from xorlab import train
from xorlab.core.config import ConfigError, TrainConfig
from xorlab.engine import pipeline
from xorlab.store.format import StoreError
from xorlab.store.reader import load_curves, load_runs
from xorlab.store.records import run_id
from xorlab.sweep import runner
from xorlab.sweep.grid import Grid
from xorlab.sweep.runner import SweepOptions, chunks, plan, run_sweep

# Diverging (lr=1e306 with normal std=1e3), always-stuck (zeros), solving and slow runs, and several
# max_steps per trajectory, so that shared trajectories are read out at different ends.
MIXED = {
    "lr": [0.5, 1e306],
    "max_steps": [7, 60, 250],
    "seed": [0, 1, 2],
    "init": ["zeros", "notebook", {"name": "normal", "std": [1e3]}],
}


def opts(path, **kw) -> SweepOptions:
    return SweepOptions(dir=path, progress=False, **kw)


def configs_of(grid: Grid) -> list[TrainConfig]:
    return [c for runs in grid.trajectories() for c in runs]


def sorted_runs(path) -> pd.DataFrame:
    return load_runs(path).drop(columns="sweep").sort_values("run_id", ignore_index=True)  # compare the records


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """The MIXED grid swept once with small chunks and log_every=3 (shared by the read-only tests)."""
    path = tmp_path_factory.mktemp("mixed")
    grid = Grid.from_mapping(MIXED)
    summary = run_sweep(grid, opts(path, chunk_size=5, log_every=3))
    return grid, path, summary


def test_sweep_records_equal_separate_training(mixed, same_run, raw_run_ids):
    grid, path, summary = mixed
    assert summary.trained == summary.grid_runs == summary.shard_runs == len(grid) == 54
    runs = load_runs(path).set_index("run_id")
    curves = load_curves(path)
    assert sorted(raw_run_ids(path)) == sorted(run_id(c) for c in configs_of(grid))  # one record per run
    statuses = set()
    for cfg in configs_of(grid):
        res = train(cfg)
        rid = run_id(cfg)
        same_run(runs.loc[rid], res, curves[curves["run_id"] == rid], every=3)
        statuses.add(res.status)
        if cfg.init == "zeros":
            assert res.status == "stuck"
        if cfg.lr == 1e306 and cfg.init == "normal" and cfg.max_steps > 1:
            assert res.status == "diverged"
    assert statuses == {"solved", "slow", "stuck", "diverged"}


def test_rerun_skips_recorded_runs(mixed, tmp_path):
    grid, path, _ = mixed
    before = sorted(p.name for p in (path / "runs").iterdir())
    summary = run_sweep(grid, opts(path))
    assert (summary.trained, summary.already_recorded, summary.shard_runs) == (0, len(grid), len(grid))
    assert sorted(p.name for p in (path / "runs").iterdir()) == before


def test_growing_the_grid_trains_only_new_runs(tmp_path, same_run, raw_run_ids):
    path = tmp_path / "s"
    small = {"lr": [0.5], "seed": [0, 1], "max_steps": [20, 40], "init": ["notebook", "zeros"]}
    assert run_sweep(Grid.from_mapping(small), opts(path)).trained == 8
    steps = [
        ({**small, "seed": [0, 1, 2, 3]}, 8),  # more seeds
        ({**small, "seed": [0, 1, 2, 3], "lr": [0.5, 2.0]}, 16),  # more learning rates
        ({**small, "seed": [0, 1, 2, 3], "lr": [0.5, 2.0], "max_steps": [20, 30, 40]}, 16),  # a new read-out
    ]
    for raw, new in steps:
        grid = Grid.from_mapping(raw)
        summary = run_sweep(grid, opts(path, log_every=1))
        assert (summary.trained, summary.already_recorded) == (new, len(grid) - new)
    ids = raw_run_ids(path)
    assert len(ids) == len(set(ids)) == len(grid)
    runs = load_runs(path).set_index("run_id")
    for cfg in configs_of(grid):
        same_run(runs.loc[run_id(cfg)], train(cfg))


def test_chunk_size_does_not_change_records(mixed, tmp_path):
    grid, path, _ = mixed
    one = tmp_path / "one_chunk"
    run_sweep(grid, opts(one, chunk_size=10_000, log_every=3))
    assert len(list((one / "runs").iterdir())) == 1 and len(list((path / "runs").iterdir())) > 5
    pd.testing.assert_frame_equal(sorted_runs(one), sorted_runs(path))
    key = ["run_id", "step"]
    pd.testing.assert_frame_equal(
        load_curves(one).drop(columns="sweep").astype({"run_id": str}).sort_values(key, ignore_index=True),
        load_curves(path).drop(columns="sweep").astype({"run_id": str}).sort_values(key, ignore_index=True),
    )


@pytest.mark.parametrize("k", [2, 3])
def test_shards_run_one_after_another_fill_one_store(mixed, tmp_path, k, raw_run_ids):
    grid, reference, _ = mixed
    path = tmp_path / "sharded"
    shard_runs = [run_sweep(grid, opts(path, shard=i, num_shards=k, chunk_size=4, log_every=3)) for i in range(k)]
    assert sum(s.trained for s in shard_runs) == sum(s.shard_runs for s in shard_runs) == len(grid)
    assert all(s.trained > 0 for s in shard_runs)
    ids = raw_run_ids(path)
    assert len(ids) == len(set(ids)) == len(grid)
    pd.testing.assert_frame_equal(sorted_runs(path), sorted_runs(reference))
    assert all(run_sweep(grid, opts(path, shard=i, num_shards=k)).trained == 0 for i in range(k))


def test_equal_configs_written_two_ways_train_once(tmp_path, raw_run_ids):
    grid = Grid.from_mapping({"seed": [0, 1], "init": ["normal", {"name": "normal", "std": 1.0}]})
    assert len(grid) == 4
    summary = run_sweep(grid, opts(tmp_path / "s"))
    assert summary.shard_runs == summary.trained == 2
    assert len(raw_run_ids(tmp_path / "s")) == 2


# ----------------------------------------------------------------------------------------------- plan, chunks
def test_plan_keeps_only_unrecorded_runs_of_a_trajectory(tmp_path):
    path = tmp_path / "s"
    run_sweep(Grid.from_mapping({"seed": [0, 1, 2], "max_steps": [10]}), opts(path))
    grid = Grid.from_mapping({"seed": [0, 1, 2, 3], "max_steps": [10, 20]})
    p = plan(grid, opts(path))
    assert (p.in_shard, p.recorded, p.pending) == (8, 3, 5)
    assert p.trajectories.tolist() == [0, 1, 2, 3]
    assert p.needed.tolist() == [[False, True]] * 3 + [[True, True]]
    batches = list(chunks(p, chunk_size=100, log_every=1))
    assert [[(c.seed, c.max_steps) for c in b] for b in batches] == [[(0, 20), (1, 20), (2, 20), (3, 10), (3, 20)]]


def test_plan_of_a_new_store_writes_nothing(tmp_path):
    p = plan(Grid.from_mapping({"seed": "range(0,5)"}), opts(tmp_path / "new"))
    assert p.pending == 5 and not (tmp_path / "new").exists()


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 1000])
def test_chunks_hold_whole_trajectories(chunk_size):
    grid = Grid.from_mapping({"seed": "range(0,10)", "max_steps": [5, 10, 15]})
    p = plan(grid, opts("/nonexistent/xorlab-test-store"))
    batches = list(chunks(p, chunk_size, log_every=1))
    flat = [c for b in batches for c in b]
    assert flat == configs_of(grid)  # every pending run once, in grid order
    for b in batches:
        assert len(b) % 3 == 0  # whole trajectories
        assert len(b) <= max(chunk_size, 3)
    for b in batches[:-1]:  # … and as full as allowed
        assert len(b) == 3 or len(b) + 3 > chunk_size
    assert len(batches) == -(-30 // max(3, chunk_size // 3 * 3))


def test_chunks_cap_memory(monkeypatch):
    grid = Grid.from_mapping({"seed": "range(0,10)", "max_steps": [99]})
    monkeypatch.setattr(runner, "MAX_CELLS", 3 * (99 // 1 + 1))  # room for 3 lanes of 100 logged steps
    batches = list(chunks(plan(grid, opts("/nonexistent/xorlab-test-store")), chunk_size=1000, log_every=1))
    assert [len(b) for b in batches] == [3, 3, 3, 1]


# ----------------------------------------------------------------------------------------------- options
@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"shard": 3, "num_shards": 3}, "sweep.shard"),
        ({"shard": 5, "num_shards": 2}, "sweep.shard"),
        ({"shard": -1}, "sweep.shard"),
        ({"num_shards": 0}, "sweep.num_shards"),
        ({"num_shards": 2.0}, "sweep.num_shards"),
        ({"shard": True, "num_shards": 2}, "sweep.shard"),
        ({"chunk_size": 0}, "sweep.chunk_size"),
        ({"chunk_size": "10"}, "sweep.chunk_size"),
        ({"log_every": 0}, "sweep.log_every"),
        ({"progress": "yes"}, "sweep.progress"),
        ({"dir": ""}, "sweep.dir"),
        ({"dir": None}, "sweep.dir"),
        ({"dir": 3}, "sweep.dir"),
    ],
)
def test_sweep_options_validation(tmp_path, kw, field):
    with pytest.raises(ConfigError) as err:
        SweepOptions(**{"dir": tmp_path, **kw})
    assert err.value.field == field and str(err.value).startswith(f"{field}: ") and "\n" not in str(err.value)


def test_sweep_into_unwritable_dir_fails_before_training(tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("x")
    monkeypatch.setattr(pipeline, "train_batch", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(StoreError, match="sweep.dir"):
        run_sweep(Grid.from_mapping({"seed": 0}), opts(tmp_path / "afile" / "sub"))
    assert [p.name for p in tmp_path.iterdir()] == ["afile"]


# ----------------------------------------------------------------------------------------------- liveness
@pytest.mark.parametrize(
    ("grid", "field"),
    [
        ({"seed": [0, 2**63]}, "grid.seed"),
        ({"seed": [2**64]}, "grid.seed"),
        ({"seed": [0, 1, 2**32], "rng": "legacy"}, "grid.seed"),
        ({"rng_skip": [0, 10**8 + 1]}, "grid.rng_skip"),
        ({"seed": "range(0,2000)", "lr": [0.1 + i / 1e4 for i in range(1500)]}, "grid"),  # 3,000,000 runs
    ],
)
def test_limits_stop_before_anything_is_written(tmp_path, monkeypatch, grid, field):
    monkeypatch.setattr(pipeline, "train_batch", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(ConfigError) as err:
        run_sweep(Grid.from_mapping(grid), opts(tmp_path / "s"))
    assert err.value.field == field and "\n" not in str(err.value)
    assert not (tmp_path / "s").exists()


def test_largest_allowed_seeds_are_recorded(tmp_path):
    grid = Grid.from_mapping({"seed": [2**32 - 1], "rng": ["legacy"], "max_steps": 3})
    run_sweep(grid, opts(tmp_path / "s"))
    grid = Grid.from_mapping({"seed": [2**63 - 1], "max_steps": 3})
    run_sweep(grid, opts(tmp_path / "s"))
    assert sorted(load_runs(tmp_path / "s")["seed"]) == [2**32 - 1, 2**63 - 1]


def write_npz(path, scale: float) -> str:
    import numpy as np

    np.savez(path, w1=np.full((2, 4), scale), b1=np.zeros((1, 4)), w2=np.full((4, 1), -scale), b2=np.zeros((1, 1)))
    return str(path)


def test_init_file_hash_is_recorded_and_edits_make_new_runs(tmp_path):
    from xorlab.store.files import file_sha256

    npz = write_npz(tmp_path / "start.npz", 0.5)
    grid = Grid.from_mapping({"init": [{"name": "from_file", "path": npz}, "notebook"], "seed": [0, 1], "max_steps": 5})
    run_sweep(grid, opts(tmp_path / "s"))
    first = file_sha256(npz)
    write_npz(npz, 0.7)
    assert run_sweep(grid, opts(tmp_path / "s")).trained == 2  # the from_file runs of the new content only
    runs = load_runs(tmp_path / "s")
    from_file = runs[runs["init"] == "from_file"]
    assert sorted(from_file["init_file_sha256"]) == sorted([first, first, file_sha256(npz), file_sha256(npz)])
    assert runs.loc[runs["init"] == "notebook", "init_file_sha256"].isna().all()


def test_init_file_changed_mid_sweep_stops_cleanly(tmp_path, monkeypatch):
    npz = write_npz(tmp_path / "start.npz", 0.5)
    grid = Grid.from_mapping({"init": [{"name": "from_file", "path": npz}], "seed": "range(0,12)", "max_steps": 5})
    real, calls = pipeline.train_batch, []

    def edit_then_train(configs, **kw):
        calls.append(1)
        if len(calls) == 2:
            write_npz(npz, 0.9)  # edited while chunk 2 trains
        return real(configs, **kw)

    monkeypatch.setattr(pipeline, "train_batch", edit_then_train)
    with pytest.raises(StoreError) as err:
        run_sweep(grid, opts(tmp_path / "s", chunk_size=4))
    assert "changed during the sweep" in str(err.value) and "\n" not in str(err.value)
    runs = load_runs(tmp_path / "s")
    assert len(runs) == 4 and runs["init_file_sha256"].nunique() == 1  # chunk 1 only, one content
    assert not list((tmp_path / "s" / "claims").iterdir())


def test_sigterm_stops_the_sweep_cleanly(tmp_path, monkeypatch):
    import os
    import signal

    from xorlab.store.sessions import read_sessions
    from xorlab.store.signals import StopRequested

    grid = Grid.from_mapping({"seed": "range(0,20)", "max_steps": 5})
    real, calls = pipeline.train_batch, []

    def terminated(configs, **kw):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # as SLURM does at the time limit
        return real(configs, **kw)

    monkeypatch.setattr(pipeline, "train_batch", terminated)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(StopRequested) as err:
        run_sweep(grid, opts(tmp_path / "s", chunk_size=4))
    assert err.value.signum == signal.SIGTERM and err.value.exit_code == 143
    assert isinstance(err.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGTERM) == before  # handlers restored
    (info,) = read_sessions(tmp_path / "s")
    assert info["status"] == "interrupted" and info["runs_written"] == len(load_runs(tmp_path / "s")) == 8
    assert not list((tmp_path / "s" / "claims").iterdir())


def test_a_signal_during_a_commit_waits_for_it(tmp_path, monkeypatch):
    import os
    import signal

    from xorlab.store import files as store_mod
    from xorlab.store.signals import StopRequested

    real = store_mod.atomic_write

    def signalled(target, write):
        if target.parent.name == "curves":
            os.kill(os.getpid(), signal.SIGINT)  # between the curves file and the runs file that commits it
        real(target, write)

    monkeypatch.setattr(store_mod, "atomic_write", signalled)
    with pytest.raises(StopRequested):
        run_sweep(Grid.from_mapping({"seed": "range(0,8)", "max_steps": 5}), opts(tmp_path / "s", chunk_size=4))
    monkeypatch.undo()
    assert len(load_runs(tmp_path / "s")) == 4  # the chunk being committed was committed whole
    assert len(list((tmp_path / "s" / "curves").glob("*.parquet"))) == 1


def test_chunks_are_committed_in_the_background_and_their_errors_stop_the_sweep(tmp_path, monkeypatch):
    """Chunk k is written by the committer thread while chunk k+1 trains; a failed write stops the sweep with its
    own error, the chunks committed before it stay, and no claim is left held."""
    import threading

    from xorlab.store import writer as store_mod
    from xorlab.store.sessions import read_sessions

    writers, trained, real = [], [], store_mod.StoreWriter.write

    def write(self, runs, curves, **kw):
        writers.append((threading.current_thread().name, len(trained)))
        if len(writers) == 3:
            raise StoreError("disk full (test)")
        return real(self, runs, curves, **kw)

    real_train = pipeline.train_batch
    monkeypatch.setattr(store_mod.StoreWriter, "write", write)
    monkeypatch.setattr(pipeline, "train_batch", lambda c, **kw: trained.append(1) or real_train(c, **kw))
    with pytest.raises(StoreError, match="disk full"):
        run_sweep(Grid.from_mapping({"seed": "range(0,20)", "max_steps": 5}), opts(tmp_path / "s", chunk_size=4))
    assert {name.split("_")[0] for name, _ in writers} == {"xorlab-commit"}
    assert all(n >= k + 1 for k, (_, n) in enumerate(writers))  # chunk k is written after it trained
    assert len(load_runs(tmp_path / "s")) == 8
    (info,) = read_sessions(tmp_path / "s")
    assert info["status"] == "failed" and not list((tmp_path / "s" / "claims").iterdir())


def test_tilde_sweep_dir_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    grid = Grid.from_mapping({"seed": [0, 1], "max_steps": 5})
    assert run_sweep(grid, opts("~/s")).trained == 2
    assert run_sweep(grid, opts("~/s")).trained == 0 and (tmp_path / "s").is_dir()


def test_interrupt_guard_is_one_line(capsys):
    import signal

    from xorlab.store.signals import StopRequested, interrupt_guard

    for exc, code in ((KeyboardInterrupt(), 130), (StopRequested(signal.SIGTERM), 143)):
        with pytest.raises(SystemExit) as out, interrupt_guard("xorlab-sweep"):
            raise exc
        assert out.value.code == code
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("xorlab-sweep: interrupted (SIG")


def test_a_second_signal_does_not_cut_the_cleanup_short():
    import os
    import signal

    from xorlab.store.signals import StopRequested, shield, stop_on_signals

    cleaned = []
    with pytest.raises(StopRequested) as err, stop_on_signals(watch_parent=False):
        try:
            os.kill(os.getpid(), signal.SIGINT)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # e.g. a pool terminating its workers: ignored, stop under way
            with shield():
                cleaned.append(True)
    assert err.value.signum == signal.SIGINT and cleaned == [True]


def test_shield_defers_a_signal_to_the_end_of_the_block():
    import os
    import signal

    from xorlab.store.signals import StopRequested, shield, stop_on_signals

    done = []
    with pytest.raises(StopRequested), stop_on_signals(watch_parent=False):
        with shield():
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("after the signal, inside the block")
    assert done == ["after the signal, inside the block"]
