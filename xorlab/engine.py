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

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from xorlab.config import ConfigError, TrainConfig, check_int
from xorlab.data import N_POINTS, X, Y
from xorlab.init_draws import draw_starts
from xorlab.inits import PARAM_SHAPES, init_params
from xorlab.modes import TAIL, behaviour
from xorlab.net import Forward, Params, backward, forward, update
from xorlab.outcome import classify, correct_side, nearest_plateau
from xorlab.rng import make_rng
from xorlab.runtable import RunTable

NO_STEP = -1  # steps_to_solve / diverged_step of a run that never solved / never diverged
#: ``numpy``: this module's ``simulate``, the bit-exact reference (notebook replay, batch invariance).
#: ``compiled``: ``xorlab.kernel`` (numba), the same semantics ~10x faster; exp/tanh differ by a few ulps, so
#: outcomes agree for ≥ 99.9 % of runs and losses to ~1e-12 relative (tests/test_kernel.py).
ENGINES = ("numpy", "compiled")
_notified: set[str] = set()


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
    mode: str = "other"  # failure mode from behaviour (xorlab.modes.MODES)
    behaviour: dict[str, object] = field(default_factory=dict)  # xorlab.modes.behaviour columns of this run


@dataclass(frozen=True)
class BatchResult:
    """Outcomes of N runs, leading run axis. ``steps_to_solve``/``diverged_step`` use -1 for "never"."""

    configs: Sequence[TrainConfig]  # as given: a list of configs or a RunTable
    loss_steps: np.ndarray  # (S,) logged steps: 0, k, 2k, … < longest max_steps
    losses: np.ndarray  # (N, S); NaN at steps ≥ the run's own max_steps
    final_loss: np.ndarray  # (N,)
    predictions: np.ndarray  # (N, 4)
    params: dict[str, np.ndarray]  # w1 (N,2,4), b1 (N,1,4), w2 (N,4,1), b2 (N,1,1)
    status: np.ndarray  # (N,) str
    steps_to_solve: np.ndarray  # (N,) int
    plateau: np.ndarray  # (N,) str or None
    diverged_step: np.ndarray  # (N,) int
    loss_tail: np.ndarray = field(default_factory=lambda: np.empty((0, TAIL)))  # (N, TAIL) before each end
    engine: str = "numpy"  # the engine that trained the batch (ENGINES)
    behaviour: dict[str, np.ndarray] = field(default_factory=dict)  # (N,) each: xorlab.modes.behaviour
    table: RunTable | None = None  # the configs as columns (what the records read)
    engine_seconds: float = 0.0  # wall time of the simulation itself (no init draws, no outcomes)

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
            mode=str(self.behaviour["mode"][i]) if self.behaviour else "other",
            behaviour={k: v[i] for k, v in self.behaviour.items()},
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


class _Freezer:
    """Divergence: a lane whose loss or parameters become non-finite is frozen as it was at that step.

    Its working copy becomes a harmless zero net with lr 0 (so the array program goes on without producing
    more non-finite values), and its recorded loss, predictions and parameters stay the frozen ones.
    """

    def __init__(self, lanes: int) -> None:
        self.step = np.full(lanes, NO_STEP, dtype=np.int64)
        self.state: Params | None = None  # snapshot of frozen lanes (valid where step >= 0)
        self.loss = np.full(lanes, np.nan)
        self.yhat = np.full((N_POINTS, lanes), np.nan)

    def __call__(self, t: int, p: Params, f: Forward, lr: np.ndarray) -> None:
        bad = ~(np.isfinite(f.loss) & _params_finite(p)) & (self.step == NO_STEP)
        if bad.any():
            if self.state is None:
                self.state = Params(*(a.copy() for a in p.arrays()))
            for dst, src in zip(self.state.arrays(), p.arrays(), strict=True):
                dst[..., bad] = src[..., bad]
                src[..., bad] = 0.0
            self.loss[bad], self.yhat[:, bad], self.step[bad], lr[bad] = f.loss[bad], f.yhat[:, bad], t, 0.0
        if self.state is not None:  # frozen lanes report their frozen forward pass
            dead = self.step != NO_STEP
            f.loss[dead], f.yhat[:, dead] = self.loss[dead], self.yhat[:, dead]

    def params(self, p: Params) -> Params:
        """The lanes' recorded state: the frozen one where diverged, else the live one."""
        if self.state is None:
            return p
        dead = self.step != NO_STEP
        return Params(*(np.where(dead, fz, a) for fz, a in zip(self.state.arrays(), p.arrays(), strict=True)))


