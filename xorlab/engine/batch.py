"""Training many configurations: starting parameters, the engine choice, ``prepare`` / ``train_batch`` /
``train``, and each run's outcome read from the trace at its own end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from xorlab.core.config import ConfigError, TrainConfig, check_int
from xorlab.core.data import Y
from xorlab.core.inits import init_params, param_shapes
from xorlab.core.modes import behaviour
from xorlab.core.net import Params
from xorlab.core.outcome import classify, correct_side, nearest_plateau
from xorlab.core.rng import make_rng
from xorlab.core.runtable import RunTable
from xorlab.engine import kernel
from xorlab.engine.init_draws import draw_starts
from xorlab.engine.results import (
    ENGINES,
    NO_STEP,
    BatchResult,
    Trace,
    TrainResult,
    merge_traces,
    stack_params,
    unstack_params,
)
from xorlab.engine.simulate import simulate

_notified: set[str] = set()


def _check_start(params: Mapping[str, np.ndarray], width: int = 4) -> dict[str, np.ndarray]:
    out = {}
    for name, shape in param_shapes(width).items():
        if name not in params:
            needs = ", ".join(f"{k} ({a},{b})" for k, (a, b) in param_shapes(width).items())
            raise ConfigError("params", f"missing {name}; needs {needs}")
        arr = np.asarray(params[name], dtype=np.float64)
        if arr.shape != shape:
            raise ConfigError(f"params.{name}", f"shape must be {shape}, got {arr.shape}")
        out[name] = arr
    return out


def start_params(cfg: TrainConfig) -> dict[str, np.ndarray]:
    """A run's initial parameters, drawn from its own generator (seed, rng kind and skip of ``cfg``)."""
    return init_params(cfg.init, make_rng(cfg.seed, cfg.rng, cfg.rng_skip), cfg.init_params, cfg.width)


def _starts(table: RunTable, reps: np.ndarray, width: int) -> Params:
    """Starting parameters of the runs ``reps`` of ``table`` (all of hidden width ``width``), each drawn from its
    own generator; at the notebook's width 4 in bulk, bit for bit ``start_params`` of each
    (``xorlab.engine.init_draws``), at other widths run by run."""
    c = table.columns
    if width != 4:
        return stack_params([start_params(table[int(i)]) for i in reps])
    return draw_starts(c["init"][reps], table.init_params[reps], c["seed"][reps], c["rng"][reps], c["rng_skip"][reps])


def simulator(engine: str) -> tuple[str, Callable[..., Trace]]:
    """(engine actually used, its ``simulate``): ``compiled`` falls back to ``numpy`` with a one-line notice on
    stderr (once per process) when numba is not installed."""
    if engine not in ENGINES:
        raise ConfigError("engine", f"unknown engine {engine!r}; allowed: {', '.join(ENGINES)}")
    if engine == "compiled":
        try:
            kernel.check_settings()
        except kernel.SettingError as exc:
            raise ConfigError(exc.field, exc.message) from None
        if kernel.available():
            try:
                kernel.load()  # here, not inside the first (timed) simulation
                return "compiled", kernel.simulate_compiled
            except RuntimeError as exc:  # e.g. the cache could not be read and recompiling failed too
                reason = str(exc)
        else:
            reason = kernel.unavailable() or "numba is not installed"
        if "fallback" not in _notified:
            _notified.add("fallback")
            hint = " (pip install numba)" if reason == "numba is not installed" else ""
            print(f"xorlab: {reason}; engine 'compiled' falls back to 'numpy'{hint}", file=sys.stderr, flush=True)
    return "numpy", simulate


