"""How a run ended: solved / slow / stuck / diverged, and which loss plateau a stuck run sits on.

Definitions (evaluated at every step t by the engine, independent of any logging interval):

- *correct*: all four predictions on the correct side of 0.5 (``yhat > 0.5`` where y = 1, ``< 0.5`` where y = 0);
- *solved at t*: correct **and** loss < ``loss_threshold``;
- ``status`` at the end (t = max_steps, the state after the last update):
  ``diverged`` (a loss or parameter became non-finite) > ``solved`` > ``slow`` (correct, loss ≥ threshold)
  > ``stuck`` (some point misclassified).
"""

from __future__ import annotations

import math

import numpy as np

STATUSES = ("solved", "slow", "stuck", "diverged")

#: Loss levels where XOR training stalls, from a network whose outputs are tied:
#: all four at 0.5 (ln 2); three points share an output of 2/3 and one is right (≈ 0.477);
#: two points right and two at 0.5 (ln 2 / 2).
PLATEAUS: dict[str, float] = {
    "ln2": math.log(2),
    "0.477": (2 * math.log(1.5) + math.log(3)) / 4,
    "ln2/2": math.log(2) / 2,
}
#: A stuck run's final loss farther than this (nats) from every plateau is labelled "other": typically a
#: network saturated by a too-large learning rate, with a loss far above ln 2.
PLATEAU_TOLERANCE = 0.1
PLATEAU_LABELS = (*PLATEAUS, "other")
PLATEAU_TEXT = {"ln2": "ln 2", "0.477": "0.477", "ln2/2": "ln 2 / 2", "other": "no plateau"}  # for prose
_PLATEAU_NAMES = np.array(list(PLATEAUS), dtype=object)
_PLATEAU_LEVELS = np.array(list(PLATEAUS.values()))


def correct_side(yhat: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(P, N) predictions -> (N,) bool: every point on the correct side of 0.5."""
    right = np.where(y[:, None] > 0.5, yhat > 0.5, yhat < 0.5)
    return np.asarray(right.all(axis=0))  # an array for any P (numpy types .all() as bool-or-array)


def classify(diverged: np.ndarray, correct: np.ndarray, loss: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """Final status per run (object array of strings from ``STATUSES``)."""
    status = np.where(correct, np.where(loss < threshold, "solved", "slow"), "stuck").astype(object)
    status[diverged] = "diverged"
    return status


def nearest_plateau(loss: np.ndarray) -> np.ndarray:
    """Label of the plateau in ``PLATEAUS`` nearest to each loss; ``"other"`` if none is within
    ``PLATEAU_TOLERANCE``; None for a non-finite loss."""
    loss = np.asarray(loss, dtype=np.float64)
    dist = np.abs(loss[:, None] - _PLATEAU_LEVELS[None, :])
    labels = _PLATEAU_NAMES[dist.argmin(axis=1)].copy()
    labels[~(dist.min(axis=1) <= PLATEAU_TOLERANCE)] = "other"
    labels[~np.isfinite(loss)] = None
    return labels
