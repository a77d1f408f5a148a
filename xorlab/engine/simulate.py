"""The numpy engine: ``simulate`` trains N configurations at once as one numpy program (the reference).

``train_batch`` stacks every run's starting parameters along a run axis and steps them together with the pure
functions of ``xorlab.core.net``. Each run keeps its own learning rate, loss threshold and length; a batch trains to
the longest ``max_steps`` and reads every run out at its own end, so runs that differ only in ``max_steps``
can share one trajectory. Results are batch invariant (see ``xorlab.core.net``).

A run whose loss or parameters become non-finite is *diverged* at that step: its state is frozen (recorded
as it was, non-finite values included) and it stops changing, while the others go on. Overflow is exactly how
divergence shows, so floating-point overflow/invalid flags are silenced inside the step loop and divergence
is detected explicitly with ``np.isfinite`` instead. Division by zero cannot occur and is not silenced.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xorlab.core.activations import ACTIVATIONS
from xorlab.core.data import N_POINTS, X, Y
from xorlab.core.modes import TAIL
from xorlab.core.net import Forward, Params, backward, forward, update
from xorlab.core.outcome import correct_side
from xorlab.engine.results import NO_STEP, Trace


def _params_finite(p: Params) -> np.ndarray:
    return (
        np.isfinite(p.w1).all(axis=(0, 1))
        & np.isfinite(p.b1).all(axis=0)
        & np.isfinite(p.w2).all(axis=0)
        & np.isfinite(p.b2)
    )


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

    def __call__(self, t: int, p: Params, f: Forward, lr: np.ndarray, lr_output: np.ndarray) -> None:
        bad = ~(np.isfinite(f.loss) & _params_finite(p)) & (self.step == NO_STEP)
        if bad.any():
            if self.state is None:
                self.state = Params(*(a.copy() for a in p.arrays()))
            for dst, src in zip(self.state.arrays(), p.arrays(), strict=True):
                dst[..., bad] = src[..., bad]
                src[..., bad] = 0.0
            self.loss[bad], self.yhat[:, bad], self.step[bad], lr[bad], lr_output[bad] = (
                f.loss[bad],
                f.yhat[:, bad],
                t,
                0.0,
                0.0,
            )
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
    lr_output: np.ndarray | None = None,
    activation: str = "tanh",
) -> Trace:
    """Train L lanes from ``start`` (at step ``t0``) to the last ``run_end``; read out run r at ``run_end[r]``.

    The numpy reference engine. At each step t: the notebook's forward pass (the loss printed before the
    update), freeze lanes that went non-finite, the solve check, logging and read-out, then — unless t is the
    horizon — the notebook's backward pass and update. ``lr`` and ``threshold`` are per lane; with
    ``lr_output`` (per lane), ``lr`` is the hidden layer's rate and ``lr_output`` the output layer's. Every lane
    has the hidden width of ``start`` and the hidden ``activation``.
    """
    p = Params(*(a.copy() for a in start.arrays()))
    lanes = p.b2.shape[0]
    lr = np.array(lr, dtype=np.float64)
    lr_out = lr.copy() if lr_output is None else np.array(lr_output, dtype=np.float64)
    threshold = np.asarray(threshold, dtype=np.float64)
    run_lane, run_end = np.asarray(run_lane, dtype=np.int64), np.asarray(run_end, dtype=np.int64)
    horizon = int(run_end.max())
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; allowed: {', '.join(ACTIVATIONS)}")
    solved = np.full(lanes, NO_STEP, dtype=np.int64) if first_solved0 is None else first_solved0.copy()
    freeze = _Freezer(lanes)
    record = _Recorder(lanes, run_lane, run_end, log_every, t0)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is how divergence shows; see module doc
        for t in range(t0, horizon + 1):
            f = forward(p, X, Y, activation)  # yhat and mean BCE before this step's update
            freeze(t, p, f, lr, lr_out)
            newly = correct_side(f.yhat, Y) & (f.loss < threshold) & (solved == NO_STEP) & (freeze.step == NO_STEP)
            solved[newly] = t
            record(t, f, lambda: freeze.params(p))
            if t == horizon:
                break
            update(p, backward(p, f, X, Y, activation), lr, lr_out)  # p -= lr * grad of the summed BCE, per layer
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
