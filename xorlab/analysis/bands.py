"""Loss-curve bands read out of core: the median loss per group and logged step with its exact 95 % interval,
computed from the store's curves files one at a time instead of a frame of every curve row.

One pass reads each committed curves file (the run ids as dictionary codes, the steps, the losses), keeps the rows
of the runs asked for, and appends each cell's rows -- a cell being one combination of every grouping's values --
as a dense (runs x logged steps) block to one temporary spill file. Then, per group, the blocks of its cells are
read back a slab of steps at a time and the order statistics are *selected* per step (``np.partition``, linear
time, the very values sorting would put there), so memory holds one group's slab (at most ``SLAB_BYTES``) and
never the whole curve table. The numbers equal ``stats.curve_bands`` on the loaded frame: the same thinned steps,
the same order statistics.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import stats as sps

SLAB_BYTES = 128 * 2**20  # one group's (runs x steps) slab sorted at a time


@dataclass
class _Block:
    cell: int
    offset: int
    rows: int
    steps: np.ndarray  # the file's logged steps (sorted): the block's columns


@dataclass
class _Spill:
    file: Any  # the open temporary file
    blocks: list[_Block] = field(default_factory=list)
    size: int = 0

    def append(self, cell: int, matrix: np.ndarray, steps: np.ndarray) -> None:
        data = np.ascontiguousarray(matrix, dtype=np.float64)
        self.file.write(data.tobytes())
        self.blocks.append(_Block(cell, self.size, matrix.shape[0], steps))
        self.size += data.nbytes

    def read(self, block: _Block) -> np.ndarray:
        self.file.flush()
        return np.fromfile(
            self.file.name, dtype=np.float64, count=block.rows * block.steps.size, offset=block.offset
        ).reshape(block.rows, block.steps.size)


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


def _cells(runs: pd.DataFrame, columns: Sequence[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Cell code per run (row of ``runs``) and the cells' values (one row per distinct combination)."""
    if not columns:
        return np.zeros(len(runs), dtype=np.int64), pd.DataFrame(index=[0])
    codes, uniques = pd.MultiIndex.from_frame(runs[list(columns)]).factorize()
    cells = uniques.to_frame(index=False)
    cells.columns = list(columns)
    return codes.astype(np.int64), cells


def _scatter(spill: _Spill, cell: np.ndarray, run: np.ndarray, step: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """Append one file's kept rows to ``spill``: per cell, a dense (its runs x the file's steps) block, NaN where
    a run has no row at a step. Returns the file's distinct steps."""
    if not step.size:
        return np.empty(0, dtype=np.int64)
    steps, col = _dense_codes(step)
    together = _runs_together(run)  # then each cell's rows (a stable subset) hold their runs together too
    order = np.argsort(cell, kind="stable")
    cell, run, col, loss = cell[order], run[order], col[order], loss[order]
    bounds = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        row, n_rows = _row_codes(run[a:b], together)
        block = np.full((n_rows, steps.size), np.nan)
        block[row, col[a:b]] = loss[a:b]
        spill.append(int(cell[a]), block, steps)
    return steps


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


def _group_band(spill: _Spill, blocks: list[_Block], keep: np.ndarray, confidence: float) -> tuple[np.ndarray, ...]:
    """Order statistics of one group over the steps ``keep``, a slab of steps at a time."""
    rows = sum(b.rows for b in blocks)
    per_slab = max(1, SLAB_BYTES // max(1, rows * 8))
    out: list[tuple[np.ndarray, ...]] = []
    for s0 in range(0, keep.size, per_slab):
        slab = keep[s0 : s0 + per_slab]
        matrix = np.full((slab.size, rows), np.nan)  # one row per step: each step's values contiguous
        r = 0
        for block in blocks:
            pos = np.searchsorted(block.steps, slab)
            hit = (pos < block.steps.size) & (block.steps[np.minimum(pos, block.steps.size - 1)] == slab)
            if hit.any():
                matrix[hit, r : r + block.rows] = spill.read(block)[:, pos[hit]].T
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
    index: dict[str, tuple[pd.Index, np.ndarray]] = {}
    for name in np.unique(sweeps) if sweeps is not None else [None]:
        rows = np.flatnonzero(sweeps == name) if sweeps is not None else np.arange(len(runs))
        index[str(name)] = (pd.Index(runs["run_id"].astype(str).to_numpy()[rows]), rows)
    seen = np.zeros(len(runs), dtype=bool)
    all_steps: set[int] = set()
    with tempfile.NamedTemporaryFile(prefix="xorlab-bands-", suffix=".f64") as handle:
        spill = _Spill(handle)
        for sweep, table in tables:
            found = index.get(str(sweep) if sweeps is not None else "None")
            if found is None or not len(table):
                continue
            ids, rows = found
            rid = table.column("run_id").combine_chunks()
            if not isinstance(rid.type, pa.DictionaryType):
                rid = rid.dictionary_encode()
            where = ids.get_indexer(rid.dictionary.to_numpy(zero_copy_only=False).astype(str))
            glob = np.where(where >= 0, rows[np.maximum(where, 0)], -1)
            first = glob >= 0
            first[first] = ~seen[glob[first]]  # a run already read from an earlier chunk is not read again
            seen[glob[first]] = True
            run = np.where(first, glob, -1)[rid.indices.to_numpy(zero_copy_only=False)]
            keep = run >= 0
            step = table.column("step").to_numpy()[keep]
            loss = table.column("loss").to_numpy()[keep]
            loss = np.where(np.isfinite(loss), loss, np.inf)  # a diverged run counts as the worst loss
            all_steps.update(_scatter(spill, cell_of_run[run[keep]], run[keep], step, loss).tolist())
            if progress is not None:
                progress()
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
