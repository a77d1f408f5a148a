"""What an engine returns: ``TrainResult`` (one run), ``BatchResult`` (many, as columns), ``Trace`` (the raw
arrays a simulation hands back), and the contract constants every engine shares (``NO_STEP``, ``ENGINES``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from xorlab.core.config import TrainConfig
from xorlab.core.modes import TAIL
from xorlab.core.net import Params
from xorlab.core.runtable import RunTable

NO_STEP = -1  # steps_to_solve / diverged_step of a run that never solved / never diverged
#: ``numpy``: this module's ``simulate``, the bit-exact reference (notebook replay, batch invariance).
#: ``compiled``: ``xorlab.engine.kernel`` (numba), the same semantics ~10x faster; exp/tanh differ by a few ulps, so
#: outcomes agree for ≥ 99.9 % of runs and losses to ~1e-12 relative (tests/test_kernel.py).
ENGINES = ("numpy", "compiled")


@dataclass(frozen=True)
class TrainResult:
    """One run's outcome.

    ``losses`` holds the mean BCE *before* the update of each logged step (``loss_steps``); with
    ``log_every=1`` (what ``train`` uses) that is every step 0 … max_steps-1, shape (max_steps,).
    ``final_loss`` and ``predictions`` are from the state after the last update (t = max_steps).
    """

    config: TrainConfig
    losses: np.ndarray
    loss_steps: np.ndarray
    final_loss: float
    predictions: np.ndarray  # (4,), XOR order 00, 01, 10, 11
    params: dict[str, np.ndarray]  # notebook shapes: w1 (2,4), b1 (1,4), w2 (4,1), b2 (1,1)
    status: str
    steps_to_solve: int | None
    plateau: str | None  # nearest plateau of the final loss, for stuck runs
    diverged_step: int | None
    mode: str = "other"  # failure mode from behaviour (xorlab.core.modes.MODES)
    behaviour: dict[str, object] = field(default_factory=dict)  # xorlab.core.modes.behaviour columns of this run


@dataclass(frozen=True)
class BatchResult:
    """Outcomes of N runs, leading run axis. ``steps_to_solve``/``diverged_step`` use -1 for "never"."""

    configs: Sequence[TrainConfig]  # as given: a list of configs or a RunTable
    loss_steps: np.ndarray  # (S,) logged steps: 0, k, 2k, … < longest max_steps
    losses: np.ndarray  # (N, S); NaN at steps ≥ the run's own max_steps
    final_loss: np.ndarray  # (N,)
    predictions: np.ndarray  # (N, 4)
    params: dict[str, np.ndarray]  # w1 (N,2,H), b1 (N,1,H), w2 (N,H,1), b2 (N,1,1); NaN beyond a run's width
    status: np.ndarray  # (N,) str
    steps_to_solve: np.ndarray  # (N,) int
    plateau: np.ndarray  # (N,) str or None
    diverged_step: np.ndarray  # (N,) int
    loss_tail: np.ndarray = field(default_factory=lambda: np.empty((0, TAIL)))  # (N, TAIL) before each end
    engine: str = "numpy"  # the engine that trained the batch (ENGINES)
    behaviour: dict[str, np.ndarray] = field(default_factory=dict)  # (N,) each: xorlab.core.modes.behaviour
    table: RunTable | None = None  # the configs as columns (what the records read)
    engine_seconds: float = 0.0  # wall time of the simulation itself (no init draws, no outcomes)
    run_engine: np.ndarray | None = None  # (N,) engine per run where a batch used two (else: ``engine``)

    def __len__(self) -> int:
        return len(self.configs)

    def __getitem__(self, i: int) -> TrainResult:
        cfg = self.configs[i]
        keep = self.loss_steps < cfg.max_steps
        return TrainResult(
            config=cfg,
            losses=self.losses[i, keep].copy(),
            loss_steps=self.loss_steps[keep].copy(),
            final_loss=float(self.final_loss[i]),
            predictions=self.predictions[i].copy(),
            params=_own_width(self.params, i, cfg.width),
            status=str(self.status[i]),
            steps_to_solve=_optional(self.steps_to_solve[i]),
            plateau=self.plateau[i],
            diverged_step=_optional(self.diverged_step[i]),
            mode=str(self.behaviour["mode"][i]) if self.behaviour else "other",
            behaviour={k: v[i] for k, v in self.behaviour.items()},
        )


def _own_width(params: Mapping[str, np.ndarray], i: int, width: int) -> dict[str, np.ndarray]:
    """Run ``i``'s parameters in its own shapes (a batch of several widths pads the narrower runs with NaN)."""
    return {
        "w1": params["w1"][i, :, :width].copy(),
        "b1": params["b1"][i, :, :width].copy(),
        "w2": params["w2"][i, :width].copy(),
        "b2": params["b2"][i].copy(),
    }


