"""Failure taxonomy from behaviour: what a run's end state *looks like*, not only which plateau its loss is near.

``behaviour`` reads, per run, the end-of-run state the engine reports (predictions, first-layer parameters, final
loss and the last ``TAIL`` per-step losses) and returns per-run columns:

- ``point_00 … point_11``: each XOR point ``right`` / ``wrong`` / ``undecided`` (``|ŷ - 0.5| < MARGIN``), or
  ``nan`` for a non-finite prediction;
- ``trend`` of the loss over the *window* (the tail plus the final loss, steps end-64 … end):
  ``flat`` / ``decreasing`` / ``increasing`` / ``cycling`` (repeats with a period 2 … 8) / ``erratic`` /
  ``unknown`` (too few finite losses), see ``TRENDS``; ``period`` (0 = none) and ``swing`` (max - min, nats);
- ``saturated_units``: hidden units saturated on all four points (tanh ``|z1| ≥ SAT_Z``, sigmoid ``|z1| ≥ 8``;
  0 … width; always 0 for the ReLU family, whose units cannot saturate); ``dead_units``: ReLU-family hidden
  units with ``z1 ≤ 0`` on all four points (always 0 for tanh and sigmoid); see ``xorlab.core.activations``;
- ``plateau_loss`` / ``plateau_distance``: the nearest loss plateau of ``xorlab.core.outcome.PLATEAUS`` and how far
  the final loss is from it (NaN if the loss is not finite);
- ``mode``: the first name of ``MODES`` (in order: the precedence) whose definition the run meets.

Everything is vectorised over the run axis; NaN/inf inputs (diverged runs) are expected and handled. From the
engine's ``Trace`` (CONTRACT): ``behaviour(t.end_yhat.T, t.end_params, t.end_loss, t.end_tail, threshold=...)``.
The constants below carry their definitions and the reasons for their values; docs/explanation/failure-modes.md
has the table of modes.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from xorlab.core.activations import ACTIVATIONS, stuck_units
from xorlab.core.data import POINT_LABELS, X, Y
from xorlab.core.net import Params
from xorlab.core.outcome import PLATEAUS

TAIL = 64  # per-step losses the engine keeps before each run's end (CONTRACT: Trace.end_tail)
#: A point is *undecided* when |ŷ - 0.5| < MARGIN (strictly; exactly at the margin it is right or wrong), i.e.
#: ŷ in (0.375, 0.625), |logit| < 0.51. The 0.477 plateau's shared output 2/3 stays decided. Margins are dyadic
#: so that "exactly at the margin" is exact in float64 (0.6 - 0.5 is not 0.1).
MARGIN = 0.125
#: Three outputs are *tied* when max - min ≤ TIE_TOL and each |ŷ - 0.5| < TIE_CAP (ŷ in (0.125, 0.875)).
#: TIE_TOL ≤ 2·MARGIN makes a tie (it always mixes both labels) unable to be all right; 0.125 also catches runs
#: still converging onto the 0.477 plateau (e.g. 0.68 / 0.60 / 0.58). The cap keeps saturated outputs (0.993
#: and 1.0 at the lr = 2 attractor) from counting as a tie: they are saturated, not held by a plateau.
TIE_TOL = 0.125
TIE_CAP = 0.375
#: A hidden unit is saturated (dead) when |z1| ≥ SAT_Z on all four points: tanh'(4) = 1.3e-3, so it passes
#: < 0.14 % of the gradient to w1 and b1 and acts as a fixed ±1 step feature.
SAT_Z = 4.0
#: Window trend tolerances (nats). Flat: max - min ≤ FLAT_RTOL·mean|loss| + FLAT_ATOL.
FLAT_RTOL = 1e-3
FLAT_ATOL = 1e-12
#: Cycling with period p: max |L[t] - L[t-p]| ≤ CYCLE_RTOL · mean |L[t] - L[t-1]| over the whole window, with at
#: least 2p pairs compared; the smallest such p in PERIODS. Referencing the one-step change (not the swing)
#: keeps a monotone curve from passing as a cycle (there |L[t] - L[t-2]| ≈ 2 |L[t] - L[t-1]|).
CYCLE_RTOL = 0.1
PERIODS = range(2, 9)
#: Monotone (decreasing/increasing): total variation Σ|ΔL| ≤ MONO_FACTOR · |last - first|; else erratic.
MONO_FACTOR = 1.5
#: Fewer finite losses than this in the window: trend ``unknown``.
MIN_VALID = 8
#: A cycling or erratic window swinging by ≥ OSC_SWING nats is *oscillating*: the end predictions are one
#: phase of a cycle, so no prediction pattern names the run. Smaller cycles (the lr = 2 attractor swings by
#: 0.004 around 1.236) keep their pattern.
OSC_SWING = 0.1

POINT_STATES = ("right", "wrong", "undecided", "nan")
TRENDS: dict[str, str] = {
    "flat": f"max - min of the window ≤ {FLAT_RTOL:g}·mean|loss| + {FLAT_ATOL:g}",
    "cycling": f"not flat; the window repeats with a period p in 2..8 (to {CYCLE_RTOL:g} of the mean step change)",
    "decreasing": f"not flat or cycling; nearly monotone (Σ|ΔL| ≤ {MONO_FACTOR:g}·|net change|) and going down",
    "increasing": "as decreasing, going up",
    "erratic": "not flat, cycling or monotone: up and down without a period ≤ 8",
    "unknown": f"fewer than {MIN_VALID} finite losses in the window",
}
#: Named modes in precedence order (a run gets the first whose definition it meets), for reports. "right",
#: "wrong", "undecided" are the per-point states above. Structural facts come first (non-finite, solved, a dead
#: hidden layer, a large oscillation, whose end snapshot is only one phase); the prediction patterns after them
#: never contradict the predictions, and "saturated" never takes a run whose four points are all right.
MODES: dict[str, str] = {
    "diverged": "a loss, prediction or parameter became non-finite",
    "solved": "all four points on the correct side of 0.5 and final loss < loss_threshold (status solved)",
    "saturated": f"all four hidden units saturated (|z1| ≥ {SAT_Z:g} on every point) and some point not right",
    "dead": "every hidden unit dead (ReLU family: z1 ≤ 0 on every point) and some point not right",
    "oscillating": f"the loss window oscillates (cycling or erratic) with swing ≥ {OSC_SWING:g} nats",
    "slow": "all four points right, final loss ≥ loss_threshold",
    "saddle_ln2": f"all four points undecided (|ŷ - 0.5| < {MARGIN:g}: the symmetric saddle, loss ≈ ln 2)",
    "three_tied": f"three outputs tied within {TIE_TOL:g} (each |ŷ - 0.5| < {TIE_CAP:g}), the fourth right (≈ 0.477)",
    "half_undecided": "two points undecided, the other two right (the ln 2 / 2 plateau)",
    "one_wrong": "three points right, one wrong (the lr = 2 attractor: one point at ≈ 0.993 / 0.007)",
    "one_undecided": "three points right, one undecided (typically still learning the last point)",
    "other": "none of the above",
}


def hidden_preactivations(params: Params | Mapping[str, np.ndarray]) -> np.ndarray:
    """z1 = x @ w1 + b1 on the four XOR points.

    Parameters
    ----------
    params : either ``xorlab.core.net.Params`` (run axis last: w1 (2, H, R), b1 (H, R)) or a mapping in notebook
        shapes with a leading run axis (``BatchResult.params``: w1 (R, 2, H), b1 (R, 1, H)). Only w1 and b1
        are read.

    Returns
    -------
    (R, 4, H) array: run, point (XOR order), hidden unit.
    """
    if isinstance(params, Params):
        w1, b1 = np.moveaxis(params.w1, -1, 0), np.moveaxis(params.b1, -1, 0)[:, None, :]
    else:
        w1, b1 = np.asarray(params["w1"], dtype=np.float64), np.asarray(params["b1"], dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # diverged runs carry inf/NaN parameters
        return X[None, :, 0, None] * w1[:, None, 0] + X[None, :, 1, None] * w1[:, None, 1] + b1


def _window_trend(window: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(R, W) losses (non-finite = missing) -> trend (R,) str, period (R,) int64, swing (R,) float."""
    r, w = window.shape
    valid = np.isfinite(window)
    n_valid = valid.sum(axis=1)
    filled = np.where(valid, window, 0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        swing = np.where(valid, window, -np.inf).max(axis=1) - np.where(valid, window, np.inf).min(axis=1)
        # Means as sums of terms already divided by the count: losses near 1e308 (lr ≈ 5e307) must not overflow.
        level = (np.abs(filled) / np.maximum(n_valid, 1)[:, None]).sum(axis=1)
        pair1 = valid[:, 1:] & valid[:, :-1]
        n_pairs = np.maximum(pair1.sum(axis=1), 1)
        step = np.where(pair1, np.abs(filled[:, 1:] - filled[:, :-1]), 0.0)
        mean_step = (step / n_pairs[:, None]).sum(axis=1)
        period = np.zeros(r, dtype=np.int64)
        complete = bool(valid.all())  # the usual window: no masking needed
        for p in PERIODS:  # smallest period first; a period-2 cycle also repeats at 4, 6, 8
            gap = np.abs(filled[:, p:] - filled[:, :-p])
            if complete:
                hit = (period == 0) & (w - p >= 2 * p) & (gap.max(axis=1, initial=0.0) <= CYCLE_RTOL * mean_step)
            else:
                pairs = valid[:, p:] & valid[:, :-p]
                gap = np.where(pairs, gap, 0.0).max(axis=1, initial=0.0)
                hit = (period == 0) & (pairs.sum(axis=1) >= 2 * p) & (gap <= CYCLE_RTOL * mean_step)
            period[hit] = p
        idx = np.arange(w)
        first = np.where(valid, idx, w).min(axis=1).clip(max=w - 1)
        last = np.where(valid, idx, -1).max(axis=1).clip(min=0)
        net = filled[np.arange(r), last] - filled[np.arange(r), first]
        flat = swing <= FLAT_RTOL * level + FLAT_ATOL
        monotone = mean_step <= MONO_FACTOR * (np.abs(net) / n_pairs)  # total variation ≤ MONO_FACTOR·|net|
    trend = np.select(
        [n_valid < MIN_VALID, flat, period > 0, monotone & (net < 0), monotone],
        ["unknown", "flat", "cycling", "decreasing", "increasing"],
        "erratic",
    ).astype(object)
    period[(n_valid < MIN_VALID) | flat] = 0
    swing[n_valid == 0] = np.nan
    return trend, period, swing


def behaviour(
    yhat: np.ndarray,
    params: Params | Mapping[str, np.ndarray],
    final_loss: np.ndarray,
    tail: np.ndarray,
    *,
    threshold: float | np.ndarray,
    diverged: np.ndarray | None = None,
    activation: str | np.ndarray = "tanh",
    width: int | np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Per-run behaviour columns and named failure mode of R runs; see the module docstring and ``MODES``.

    Parameters
    ----------
    yhat : (R, 4) final predictions, XOR order 00, 01, 10, 11 (``BatchResult.predictions``; an engine
        ``Trace.end_yhat`` is (4, R): pass its ``.T``).
    params : final parameters, ``Params`` (run axis last) or notebook shapes with a leading run axis; see
        ``hidden_preactivations``. Only w1 and b1 are used.
    final_loss : (R,) loss of the final state (the state ``yhat`` comes from).
    tail : (R, T) per-step losses just before the end (T = ``TAIL`` = 64 from the engine; steps end-T … end-1).
        Non-finite entries (steps before the run's start, a frozen diverged loss) are treated as missing.
    threshold : scalar or (R,) ``loss_threshold`` of each run.
    diverged : optional (R,) bool, the engine's divergence flag; a run with a non-finite loss, prediction,
        w1 or b1 counts as diverged either way.
    activation : the hidden activation, one name or (R,) names (``xorlab.core.activations``).
    width : (R,) hidden units of each run when ``params`` are padded to a wider batch's H (units ≥ width are
        padding and ignored); None: every unit is real.

    Returns
    -------
    dict of (R,) arrays: ``point_00 … point_11``, ``trend``, ``mode`` (object arrays of str), ``period``,
    ``saturated_units``, ``dead_units`` (int64), ``swing``, ``plateau_loss``, ``plateau_distance`` (float64).
    """
    yhat = np.asarray(yhat, dtype=np.float64)
    final_loss = np.asarray(final_loss, dtype=np.float64)
    tail = np.asarray(tail, dtype=np.float64)
    r = final_loss.shape[0]
    if yhat.shape != (r, 4) or tail.ndim != 2 or tail.shape[0] != r:
        raise ValueError(
            f"need yhat (R, 4), final_loss (R,), tail (R, T); got {yhat.shape}, {final_loss.shape}, {tail.shape}"
        )
    z1 = hidden_preactivations(params)
    if z1.shape[:2] != (r, 4):
        raise ValueError(f"params hold {z1.shape[0]} runs, expected {r}")
    units = np.full(r, z1.shape[2]) if width is None else np.broadcast_to(np.asarray(width, dtype=np.int64), (r,))
    real = np.arange(z1.shape[2])[None, :] < units[:, None]  # (R, H): not padding
    acts = np.broadcast_to(np.asarray(activation, dtype=object), (r,))

    with np.errstate(invalid="ignore"):  # NaN predictions compare False: neither right nor wrong
        signed = np.where(Y > 0.5, yhat - 0.5, 0.5 - yhat)  # > 0 on the correct side
        nan = ~np.isfinite(yhat)
        undecided = ~nan & (np.abs(signed) < MARGIN)
        right = ~nan & ~undecided & (signed > 0)
        wrong = ~nan & ~undecided & ~right
    states = np.select([right, wrong, undecided], ["right", "wrong", "undecided"], "nan").astype(object)
    saturated_units, dead_units = np.zeros(r, dtype=np.int64), np.zeros(r, dtype=np.int64)
    for name in np.unique(acts) if r else ():  # (R, H) stuck on all four points, counted over real units
        rows = acts == name
        stuck = (stuck_units(z1[rows], name) & real[rows]).sum(axis=1)
        (dead_units if ACTIVATIONS[name].family == "relu" else saturated_units)[rows] = stuck

    trend, period, swing = _window_trend(np.concatenate([tail, final_loss[:, None]], axis=1))

    levels = np.array(list(PLATEAUS.values()))
    with np.errstate(invalid="ignore"):
        dist = np.abs(final_loss[:, None] - levels[None, :])
    finite_loss = np.isfinite(final_loss)
    nearest = dist.argmin(axis=1)
    plateau_loss = np.where(finite_loss, levels[nearest], np.nan)
    plateau_distance = np.where(finite_loss, dist[np.arange(r), nearest], np.nan)

    is_diverged = ~finite_loss | nan.any(axis=1) | ~(np.isfinite(z1) | ~real[:, None, :]).all(axis=(1, 2))
    if diverged is not None:
        is_diverged |= np.asarray(diverged, dtype=bool)
    with np.errstate(invalid="ignore"):
        correct_side = (signed > 0).all(axis=1)
        below = final_loss < np.asarray(threshold, dtype=np.float64)
        # Three tied outputs: for each choice of the left-out point, spread and confidence of the other three.
        tied = np.zeros(r, dtype=bool)
        for out in range(4):
            three = np.delete(yhat, out, axis=1)
            spread = three.max(axis=1) - three.min(axis=1)
            unsure = (np.abs(three - 0.5) < TIE_CAP).all(axis=1)
            tied |= (spread <= TIE_TOL) & unsure & right[:, out]
    n_right, n_wrong, n_undecided = right.sum(axis=1), wrong.sum(axis=1), undecided.sum(axis=1)
    oscillating = np.isin(trend, ("cycling", "erratic")) & (swing >= OSC_SWING)
    conditions = {
        "diverged": is_diverged,
        "solved": correct_side & below,
        "saturated": (saturated_units == units) & (n_right < 4),
        "dead": (dead_units == units) & (n_right < 4),
        "oscillating": oscillating,
        "slow": n_right == 4,
        "saddle_ln2": n_undecided == 4,
        "three_tied": tied,
        "half_undecided": (n_undecided == 2) & (n_right == 2),
        "one_wrong": (n_right == 3) & (n_wrong == 1),
        "one_undecided": (n_right == 3) & (n_undecided == 1),
    }
    names = [m for m in MODES if m != "other"]  # MODES' order is the precedence
    mode = np.select([conditions[m] for m in names], names, "other").astype(object)

    columns = {f"point_{label}": states[:, i] for i, label in enumerate(POINT_LABELS)}
    columns.update(
        trend=trend,
        period=period,
        swing=swing,
        saturated_units=saturated_units,
        dead_units=dead_units,
        plateau_loss=plateau_loss,
        plateau_distance=plateau_distance,
        mode=mode,
    )
    return columns
