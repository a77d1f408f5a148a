"""Loss-curve bands read out of core: the median loss per group and logged step with its exact 95 % interval,
computed from the store's curves files one at a time instead of a frame of every curve row.

One pass reads each committed curves file (the run ids as dictionary codes, the steps, the losses), keeps the rows
of the runs asked for, and appends each cell's rows -- a cell being one combination of every grouping's values --
as a dense (logged steps x runs) block to one temporary spill file; which rows to keep is decided in file order,
the scattering into blocks runs on worker threads a few files ahead. Then, per group, the blocks of its cells are
read back a slab of steps at a time (a slab of a block is one contiguous range of the file, read in place) and the
order statistics are *selected* per step (``np.partition``, linear time, the very values sorting would put
there), so memory holds one group's slab (at most ``SLAB_BYTES``) and never the whole curve table. The numbers
equal ``stats.curve_bands`` on the loaded frame: the same thinned steps, the same order statistics.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import stats as sps

SLAB_BYTES = 128 * 2**20  # one group's (steps x runs) slab selected from at a time
AHEAD = 2  # curves files scattered at once (on worker threads) beyond the one being looked up


@dataclass
class _Block:
    cell: int
    offset: int
    rows: int  # runs: the block's columns on disk
    steps: np.ndarray  # the file's logged steps (sorted): the block's rows on disk
    order: int = 0  # the curves file it came from (blocks are read in file order)


class _Spill:
    """Blocks of (steps x runs) float64 in one temporary file, each step's values contiguous, so a slab of steps
    is one contiguous range of a block: one ``preadv`` into the matrix it is selected in (no mapping, which would
    count as resident memory)."""

    def __init__(self, file: Any) -> None:
        self.file = file
        self.blocks: list[_Block] = []
        self.size = 0
        self.lock = threading.Lock()

    def append(self, cell: int, by_step: np.ndarray, steps: np.ndarray, order: int = 0) -> None:
        data = np.ascontiguousarray(by_step, dtype=np.float64)
        with self.lock:
            self._named(lambda: self.file.write(data.data.cast("B")))
            self.blocks.append(_Block(cell, self.size, data.shape[1], steps, order))
            self.size += data.nbytes

    def flush(self) -> None:
        self._named(self.file.flush)

    def _named(self, write: Callable[[], object]) -> None:
        """``write()``, its OS error naming the spill (in the temporary folder), not the output the caller writes."""
        try:
            write()
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, self.file.name) from None

    def read_steps(self, block: _Block, first: int, out: np.ndarray) -> None:
        """Fill ``out`` (C-contiguous, steps x ``block.rows``) with the block's steps ``first``, ``first + 1``,
        ...: one contiguous range of the file, read in place."""
        want, offset, view = out.nbytes, block.offset + first * block.rows * 8, out.data.cast("B")
        if hasattr(os, "preadv"):  # POSIX: positioned, so the group threads need no lock
            got = os.preadv(self.file.fileno(), [view], offset)
        else:  # Windows
            with self.lock:
                self.file.seek(offset)
                got = self.file.readinto(view)
        if got != want:
            raise OSError(f"short read of the bands' spill file: {got} of {want} bytes")


def order_statistics(sorted_cols: np.ndarray, confidence: float) -> tuple[np.ndarray, ...]:
    """Per column of ``sorted_cols`` (ascending, NaN last = no row): n, median, and the order statistics
    (X_(l), X_(n-l+1)), l = ``binom.ppf(α/2, n, ½)`` (at least 1): the median's distribution-free interval."""
    n = (~np.isnan(sorted_cols)).sum(axis=0)
    cols = np.arange(sorted_cols.shape[1])
    ok = n > 0
    n_, c = n[ok], cols[ok]
    rank = np.maximum(sps.binom.ppf((1 - confidence) / 2, n_, 0.5).astype(np.int64), 1)
    v = sorted_cols
    with np.errstate(invalid="ignore"):
        med = (v[(n_ - 1) // 2, c] + v[n_ // 2, c]) / 2
    return ok, n_, med, v[rank - 1, c], v[n_ - rank, c]


def selected_order_statistics(rows: np.ndarray, confidence: float) -> tuple[np.ndarray, ...]:
    """``order_statistics`` of each *row* of ``rows`` (unsorted; NaN = no value), by selection instead of sorting:
    ``np.partition`` puts the median's two middle values and the interval's two order statistics at their sorted
    positions (NaN last, as ``sort`` does) in linear time, so the numbers are those of sorting, bit for bit.
    Rows with the same count of values share one partition call, in place when that is every row (``rows`` is
    reordered within each row). Returns (ok, n, median, lo, hi) as
    ``order_statistics`` does for the transposed, sorted matrix."""
    n_all = (~np.isnan(rows)).sum(axis=1)
    ok = n_all > 0
    med, lo, hi = (np.full(rows.shape[0], np.nan) for _ in range(3))
    for count in np.unique(n_all[ok]):
        at = np.flatnonzero(n_all == count)
        sub = rows if at.size == rows.shape[0] else rows[at]  # the usual slab: every row one count, in place
        rank = max(int(sps.binom.ppf((1 - confidence) / 2, count, 0.5)), 1)
        mid = ((count - 1) // 2, count // 2)
        sub.partition(sorted({*mid, rank - 1, count - rank}), axis=1)
        with np.errstate(invalid="ignore"):
            med[at] = (sub[:, mid[0]] + sub[:, mid[1]]) / 2
        lo[at], hi[at] = sub[:, rank - 1], sub[:, count - rank]
    return ok, n_all[ok], med[ok], lo[ok], hi[ok]


def _utf8(values: np.ndarray) -> np.ndarray:
    """``values`` as UTF-8 byte strings (whose byte order is the strings' code-point order)."""
    text = values.astype(str)
    try:
        return text.astype(bytes)  # ASCII: a plain cast
    except UnicodeEncodeError:
        return np.char.encode(text, "utf-8")


class _Ids:
    """Positions of run ids in a fixed list: binary search in the ids sorted as bytes (a hash lookup of a million
    Python strings costs more than reading the curves)."""

    def __init__(self, ids: np.ndarray) -> None:
        raw = _utf8(ids)
        self.order = np.argsort(raw, kind="stable")  # a duplicated id: its first position
        self.sorted = raw[self.order]

    def find(self, wanted: np.ndarray) -> np.ndarray:
        """Position in the ids of each of ``wanted`` (-1 where absent)."""
        if not self.sorted.size:
            return np.full(wanted.size, -1, dtype=np.int64)
        raw = _utf8(wanted)
        at = np.minimum(np.searchsorted(self.sorted, raw), self.sorted.size - 1)
        return np.where(self.sorted[at] == raw, self.order[at], -1)


def _cells(runs: pd.DataFrame, columns: Sequence[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Cell code per run (row of ``runs``) and the cells' values (one row per distinct combination)."""
    if not columns:
        return np.zeros(len(runs), dtype=np.int64), pd.DataFrame(index=[0])
    codes, uniques = pd.MultiIndex.from_frame(runs[list(columns)]).factorize()
    cells = uniques.to_frame(index=False)
    cells.columns = list(columns)
    return codes.astype(np.int64), cells


def _scatter(
    spill: _Spill, cell: np.ndarray, run: np.ndarray, step: np.ndarray, loss: np.ndarray, order: int = 0
) -> np.ndarray:
    """Append one file's kept rows to ``spill``: per cell, a dense (the file's steps x its runs) block, NaN where
    a run has no row at a step. Returns the file's distinct steps."""
    if not step.size:
        return np.empty(0, dtype=np.int64)
    regular = _regular(run, step)
    if regular is not None:  # every run logged the same steps: the rows are a (runs x steps) matrix already
        steps, firsts = regular
        matrix = loss.reshape(firsts.size, steps.size)
        run_cell = cell[firsts]
        by_cell = np.argsort(run_cell, kind="stable")
        bounds = np.flatnonzero(np.r_[True, run_cell[by_cell][1:] != run_cell[by_cell][:-1], True])
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            spill.append(int(run_cell[by_cell[a]]), matrix[by_cell[a:b]].T, steps, order)
        return steps
    steps, col = _dense_codes(step)
    together = _runs_together(run)  # then each cell's rows (a stable subset) hold their runs together too
    by_cell = np.argsort(cell, kind="stable")
    cell, run, col, loss = cell[by_cell], run[by_cell], col[by_cell], loss[by_cell]
    bounds = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        row, n_rows = _row_codes(run[a:b], together)
        block = np.full((steps.size, n_rows), np.nan)
        block[col[a:b], row] = loss[a:b]
        spill.append(int(cell[a]), block, steps, order)
    return steps


def _regular(run: np.ndarray, step: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(steps, first row of each run)`` when the rows are run-major and every run has the same strictly
    increasing steps (a curves file of one budget and logging interval), else None."""
    starts = np.flatnonzero(np.r_[True, run[1:] != run[:-1]])
    width = step.size // starts.size
    if width * starts.size != step.size or not (starts == np.arange(starts.size) * width).all():
        return None
    grid = step.reshape(starts.size, width)
    steps = grid[0]
    if (width > 1 and not (steps[1:] > steps[:-1]).all()) or not (grid == steps).all():
        return None
    if not _runs_together(run):  # a run in two stretches
        return None
    return steps.copy(), starts


def _dense_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)`` of non-negative integers (logged steps), by a lookup table
    in linear time when the largest value is not much more than their number (else by ``np.unique``)."""
    top = int(values.max()) if values.size else 0
    if values.size == 0 or values.min() < 0 or top > 4 * values.size + 1024:
        return np.unique(values, return_inverse=True)
    present = np.zeros(top + 1, dtype=bool)
    present[values] = True
    return np.flatnonzero(present), (np.cumsum(present) - 1)[values]


def _runs_together(run: np.ndarray) -> bool:
    """Whether every run's rows form one stretch of ``run``: a curves file is run-major (``records.curves_frame``)."""
    firsts = np.sort(run[np.r_[True, run[1:] != run[:-1]]])
    return bool((firsts[1:] != firsts[:-1]).all())


def _row_codes(run: np.ndarray, together: bool) -> tuple[np.ndarray, int]:
    """A block row per distinct run of ``run`` and how many there are: with every run's rows ``together``, a row
    number is a count of run changes (rows in order of first appearance); otherwise ``np.unique``'s numbering."""
    if together:
        change = np.r_[True, run[1:] != run[:-1]]
        return np.cumsum(change) - 1, int(change.sum())
    runs, row = np.unique(run, return_inverse=True)
    return row, int(runs.size)


def thin_steps(steps: np.ndarray, max_points: int) -> np.ndarray:
    """At most ``max_points`` of the sorted distinct ``steps``, evenly spaced by index, first and last kept."""
    steps = np.unique(steps)
    if steps.size <= max_points:
        return steps
    return steps[np.unique(np.linspace(0, steps.size - 1, max_points).round().astype(np.int64))]


def _reads(steps: np.ndarray, slab: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """For a block logged at ``steps``: the rows of ``slab`` it has no value at, and its reads as (first matrix
    row, first block step, count): stretches of consecutive block steps landing on consecutive matrix rows."""
    pos = np.searchsorted(steps, slab)
    hit = (pos < steps.size) & (steps[np.minimum(pos, steps.size - 1)] == slab)
    at = np.flatnonzero(hit)
    breaks = np.flatnonzero((np.diff(pos[at]) != 1) | (np.diff(at) != 1)) + 1
    parts = np.split(at, breaks) if at.size else []
    return np.flatnonzero(~hit), [(int(p[0]), int(pos[p[0]]), int(p.size)) for p in parts]


def _group_band(spill: _Spill, blocks: list[_Block], keep: np.ndarray, confidence: float) -> tuple[np.ndarray, ...]:
    """Order statistics of one group over the steps ``keep``, a slab of steps at a time."""
    rows = sum(b.rows for b in blocks)
    per_slab = max(1, SLAB_BYTES // max(1, rows * 8))
    out: list[tuple[np.ndarray, ...]] = []
    for s0 in range(0, keep.size, per_slab):
        slab = keep[s0 : s0 + per_slab]
        matrix = np.empty((slab.size, rows))  # one row per step: each step's values contiguous
        r = 0
        plans: dict[bytes, tuple[np.ndarray, list[tuple[int, int, int]]]] = {}  # blocks mostly share their steps
        for block in blocks:
            key = block.steps.tobytes()
            if key not in plans:
                plans[key] = _reads(block.steps, slab)
            miss, reads = plans[key]
            if miss.size:
                matrix[miss, r : r + block.rows] = np.nan  # the block's runs have no value at these steps
            for i, first, count in reads:
                if count == 1 or block.rows == rows:  # the matrix rows are contiguous: read in place
                    spill.read_steps(block, first, matrix[i : i + count, r : r + block.rows])
                else:
                    buffer = np.empty((count, block.rows))
                    spill.read_steps(block, first, buffer)
                    matrix[i : i + count, r : r + block.rows] = buffer
            r += block.rows
        ok, n, med, lo, hi = selected_order_statistics(matrix, confidence)
        out.append((slab[ok], n, med, lo, hi))
    return tuple(np.concatenate(parts) for parts in zip(*out, strict=True))


def curve_bands(
    tables: Iterable[tuple[str, pa.Table]],
    runs: pd.DataFrame,
    groupings: Mapping[str, Sequence[str]],
    max_points: int = 200,
    confidence: float = 0.95,
    progress: Callable[[], None] | None = None,
) -> dict[str, pd.DataFrame]:
    """Median loss per group and step, with the median's exact interval, for each of ``groupings`` in one pass.

    ``tables`` yields each chunk's curves (``run_id, step, loss``) with the name of its store (``sweep``); runs
    of ``runs`` (``run_id``, ``sweep`` when several stores, and the grouping columns) select and group the rows;
    the first chunk recording a run is the one read (a run recorded twice has one curve). Returns, per grouping
    name, ``by + step, n, loss_median, loss_lo, loss_hi`` sorted by group then step, equal to
    ``xorlab.analysis.stats.curve_bands`` on the loaded frames.
    """
    columns = list(dict.fromkeys(c for by in groupings.values() for c in by))
    cell_of_run, cells = _cells(runs, columns)
    sweeps = runs["sweep"].astype(str).to_numpy() if "sweep" in runs.columns else None
    index: dict[str, tuple[_Ids, np.ndarray]] = {}
    for name in np.unique(sweeps) if sweeps is not None else [None]:
        rows = np.flatnonzero(sweeps == name) if sweeps is not None else np.arange(len(runs))
        index[str(name)] = (_Ids(runs["run_id"].astype(str).to_numpy()[rows]), rows)
    seen = np.zeros(len(runs), dtype=bool)
    all_steps: set[int] = set()
    with tempfile.NamedTemporaryFile(prefix="xorlab-bands-", suffix=".f64") as handle:
        spill = _Spill(handle)

        def scatter(table: pa.Table, run: np.ndarray, order: int) -> np.ndarray:
            step, loss = table.column("step").to_numpy(), table.column("loss").to_numpy()
            if not (run >= 0).all():
                keep = run >= 0
                run, step, loss = run[keep], step[keep], loss[keep]
            if not np.isfinite(loss).all():
                loss = np.where(np.isfinite(loss), loss, np.inf)  # a diverged run counts as the worst loss
            return _scatter(spill, cell_of_run[run], run, step, loss, order)

        def done(future: Future) -> None:
            all_steps.update(future.result().tolist())
            if progress is not None:
                progress()

        # Which rows of a file to read is decided in file order (the first chunk recording a run wins); the
        # scatter of those rows into the spill runs on worker threads (numpy outside the GIL), a few files ahead.
        pending: deque[Future] = deque()
        with ThreadPoolExecutor(max_workers=min(AHEAD, os.cpu_count() or 1)) as pool:
            for order, (sweep, table) in enumerate(tables):
                found = index.get(str(sweep) if sweeps is not None else "None")
                if found is None or not len(table):
                    continue
                ids, rows = found
                rid = table.column("run_id").combine_chunks()
                if not isinstance(rid.type, pa.DictionaryType):
                    rid = rid.dictionary_encode()
                where = ids.find(rid.dictionary.to_numpy(zero_copy_only=False))
                glob = np.where(where >= 0, rows[np.maximum(where, 0)], -1)
                first = glob >= 0
                first[first] = ~seen[glob[first]]  # a run already read from an earlier chunk is not read again
                seen[glob[first]] = True
                run = np.where(first, glob, -1)[rid.indices.to_numpy(zero_copy_only=False)]
                pending.append(pool.submit(scatter, table, run, order))
                while len(pending) > AHEAD:
                    done(pending.popleft())
            while pending:
                done(pending.popleft())
        spill.flush()
        spill.blocks.sort(key=lambda b: (b.order, b.offset))  # as one thread would have written them
        keep_steps = thin_steps(np.fromiter(all_steps, dtype=np.int64, count=len(all_steps)), max_points)
        out = {}
        for gname, by in groupings.items():
            by = list(by)
            if by:
                groups = cells[by].drop_duplicates().sort_values(by, kind="stable", ignore_index=True)
            else:
                groups = cells.iloc[:1, :0].reset_index(drop=True)
            code = (
                cells[by].merge(groups.reset_index(names="_g"), on=by, how="left")["_g"].to_numpy()
                if by
                else np.zeros(len(cells), dtype=np.int64)
            )
            members = [[b for b in spill.blocks if code[b.cell] == g] for g in range(len(groups))]
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # numpy sorts release the GIL
                results = list(
                    pool.map(lambda m: _group_band(spill, m, keep_steps, confidence) if m else None, members)
                )
            parts = []
            for g, res in enumerate(results):
                if res is None or not res[0].size:
                    continue
                step, n, med, lo, hi = res
                part = pd.DataFrame(
                    {
                        "step": step.astype(np.int64),
                        "n": n.astype(np.int64),
                        "loss_median": med,
                        "loss_lo": lo,
                        "loss_hi": hi,
                    }
                )
                parts.append((g, part))
            frame = (
                pd.concat([p for _, p in parts], ignore_index=True)
                if parts
                else pd.DataFrame(columns=["step", "n", "loss_median", "loss_lo", "loss_hi"])
            )
            gidx = np.concatenate([np.full(len(p), g) for g, p in parts]) if parts else np.zeros(0, dtype=np.int64)
            keys = groups.iloc[gidx].reset_index(drop=True)
            out[gname] = pd.concat([keys, frame], axis=1)
        return out
