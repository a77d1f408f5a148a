"""Crash safety of a sweep: a process that dies (an exception, ``kill -9``, Ctrl-C) leaves a store with whole
chunks only, and re-running the same command completes it with exactly one record per run, equal to a sweep
that never crashed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from xorlab.store import files
from xorlab.store.files import atomic_write
from xorlab.store.reader import load_curves, load_runs
from xorlab.store.records import run_id
from xorlab.store.sessions import session_state
from xorlab.sweep.grid import Grid
from xorlab.sweep.runner import SweepOptions, run_sweep

SMALL = {
    "lr": [0.5, 1e306],
    "seed": "range(0,6)",
    "max_steps": [15, 40],
    "init": ["notebook", {"name": "normal", "std": 1e3}],
}


def sorted_runs(path) -> pd.DataFrame:
    return load_runs(path).drop(columns="sweep").sort_values("run_id", ignore_index=True)  # compare the records


def sorted_curves(path) -> pd.DataFrame:
    frame = load_curves(path).drop(columns="sweep").astype({"run_id": str})
    return frame.sort_values(["run_id", "step"], ignore_index=True)


def assert_complete(path: Path, reference: Path, n: int, raw_run_ids) -> None:
    ids = raw_run_ids(path)
    assert len(ids) == len(set(ids)) == n  # exactly one record per run
    pd.testing.assert_frame_equal(sorted_runs(path), sorted_runs(reference))
    pd.testing.assert_frame_equal(sorted_curves(path), sorted_curves(reference))


def sessions(path: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((path / "sessions").glob("*.json"))]


# ----------------------------------------------------------------------------------------------- in process
@pytest.mark.parametrize("fail_at", [0, 2])
def test_crash_between_curves_and_runs_write(tmp_path, monkeypatch, raw_run_ids, fail_at):
    """The process dies after a chunk's curves are on disk but before its runs file commits it (an error that is
    not an OSError, which the writer would turn into a StoreError after tidying the curves file)."""
    grid = Grid.from_mapping(SMALL)
    reference = tmp_path / "reference"
    run_sweep(grid, SweepOptions(dir=reference, progress=False))
    path = tmp_path / "s"
    opts = SweepOptions(dir=path, chunk_size=4, progress=False)
    real_write = atomic_write
    commits = []

    def dying_write(target: Path, write) -> None:
        if target.parent.name == "runs" and len(commits) == fail_at:
            raise RuntimeError("disk on fire")
        real_write(target, write)
        if target.parent.name == "runs":
            commits.append(target)

    monkeypatch.setattr(files, "atomic_write", dying_write)
    with pytest.raises(RuntimeError, match="disk on fire"):
        run_sweep(grid, opts)
    monkeypatch.undo()

    assert len(list((path / "curves").glob("*.parquet"))) == fail_at + 1  # the orphan is there …
    runs = load_runs(path)  # … but neither loader sees it
    assert len(runs) == 4 * fail_at
    assert set(load_curves(path)["run_id"]) == set(runs["run_id"])
    assert [s["status"] for s in sessions(path)] == ["failed"]
    assert not list(path.rglob(".tmp-*"))

    summary = run_sweep(grid, opts)
    assert (summary.already_recorded, summary.trained) == (4 * fail_at, len(grid) - 4 * fail_at)
    assert_complete(path, reference, len(grid), raw_run_ids)


def test_exception_mid_sweep_keeps_finished_chunks(tmp_path, monkeypatch, raw_run_ids):
    from xorlab.engine import pipeline

    grid = Grid.from_mapping(SMALL)
    reference = tmp_path / "reference"
    run_sweep(grid, SweepOptions(dir=reference, progress=False))
    real_train, calls = pipeline.train_batch, []

    def train_then_die(configs, **kw):
        calls.append(len(configs))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_train(configs, **kw)

    monkeypatch.setattr(pipeline, "train_batch", train_then_die)
    path = tmp_path / "s"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(grid, SweepOptions(dir=path, chunk_size=6, progress=False))
    monkeypatch.undo()
    assert len(load_runs(path)) == 12 and [s["status"] for s in sessions(path)] == ["interrupted"]
    assert run_sweep(grid, SweepOptions(dir=path, chunk_size=6, progress=False)).trained == len(grid) - 12
    assert_complete(path, reference, len(grid), raw_run_ids)


# ----------------------------------------------------------------------------------------------- real processes
# Many small chunks of long runs: the sweep takes several seconds, so it is reliably killed mid-run.
SLOW_ARGS = [
    "grid.lr=[0.5]",
    "grid.seed=range(0,120)",
    "grid.max_steps=[1000,2000]",
    "sweep.chunk_size=8",
    "sweep.log_every=50",
    "sweep.progress=false",
    "sweep.engine=numpy",
]
SLOW_GRID = {"lr": [0.5], "seed": "range(0,120)", "max_steps": [1000, 2000]}


@pytest.fixture(scope="module")
def slow_reference(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("reference")
    run_sweep(Grid.from_mapping(SLOW_GRID), SweepOptions(dir=path, log_every=50, progress=False))
    return path


def sweep_module() -> str:
    """The sweep app's module (it moves to ``xorlab.apps.sweep`` in the issue-7 refactor): one place to change."""
    import importlib.util

    return "xorlab.apps.sweep" if importlib.util.find_spec("xorlab.apps.sweep") else "xorlab.sweep"