def _optional(step: int) -> int | None:
    return None if step == NO_STEP else int(step)


def stack_params(runs: Sequence[Mapping[str, np.ndarray]]) -> Params:
    """Notebook-shaped parameter dicts -> one ``Params`` with the run axis last."""
    return Params(
        w1=np.ascontiguousarray(np.stack([r["w1"] for r in runs], axis=-1), dtype=np.float64),
        b1=np.ascontiguousarray(np.stack([r["b1"][0] for r in runs], axis=-1), dtype=np.float64),
        w2=np.ascontiguousarray(np.stack([r["w2"][:, 0] for r in runs], axis=-1), dtype=np.float64),
        b2=np.array([r["b2"][0, 0] for r in runs], dtype=np.float64),
    )


def unstack_params(p: Params) -> dict[str, np.ndarray]:
    """``Params`` (run axis last) -> notebook shapes with a leading run axis."""
    return {
        "w1": np.ascontiguousarray(p.w1.transpose(2, 0, 1)),
        "b1": np.ascontiguousarray(p.b1.T[:, None, :]),
        "w2": np.ascontiguousarray(p.w2.T[:, :, None]),
        "b2": p.b2[:, None, None].copy(),
    }


@dataclass
class Trace:
    """What ``simulate`` records of L lanes and R read-out runs (the contract every engine implements)."""

    loss_steps: np.ndarray  # (S,) logged steps: t0 <= t < horizon with t % log_every == 0
    losses: np.ndarray  # (L, S) mean BCE before the update of each logged step
    first_solved: np.ndarray  # (L,) first step solved (NO_STEP: never)
    diverged_step: np.ndarray  # (L,) first step with a non-finite loss or parameter (NO_STEP: never)
    end_loss: np.ndarray  # (R,) loss at t = run_end
    end_yhat: np.ndarray  # (4, R) predictions at t = run_end
    end_params: Params  # R runs, run axis last: the state at t = run_end (the frozen state if diverged)
    end_tail: np.ndarray  # (R, TAIL) losses at steps run_end-TAIL … run_end-1 (NaN before t0)


def merge_traces(parts: Sequence[tuple[np.ndarray, np.ndarray, Trace]], lanes: int, runs: int) -> Trace:
    """One trace of ``lanes`` lanes and ``runs`` runs from the traces of its parts, each ``(lane indices, run
    indices, trace)``. Logged steps are the union (a part with a nearer horizon logs fewer: NaN after), and the
    parameters are padded with NaN to the widest part's hidden width."""
    steps = max((t.loss_steps for _, _, t in parts), key=len)
    width = max(t.end_params.b1.shape[0] for _, _, t in parts)
    out = Trace(
        loss_steps=steps,
        losses=np.full((lanes, steps.size), np.nan),
        first_solved=np.full(lanes, NO_STEP, dtype=np.int64),
        diverged_step=np.full(lanes, NO_STEP, dtype=np.int64),
        end_loss=np.empty(runs),
        end_yhat=np.empty((4, runs)),
        end_params=Params(
            np.full((2, width, runs), np.nan),
            np.full((width, runs), np.nan),
            np.full((width, runs), np.nan),
            np.empty(runs),
        ),
        end_tail=np.empty((runs, TAIL)),
    )
    for lane, run, t in parts:
        out.losses[lane[:, None], np.arange(t.loss_steps.size)[None, :]] = t.losses
        out.first_solved[lane], out.diverged_step[lane] = t.first_solved, t.diverged_step
        out.end_loss[run], out.end_yhat[:, run], out.end_tail[run] = t.end_loss, t.end_yhat, t.end_tail
        h = t.end_params.b1.shape[0]
        out.end_params.w1[:, :h, run], out.end_params.b1[:h, run] = t.end_params.w1, t.end_params.b1
        out.end_params.w2[:h, run], out.end_params.b2[run] = t.end_params.w2, t.end_params.b2
    return out