def _outcomes(
    configs: Sequence[TrainConfig],
    table: RunTable,
    trace: Trace,
    lane_of: np.ndarray,
    engine: str,
    seconds: float,
    run_engine: np.ndarray | None = None,
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
    width, activation = table.columns["width"], table.columns["activation"]
    modes = behaviour(
        predictions,
        end_params,
        trace.end_loss,
        trace.end_tail,
        threshold=thresholds,
        diverged=diverged_at != NO_STEP,
        activation=activation,
        width=width,
    )
    return BatchResult(
        configs=configs,
        loss_steps=trace.loss_steps,
        losses=losses,
        final_loss=trace.end_loss,
        predictions=predictions,
        params=end_params,
        status=status,
        steps_to_solve=steps_to_solve,
        plateau=np.where(status == "stuck", nearest_plateau(trace.end_loss), np.array(None, dtype=object)),
        diverged_step=diverged_at,
        loss_tail=trace.end_tail,
        behaviour=modes,
        table=table,
        engine=engine,
        engine_seconds=seconds,
        run_engine=run_engine,
    )


@dataclass(frozen=True)
class Part:
    """The lanes of a batch that share one hidden width and activation: one array program."""

    width: int
    activation: str
    lanes: np.ndarray  # (K,) indices into the batch's L lanes, ascending
    start: Params  # K lanes, run axis last
    engine: str  # the engine that runs this part
    simulate: Callable[..., Trace]


@dataclass(frozen=True)
class Prepared:
    """A batch ready to simulate (``prepare``): its lanes, starting parameters and per-lane settings, in parts of
    one hidden width and activation each (one part for a batch of the notebook's network)."""

    configs: Sequence[TrainConfig]
    table: RunTable
    lane_of: np.ndarray  # (N,) lane of each run
    parts: list[Part]
    lr: np.ndarray  # (L,) the hidden layer's rate: lr × lr_hidden
    lr_output: np.ndarray  # (L,) the output layer's rate: lr × lr_output
    threshold: np.ndarray  # (L,)
    log_every: int
    engine: str  # the engine asked for, after any fallback (a part may still use numpy: ``Part.engine``)

    def run(self, t0: int = 0, first_solved0: np.ndarray | None = None) -> tuple[Trace, float]:
        """Simulate (the only step of a batch that needs no GIL with the compiled engine): (trace, seconds).

        ``t0`` and ``first_solved0`` continue recorded runs (``simulate``'s arguments; ``xorlab.sweep.extend``)."""
        began = time.perf_counter()
        run_end = self.table.columns["max_steps"]
        traces = []
        for part in self.parts:
            whole = len(self.parts) == 1
            runs = np.arange(len(self.lane_of)) if whole else np.flatnonzero(np.isin(self.lane_of, part.lanes))
            local = self.lane_of if whole else np.searchsorted(part.lanes, self.lane_of[runs])
            trace = part.simulate(
                part.start,
                self.lr[part.lanes],
                self.threshold[part.lanes],
                local,
                run_end[runs],
                self.log_every,
                t0=t0,
                first_solved0=None if first_solved0 is None else first_solved0[part.lanes],
                lr_output=self.lr_output[part.lanes],
                activation=part.activation,
            )
            traces.append((part.lanes, runs, trace))
        trace = traces[0][2] if len(traces) == 1 else merge_traces(traces, len(self.lr), len(self.lane_of))
        return trace, time.perf_counter() - began

    def result(self, trace: Trace, seconds: float) -> BatchResult:
        """The batch's outcomes from its trace."""
        engines = {part.engine for part in self.parts}
        run_engine = None
        if len(engines) > 1:  # a compiled batch with parts only the numpy engine trains
            lane_engine = np.empty(len(self.lr), dtype=object)
            for part in self.parts:
                lane_engine[part.lanes] = part.engine
            run_engine = lane_engine[self.lane_of]
        engine = engines.pop() if len(engines) == 1 else self.engine
        return _outcomes(self.configs, self.table, trace, self.lane_of, engine, seconds, run_engine)


def _parts(
    table: RunTable,
    reps: np.ndarray,
    engine: str,
    run: Callable[..., Trace],
    starts: Callable[[np.ndarray, int], Params],
) -> list[Part]:
    """The lanes (first runs ``reps``) split by (width, activation), each part's starting parameters from
    ``starts(lanes, width)``. With the compiled engine, a part of another width or activation than the
    notebook's runs on its wide kernel (``xorlab.engine.kernel_wide``), or, where that cannot be compiled, on the
    numpy engine with a one-line notice."""
    width, activation = table.columns["width"][reps], table.columns["activation"][reps]
    if (width == width[0]).all() and (activation == activation[0]).all():  # the usual batch: one shape
        keys = [(int(width[0]), str(activation[0]))]
    else:
        keys = sorted({(int(w), str(a)) for w, a in zip(width, activation, strict=True)})
    parts = []
    for w, a in keys:
        lanes = np.arange(len(reps)) if len(keys) == 1 else np.flatnonzero((width == w) & (activation == a))
        use, fn = engine, run
        if engine == "compiled" and (w, a) != (4, "tanh"):
            try:
                kernel._compiled_wide()  # the kernel for other widths and activations, loaded here
            except RuntimeError as exc:
                use, fn = "numpy", simulate
                if "compiled-shape" not in _notified:
                    _notified.add("compiled-shape")
                    print(f"xorlab: {exc}; width {w} {a} runs train on the numpy engine", file=sys.stderr, flush=True)
        parts.append(Part(w, a, lanes, starts(lanes, w), use, fn))
    return parts


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
        parts = _parts(table, reps, used, run, lambda lanes, w: _starts(table, reps[lanes], w))
    else:
        reps = lane_of = np.arange(len(table))
        checked = [_check_start(q, int(w)) for q, w in zip(params, table.columns["width"], strict=True)]
        parts = _parts(table, reps, used, run, lambda lanes, w: stack_params([checked[i] for i in lanes]))
    lr, threshold = table.columns["lr"][reps], table.columns["loss_threshold"][reps]
    # Per-layer rates; at the default multipliers (1.0) both are exactly lr.
    lr_hidden, lr_output = lr * table.columns["lr_hidden"][reps], lr * table.columns["lr_output"][reps]
    return Prepared(configs, table, lane_of, parts, lr_hidden, lr_output, threshold, log_every, used)


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
