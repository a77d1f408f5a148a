"""Fixtures shared by the store, runner, app and recovery tests.

- ``cli``: run ``xorlab-train`` / ``xorlab-sweep`` in a subprocess (``python -m`` or the console script).
- ``forked_cli``: the same, in a process forked from this one (imports already done: ~20x faster); for the
  long tables of bad inputs. ``tests/apps/test_cli.py`` checks it reports what ``cli`` reports.
- ``same_run``: assert that a stored record (run row + curve) equals an ``xorlab.train`` result bit for bit.
- ``raw_run_ids``: every ``run_id`` in a store's committed runs files, duplicates included (``load_runs``
  drops duplicates, so "exactly one record per run" must be checked below it).
"""

from __future__ import annotations

import importlib
import logging
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from xorlab.engine.results import TrainResult
from xorlab.store.records import params_of

BIN = Path(sys.executable).parent


def run_cli(
    app: str, *args: object, cwd: Path, script: bool = False, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run ``app`` (``xorlab-train`` or ``xorlab-sweep``) with ``args`` in ``cwd``; capture text output."""
    cmd = [str(BIN / app)] if script else [sys.executable, "-m", "xorlab.apps." + app.removeprefix("xorlab-")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYDRA_")}
    return subprocess.run([*cmd, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def run_forked(app: str, *args: object, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """``run_cli`` in a child forked from this process: the app's ``main()`` runs with ``sys.argv``, working
    directory, environment (no ``HYDRA_*``), stdout/stderr file descriptors and exit status of its own, as in a
    fresh process, without paying Python's, numpy's and Hydra's imports again. For inputs that fail before
    training (the compiled engine's threads do not survive a fork)."""
    module = importlib.import_module("xorlab.apps." + app.removeprefix("xorlab-"))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            code = 1
            try:
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - the child exits through os._exit
                sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
                logging.root.handlers.clear()  # pytest's capture handler: a fresh process has none
                warnings.resetwarnings()
                for key in [k for k in os.environ if k.startswith("HYDRA_")]:
                    del os.environ[key]
                from hydra.core.global_hydra import GlobalHydra

                GlobalHydra.instance().clear()
                os.chdir(cwd)
                sys.argv = [app, *map(str, args)]
                module.main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        deadline = time.monotonic() + timeout
        while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise subprocess.TimeoutExpired([app, *map(str, args)], timeout)
            select.select([], [], [], 0.01)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(
            [app, *map(str, args)], os.waitstatus_to_exitcode(done[1]), out.read().decode(), err.read().decode()
        )


def one_line_error(out: subprocess.CompletedProcess, app: str, field: str) -> str:
    """Assert a CLI failed the promised way (non-zero exit, no traceback, nothing on stdout, exactly one stderr
    line ``<app>: error: <field>: …``) and return that line."""
    assert out.returncode != 0
    assert "Traceback" not in out.stdout + out.stderr
    assert out.stdout == ""
    (line,) = out.stderr.splitlines()
    assert line.startswith(f"{app}: error: {field}: "), line
    return line


def bits(values: object) -> np.ndarray:
    """float64 values as their bit patterns, so NaN/inf/-0.0 compare exactly."""
    return np.ascontiguousarray(values, dtype=np.float64).reshape(-1).view(np.uint64)


def assert_same_run(row: pd.Series, res: TrainResult, curve: pd.DataFrame | None = None, every: int = 1) -> None:
    """A stored run (row of ``load_runs``, its ``load_curves`` rows) equals ``res`` bit for bit.

    ``every`` is the logging interval the record was written with: the curve must hold the losses at steps
    0, every, 2·every, … < max_steps, then ``step = max_steps`` with the final loss.
    """
    cfg = res.config
    for key, value in cfg.canonical().items():
        if value is None:
            assert pd.isna(row[key]), (key, row[key])
        else:
            assert row[key] == value, (key, row[key], value)
    assert row["status"] == res.status
    for key in ("steps_to_solve", "diverged_step"):
        expected = getattr(res, key)
        assert pd.isna(row[key]) if expected is None else row[key] == expected, (key, row[key], expected)
    assert pd.isna(row["plateau"]) if res.plateau is None else row["plateau"] == res.plateau, row["plateau"]
    assert (bits(row["final_loss"]) == bits(res.final_loss)).all()
    assert (bits(row[["pred_00", "pred_01", "pred_10", "pred_11"]]) == bits(res.predictions)).all()
    stored = params_of(row)
    for name, value in res.params.items():
        assert (bits(stored[name]) == bits(value)).all(), name
    if curve is not None:
        curve = curve.sort_values("step")
        steps = np.arange(0, cfg.max_steps, every)
        np.testing.assert_array_equal(curve["step"].to_numpy(), np.append(steps, cfg.max_steps))
        assert (bits(curve["loss"]) == bits(np.append(res.losses[steps], res.final_loss))).all()


def committed_run_ids(store: Path) -> list[str]:
    ids: list[str] = []
    for f in sorted((Path(store) / "runs").glob("*.parquet")):
        if not f.name.startswith("."):
            ids += pq.read_table(f, columns=["run_id"]).column("run_id").to_pylist()
    return ids


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess]:
    return run_cli


@pytest.fixture
def forked_cli() -> Callable[..., subprocess.CompletedProcess]:
    return run_forked


@pytest.fixture
def same_run() -> Callable[..., None]:
    return assert_same_run


@pytest.fixture
def raw_run_ids() -> Callable[[Path], list[str]]:
    return committed_run_ids