class _Recorder:
    """Logged losses, the loss tail before each run's end, and the read-out of runs at their end step."""

    def __init__(self, lanes: int, run_lane: np.ndarray, run_end: np.ndarray, log_every: int, t0: int) -> None:
        horizon = int(run_end.max())
        self.log_every, self.t0 = log_every, t0
        self.loss_steps = np.arange(-(-t0 // log_every) * log_every, horizon, log_every)
        self.losses = np.full((lanes, self.loss_steps.size), np.nan)
        self.order = np.argsort(run_end, kind="stable")  # runs by end step
        self.ends = run_end[self.order]
        self.run_lane = run_lane
        r = run_end.size
        self.end_loss, self.end_yhat = np.empty(r), np.empty((N_POINTS, r))
        self.end_state: list[tuple[np.ndarray, Params]] = []
        self.tail = np.full((r, TAIL), np.nan)

    def __call__(self, t: int, f: Forward, state: Callable[[], Params]) -> None:
        if t % self.log_every == 0 and t < self.ends[-1]:
            self.losses[:, (t - self.loss_steps[0]) // self.log_every] = f.loss
        lo, hi = np.searchsorted(self.ends, (t, t + TAIL), side="right")
        if lo < hi:  # runs ending within TAIL steps after t keep this loss in their tail
            runs = self.order[lo:hi]
            self.tail[runs, TAIL - (self.ends[lo:hi] - t)] = f.loss[self.run_lane[runs]]
        at, _ = np.searchsorted(self.ends, (t, t + 1), side="left")
        if at < lo:  # runs ending at t: read out
            runs = self.order[at:lo]
            lanes = self.run_lane[runs]
            self.end_loss[runs], self.end_yhat[:, runs] = f.loss[lanes], f.yhat[:, lanes]
            self.end_state.append((runs, Params(*(a[..., lanes].copy() for a in state().arrays()))))

    def end_params(self, like: Params) -> Params:
        out = Params(*(np.empty(a.shape[:-1] + (self.end_loss.size,)) for a in like.arrays()))
        for runs, state in self.end_state:
            for dst, src in zip(out.arrays(), state.arrays(), strict=True):
                dst[..., runs] = src
        return out


def simulate(
    start: Params,
    lr: np.ndarray,
    threshold: np.ndarray,
    run_lane: np.ndarray,
    run_end: np.ndarray,
    log_every: int = 1,
    t0: int = 0,
    first_solved0: np.ndarray | None = None,
) -> Trace:
    """Train L lanes from ``start`` (at step ``t0``) to the last ``run_end``; read out run r at ``run_end[r]``.

    The numpy reference engine. At each step t: the notebook's forward pass (the loss printed before the
    update), freeze lanes that went non-finite, the solve check, logging and read-out, then — unless t is the
    horizon — the notebook's backward pass and update. ``lr`` and ``threshold`` are per lane.
    """
    p = Params(*(a.copy() for a in start.arrays()))
    lanes = p.b2.shape[0]
    lr = np.array(lr, dtype=np.float64)
    threshold = np.asarray(threshold, dtype=np.float64)
    run_lane, run_end = np.asarray(run_lane, dtype=np.int64), np.asarray(run_end, dtype=np.int64)
    horizon = int(run_end.max())
    solved = np.full(lanes, NO_STEP, dtype=np.int64) if first_solved0 is None else first_solved0.copy()
    freeze = _Freezer(lanes)
    record = _Recorder(lanes, run_lane, run_end, log_every, t0)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is how divergence shows; see module doc
        for t in range(t0, horizon + 1):
            f = forward(p, X, Y)  # yhat and mean BCE before this step's update
            freeze(t, p, f, lr)
            newly = correct_side(f.yhat, Y) & (f.loss < threshold) & (solved == NO_STEP) & (freeze.step == NO_STEP)
            solved[newly] = t
            record(t, f, lambda: freeze.params(p))
            if t == horizon:
                break
            update(p, backward(p, f, X, Y), lr)  # p -= lr * grad of the summed BCE
    return Trace(
        loss_steps=record.loss_steps,
        losses=record.losses,
        first_solved=solved,
        diverged_step=freeze.step,
        end_loss=record.end_loss,
        end_yhat=record.end_yhat,
        end_params=record.end_params(p),
        end_tail=record.tail,
    )


def _starts(table: RunTable, reps: np.ndarray) -> Params:
    """Starting parameters of the runs ``reps`` of ``table``, each drawn from its own generator; in bulk, bit for
    bit ``start_params`` of each (``xorlab.init_draws``)."""
    c = table.columns
    return draw_starts(c["init"][reps], table.init_params[reps], c["seed"][reps], c["rng"][reps], c["rng_skip"][reps])


def simulator(engine: str) -> tuple[str, Callable[..., Trace]]:
    """(engine actually used, its ``simulate``): ``compiled`` falls back to ``numpy`` with a one-line notice on
    stderr (once per process) when numba is not installed."""
    if engine not in ENGINES:
        raise ConfigError("engine", f"unknown engine {engine!r}; allowed: {', '.join(ENGINES)}")
    if engine == "compiled":
        from xorlab import kernel

        if kernel.available():
            kernel.load()  # here, not inside the first (timed) simulation
            return "compiled", kernel.simulate_compiled
        if "fallback" not in _notified:
            _notified.add("fallback")
            print("xorlab: numba is not installed; engine 'compiled' falls back to 'numpy' (pip install numba)",
                  file=sys.stderr, flush=True)  # fmt: skip
    return "numpy", simulate


def _outcomes(
    configs: Sequence[TrainConfig], table: RunTable, trace: Trace, lane_of: np.ndarray, engine: str, seconds: float
) -> BatchResult:
    """Per-run results from a trace; events after a run's own end belong to longer runs sharing its lane."""
    max_steps = table.columns["max_steps"]
    losses = trace.losses[lane_of]
    losses[trace.loss_steps[None, :] >= max_steps[:, None]] = np.nan
    steps_to_solve = trace.first_solved[lane_of]
    steps_to_solve[steps_to_solve > max_steps] = NO_STEP
    diverged_at = trace.diverged_step[lane_of]
    diverged_at[diverged_at > max_steps] = NO_STEP
    thresholds = table.columns["loss_threshold"]
    correct_end = correct_side(trace.end_yhat, Y)
    status = classify(diverged_at != NO_STEP, correct_end, trace.end_loss, thresholds)
    predictions = np.ascontiguousarray(trace.end_yhat.T)
    end_params = unstack_params(trace.end_params)
    modes = behaviour(predictions, end_params, trace.end_loss, trace.end_tail, threshold=thresholds,
                      diverged=diverged_at != NO_STEP)  # fmt: skip
    return BatchResult(
        configs=configs,
        loss_steps=trace.loss_steps,
        losses=losses,
        final_loss=trace.end_loss,
        predictions=predictions,
        params=end_params,
        status=status,
        steps_to_solve=steps_to_solve,
        plateau=np.where(status == "stuck", nearest_plateau(trace.end_loss), None),
        diverged_step=diverged_at,
        loss_tail=trace.end_tail,
        behaviour=modes,
        table=table,
        engine=engine,
        engine_seconds=seconds,
    )


@dataclass(frozen=True)
class Prepared:
    """A batch ready to simulate (``prepare``): its lanes, starting parameters and per-lane settings."""

    configs: Sequence[TrainConfig]
    table: RunTable
    lane_of: np.ndarray  # (N,) lane of each run
    start: Params  # L lanes, run axis last
    lr: np.ndarray  # (L,)
    threshold: np.ndarray  # (L,)
    log_every: int
    engine: str  # the engine that will run it (after any fallback)
    simulate: Callable[..., Trace]

    def run(self, t0: int = 0, first_solved0: np.ndarray | None = None) -> tuple[Trace, float]:
        """Simulate (the only step of a batch that needs no GIL with the compiled engine): (trace, seconds).

        ``t0`` and ``first_solved0`` continue recorded runs (``simulate``'s arguments; ``xorlab.extend``)."""
        began = time.perf_counter()
        trace = self.simulate(self.start, self.lr, self.threshold, self.lane_of, self.table.columns["max_steps"],
                              self.log_every, t0=t0, first_solved0=first_solved0)  # fmt: skip
        return trace, time.perf_counter() - began

    def result(self, trace: Trace, seconds: float) -> BatchResult:
        """The batch's outcomes from its trace."""
        return _outcomes(self.configs, self.table, trace, self.lane_of, self.engine, seconds)


def prepare(
    configs: Sequence[TrainConfig],
    params: Sequence[Mapping[str, np.ndarray]] | None = None,
    log_every: int = 1,
    engine: str = "numpy",
) -> Prepared:
    """Check a batch, find its lanes and draw its starting parameters (``train_batch`` = prepare, run, result)."""
    used, run = simulator(engine)
    configs = configs if isinstance(configs, RunTable) else list(configs)
    if not len(configs):
        raise ConfigError("configs", "need at least one run")
    check_int("log_every", log_every, 1)
    if params is not None and len(params) != len(configs):
        raise ConfigError("params", f"got {len(params)} parameter sets for {len(configs)} runs")
    table = RunTable.from_configs(configs)
    if params is None:
        reps, lane_of = table.lanes()  # one lane per distinct trajectory
        start = _starts(table, reps)
    else:
        reps = lane_of = np.arange(len(table))
        start = stack_params([_check_start(q) for q in params])
    lr, threshold = table.columns["lr"][reps], table.columns["loss_threshold"][reps]
    return Prepared(configs, table, lane_of, start, lr, threshold, log_every, used, run)


def train_batch(
    configs: Sequence[TrainConfig],
    params: Sequence[Mapping[str, np.ndarray]] | None = None,
    log_every: int = 1,
    engine: str = "numpy",
) -> BatchResult:
    """Train every configuration in ``configs`` together; see the module docstring.

    Configs that differ only in ``max_steps`` share one simulated trajectory (a *lane*): it is trained to the
    longest of them and each run is read out at its own end, bit-identical to training it alone.

    Parameters
    ----------
    configs : the runs (a list of configs, or a ``RunTable``). They may differ in every field, ``max_steps``
        included.
    params : optional explicit starting parameters per run (notebook shapes); replaces the init draw, and
        then every run gets its own lane.
    log_every : record the loss every this many steps (outcomes are still computed at every step).
    engine : ``"numpy"`` (the bit-exact reference) or ``"compiled"`` (numba; see ``ENGINES``).
    """
    batch = prepare(configs, params, log_every, engine)
    return batch.result(*batch.run())


def train(cfg: TrainConfig, params: Mapping[str, np.ndarray] | None = None) -> TrainResult:
    """Train one run (a batch of one); ``params`` optionally gives explicit starting parameters."""
    return train_batch([cfg], None if params is None else [params])[0]
