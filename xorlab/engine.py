"""The engine: train N configurations at once as one numpy program.

``train_batch`` stacks every run's starting parameters along a run axis and steps them together with the pure
functions of ``xorlab.net``. Each run keeps its own learning rate, loss threshold and length; a batch trains to
the longest ``max_steps`` and reads every run out at its own end, so runs that differ only in ``max_steps``
can share one trajectory. Results are batch invariant (see ``xorlab.net``).

A run whose loss or parameters become non-finite is *diverged* at that step: its state is frozen (recorded
as it was, non-finite values included) and it stops changing, while the others go on. Overflow is exactly how
divergence shows, so floating-point overflow/invalid flags are silenced inside the step loop and divergence
is detected explicitly with ``np.isfinite`` instead. Division by zero cannot occur and is not silenced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from xorlab.config import ConfigError, TrainConfig, check_int
from xorlab.data import X, Y
from xorlab.inits import PARAM_SHAPES, init_params
from xorlab.net import Params, backward, forward, update
from xorlab.outcome import classify, correct_side, nearest_plateau
from xorlab.rng import make_rng

NO_STEP = -1  # steps_to_solve / diverged_step of a run that never solved / never diverged


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


@dataclass(frozen=True)
class BatchResult:
    """Outcomes of N runs, leading run axis. ``steps_to_solve``/``diverged_step`` use -1 for "never"."""

    configs: list[TrainConfig]
    loss_steps: np.ndarray  # (S,) logged steps: 0, k, 2k, … < longest max_steps
    losses: np.ndarray  # (N, S); NaN at steps ≥ the run's own max_steps
    final_loss: np.ndarray  # (N,)
    predictions: np.ndarray  # (N, 4)
    params: dict[str, np.ndarray]  # w1 (N,2,4), b1 (N,1,4), w2 (N,4,1), b2 (N,1,1)
    status: np.ndarray  # (N,) str
    steps_to_solve: np.ndarray  # (N,) int
    plateau: np.ndarray  # (N,) str or None
    diverged_step: np.ndarray  # (N,) int

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
            params={k: v[i].copy() for k, v in self.params.items()},
            status=str(self.status[i]),
            steps_to_solve=_optional(self.steps_to_solve[i]),
            plateau=self.plateau[i],
            diverged_step=_optional(self.diverged_step[i]),
        )


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


def _check_start(params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for name, shape in PARAM_SHAPES.items():
        if name not in params:
            raise ConfigError("params", f"missing {name}; needs w1 (2,4), b1 (1,4), w2 (4,1), b2 (1,1)")
        arr = np.asarray(params[name], dtype=np.float64)
        if arr.shape != shape:
            raise ConfigError(f"params.{name}", f"shape must be {shape}, got {arr.shape}")
        out[name] = arr
    return out


def start_params(cfg: TrainConfig) -> dict[str, np.ndarray]:
    """A run's initial parameters, drawn from its own generator (seed, rng kind and skip of ``cfg``)."""
    return init_params(cfg.init, make_rng(cfg.seed, cfg.rng, cfg.rng_skip), cfg.init_params)


def _params_finite(p: Params) -> np.ndarray:
    return (
        np.isfinite(p.w1).all(axis=(0, 1))
        & np.isfinite(p.b1).all(axis=0)
        & np.isfinite(p.w2).all(axis=0)
        & np.isfinite(p.b2)
    )


def trajectory_key(cfg: TrainConfig) -> tuple:
    """What determines a run's trajectory: every config field except ``max_steps``."""
    return tuple((k, v) for k, v in cfg.canonical().items() if k != "max_steps")


def _lanes(configs: list[TrainConfig], shared: bool) -> tuple[list[int], np.ndarray]:
    """One simulated lane per distinct trajectory: (representative config of each lane, lane of each config)."""
    if not shared:
        return list(range(len(configs))), np.arange(len(configs))
    lane_by_key: dict[tuple, int] = {}
    reps: list[int] = []
    lane_of = np.empty(len(configs), dtype=np.int64)
    for i, cfg in enumerate(configs):
        key = trajectory_key(cfg)
        if key not in lane_by_key:
            lane_by_key[key] = len(reps)
            reps.append(i)
        lane_of[i] = lane_by_key[key]
    return reps, lane_of


