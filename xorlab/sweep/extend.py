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

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from xorlab.core.config import TrainConfig
from xorlab.core.modes import TAIL
from xorlab.core.runtable import RunTable
from xorlab.engine.batch import prepare, train_batch
from xorlab.engine.results import NO_STEP
from xorlab.store.records import PARAM_COLUMNS, curves_frame, run_id, runs_frame

#: The recorded columns a continuation reads: which runs qualify, where each one's trajectory stands.
CONTINUE_COLUMNS = ["max_steps", "engine", "diverged_step", "steps_to_solve", *PARAM_COLUMNS]


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

    def _sources(self, table: RunTable) -> np.ndarray:
        """Per run, the run_id it continues from, or None (only runs long enough to continue are looked up)."""
        out = np.full(len(table), None, dtype=object)
        if self.budgets:
            for i in np.flatnonzero(table.columns["max_steps"] - TAIL >= min(self.budgets)):
                out[i] = self.source(table[int(i)])
        return out

    def train(self, configs: Sequence[TrainConfig], ids: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Run and curve frames of ``configs`` (a list or a ``RunTable``): continued where a recorded run allows,
        else from scratch."""
        from xorlab.store.reader import load_curves

        table, names = RunTable.from_configs(configs), np.asarray(ids, dtype=object)
        sources = self._sources(table)
        found = [s for s in sources if s is not None]
        old = load_curves(self.path, run_ids=found) if found else None
        if old is not None:  # a recorded curve logged at another interval cannot be continued bit for bit
            alike = self._logged_alike(old)
            for i, s in enumerate(sources):
                if s and s not in alike:
                    sources[i] = None
        frames = []
        fresh = np.flatnonzero(sources == None)  # noqa: E711 - elementwise on an object array
        if fresh.size:
            batch = train_batch(table.take(fresh), log_every=self.log_every, engine=self.engine)
            self.engine_seconds += batch.engine_seconds
            frames.append((runs_frame(batch, names[fresh]), curves_frame(batch, names[fresh])))
        by_t0: dict[int, list[int]] = {}
        for i, s in enumerate(sources):
            if s is not None:
                by_t0.setdefault(int(self.rows.at[s, "max_steps"]), []).append(i)
        for t0, members in sorted(by_t0.items()):
            frames.append(
                self._continue(table.take(np.array(members)), names[members], list(sources[members]), t0, old)
            )
        if not by_t0:  # nothing continued: the fresh batch's tables as they are
            return frames[0]
        runs = pd.concat([r for r, _ in frames], ignore_index=True)
        curves = pd.concat([c.astype({"run_id": str}) for _, c in frames], ignore_index=True)
        return runs, curves.astype({"run_id": "category"})

    def _logged_alike(self, old: pd.DataFrame) -> set[str]:
        """The recorded runs whose curve holds exactly the steps this sweep logs up to their budget m0
        (0, k, 2k, … < m0, and m0), all runs at once: every step is one of those, and there are as many."""
        ids = old["run_id"].astype(str).to_numpy()
        step = old["step"].to_numpy(dtype=np.int64)
        m0 = self.rows["max_steps"].reindex(ids).to_numpy(dtype=np.int64)
        valid = ((step % self.log_every == 0) & (step < m0)) | (step == m0)
        per_run = pd.DataFrame({"run_id": ids, "valid": valid}).groupby("run_id", sort=False)["valid"]
        n, n_valid = per_run.size(), per_run.sum()
        budget = self.rows["max_steps"].reindex(n.index).to_numpy(dtype=np.int64)
        expected = -(-budget // self.log_every) + 1  # len(range(0, m0, k)) + 1
        return set(n.index[(n.to_numpy() == n_valid.to_numpy()) & (n.to_numpy() == expected)])

    def _continue(self, table: RunTable, ids, sources, t0: int, old: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        rows = self.rows.loc[sources]
        p = rows[PARAM_COLUMNS].to_numpy(dtype=np.float64)  # each run from its recorded final state (params_of)
        starts = [
            {
                "w1": v[:8].reshape(2, 4),
                "b1": v[8:12].reshape(1, 4),
                "w2": v[12:16].reshape(4, 1),
                "b2": v[16:].reshape(1, 1),
            }
            for v in p
        ]
        solved0 = rows["steps_to_solve"].fillna(NO_STEP).to_numpy(dtype=np.int64)
        prepared = prepare(table, starts, self.log_every, self.engine)
        batch = prepared.result(*prepared.run(t0=t0, first_solved0=solved0))
        self.engine_seconds += batch.engine_seconds
        new = curves_frame(batch, ids).astype({"run_id": str})
        rename = dict(zip(sources, ids, strict=True))
        head = old[old["run_id"].isin(sources) & (old["step"] < t0)].astype({"run_id": str})
        head = head.assign(run_id=head["run_id"].map(rename))[["run_id", "step", "loss"]]
        curves = pd.concat([head, new], ignore_index=True).sort_values(["run_id", "step"], ignore_index=True)
        self.continued += len(table)
        return runs_frame(batch, ids), curves