def sweep_cmd(path: Path) -> list[str]:
    return [sys.executable, "-m", sweep_module(), *SLOW_ARGS, f"sweep.dir={path}"]


def start_and_signal(path: Path, sig: int, after_chunks: int) -> subprocess.CompletedProcess:
    """Start the slow sweep, wait until ``after_chunks`` chunks are committed, send ``sig``; wait for exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYDRA_")}
    proc = subprocess.Popen(sweep_cmd(path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while len(list((path / "runs").glob("[!.]*.parquet"))) < after_chunks:
            assert proc.poll() is None, "the sweep ended before it could be interrupted"
            assert time.monotonic() < deadline, "the sweep committed no chunk in 120 s"
            time.sleep(0.005)
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def resume(path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYDRA_")}
    return subprocess.run(sweep_cmd(path), capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.slow
@pytest.mark.parametrize("after_chunks", [1, 5])
def test_kill_9_then_resume(tmp_path, slow_reference, raw_run_ids, after_chunks):
    n = len(Grid.from_mapping(SLOW_GRID))
    path = tmp_path / "store"
    killed = start_and_signal(path, signal.SIGKILL, after_chunks)
    assert killed.returncode == -signal.SIGKILL
    partial = load_runs(path)  # nothing corrupt: the default on_corrupt="raise" reads it
    assert after_chunks * 8 <= len(partial) < n
    assert len(raw_run_ids(path)) == len(partial)
    assert set(load_curves(path)["run_id"]) == set(partial["run_id"])
    assert [s["status"] for s in sessions(path)] == ["running"]  # what a killed session looks like …
    assert [session_state(s) for s in sessions(path)] == ["crashed"]  # … and what it is

    done = resume(path)
    assert done.returncode == 0, done.stderr
    assert f"({len(partial)} of the {n} distinct runs were already recorded)" in done.stdout
    assert_complete(path, slow_reference, n, raw_run_ids)
    assert sorted(s["status"] for s in sessions(path)) == ["finished", "running"]


@pytest.mark.slow
def test_ctrl_c_then_resume(tmp_path, slow_reference, raw_run_ids):
    n = len(Grid.from_mapping(SLOW_GRID))
    path = tmp_path / "store"
    stopped = start_and_signal(path, signal.SIGINT, 2)
    assert stopped.returncode == 130, stopped.stderr
    assert "Traceback" not in stopped.stdout + stopped.stderr
    assert "interrupted" in stopped.stderr and str(path) in stopped.stderr
    (info,) = sessions(path)
    assert info["status"] == "interrupted" and info["ended"] and info["runs_written"] == len(load_runs(path))
    assert 16 <= info["runs_written"] < n

    done = resume(path)
    assert done.returncode == 0, done.stderr
    assert_complete(path, slow_reference, n, raw_run_ids)
    ids = {run_id(c) for runs in Grid.from_mapping(SLOW_GRID).trajectories() for c in runs}
    assert set(load_runs(path)["run_id"]) == ids


@pytest.mark.slow
def test_sigterm_then_resume(tmp_path, slow_reference, raw_run_ids):
    """SLURM's time limit: SIGTERM stops the sweep cleanly (no traceback, session interrupted, chunks kept)."""
    n = len(Grid.from_mapping(SLOW_GRID))
    path = tmp_path / "store"
    stopped = start_and_signal(path, signal.SIGTERM, 2)
    assert stopped.returncode != 0 and stopped.returncode != -signal.SIGTERM, stopped.stderr
    assert "Traceback" not in stopped.stdout + stopped.stderr
    assert "interrupted" in stopped.stderr and len(stopped.stderr.strip().splitlines()) == 1, stopped.stderr
    (info,) = sessions(path)
    assert info["status"] == "interrupted" and session_state(info) == "interrupted"
    assert info["runs_written"] == len(load_runs(path)) >= 16
    assert not list((path / "claims").iterdir())
    done = resume(path)
    assert done.returncode == 0, done.stderr
    assert_complete(path, slow_reference, n, raw_run_ids)