def train_batch(
    configs: Sequence[TrainConfig],
    params: Sequence[Mapping[str, np.ndarray]] | None = None,
    log_every: int = 1,
) -> BatchResult:
    """Train every configuration in ``configs`` together; see the module docstring.

    Configs that differ only in ``max_steps`` share one simulated trajectory (a *lane*): it is trained to the
    longest of them and each run is read out at its own end, bit-identical to training it alone.

    Parameters
    ----------
    configs : the runs. They may differ in every field, ``max_steps`` included.
    params : optional explicit starting parameters per run (notebook shapes); replaces the init draw, and
        then every run gets its own lane.
    log_every : record the loss every this many steps (outcomes are still computed at every step).
    """
    configs = list(configs)
    n = len(configs)
    if n == 0:
        raise ConfigError("configs", "need at least one run")
    check_int("log_every", log_every, 1)
    if params is not None and len(params) != n:
        raise ConfigError("params", f"got {len(params)} parameter sets for {n} runs")
    reps, lane_of = _lanes(configs, shared=params is None)
    if params is None:
        p = stack_params([start_params(configs[i]) for i in reps])
    else:
        p = stack_params([_check_start(q) for q in params])
    lanes = len(reps)

    lr = np.array([configs[i].lr for i in reps], dtype=np.float64)  # per lane
    threshold = np.array([configs[i].loss_threshold for i in reps], dtype=np.float64)
    max_steps = np.array([c.max_steps for c in configs], dtype=np.int64)  # per run
    horizon = int(max_steps.max())
    ends = {int(m): np.flatnonzero(max_steps == m) for m in np.unique(max_steps)}

    loss_steps = np.arange(0, horizon, log_every)
    lane_losses = np.full((lanes, loss_steps.size), np.nan)
    first_solved = np.full(lanes, NO_STEP, dtype=np.int64)
    diverged_step = np.full(lanes, NO_STEP, dtype=np.int64)
    final_loss = np.empty(n)  # per run from here on
    predictions = np.empty((n, 4))
    correct_end = np.empty(n, dtype=bool)
    final = Params(*(np.empty(a.shape[:-1] + (n,)) for a in p.arrays()))
    frozen: Params | None = None  # snapshot of diverged lanes' states (valid where diverged_step >= 0)
    frozen_loss = np.full(lanes, np.nan)
    frozen_yhat = np.full((4, lanes), np.nan)

    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(horizon + 1):
            f = forward(p, X, Y)
            bad = ~(np.isfinite(f.loss) & _params_finite(p)) & (diverged_step == NO_STEP)
            if bad.any():  # freeze newly diverged lanes; their working copy becomes a harmless zero net
                if frozen is None:
                    frozen = Params(*(a.copy() for a in p.arrays()))
                for dst, src in zip(frozen.arrays(), p.arrays(), strict=True):
                    dst[..., bad] = src[..., bad]
                    src[..., bad] = 0.0
                frozen_loss[bad] = f.loss[bad]
                frozen_yhat[:, bad] = f.yhat[:, bad]
                diverged_step[bad] = t
                lr[bad] = 0.0
            dead = diverged_step != NO_STEP
            if frozen is not None:
                f.loss[dead] = frozen_loss[dead]
                f.yhat[:, dead] = frozen_yhat[:, dead]

            correct = correct_side(f.yhat, Y)
            newly = correct & (f.loss < threshold) & (first_solved == NO_STEP) & ~dead
            if newly.any():
                first_solved[newly] = t
            if t < horizon and t % log_every == 0:
                lane_losses[:, t // log_every] = f.loss
            if t in ends:  # read out the runs that end here
                idx = ends[t]
                lane = lane_of[idx]
                final_loss[idx] = f.loss[lane]
                predictions[idx] = f.yhat[:, lane].T
                correct_end[idx] = correct[lane]
                state = p if frozen is None else Params(*(np.where(dead, fz, a) for fz, a in
                                                          zip(frozen.arrays(), p.arrays(), strict=True)))  # fmt: skip
                for dst, src in zip(final.arrays(), state.arrays(), strict=True):
                    dst[..., idx] = src[..., lane]
            if t == horizon:
                break
            update(p, backward(p, f, X, Y), lr)

    # Per run; events after a run's own end belong to longer runs sharing its lane, not to it.
    losses = lane_losses[lane_of]
    losses[loss_steps[None, :] >= max_steps[:, None]] = np.nan
    steps_to_solve = first_solved[lane_of]
    steps_to_solve[steps_to_solve > max_steps] = NO_STEP
    diverged_at = diverged_step[lane_of]
    diverged_at[diverged_at > max_steps] = NO_STEP
    thresholds = threshold[lane_of]
    status = classify(diverged_at != NO_STEP, correct_end, final_loss, thresholds)
    plateau = np.where(status == "stuck", nearest_plateau(final_loss), None)
    return BatchResult(
        configs=configs,
        loss_steps=loss_steps,
        losses=losses,
        final_loss=final_loss,
        predictions=predictions,
        params=unstack_params(final),
        status=status,
        steps_to_solve=steps_to_solve,
        plateau=plateau,
        diverged_step=diverged_at,
    )


def train(cfg: TrainConfig, params: Mapping[str, np.ndarray] | None = None) -> TrainResult:
    """Train one run (a batch of one); ``params`` optionally gives explicit starting parameters."""
    return train_batch([cfg], None if params is None else [params])[0]
