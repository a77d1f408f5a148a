"""Run a sweep: plan what is left to train, claim it, train it in memory-bounded chunks, record each chunk.

    grid = Grid.from_mapping({...})
    summary = run_sweep(grid, SweepOptions(dir="runs/my_sweep"))

Planning goes through the grid once, a block of trajectories at a time, keeping for each pending trajectory
only its index, its claim bucket and which of its ``max_steps`` runs are not yet recorded (so memory stays flat
in the number of runs); run ids, shards and duplicates are computed in bulk (``xorlab.sweep.keys``), and no
config object is built per run: a chunk is a ``RunTable`` of columns. Runs already in the store (same
``run_id``) and runs of other shards are skipped. Work is claimed bucket by bucket (``xorlab.store.claims``), so
concurrent writers of one store train each run about once. Each chunk trains as one ``train_batch`` call and is
committed atomically to the store by a background thread while the next chunk trains (``xorlab.sweep.committer``); an
exception, Ctrl-C or SIGTERM loses at most the chunk training, ``kill -9`` at most that one and the one being
written, and re-running the same command trains only what is missing. With the compiled engine the kernel
trains chunk k while chunk k+1 is prepared and chunk k-1 written (``xorlab.engine.pipeline``). Limits that would fail
only after writing are checked by ``Grid.from_mapping``, and init files edited mid-sweep here, so that bad input
stops with one line and nothing half-written.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import random
import sys
import time
from collections import defaultdict, deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from xorlab.core.config import ConfigError
from xorlab.core.runtable import RunTable
from xorlab.engine.batch import simulator
from xorlab.engine.pipeline import train_batches
from xorlab.engine.results import BatchResult
from xorlab.store.claims import N_BUCKETS, Claims, claim_file, claim_holder, read_claim
from xorlab.store.files import check_writable, file_sha256, oserror_text
from xorlab.store.format import HEARTBEAT_TIMEOUT, SAFE, StoreError
from xorlab.store.index import RecordedIndex, recorded_ids
from xorlab.store.liveness import Observer, clock_ahead, silent_for
from xorlab.store.records import curves_frame, runs_frame
from xorlab.store.signals import stop_on_signals
from xorlab.store.writer import StoreWriter
from xorlab.sweep.committer import Committer
from xorlab.sweep.extend import Extensions, IdsAt
from xorlab.sweep.grid import Grid
from xorlab.sweep.keys import GridKeys
from xorlab.sweep.options import SweepOptions

MAX_CELLS = 4_000_000  # cap on lanes x logged steps per chunk: ~32 MB per copy of the loss matrix
Frames = tuple[pd.DataFrame, pd.DataFrame]  # a chunk's run table and curve table
WAIT_POLL = 0.5  # seconds between looks at buckets other live writers hold, once nothing else is left


PLAN_BLOCK = 1 << 16  # trajectories planned at a time: planning memory stays flat in the grid size


@dataclass(frozen=True)
class Plan:
    """What a sweep still has to train in this shard."""

    grid: Grid
    trajectories: np.ndarray  # (T,) pending trajectory indices
    needed: np.ndarray  # (T, len(grid.max_steps)) bool: run not yet recorded
    in_shard: int  # runs of the grid in this shard
    recorded: int  # of those, already in the store
    buckets: np.ndarray  # (T,) claim bucket of each pending trajectory (xorlab.store.claims)
    keys: GridKeys  # run ids of the grid in bulk

    @property
    def pending(self) -> int:
        return int(self.needed.sum())

    def table(self, rows: np.ndarray, needed: np.ndarray | None = None) -> tuple[RunTable, np.ndarray]:
        """(runs, their run ids) of pending trajectories ``rows``: the runs ``needed`` (default: the plan's)."""
        traj = self.trajectories[rows]
        needed = self.needed[rows] if needed is None else needed
        table = self.grid.table(traj, needed)
        ids = self.keys.run_ids(traj)[needed]
        return table, ids

    def ids_at(self, rows: np.ndarray, needed: np.ndarray, budgets: Sequence[int]) -> np.ndarray:
        """(runs, len(budgets)): the ``run_id`` each run of ``table(rows, needed)`` has at each of ``budgets``."""
        return self.keys.run_ids_at(self.trajectories[rows], budgets)[np.nonzero(needed)[0]]


@dataclass(frozen=True)
class SweepSummary:
    grid_runs: int
    shard_runs: int
    already_recorded: int
    trained: int
    seconds: float
    recorded_by_others: int = 0  # pending at planning, then recorded by a concurrent writer of the store
    continued: int = 0  # of the trained runs, continued from a recorded shorter run (xorlab.sweep.extend)
    engine_seconds: float = 0.0  # of ``seconds``, inside the engine's simulation (the rest is overhead)


def plan(grid: Grid, opts: SweepOptions, done: set[str] | None = None) -> Plan:
    """Go through the grid once, a block of trajectories at a time, keeping the trajectories of this shard that
    have unrecorded runs (run ids, shards and duplicates in bulk: ``xorlab.sweep.keys``).

    ``done`` is the set of recorded run ids (default: read from the store at ``opts.dir``).
    """
    done = recorded_ids(opts.dir) if done is None else done
    keys = GridKeys(grid)
    pending: list[np.ndarray] = []
    buckets: list[np.ndarray] = []
    needed: list[np.ndarray] = []
    in_shard = recorded = 0
    for lo in range(0, grid.n_trajectories, PLAN_BLOCK):
        traj = np.arange(lo, min(lo + PLAN_BLOCK, grid.n_trajectories), dtype=np.int64)
        hashes = keys.hashes(traj)
        if opts.num_shards > 1:
            mine = hashes % opts.num_shards == opts.shard
            traj, hashes = traj[mine], hashes[mine]
        fresh = ~keys.duplicates(traj)  # equal configs written two ways count once
        todo = fresh
        if done:
            ids = keys.run_ids(traj)
            seen = np.fromiter((i in done for i in ids.reshape(-1)), dtype=bool, count=ids.size).reshape(ids.shape)
            todo = fresh & ~seen
            recorded += int((fresh & seen).sum())
        in_shard += int(fresh.sum())
        rows = todo.any(axis=1)
        pending.append(traj[rows])
        buckets.append(hashes[rows] % N_BUCKETS)
        needed.append(todo[rows])
    width = len(grid.max_steps)
    return Plan(
        grid=grid,
        trajectories=np.concatenate(pending) if pending else np.zeros(0, dtype=np.int64),
        needed=np.concatenate(needed) if needed else np.zeros((0, width), dtype=bool),
        in_shard=in_shard,
        recorded=recorded,
        buckets=np.concatenate(buckets) if buckets else np.zeros(0, dtype=np.int64),
        keys=keys,
    )


def _max_lanes(p: Plan, log_every: int) -> int:
    logged = max(p.grid.max_steps) // log_every + 1
    return max(1, MAX_CELLS // logged)


def chunk_length(counts: Iterable[int], chunk_size: int, max_lanes: int) -> int:
    """How many of the next trajectories (``counts``: their pending runs, in order) form one chunk: whole
    trajectories, at most ``chunk_size`` runs (but always at least one trajectory) and ``max_lanes`` lanes. The
    one chunking rule, for ``chunks`` and for a sweep's claimed work alike."""
    runs = taken = 0
    for n in counts:
        if taken and (runs + n > chunk_size or taken + 1 > max_lanes):
            break
        runs += n
        taken += 1
    return taken


def chunks(p: Plan, chunk_size: int, log_every: int) -> Iterator[RunTable]:
    """Pending runs in chunks of about ``chunk_size`` runs (whole trajectories), memory-capped."""
    max_lanes = _max_lanes(p, log_every)
    counts = p.needed.sum(axis=1).tolist()
    start = 0
    while start < len(counts):
        end = start + chunk_length(itertools.islice(counts, start, None), chunk_size, max_lanes)
        yield p.table(np.arange(start, end))[0]
        start = end


class _ClaimedWork:
    """Pending runs of a plan, handed out in chunks of claimed buckets only.

    Buckets are visited from a random starting point (so concurrent writers start apart); a bucket a live
    writer holds is retried later; once only such buckets are left, the writer waits for them, so that when a
    sweep returns its grid (shard) is completely recorded. After each claim the runs files committed by others
    since planning are read and their runs dropped.
    """

    def __init__(
        self,
        p: Plan,
        claims: Claims,
        index: RecordedIndex,
        own_files: set[str],
        opts: SweepOptions,
        sleep: Callable[[float], Any] | None = None,
        notify: Callable[[str], Any] | None = None,
    ) -> None:
        self.p, self.claims, self.index, self.own_files, self.opts = p, claims, index, own_files, opts
        self.sleep = sleep or time.sleep
        self.notify = notify or (lambda line: print(line, file=sys.stderr, flush=True))
        self._waiting_for: tuple[str, ...] = ()  # the writers the last wait line named
        self.needed = p.needed.copy()  # less what other writers record meanwhile
        self.counts = self.needed.sum(axis=1)
        self.rows: dict[int, list[int]] = defaultdict(list)
        for row, bucket in enumerate(p.buckets):
            self.rows[int(bucket)].append(row)
        order = sorted(self.rows)
        shift = random.randrange(len(order)) if order else 0
        self.queue = deque(order[shift:] + order[:shift])
        self.others: set[str] = set()  # ids recorded by other writers since planning
        self.by_others = 0

    def _left(self, rows: list[int]) -> list[int]:
        """``rows`` less the runs other writers recorded since planning; the rows with runs left."""
        if self.others:
            at = np.array(rows)
            ids = self.p.keys.run_ids(self.p.trajectories[at])
            others = self.others
            hit = np.fromiter((i in others for i in ids.reshape(-1)), dtype=bool, count=ids.size).reshape(ids.shape)
            hit &= self.needed[at]
            if hit.any():
                self.by_others += int(hit.sum())
                self.needed[at] &= ~hit
                self.counts[at] = self.needed[at].sum(axis=1)
        return [r for r in rows if self.counts[r]]

    def _say_whom(self) -> None:
        """One line when the writers this sweep waits for change: who holds the buckets left, since when, and how
        long they have been silent (their work is taken over once a writer is silent for the timeout)."""
        holders: dict[str, list[Any]] = {}
        for bucket in self.queue:
            info = read_claim(claim_file(self.claims.store, bucket))
            session = claim_holder(self.claims.store, info, claim_file(self.claims.store, bucket)) if info else None
            if session is not None:
                holders.setdefault(str(session.get("session")), [session, 0])[1] += 1
        who = tuple(sorted(holders))
        if not who or who == self._waiting_for:
            return
        self._waiting_for = who
        since = time.strftime("%H:%M:%S", time.gmtime())
        parts = []
        observer = self.claims.observer or Observer()
        for name in who:
            session, n = holders[name]
            silent = silent_for(session, observer)
            heard = "proven dead" if silent == float("inf") else f"heard from {silent:.0f} s ago"
            if ahead := clock_ahead(session):
                heard += f", its heartbeat {ahead:,.0f} s ahead of this clock"
            parts.append(
                f"{n} bucket{'s' * (n != 1)} claimed by session {name} (host {session.get('host')}, pid "
                f"{session.get('pid')}, {heard})"
            )
        self.notify(
            f"xorlab-sweep: waiting since {since} UTC for {'; '.join(parts)}; work whose writer is silent "
            f"for {HEARTBEAT_TIMEOUT:.0f} s is taken over"
        )

    def __iter__(self) -> Iterator[tuple[RunTable, np.ndarray, list[int], IdsAt] | None]:
        """Yield (runs of one chunk, their run ids, buckets whose last runs are in it: release them after the
        commit, their run ids at other budgets: ``Plan.ids_at``), or None before waiting for buckets other
        writers hold: then finish and commit what is in flight, releasing its claims, or two writers could wait
        for each other."""
        size, max_lanes = self.opts.chunk_size, _max_lanes(self.p, self.opts.log_every)
        buffer: deque[tuple[int, int]] = deque()  # (bucket, row)
        left: dict[int, int] = {}
        buffered = 0
        while self.queue or buffer:
            claimed, tried, dropped = [], 0, 0
            self.others |= self.index.refresh(skip=self.own_files)
            while self.queue and buffered < size and tried < len(self.queue):
                bucket = self.queue.popleft()
                if self.others and not self._left(self.rows[bucket]):  # others recorded all of it: nothing to do
                    dropped += 1
                    continue
                if self.claims.try_claim(bucket):
                    claimed.append(bucket)
                    buffered += int(self.counts[self.rows[bucket]].sum())
                else:
                    self.queue.append(bucket)
                    tried += 1
            if claimed:
                self.others |= self.index.refresh(skip=self.own_files)
                for bucket in claimed:
                    rows = self._left(self.rows[bucket])
                    if not rows:
                        self.claims.release([bucket])
                        continue
                    buffer.extend((bucket, r) for r in rows)
                    left[bucket] = len(rows)
                buffered = int(sum(self.counts[r] for _, r in buffer))
            if not buffer:
                if self.queue and not claimed and not dropped:  # all that is left is held by live writers: wait
                    self._say_whom()
                    yield None  # for them, once the consumer has committed what it has in flight (they may be
                    self.sleep(WAIT_POLL)  # waiting for our claims)
                continue
            take = chunk_length((int(self.counts[row]) for _, row in buffer), size, max_lanes)
            picked: list[int] = []
            done: list[int] = []
            for _ in range(take):
                bucket, row = buffer.popleft()
                picked.append(row)
                left[bucket] -= 1
                if not left[bucket]:
                    done.append(bucket)
            at = np.array(picked)
            buffered -= int(self.counts[at].sum())
            table, ids = self.p.table(at, self.needed[at])
            yield table, ids, done, functools.partial(self.p.ids_at, at, self.needed[at])


class InitFiles:
    """The init files of a grid's ``from_file`` runs and the sha256 they had when the sweep started.

    A run's result depends on its file's content: the rows record it (``init_file_sha256``), and ``verify``
    (before and after each chunk) stops the sweep if a file changed meanwhile, so no chunk mixes contents.
    """

    def __init__(self, grid: Grid) -> None:
        self.hashes: dict[str, str] = {}
        for name, params in grid.axes["init"]:
            path = dict(params).get("path")
            if name == "from_file" and path is not None and path not in self.hashes:
                self.hashes[path] = self._hash(path)

    @staticmethod
    def _hash(path: str) -> str:
        try:
            return file_sha256(path)
        except OSError as exc:
            raise ConfigError("grid.init.path", f"{path}: cannot read ({exc.strerror or exc})") from None

    def verify(self) -> None:
        for path, sha in self.hashes.items():
            now = self._hash(path)
            if now != sha:
                raise StoreError(
                    f"grid.init.path: {path} changed during the sweep (sha256 {sha[:12]}… -> {now[:12]}…); {SAFE}, "
                    "each run recorded with the file content it started from (init_file_sha256); "
                    "re-run to train the new content as new runs"
                )


def grid_record(grid: Grid) -> dict[str, list[Any]]:
    """The grid as JSON (axis -> list of values; init entries as a name or ``{name, param: value}``)."""
    out: dict[str, list[Any]] = {}
    for field, values in grid.axes.items():
        if field == "init":
            out[field] = [name if not params else {"name": name, **dict(params)} for name, params in values]
        else:
            out[field] = [v.item() if isinstance(v, np.generic) else v for v in values]
    out["max_steps"] = list(grid.max_steps)
    return out


def _trained(
    work: _ClaimedWork, files: InitFiles, extend: Extensions | None, opts: SweepOptions
) -> Generator[Any, None, None]:
    """Train the work's chunks: ``((ids, done), batch, None)`` per chunk, or ``((ids, done), None, frames)`` when
    continuing recorded runs; ``None`` where the work waits. Init files are checked before each chunk."""

    def checked() -> Iterator[Any]:
        for item in work:
            if item is None:
                yield None
                continue
            files.verify()
            table, ids, done, ids_at = item
            yield table, (ids, done, ids_at)

    if extend is None:  # the compiled kernel trains chunk k while chunk k+1 is prepared (xorlab.engine.pipeline)
        for item in train_batches(checked(), log_every=opts.log_every, engine=opts.engine):
            yield None if item is None else (item[0][:2], item[1], None)
        return
    for item in checked():
        if item is None:
            yield None
            continue
        configs, (ids, done, ids_at) = item
        yield (ids, done), None, extend.train(configs, ids, ids_at)


def _frames(batch: BatchResult | None, ids: np.ndarray, ready: Callable[[], Frames] | None = None) -> Frames:
    """The run and curve tables of a chunk (built by ``ready`` if it came continued: ``Extensions.train``)."""
    if ready is not None:
        return ready()
    assert batch is not None, "a chunk comes either trained or as tables"
    return runs_frame(batch, ids), curves_frame(batch, ids)


def _notice(line: str) -> None:
    """A line on stderr that does not tear the progress bar."""
    tqdm.write(line if line.startswith("xorlab-sweep") else f"xorlab-sweep: {line}", file=sys.stderr)


def run_sweep(
    grid: Grid, opts: SweepOptions, config: dict | None = None, watch_parent: bool | None = None
) -> SweepSummary:
    """Train every unrecorded run of ``grid`` in this shard into the store at ``opts.dir``.

    Checks limits and the store folder before writing anything; SIGINT/SIGTERM stop it cleanly (raising
    ``xorlab.store.signals.StopRequested``, a ``KeyboardInterrupt``) with the session marked ``interrupted``.
    ``watch_parent`` stops it when the parent process dies (default: in pool workers only).
    """
    start = time.perf_counter()
    path = check_writable(opts.dir, "sweep.dir")
    files = InitFiles(grid)
    index = RecordedIndex(path)
    index.refresh()
    p = plan(grid, opts, done=index.ids)
    meta = {
        "app": "xorlab-sweep",
        "shard": opts.shard,
        "num_shards": opts.num_shards,
        "grid_runs": len(grid),
        "shard_runs": p.in_shard,
        "already_recorded": p.recorded,
        "planned_runs": len(grid),
        "grid": grid_record(grid),
    }
    trained, engine_seconds = 0, 0.0
    # Runs whose trajectory is recorded at a shorter budget continue from that record (xorlab.sweep.extend).
    longest = max(grid.max_steps)
    extend = Extensions(path, index.ids, opts.engine, opts.log_every, longest) if index.ids and p.pending else None
    if extend is not None and not extend.can_continue(longest):
        extend = None  # e.g. resuming the same grid: train from scratch, tables built while the next chunk trains
    # The engine is chosen (and the compiled one loaded, or recompiled from a broken cache) before the session is
    # recorded: a setting it cannot run with stops here with one line, leaving no session behind.
    simulator(opts.engine)
    try:
        with (
            stop_on_signals(watch_parent) as stopper,
            StoreWriter(path, config=config, meta=meta) as store,
            Claims(path, store.session, Observer(), _notice) as claims,
            tqdm(total=p.pending, unit="run", disable=not opts.progress, desc="xorlab-sweep", smoothing=0.1) as bar,
            Committer(store, claims, stopper, files.hashes) as committer,
        ):
            work = _ClaimedWork(p, claims, index, store.written_files, opts, notify=_notice)
            with contextlib.closing(_trained(work, files, extend, opts)) as chunks:  # closing waits for the kernel
                for item in chunks:
                    if item is None:  # the work waits for other writers: release our claims first
                        committer.wait()
                        continue
                    (ids, done), batch, ready = item
                    files.verify()
                    engine_seconds += batch.engine_seconds if batch is not None else 0.0
                    committer.submit(functools.partial(_frames, batch, ids, ready), done)  # while the next trains
                    trained += len(ids)
                    bar.update(len(ids))
            committer.wait()
            continued = extend.continued if extend is not None else 0
            engine_seconds += extend.engine_seconds if extend is not None else 0.0
            store.update(
                trained=trained,
                continued=continued,
                recorded_by_others=work.by_others,
                claims_taken_over=claims.taken_over,
                engine_seconds=round(engine_seconds, 3),
            )
    except OSError as exc:  # anything the writer did not already turn into a StoreError: no traceback
        raise StoreError(f"{path}: {oserror_text(exc)}; {SAFE}; fix the cause and re-run the same command") from None
    return SweepSummary(
        len(grid),
        p.in_shard,
        p.recorded,
        trained,
        time.perf_counter() - start,
        work.by_others,
        continued,
        engine_seconds,
    )
