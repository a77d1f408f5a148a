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

from xorlab.config import TrainConfig
from xorlab.engine import NO_STEP, _outcomes, simulator, stack_params, train_batch
from xorlab.modes import TAIL
from xorlab.records import curves_frame, params_of, run_id, runs_frame
from xorlab.runtable import RunTable


class Extensions:
    """Recorded runs of a store that pending runs can continue from (read once, when the sweep starts)."""

    def __init__(self, path: str | Path, recorded_ids: set[str], engine: str, log_every: int) -> None:
        from xorlab.store import load_runs

        self.path, self.engine, self.log_every = Path(path), engine, log_every
        self.rows = pd.DataFrame()
        if recorded_ids:
            runs = load_runs(path)
            same_engine = runs["engine"].fillna("numpy") == engine
            self.rows = runs[same_engine & runs["diverged_step"].isna()].set_index("run_id")
        self.budgets = sorted(set(self.rows["max_steps"]), reverse=True) if len(self.rows) else []
        self.continued = 0

    def source(self, cfg: TrainConfig) -> str | None:
        """The run_id of the longest usable recorded run of ``cfg``'s trajectory, if any."""
        for m0 in self.budgets:
            if m0 <= cfg.max_steps - TAIL:
                rid = run_id(replace(cfg, max_steps=int(m0)))
                if rid in self.rows.index:
                    return rid
        return None

    def train(self, configs: Sequence[TrainConfig], ids: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Run and curve frames of ``configs``: continued where a recorded run allows, else from scratch."""
        from xorlab.store import load_curves

        sources = [self.source(c) for c in configs] if self.budgets else [None] * len(configs)
        old = load_curves(self.path, run_ids=[s for s in sources if s]) if any(sources) else None
        if old is not None:  # a recorded curve logged at another interval cannot be continued bit for bit
            for i, s in enumerate(sources):
                if s and not self._same_logging(old[old["run_id"] == s], int(self.rows.at[s, "max_steps"])):
                    sources[i] = None
        fresh = [i for i, s in enumerate(sources) if s is None]
        frames = []
        if fresh:
            batch = train_batch([configs[i] for i in fresh], log_every=self.log_every, engine=self.engine)
            fresh_ids = [ids[i] for i in fresh]
            frames.append((runs_frame(batch, fresh_ids), curves_frame(batch, fresh_ids)))
        by_t0: dict[int, list[int]] = {}
        for i, s in enumerate(sources):
            if s is not None:
                by_t0.setdefault(int(self.rows.at[s, "max_steps"]), []).append(i)
        for t0, members in sorted(by_t0.items()):
            frames.append(self._continue([configs[i] for i in members], [ids[i] for i in members],
                                         [sources[i] for i in members], t0, old))  # fmt: skip
        runs = pd.concat([r for r, _ in frames], ignore_index=True)
        curves = pd.concat([c.astype({"run_id": str}) for _, c in frames], ignore_index=True)
        return runs, curves.astype({"run_id": "category"})

    def _same_logging(self, curve: pd.DataFrame, m0: int) -> bool:
        steps = np.sort(curve["step"].to_numpy())
        return np.array_equal(steps, np.append(np.arange(0, m0, self.log_every), m0))

    def _continue(self, configs, ids, sources, t0: int, old: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        rows = self.rows.loc[sources]
        start = stack_params([params_of(row) for _, row in rows.iterrows()])
        solved0 = rows["steps_to_solve"].fillna(NO_STEP).to_numpy(dtype=np.int64)
        lanes = np.arange(len(configs))
        _, simulate = simulator(self.engine)
        trace = simulate(
            start,
            np.array([c.lr for c in configs], dtype=np.float64),
            np.array([c.loss_threshold for c in configs], dtype=np.float64),
            lanes,
            np.array([c.max_steps for c in configs], dtype=np.int64),
            self.log_every,
            t0=t0,
            first_solved0=solved0,
        )
        batch = _outcomes(configs, RunTable.from_configs(configs), trace, lanes)
        object.__setattr__(batch, "engine", self.engine)
        new = curves_frame(batch, ids).astype({"run_id": str})
        rename = dict(zip(sources, ids, strict=True))
        head = old[old["run_id"].isin(sources) & (old["step"] < t0)].astype({"run_id": str})
        head = head.assign(run_id=head["run_id"].map(rename))[["run_id", "step", "loss"]]
        curves = pd.concat([head, new], ignore_index=True).sort_values(["run_id", "step"], ignore_index=True)
        self.continued += len(configs)
        return runs_frame(batch, ids), curves
