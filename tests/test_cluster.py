"""A sweep on a real Ray cluster through Hydra's Ray launcher (``xorlab[ray]``, ``make test-cluster``).

The test starts the cluster itself on the loopback address — a head node and a worker node, each ``ray start
--block`` in its own process group — and stops both by their process groups. A sharded sweep through
``hydra/launcher=ray`` (connected to that cluster) writes one store: exactly one record per run, equal bit for
bit to a local sweep. Then the worker node is killed (SIGKILL to its whole group) while a bigger sweep runs;
re-running the same command completes the store, again exactly.

Hydra's Ray launcher 1.2.2 sets ``object_store_memory`` for ``ray.init``, which Ray 2.x refuses when connecting
to an existing cluster; ``+hydra.launcher.ray.init.object_store_memory=null`` keeps Ray's own setting.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psutil
import pytest

from tests.processes import stop_group
from xorlab.store.reader import load_curves, load_runs
from xorlab.sweep.grid import Grid
from xorlab.sweep.runner import SweepOptions, run_sweep

pytestmark = pytest.mark.cluster
BIN = Path(sys.executable).parent
ENV = {**{k: v for k, v in os.environ.items() if not k.startswith(("HYDRA_", "RAY_"))}, "RAY_USAGE_STATS_ENABLED": "0"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _nodes(address: str) -> int:
    out = subprocess.run([BIN / "ray", "status", "--address", address], capture_output=True, text=True, env=ENV)
    active = out.stdout.split("Active:")[-1].split("Pending:")[0]
    return sum(1 for line in active.splitlines() if line.strip().startswith("1 node_"))


def _start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [BIN / "ray", "start", "--block", "--num-cpus=1", *args],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=ENV,
        start_new_session=True,  # its own process group: raylet, GCS and workers are stopped with it
    )


@pytest.fixture
def cluster(tmp_path) -> Iterator[dict]:
    if shutil.which("ray", path=str(BIN)) is None:
        pytest.fail("ray is not installed here: make test-cluster installs xorlab[ray] into .venv-ray")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    temp = Path("/tmp") / f"ray-{port}"  # Ray's socket paths must stay short
    head = _start(
        ["--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}"],
        tmp_path / "head.log",
    )
    worker = None
    try:
        deadline = time.monotonic() + 120
        while _nodes(address) < 1:
            assert head.poll() is None and time.monotonic() < deadline, (tmp_path / "head.log").read_text()[-2000:]
            time.sleep(1)
        worker = _start([f"--address={address}"], tmp_path / "worker.log")
        while _nodes(address) < 2:
            assert worker.poll() is None and time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-2000:]
            time.sleep(1)
        yield {"address": address, "head": head, "worker": worker}
    finally:
        for proc in (worker, head):
            if proc is not None:
                stop_group(proc)
        shutil.rmtree(temp, ignore_errors=True)


def _run_watching(command: list[str], nodes: dict[str, subprocess.Popen]) -> tuple[subprocess.Popen, dict]:
    """Run ``command`` to its end while noting, every 50 ms, the processes each node runs (Ray's task workers
    exit with the job, so where a shard ran is seen while it runs)."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    seen: dict[str, set[int]] = {name: set() for name in nodes}
    while proc.poll() is None:
        for name, node in nodes.items():
            try:
                seen[name] |= {p.pid for p in psutil.Process(node.pid).children(recursive=True)}
            except psutil.Error:
                pass
        time.sleep(0.05)
    return proc, seen


def _sweep(address: str, store: Path, grid: list[str], shards: int, root: Path) -> list[str]:
    return [
        str(BIN / "xorlab-sweep"),
        "-m",
        f"sweep.shard=range(0,{shards})",
        f"sweep.num_shards={shards}",
        "hydra/launcher=ray",
        f"hydra.launcher.ray.init.address={address}",
        "+hydra.launcher.ray.init.object_store_memory=null",
        f"sweep.dir={store}",
        f"hydra.sweep.dir={root / 'multirun'}",
        "sweep.engine=numpy",
        "sweep.progress=false",
        *grid,
    ]


def _assert_exact(store: Path, grid: dict, root: Path) -> None:
    """One record per run, and the records equal a local sweep's bit for bit."""
    reference = root / "reference"
    run_sweep(Grid.from_mapping(grid), SweepOptions(dir=reference, progress=False))
    ids = []
    for f in sorted((store / "runs").glob("*.parquet")):
        ids += pd.read_parquet(f, columns=["run_id"])["run_id"].tolist()
    assert len(ids) == len(set(ids)) == len(Grid.from_mapping(grid))
    for load, key in ((load_runs, ["run_id"]), (load_curves, ["run_id", "step"])):
        got, expected = (
            load(p).drop(columns="sweep").astype({"run_id": str}).sort_values(key, ignore_index=True)
            for p in (store, reference)
        )
        pd.testing.assert_frame_equal(got, expected)


def test_a_sharded_sweep_on_a_ray_cluster_fills_one_store_exactly(cluster, tmp_path):
    grid = {"lr": [0.3, 1.0], "seed": "range(0,60)", "max_steps": [50, 150], "init": ["notebook", "xavier_normal"]}
    args = [
        "grid.lr=[0.3,1.0]",
        "grid.seed=range(0,60)",
        "grid.max_steps=[50,150]",
        "grid.init=[notebook,xavier_normal]",
    ]
    store = tmp_path / "store"
    nodes = {"head": cluster["head"], "worker": cluster["worker"]}
    proc, seen = _run_watching(_sweep(cluster["address"], store, args, 4, tmp_path), nodes)
    assert proc.returncode == 0, proc.stdout.read()[-3000:] if proc.stdout else ""
    writers = {json.loads(f.read_text())["pid"] for f in (store / "sessions").glob("*.json")}
    assert len(list((store / "sessions").glob("*.json"))) == 4  # four writers, one per shard, as Ray tasks
    assert writers <= seen["head"] | seen["worker"], "a shard ran outside the cluster"
    assert writers & seen["worker"], f"no shard ran on the worker node: {writers}, {seen}"
    _assert_exact(store, grid, tmp_path)


def test_killing_the_worker_node_mid_sweep_loses_nothing(cluster, tmp_path):
    grid = {"lr": [0.3, 1.0], "seed": "range(0,3000)", "max_steps": 1500, "init": ["notebook", "xavier_normal"]}
    args = ["grid.lr=[0.3,1.0]", "grid.seed=range(0,3000)", "grid.max_steps=1500", "grid.init=[notebook,xavier_normal]"]
    store = tmp_path / "store"
    command = [*_sweep(cluster["address"], store, args, 6, tmp_path), "sweep.chunk_size=500"]
    sweep = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.monotonic() + 300
    while not list(store.glob("runs/*.parquet")):
        assert time.monotonic() < deadline and sweep.poll() is None, "the sweep ended before any chunk landed"
        time.sleep(0.1)
    os.killpg(cluster["worker"].pid, signal.SIGKILL)  # the worker node dies mid-sweep, every process of it
    first = sweep.wait(timeout=600)  # Ray retries the lost tasks on the head, or the sweep fails: re-run it
    recorded = len(load_runs(store, columns=["lr"]))
    again = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    print(f"\nworker killed: the sweep exited {first} with {recorded} of {len(Grid.from_mapping(grid))} runs recorded")
    _assert_exact(store, grid, tmp_path)
