"""Run a sweep: plan what is left to train, train it in memory-bounded chunks, record each chunk.

    grid = Grid.from_mapping({...})
    summary = run_sweep(grid, SweepOptions(dir="runs/my_sweep"))

Planning expands the grid once, keeping for each pending trajectory only its index and which of its
``max_steps`` runs are not yet recorded (so memory stays flat in the number of runs). Runs already in the store
(same ``run_id``) and runs of other shards are skipped. Each chunk trains as one ``train_batch`` call and is
committed atomically to the store; an interrupted sweep loses at most the chunk in flight, and re-running the
same command trains only what is missing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from xorlab.config import TrainConfig
from xorlab.engine import train_batch
from xorlab.grid import Grid, shard_of
from xorlab.options import SweepOptions
from xorlab.records import curves_frame, run_id, runs_frame
from xorlab.store import StoreWriter, check_writable, recorded_ids

MAX_CELLS = 4_000_000  # cap on lanes x logged steps per chunk: ~32 MB per copy of the loss matrix


@dataclass(frozen=True)
class Plan:
    """What a sweep still has to train in this shard."""

    grid: Grid
    trajectories: np.ndarray  # (T,) pending trajectory indices
    needed: np.ndarray  # (T, len(grid.max_steps)) bool: run not yet recorded
    in_shard: int  # runs of the grid in this shard
    recorded: int  # of those, already in the store

    @property
    def pending(self) -> int:
        return int(self.needed.sum())


@dataclass(frozen=True)
class SweepSummary:
    grid_runs: int
    shard_runs: int
    already_recorded: int
    trained: int
    seconds: float


def plan(grid: Grid, opts: SweepOptions) -> Plan:
    """Expand the grid once; keep the trajectories of this shard that have unrecorded runs."""
    done = recorded_ids(opts.dir)
    seen: set[str] = set()
    pending: list[int] = []
    needed: list[list[bool]] = []
    in_shard = recorded = 0
    for index, runs in enumerate(grid.trajectories()):
        if opts.num_shards > 1 and shard_of(runs[0], opts.num_shards) != opts.shard:
            continue
        ids = [run_id(c) for c in runs]
        fresh = [i not in seen for i in ids]  # equal configs written two ways count once
        seen.update(ids)
        in_shard += sum(fresh)
        todo = [f and i not in done for f, i in zip(fresh, ids, strict=True)]
        recorded += sum(f and i in done for f, i in zip(fresh, ids, strict=True))
        if any(todo):
            pending.append(index)
            needed.append(todo)
    width = len(grid.max_steps)
    return Plan(
        grid=grid,
        trajectories=np.array(pending, dtype=np.int64),
        needed=np.array(needed, dtype=bool).reshape(-1, width),
        in_shard=in_shard,
        recorded=recorded,
    )


def chunks(p: Plan, chunk_size: int, log_every: int) -> Iterator[list[TrainConfig]]:
    """Pending runs in chunks of about ``chunk_size`` runs (whole trajectories), memory-capped."""
    logged = max(p.grid.max_steps) // log_every + 1
    max_lanes = max(1, MAX_CELLS // logged)
    chunk: list[TrainConfig] = []
    lanes = 0
    for index, todo in zip(p.trajectories, p.needed, strict=True):
        runs = [c for c, t in zip(p.grid.trajectory(int(index)), todo, strict=True) if t]
        if chunk and (len(chunk) + len(runs) > chunk_size or lanes + 1 > max_lanes):
            yield chunk
            chunk, lanes = [], 0
        chunk.extend(runs)
        lanes += 1
    if chunk:
        yield chunk


def run_sweep(grid: Grid, opts: SweepOptions, config: dict | None = None) -> SweepSummary:
    """Train every unrecorded run of ``grid`` in this shard into the store at ``opts.dir``."""
    start = time.perf_counter()
    check_writable(opts.dir, "sweep.dir")
    p = plan(grid, opts)
    meta = {"app": "xorlab-sweep", "shard": opts.shard, "num_shards": opts.num_shards, "grid_runs": len(grid),
            "shard_runs": p.in_shard, "already_recorded": p.recorded}  # fmt: skip
    trained = 0
    with (
        StoreWriter(opts.dir, config=config, meta=meta) as store,
        tqdm(total=p.pending, unit="run", disable=not opts.progress, desc="xorlab-sweep", smoothing=0.1) as bar,
    ):
        for configs in chunks(p, opts.chunk_size, opts.log_every):
            batch = train_batch(configs, log_every=opts.log_every, engine=opts.engine)
            ids = [run_id(c) for c in configs]
            store.write(runs_frame(batch, ids), curves_frame(batch, ids))
            trained += len(configs)
            bar.update(len(configs))
    return SweepSummary(len(grid), p.in_shard, p.recorded, trained, time.perf_counter() - start)
