"""Continue instead of restart: a run whose trajectory is already recorded at a shorter budget is trained only
for the extra steps, from that record's final state.

A run with ``max_steps = m`` and a recorded run of the same trajectory (same config but ``max_steps = m0 < m``)
continues from the recorded final parameters at step ``t0 = m0``, with the recorded first solve carried over
(``engine.simulate(t0=, first_solved0=)``). Its record — outcome, final state, failure mode, curve — is bit for
bit the record training from scratch with the same engine gives: the state at step m0 is all a trajectory
carries, the curve's first m0 steps are copied from the recorded one, and the failure mode's loss tail lies in
the new steps.

A recorded run is used only when that holds: trained by the same engine, not diverged, its curve logged at the
same interval, and at least ``TAIL`` new steps (the failure mode reads the last ``TAIL`` per-step losses).
Otherwise the run is trained from scratch, as before.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.types import union_categoricals

from xorlab.core.config import TrainConfig
from xorlab.core.modes import TAIL
from xorlab.core.runtable import RunTable
from xorlab.engine.batch import prepare, train_batch
from xorlab.engine.results import NO_STEP, BatchResult
from xorlab.store.records import PARAM_COLUMNS, WIDE_PARAMS, curves_frame, run_id, runs_frame, unflatten

#: The recorded columns a continuation reads: which runs qualify, where each one's trajectory stands.
CONTINUE_COLUMNS = ["max_steps", "engine", "diverged_step", "steps_to_solve", *PARAM_COLUMNS, WIDE_PARAMS]


IdsAt = Callable[[Sequence[int]], np.ndarray]  # budgets -> (runs, budgets) run ids at those budgets


class Extensions:
    """Recorded runs of a store that pending runs can continue from (read once, when the sweep starts)."""

    def __init__(self, path: str | Path, recorded_ids: set[str], engine: str, log_every: int, longest: int) -> None:
        """``longest``: the longest ``max_steps`` to train; the store's records are loaded only if one of its
        budgets is short enough to continue from (a resumed grid typically has none)."""
        from xorlab.store.reader import load_runs, recorded_values

        self.path, self.engine, self.log_every = Path(path), engine, log_every
        self.rows = pd.DataFrame()
        if recorded_ids and any(m0 <= longest - TAIL for m0 in recorded_values(path, "max_steps")):
            runs = load_runs(path, columns=CONTINUE_COLUMNS)  # what a continuation reads, not the whole record
            same_engine = runs["engine"].fillna("numpy") == engine
            self.rows = runs[same_engine & runs["diverged_step"].isna()].set_index("run_id")
            self.files, self.file_of = _chunk_files(self.path)
        self._read: dict[int, pa.Table] = {}
        self.budgets = sorted(set(self.rows["max_steps"]), reverse=True) if len(self.rows) else []
        self.continued = 0
        self.engine_seconds = 0.0  # in the simulations

    def can_continue(self, max_steps: int) -> bool:
        """Whether a run of ``max_steps`` or fewer steps could continue from any recorded run."""
        return any(m0 <= max_steps - TAIL for m0 in self.budgets)

    def source(self, cfg: TrainConfig) -> str | None:
        """The run_id of the longest usable recorded run of ``cfg``'s trajectory, if any."""
        for m0 in self.budgets:
            if m0 <= cfg.max_steps - TAIL:
                rid = run_id(replace(cfg, max_steps=int(m0)))
                if rid in self.rows.index:
                    return rid
        return None

    def _sources(self, table: RunTable, ids_at: IdsAt | None = None) -> np.ndarray:
        """Per run, the run_id it continues from, or None: the longest recorded budget that leaves ``TAIL``
        steps to train. ``ids_at(budgets)`` gives every run's id at those budgets in bulk (a sweep's keys);
        without it each candidate config is hashed on its own."""
        out = np.full(len(table), None, dtype=object)
        if not self.budgets:
            return out
        if ids_at is None:
            for i in np.flatnonzero(table.columns["max_steps"] - TAIL >= min(self.budgets)):
                out[i] = self.source(table[int(i)])
            return out
        candidates = ids_at(self.budgets)  # (N, budgets), longest budget first
        room = table.columns["max_steps"] - TAIL
        for b, m0 in enumerate(self.budgets):
            hit = (out == None) & (room >= m0) & (self.rows.index.get_indexer(candidates[:, b]) >= 0)  # noqa: E711
            out[hit] = candidates[hit, b]
        return out

    def train(
        self, configs: Sequence[TrainConfig], ids: Sequence[str], ids_at: IdsAt | None = None
    ) -> Callable[[], tuple[pd.DataFrame, pd.DataFrame]]:
        """Train ``configs`` (a list or a ``RunTable``): continued where a recorded run allows, else from scratch
        (``ids_at``: see ``_sources``). Returns the function that builds their run and curve frames, so a sweep
        builds them on its committer's thread while the next chunk trains."""
        table, names = RunTable.from_configs(configs), np.asarray(ids, dtype=object)
        sources = self._sources(table, ids_at)
        found = [s for s in sources if s is not None]
        old = self._recorded_curves(found) if found else None
        if old is not None:  # a recorded curve logged at another interval cannot be continued bit for bit
            alike = self._logged_alike(old)
            for i, s in enumerate(sources):
                if s and s not in alike:
                    sources[i] = None
        parts: list[Callable[[], tuple[pd.DataFrame, pd.DataFrame]]] = []
        fresh = np.flatnonzero(sources == None)  # noqa: E711 - elementwise on an object array
        if fresh.size:
            batch = train_batch(table.take(fresh), log_every=self.log_every, engine=self.engine)
            self.engine_seconds += batch.engine_seconds
            parts.append(functools.partial(_tables, batch, names[fresh]))
        continued = np.flatnonzero(sources != None)  # noqa: E711
        t0s = self.rows["max_steps"].reindex(sources[continued]).to_numpy(dtype=np.int64)
        for t0 in np.unique(t0s):  # one batch per recorded budget: the kernel starts all its runs at one step
            members = continued[t0s == t0]
            parts.append(self._continue(table.take(members), names[members], list(sources[members]), int(t0), old))
        return functools.partial(_stacked, parts)

    def _recorded_curves(self, ids: list[str]) -> pd.DataFrame:
        """The recorded curves of runs ``ids``, reading only the chunks that hold them (each verified as
        ``load_curves`` verifies it), not every chunk of the store for every chunk of the sweep."""
        where = self.file_of.reindex(ids).to_numpy()
        frames = [
            self._curves_file(int(k)).filter(pc.is_in(pc.field("run_id"), pa.array(sorted(group)))).to_pandas()
            for k, group in pd.Series(ids).groupby(where, sort=True)
        ]
        return _concat(frames)

    def _curves_file(self, k: int) -> pa.Table:
        """Chunk ``k``'s curves, read and verified once: the sweep's chunks and the store's do not line up, so
        consecutive chunks of the sweep continue runs of the same recorded chunk (the last two are kept)."""
        from xorlab.store.reader import read_curves_file

        if k not in self._read:
            self._read = {**dict(list(self._read.items())[-1:]), k: read_curves_file(self.files[k])}
        return self._read[k]

    def _logged_alike(self, old: pd.DataFrame) -> set[str]:
        """The recorded runs whose curve holds exactly the steps this sweep logs up to their budget m0
        (0, k, 2k, … < m0, and m0), all runs at once: every step is one of those, and there are as many."""
        run = old["run_id"].astype("category").cat  # per row a code; the strings once per run
        names, code = run.categories, run.codes.to_numpy()
        budget = self.rows["max_steps"].reindex(names, fill_value=-1).to_numpy(dtype=np.int64)  # -1: not a source
        step, m0 = old["step"].to_numpy(dtype=np.int64), budget[code]
        valid = ((step % self.log_every == 0) & (step < m0)) | (step == m0)
        n = np.bincount(code, minlength=len(names))
        n_valid = np.bincount(code, weights=valid, minlength=len(names))
        expected = -(-budget // self.log_every) + 1  # len(range(0, m0, k)) + 1
        return set(names[(n == n_valid) & (n == expected) & (budget > 0)])

    def _continue(
        self, table: RunTable, ids, sources, t0: int, old: pd.DataFrame
    ) -> Callable[[], tuple[pd.DataFrame, pd.DataFrame]]:
        rows = self.rows.loc[sources]
        p = rows[PARAM_COLUMNS].to_numpy(dtype=np.float64)  # each run from its recorded final state (params_of)
        widths = table.columns["width"]
        wide = rows[WIDE_PARAMS].to_numpy()  # the loader fills the column (null) for stores older than it
        starts = [
            unflatten(v, 4) if w == 4 else unflatten(np.asarray(q, dtype=np.float64), int(w))
            for v, q, w in zip(p, wide, widths, strict=True)
        ]
        solved0 = rows["steps_to_solve"].fillna(NO_STEP).to_numpy(dtype=np.int64)
        prepared = prepare(table, starts, self.log_every, self.engine)
        batch = prepared.result(*prepared.run(t0=t0, first_solved0=solved0))
        self.engine_seconds += batch.engine_seconds
        self.continued += len(table)
        return lambda: (runs_frame(batch, ids), self._joined(old, curves_frame(batch, ids), sources, ids, t0))

    @staticmethod
    def _joined(old: pd.DataFrame, new: pd.DataFrame, sources: list[str], ids, t0: int) -> pd.DataFrame:
        """Each continued run's curve: its source's recorded losses before ``t0``, then the new ones; runs in
        the order of ``ids`` (as a fresh chunk's curves are), steps ascending. Rows are matched by integer
        position (category codes), never by sorting strings."""
        old_run = old["run_id"].astype("category").cat
        head_pos = pd.Index(sources).get_indexer(old_run.categories)[old_run.codes.to_numpy()]
        head = (head_pos >= 0) & (old["step"].to_numpy() < t0)
        new_run = new["run_id"].cat
        new_pos = pd.Index(ids).get_indexer(new_run.categories)[new_run.codes.to_numpy()]
        pos = np.concatenate([head_pos[head], new_pos])
        step = np.concatenate([old["step"].to_numpy()[head], new["step"].to_numpy()])
        loss = np.concatenate([old["loss"].to_numpy()[head], new["loss"].to_numpy()])
        order = np.argsort(pos, kind="stable")  # each run's head, then its new steps: runs already ascending
        if ((pos[order][1:] == pos[order][:-1]) & (np.diff(step[order]) <= 0)).any():  # not so in this store
            order = np.lexsort((step, pos))
        return pd.DataFrame(
            {
                "run_id": pd.Categorical.from_codes(pos[order], categories=pd.Index(ids)),
                "step": step[order],
                "loss": loss[order],
            }
        )


def _chunk_files(path: Path) -> tuple[list[Path], pd.Series]:
    """The store's committed runs files, and per recorded ``run_id`` the index of the first one holding it
    (read from the ``run_id`` column only)."""
    from xorlab.store.reader import committed_chunks, read_runs_file

    files = list(committed_chunks(path))
    ids = [read_runs_file(f, columns=["run_id"]).column("run_id").to_pandas() for f in files]
    file_of = pd.Series(np.repeat(np.arange(len(files)), [len(i) for i in ids]), index=pd.concat(ids) if ids else None)
    return files, file_of[~file_of.index.duplicated()]


def _tables(batch: BatchResult, ids: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    return runs_frame(batch, ids), curves_frame(batch, ids)


def _concat(curves: list[pd.DataFrame]) -> pd.DataFrame:
    """Curve frames stacked, ``run_id`` kept categorical (as strings, a million rows cost seconds to compare)."""
    if len(curves) == 1:
        return curves[0]
    run_id = union_categoricals([c["run_id"].astype("category") for c in curves])
    out = pd.concat([c.drop(columns="run_id") for c in curves], ignore_index=True)
    out.insert(0, "run_id", run_id)
    return out


def _stacked(parts: list[Callable[[], tuple[pd.DataFrame, pd.DataFrame]]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    frames = [part() for part in parts]
    if len(frames) == 1:
        return frames[0]
    return pd.concat([r for r, _ in frames], ignore_index=True), _concat([c for _, c in frames])
