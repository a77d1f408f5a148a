"""Tests for ``xorlab.core.outcome`` and how the engine applies it: solved / slow / stuck / diverged,
``steps_to_solve`` and plateaus, each recomputed here from the definitions."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from tests import naive_notebook as nb
from xorlab.core.config import TrainConfig
from xorlab.core.outcome import PLATEAUS, STATUSES, classify, correct_side, nearest_plateau
from xorlab.engine.batch import start_params, train, train_batch

LABELS = np.array([0, 1, 1, 0])


def all_correct(preds: np.ndarray) -> bool:
    """The definition, point by point: yhat > 0.5 where y = 1 and yhat < 0.5 where y = 0."""
    return all((p > 0.5) if y == 1 else (p < 0.5) for p, y in zip(preds, LABELS, strict=True))


def plateau_by_hand(loss: float) -> str:
    levels = {"ln2": math.log(2), "0.477": None, "ln2/2": math.log(2) / 2}
    # 0.477: three points tied at 2/3 (two labelled 1, one labelled 0), the fourth exactly right
    levels["0.477"] = -(math.log(2 / 3) + math.log(2 / 3) + math.log(1 - 2 / 3) + math.log(1)) / 4
    nearest = min(levels, key=lambda k: abs(loss - levels[k]))
    return nearest if abs(loss - levels[nearest]) <= 0.1 else "other"  # far from every plateau


# --- the pure functions -------------------------------------------------------------------------------------


def test_correct_side():
    """Guards ``correct_side``: all four points strictly on the right side of 0.5 (0.5 itself is wrong)."""
    cases = np.array(
        [
            [0.1, 0.9, 0.8, 0.2],
            [0.1, 0.9, 0.8, 0.6],
            [0.5, 0.9, 0.8, 0.2],
            [0.4, 0.5, 0.6, 0.4],
            [0.0, 1.0, 1.0, 0.0],
            [0.9, 0.1, 0.2, 0.8],
            [np.nan, 0.9, 0.8, 0.2],
        ]
    )
    got = correct_side(cases.T, LABELS.astype(float))
    assert got.tolist() == [all_correct(c) for c in cases] == [True, False, False, False, True, False, False]


def test_classify_precedence():
    """Guards ``classify``: diverged > solved (correct and loss < threshold) > slow (correct, loss ≥
    threshold) > stuck (a point wrong)."""
    diverged = np.array([False, False, False, False, True, True])
    correct = np.array([True, True, True, False, True, False])
    loss = np.array([0.01, 0.05, 0.3, 0.01, 0.01, np.nan])
    threshold = np.full(6, 0.05)
    got = classify(diverged, correct, loss, threshold).tolist()
    assert got == ["solved", "slow", "slow", "stuck", "diverged", "diverged"]
    assert set(got) == set(STATUSES)


def test_plateau_levels():
    """Guards the plateau constants against the BCE of the tied outputs they describe."""
    assert PLATEAUS["ln2"] == pytest.approx(nb.bce(np.full((4, 1), 0.5), nb.Y), rel=1e-15)
    three_tied = np.array([[1e-300], [2 / 3], [2 / 3], [2 / 3]])  # 00 right, 01/10/11 tied (y = 1, 1, 0)
    assert PLATEAUS["0.477"] == pytest.approx(nb.bce(three_tied, nb.Y), rel=1e-13)
    assert round(PLATEAUS["0.477"], 3) == 0.477
    two_right = np.array([[1e-300], [1 - 1e-16], [0.5], [0.5]])
    assert PLATEAUS["ln2/2"] == pytest.approx(nb.bce(two_right, nb.Y), rel=1e-13)


def test_nearest_plateau():
    """Guards ``nearest_plateau``: the nearest level by absolute distance; None for non-finite losses."""
    losses = np.array([0.0, 0.30, 0.40, 0.42, 0.477, 0.55, 0.60, 0.70, 5.0, np.nan, np.inf, -np.inf])
    got = nearest_plateau(losses).tolist()
    assert got[:9] == [plateau_by_hand(x) for x in losses[:9]]
    assert got[9:] == [None, None, None]
    assert {"ln2", "0.477", "ln2/2", "other"} <= set(got)


# --- steps_to_solve and status, recomputed from a naive re-run ---------------------------------------------


CONFIGS = [
    TrainConfig(lr=0.1, max_steps=400, seed=1337, init="notebook", rng="legacy", rng_skip=144),
    TrainConfig(lr=0.1, max_steps=200, seed=1337, init="notebook", rng="legacy", rng_skip=144),
    TrainConfig(lr=0.1, max_steps=200, seed=1337, init="notebook", rng="legacy", rng_skip=144, loss_threshold=0.3),
    TrainConfig(lr=0.5, max_steps=300, seed=1, init="he_normal"),
    TrainConfig(lr=0.5, max_steps=300, seed=2, init="xavier_uniform", loss_threshold=0.2),
    TrainConfig(lr=0.05, max_steps=300, seed=3, init="lecun_normal", loss_threshold=0.6),
    TrainConfig(lr=0.5, max_steps=300, seed=0, init="normal", init_params={"std": 3.0}),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.init}-lr{c.lr}-thr{c.loss_threshold}")
def test_steps_to_solve_and_status_by_definition(cfg):
    """Guards ``steps_to_solve`` (first t in 0..max_steps, t = max_steps being the state after the last
    update, where all four points are right and loss < threshold) and ``status``, recomputed from
    ``res.losses``/``final_loss`` and predictions of an independent naive re-run."""
    res = train(cfg)
    _, preds, _ = nb.run(start_params(cfg), cfg.lr, cfg.max_steps)  # preds at t = 0..max_steps
    np.testing.assert_allclose(res.predictions, preds[-1], rtol=1e-10)
    loss_at = np.append(res.losses, res.final_loss)  # loss of the state after t updates, t = 0..max_steps
    solved = [all_correct(preds[t]) and loss_at[t] < cfg.loss_threshold for t in range(cfg.max_steps + 1)]
    expected_first = solved.index(True) if any(solved) else None
    assert res.steps_to_solve == expected_first
    end_correct = all_correct(preds[-1])
    if end_correct:
        expected_status = "solved" if res.final_loss < cfg.loss_threshold else "slow"
    else:
        expected_status = "stuck"
    assert res.status == expected_status
    assert (res.plateau is not None) == (expected_status == "stuck")


def test_statuses_covered_by_definition_test():
    """Guards the coverage of the test above: its configs reach solved, slow and stuck."""
    assert {train(c).status for c in CONFIGS} == {"solved", "slow", "stuck"}


def test_solved_at_last_step_counts():
    """Guards t = max_steps: a run first solved exactly after its last update is solved at max_steps; one
    step shorter it is not solved."""
    long = train(CONFIGS[0])
    s = long.steps_to_solve
    assert s is not None and s > 1
    at = train(replace(CONFIGS[0], max_steps=s))
    before = train(replace(CONFIGS[0], max_steps=s - 1))
    assert (at.status, at.steps_to_solve) == ("solved", s)
    assert before.status in ("slow", "stuck") and before.steps_to_solve is None


def test_slow_versus_solved_by_threshold():
    """Guards ``slow``: a run that ends with all points right is ``slow`` when its final loss equals the
    threshold (loss < threshold fails) and ``solved`` at the next float up, first solved at max_steps since
    its loss decreases."""
    cfg = replace(CONFIGS[0], max_steps=200)
    res = train(cfg)
    assert all_correct(res.predictions) and np.all(np.diff(res.losses) < 0) and res.final_loss < res.losses[-1]
    slow = train(replace(cfg, loss_threshold=res.final_loss))
    solved = train(replace(cfg, loss_threshold=float(np.nextafter(res.final_loss, 1.0))))
    assert (slow.status, slow.steps_to_solve) == ("slow", None)
    assert (solved.status, solved.steps_to_solve) == ("solved", 200)


def test_stuck_runs_get_nearest_plateau():
    """Guards plateaus of stuck runs (zeros: outputs tied at 0.5 -> ln2; others -> 0.477, ln2/2) and None
    for every other status."""
    cfgs = [
        TrainConfig(lr=0.5, max_steps=1000, init="zeros"),
        TrainConfig(lr=0.05, max_steps=1000, seed=0, init="normal", init_params={"std": 0.3}),
        TrainConfig(lr=0.5, max_steps=1000, seed=0, init="normal", init_params={"std": 3.0}),
        TrainConfig(lr=0.5, max_steps=1000, seed=0, init="he_normal"),
        TrainConfig(lr=1e306, max_steps=5, seed=0, init="normal", init_params={"std": 1e3}),
    ]
    res = train_batch(cfgs)
    for i in range(3):
        assert res.status[i] == "stuck" and not all_correct(res.predictions[i])
        assert res.plateau[i] == plateau_by_hand(res.final_loss[i])
    assert res.predictions[0].tolist() == [0.5] * 4 and res.final_loss[0] == pytest.approx(math.log(2), rel=1e-15)
    assert set(res.plateau[:3]) == {"ln2", "0.477", "ln2/2"}
    assert res.status[3] == "solved" and res.status[4] == "diverged"
    assert res.plateau[3] is None and res.plateau[4] is None
