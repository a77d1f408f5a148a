"""The behaviour taxonomy of ``xorlab.core.modes``: hand-built network states for every mode, synthetic loss windows
for the trend/period detector, edge cases, and two real cases found in studies (the lr = 2 attractor and the
orthogonal seed-198 run once mislabelled ``ln2``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xorlab.core.config import TrainConfig
from xorlab.core.data import POINT_LABELS, X, Y
from xorlab.core.modes import MARGIN, MODES, SAT_Z, TAIL, TIE_TOL, TRENDS, behaviour
from xorlab.core.net import Params, forward
from xorlab.core.outcome import PLATEAUS
from xorlab.engine.batch import train_batch

WINDOW = TAIL + 1  # the tail plus the final loss
POINTS = [f"point_{p}" for p in POINT_LABELS]
# Three saturated ±1 features (x2, x1 and AND of the inputs, |z1| = 10 on every point) plus a bias span every
# function on the four points, so any target logits can be built exactly from real weights.
FEATURE_W1 = np.array([[0.0, -20.0, 20.0, 0.0], [20.0, 0.0, 20.0, 0.0]])
FEATURE_B1 = np.array([[-10.0, 10.0, -30.0, 0.0]])


def net(logits: tuple[float, float, float, float], dead4: bool = False) -> dict[str, np.ndarray]:
    """Notebook-shaped weights whose output logits on 00, 01, 10, 11 are ``logits``.

    Units 0-2 are saturated features; unit 3 is unused (z1 = 0, live) or, with ``dead4``, a saturated constant.
    """
    b1 = FEATURE_B1.copy()
    if dead4:
        b1[0, 3] = 2 * SAT_Z
    feats = np.tanh(X @ FEATURE_W1 + b1)[:, :3]
    coef = np.linalg.solve(np.column_stack([np.ones(4), feats]), np.asarray(logits, dtype=np.float64))
    w2 = np.array([[coef[1]], [coef[2]], [coef[3]], [0.0]])
    return {"w1": FEATURE_W1.copy(), "b1": b1, "w2": w2, "b2": np.array([[coef[0]]])}


def stack_params(nets: list[dict[str, np.ndarray]]) -> Params:
    """Notebook-shaped nets -> ``Params``, run axis last (kept local: the engine's helpers are being refactored)."""
    return Params(
        w1=np.stack([n["w1"] for n in nets], axis=-1),
        b1=np.stack([n["b1"][0] for n in nets], axis=-1),
        w2=np.stack([n["w2"][:, 0] for n in nets], axis=-1),
        b2=np.array([n["b2"][0, 0] for n in nets]),
    )


def notebook_shapes(p: Params) -> dict[str, np.ndarray]:
    """``Params`` -> notebook shapes with a leading run axis (``BatchResult.params``)."""
    return {
        "w1": np.moveaxis(p.w1, -1, 0),
        "b1": p.b1.T[:, None, :],
        "w2": p.w2.T[:, :, None],
        "b2": p.b2[:, None, None],
    }


def zero_net() -> dict[str, np.ndarray]:
    return {"w1": np.zeros((2, 4)), "b1": np.zeros((1, 4)), "w2": np.zeros((4, 1)), "b2": np.zeros((1, 1))}


def evaluate(
    nets: list[dict[str, np.ndarray]], windows: list[np.ndarray] | None = None, threshold: float = 0.05, **kw
) -> dict[str, np.ndarray]:
    """Forward the nets with xorlab.core.net, then ``behaviour``.

    Without ``windows`` the loss stayed at its final value (a flat tail). A synthetic window, (WINDOW,) per net,
    replaces tail *and* final loss (tail = window[:-1], final loss = window[-1]) so the series stays continuous.
    """
    f = forward(stack_params(nets), X, Y, kw.get("activation", "tanh"))
    if windows is None:
        loss, tail = f.loss, np.repeat(f.loss[:, None], TAIL, axis=1)
    else:
        w = np.asarray(windows, dtype=np.float64)
        loss, tail = w[:, -1], w[:, :-1]
    stacked = {k: np.stack([n[k] for n in nets]) for k in nets[0]}
    return behaviour(f.yhat.T, stacked, loss, tail, threshold=threshold, **kw)


def cycle(values: list[float], n: int = WINDOW) -> np.ndarray:
    return np.resize(np.asarray(values, dtype=np.float64), n)


HAND_BUILT = [
    (zero_net(), "saddle_ln2", "uuuu"),
    (net((-6, 6, 6, -6)), "solved", "rrrr"),
    (net((-1, 1, 1, -1)), "slow", "rrrr"),
    (net((-6, 6, 0, 0)), "half_undecided", "rruu"),
    (net((-6, math.log(2), math.log(2), math.log(2))), "three_tied", "rrrw"),
    (net((-5, 5, 5, 5)), "one_wrong", "rrrw"),  # OR instead of XOR: 11 confidently wrong at 0.993
    (net((-2, 2, 2, 0.2)), "one_undecided", "rrru"),
    (net((-2, 0.8, 0.4, 0.3)), "three_tied", "rruu"),  # 0.69 / 0.60 / 0.57: converging onto 0.477
    (net((-6, 6, 0.45, 0)), "half_undecided", "rruu"),  # 0.61 / 0.5 beside a confident 1.0: no tie
    (net((-5, -5, 5, 5), dead4=True), "saturated", "rwrw"),
    (net((-5, -5, 5, 5)), "other", "rwrw"),  # same pattern, one live unit: no named mode
]


@pytest.mark.parametrize(("state", "mode", "points"), HAND_BUILT)
def test_hand_built_states_get_their_mode(state, mode, points):
    cols = evaluate([state])
    assert cols["mode"][0] == mode
    names = {"r": "right", "w": "wrong", "u": "undecided"}
    assert [cols[p][0] for p in POINTS] == [names[c] for c in points]


def test_plateau_states_sit_on_their_plateau_loss():
    cols = evaluate([zero_net(), net((-30, 30, 0, 0)), net((-30, *[math.log(2)] * 3))])
    assert cols["plateau_loss"] == pytest.approx([PLATEAUS["ln2"], PLATEAUS["ln2/2"], PLATEAUS["0.477"]])
    assert cols["plateau_distance"] == pytest.approx([0, 0, 0], abs=1e-9)
    assert list(cols["trend"]) == ["flat"] * 3 and list(cols["period"]) == [0] * 3


def test_saturated_units_counts_dead_tanh_on_all_four_points():
    assert list(evaluate([zero_net(), net((-5, 5, 5, 5)), net((-5, 5, 5, 5), dead4=True)])["saturated_units"]) == [
        0,
        3,
        4,
    ]
    # Exactly at the bound counts; a unit saturated on only three points does not (|z1| = 0 at 00 below).
    edge = zero_net() | {"b1": np.full((1, 4), SAT_Z)}
    partial = zero_net() | {"w1": np.full((2, 4), 10.0)}
    assert list(evaluate([edge, partial])["saturated_units"]) == [4, 0]
    # Huge w1 (a too-large first step): every unit dead, outputs tied and wrong -> saturated, not a plateau name.
    huge = net((-5, -5, 5, 5), dead4=True) | {"w1": FEATURE_W1 * 1e6, "b1": FEATURE_B1 * 1e6 + [0, 0, 0, 1e6]}
    cols = evaluate([huge])
    assert cols["saturated_units"][0] == 4 and cols["mode"][0] == "saturated"


def test_saturated_all_right_run_is_slow_or_solved_not_saturated():
    cols = evaluate([net((-1, 1, 1, -1), dead4=True), net((-6, 6, 6, -6), dead4=True)])
    assert list(cols["saturated_units"]) == [4, 4]
    assert list(cols["mode"]) == ["slow", "solved"]


def test_params_run_axis_last_gives_the_same_columns():
    nets = [zero_net(), net((-5, 5, 5, 5)), net((-5, -5, 5, 5), dead4=True)]
    p = stack_params(nets)
    f = forward(p, X, Y)
    tail = np.repeat(f.loss[:, None], TAIL, axis=1)
    a = behaviour(f.yhat.T, p, f.loss, tail, threshold=0.05)
    b = behaviour(f.yhat.T, notebook_shapes(p), f.loss, tail, threshold=0.05)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_batch_equals_one_by_one():
    nets = [
        zero_net(),
        net((-6, 6, 6, -6)),
        net((-1, 1, 1, -1)),
        net((-6, 6, 0, 0)),
        net((-5, 5, 5, 5)),
        net((-5, -5, 5, 5), dead4=True),
    ]
    tails = [
        cycle([1.0]),
        cycle([0.01]),
        np.linspace(0.4, 0.3, WINDOW),
        cycle([0.35]),
        cycle([1.238, 1.2337]),
        cycle([2.45, 3.72, 1.23]),
    ]
    whole = evaluate(nets, tails)
    for i in range(len(nets)):
        one = evaluate([nets[i]], [tails[i]])
        for k in whole:
            assert whole[k][i] == one[k][0], (k, i)
    assert set(whole["mode"]) <= set(MODES) and set(whole["trend"]) <= set(TRENDS)


# --- trend and period over the loss window ---------------------------------------------------------------------


@pytest.mark.parametrize("p", range(2, 9))
def test_period_2_to_8_detected(p):
    rng = np.random.default_rng(p)
    phase = list(1.0 + rng.uniform(0, 1, p))
    cols = evaluate([net((-5, 5, 5, 5))], [cycle(phase) + rng.normal(0, 1e-4, WINDOW)])
    assert cols["trend"][0] == "cycling" and cols["period"][0] == p


def test_lr2_attractor_period2_is_cycling_but_still_one_wrong():
    cols = evaluate([net((-5, 5, 5, 5))], [cycle([1.2380, 1.2337])])
    assert (cols["trend"][0], cols["period"][0], cols["mode"][0]) == ("cycling", 2, "one_wrong")
    assert cols["swing"][0] == pytest.approx(0.0043, abs=1e-3)


def test_large_cycle_is_oscillating_whatever_the_end_snapshot():
    cols = evaluate([net((-5, 5, 5, 5)), zero_net()], [cycle([2.45, 3.72, 1.227]), cycle([0.69, 1.5])])
    assert list(cols["mode"]) == ["oscillating", "oscillating"]  # never saddle_ln2 for the zero net mid-cycle
    assert list(cols["period"]) == [3, 2]


@pytest.mark.parametrize(
    ("tail", "trend"),
    [
        (1.0 / np.arange(1000, 1000 + WINDOW), "decreasing"),  # slow 1/t decay: not a period-2 "cycle"
        (0.5 * np.exp(-np.arange(WINDOW) / 10), "decreasing"),
        (np.linspace(0.3, 0.6, WINDOW), "increasing"),
        (np.full(WINDOW, 0.693), "flat"),
        (0.693 + 1e-5 * np.random.default_rng(0).normal(size=WINDOW), "flat"),  # jitter < FLAT_RTOL of the level
        (np.random.default_rng(1).uniform(0.5, 3.0, WINDOW), "erratic"),
        (np.linspace(1.0, 0.5, WINDOW) + cycle([0.0, 0.2]), "cycling"),  # ripple dominating a slow drift
        (3.0 - 0.03 * np.arange(WINDOW) + cycle([0.0, 0.2]), "erratic"),  # lag-2 gap 0.06 = 0.3·step: no cycle
        (np.full(WINDOW, np.nan), "unknown"),
    ],
)
def test_trend(tail, trend):
    cols = evaluate([net((-1, 1, 1, -1))], [tail])
    assert cols["trend"][0] == trend
    assert (cols["period"][0] > 0) == (trend == "cycling")


def test_losses_near_the_float_limit_do_not_overflow_into_flat():
    # Saturated runs at lr ≈ 5e307 cycle between losses of order 1e307..1e308.
    cols = evaluate([net((-5, -5, 5, 5), dead4=True)] * 2, [cycle([1e308, 1e306]), cycle([1.7e308, 1e308, 1e307])])
    assert list(cols["trend"]) == ["cycling", "cycling"] and list(cols["period"]) == [2, 3]


def test_missing_leading_losses_are_ignored():
    # A continued run or one shorter than the window: NaN before its start.
    window = cycle([1.2380, 1.2337])
    window[:40] = np.nan
    cols = evaluate([net((-5, 5, 5, 5))], [window])
    assert (cols["trend"][0], cols["period"][0]) == ("cycling", 2)
    window[:-5] = np.nan  # 4 tail losses + the final one < MIN_VALID
    assert evaluate([net((-5, 5, 5, 5))], [window])["trend"][0] == "unknown"


# --- edge cases ------------------------------------------------------------------------------------------------


def test_diverged_inputs_nan_inf_without_warnings():
    nets = [zero_net() | {"w1": np.full((2, 4), np.inf)}, zero_net(), zero_net()]
    p = stack_params(nets)
    yhat = np.array([[np.nan] * 4, [0.5] * 4, [0.5] * 4])
    loss = np.array([np.nan, np.inf, math.log(2)])
    tail = np.vstack([np.r_[np.linspace(1, 1e300, TAIL - 2), np.inf, np.nan]] + [np.full(TAIL, np.nan)] * 2)
    cols = behaviour(yhat, p, loss, tail, threshold=0.05, diverged=np.array([False, False, True]))
    assert list(cols["mode"]) == ["diverged"] * 3
    assert [cols[p][0] for p in POINTS] == ["nan"] * 4
    assert np.isnan(cols["plateau_loss"][:2]).all() and np.isnan(cols["plateau_distance"][:2]).all()
    assert cols["trend"][0] == "increasing" and cols["trend"][1] == "unknown"


def test_point_margin_is_strict():
    # Exactly at 0.5 ± MARGIN a point is decided; just inside it is undecided.
    inside = np.nextafter(0.5 + MARGIN, 0.0)
    yhat = np.array([[0.5 - MARGIN, 0.5 + MARGIN, 0.5 - MARGIN, 0.5 + MARGIN], [0.5, inside, 0.5, 0.5]])
    loss = np.array([0.5, 0.6])
    cols = behaviour(
        yhat, notebook_shapes(stack_params([zero_net()] * 2)), loss, np.repeat(loss[:, None], TAIL, 1), threshold=0.05
    )
    assert [cols[p][0] for p in POINTS] == ["right", "right", "wrong", "wrong"]
    assert [cols[p][1] for p in POINTS] == ["undecided"] * 4
    assert list(cols["mode"]) == ["other", "saddle_ln2"]


def test_tie_tolerance_and_loss_threshold_edges():
    base = [0.01, 0.8125, 0.8125, 0.8125]
    ok, loose = list(base), list(base)
    ok[3] = 0.8125 - TIE_TOL  # spread exactly TIE_TOL (dyadic, exact): tied
    loose[3] = np.nextafter(0.8125 - TIE_TOL, 0.0)
    yhat = np.array([ok, loose])
    loss = np.array([0.5, 0.5])
    cols = behaviour(
        yhat, notebook_shapes(stack_params([zero_net()] * 2)), loss, np.repeat(loss[:, None], TAIL, 1), threshold=0.05
    )
    assert list(cols["mode"]) == ["three_tied", "one_wrong"]
    # Loss exactly at the threshold is slow (solved needs loss < threshold), per run thresholds accepted.
    s = evaluate([net((-3, 3, 3, -3))] * 2, threshold=np.array([0.0, 1.0]))
    f = forward(stack_params([net((-3, 3, 3, -3))]), X, Y)
    assert list(s["mode"]) == ["slow", "solved"]
    assert evaluate([net((-3, 3, 3, -3))], threshold=float(f.loss[0]))["mode"][0] == "slow"


def test_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        behaviour(np.zeros((4, 2)), stack_params([zero_net()] * 2), np.zeros(2), np.zeros((2, TAIL)), threshold=0.05)


# --- real cases from the studies ----------------------------------------------------------------------------------


def _last_losses(batch) -> np.ndarray:
    """The engine's coming ``end_tail`` from a ``log_every=1`` batch: losses at steps end-64 … end-1 per run."""
    ends = np.array([c.max_steps for c in batch.configs])
    return np.take_along_axis(batch.losses, ends[:, None] - TAIL + np.arange(TAIL), axis=1)


def _batch_behaviour(configs):
    b = train_batch(configs, log_every=1)
    return b, behaviour(
        b.predictions, b.params, b.final_loss, _last_losses(b), threshold=0.05, diverged=b.status == "diverged"
    )


def test_lr2_stuck_runs_are_mostly_one_wrong():
    # Measured (seeds 0-99): 54 stuck: 41 one_wrong (76 %), 12 oscillating (period-3 cycles), 1 saturated. The
    # wrong point is 11 in 20, 10 in 10, 01 in 11 of them. All 41 were "other" ("far from every plateau").
    b, cols = _batch_behaviour([TrainConfig(lr=2.0, max_steps=3000, seed=s) for s in range(100)])
    stuck = b.status == "stuck"
    one = cols["mode"] == "one_wrong"
    assert stuck.sum() >= 40 and (one & stuck).sum() >= 0.7 * stuck.sum()
    assert set(cols["mode"][stuck]) <= {"one_wrong", "oscillating", "saturated"}
    # The attractor: one point confidently wrong (ŷ within 0.01 of the wrong label), loss ≈ 1.236.
    err = np.abs(b.predictions[one] - Y)
    assert ((err > 0.99).sum(axis=1) == 1).all() and ((err < 0.01).sum(axis=1) == 3).all()
    assert (np.abs(b.final_loss[one] - 1.236) < 0.02).all()
    assert (cols["swing"][one] < 0.02).all()
    assert set(b.plateau[one]) == {"other"}


def test_orthogonal_seed198_lr2_is_not_a_saddle():
    # 0.00 / 0.99 / 0.92 / 0.92 at loss 0.664 (old label ln2) mid-way from a period-3 cycle to the attractor.
    b, cols = _batch_behaviour([TrainConfig(lr=2.0, max_steps=2000, seed=198, init="orthogonal")])
    assert b.plateau[0] == "ln2"
    assert cols["mode"][0] == "oscillating" and cols["swing"][0] > 1
    assert "undecided" not in [cols[p][0] for p in POINTS]


def test_every_mode_has_a_hand_built_or_synthetic_case():
    # oscillating and diverged are built from loss windows / non-finite values in the tests below.
    # oscillating and diverged are built from loss windows / non-finite values, dead from ReLU states below.
    assert {m for _, m, _ in HAND_BUILT} | {"oscillating", "diverged", "dead"} == set(MODES)


def relu_net(b1: tuple[float, float, float, float]) -> dict[str, np.ndarray]:
    """w1 = -1 everywhere: z1 = b1 - x1 - x2, so a unit with b1 <= 0 is ≤ 0 on all four points (dead for ReLU)."""
    return {"w1": -np.ones((2, 4)), "b1": np.array([b1]), "w2": np.ones((4, 1)), "b2": np.zeros((1, 1))}


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_dead_units_count_relu_units_non_positive_on_all_four_points(activation):
    # all dead (z1 = 0 at 00 counts: ReLU's gradient there is 0), three dead and one live, and a unit live on one
    # point only (b1 = 0.5: z1 = 0.5 at 00) -- it is not dead
    nets = [relu_net((0, -1, -2, -0.5)), relu_net((0, -1, -2, 3)), relu_net((0.5, 0.5, 0.5, 0.5))]
    cols = evaluate(nets, activation=activation)
    assert list(cols["dead_units"]) == [4, 3, 0]
    assert list(cols["saturated_units"]) == [0, 0, 0]  # ReLU units do not saturate
    assert cols["mode"][0] == "dead" and "dead" not in set(cols["mode"][1:])
    # the same states as tanh units: nothing dead, nothing saturated (|z1| < 4)
    tanh = evaluate(nets)
    assert list(tanh["dead_units"]) == [0, 0, 0] and list(tanh["saturated_units"]) == [0, 0, 0]


def test_sigmoid_units_saturate_at_twice_the_tanh_bound():
    # sigmoid(z) = (1 + tanh(z/2)) / 2: |z1| >= 8 is the saturation |z1| >= 4 is for tanh
    at = zero_net() | {"b1": np.full((1, 4), 2 * SAT_Z)}
    below = zero_net() | {"b1": np.full((1, 4), 2 * SAT_Z - 0.5)}
    cols = evaluate([at, below], activation="sigmoid")
    assert list(cols["saturated_units"]) == [4, 0]
    assert list(evaluate([below])["saturated_units"]) == [4]  # as tanh units, 7.5 is saturated


def test_modes_table_is_documented():
    assert list(MODES)[:2] == ["diverged", "solved"] and list(MODES)[-1] == "other"
    assert all(isinstance(v, str) and v and "\n" not in v for v in MODES.values())
