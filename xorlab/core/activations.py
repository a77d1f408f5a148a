"""Hidden-layer activations: each a forward function and its derivative, written from the activation's output.

The notebook's network uses ``tanh``; ``relu``, ``leaky_relu`` (negative slope 0.01, PyTorch's default) and
``sigmoid`` make init comparisons mean what the schemes were derived for (He for ReLU, Xavier for tanh and
sigmoid). The output unit is always the notebook's sigmoid with its BCE.

==============  ==========================  ====================================  ================================
activation      a = f(z)                    f'(z), from a                         unit saturated (dead) when
==============  ==========================  ====================================  ================================
tanh            tanh z                      1 - a²  (the notebook's expression)   |z| ≥ 4 on all four points
sigmoid         1 / (1 + e^-z), stable      a (1 - a)                             |z| ≥ 8 on all four points
relu            max(z, 0)                   1 where a > 0, else 0                 z ≤ 0 on all four points (dead)
leaky_relu      z if z > 0 else 0.01 z      1 where a > 0, else 0.01              z ≤ 0 on all four points (dead)
==============  ==========================  ====================================  ================================

The derivative at z = 0 is the right-hand one for neither ReLU (0, as PyTorch) nor leaky ReLU (0.01, as
PyTorch). Saturation thresholds: tanh'(4) = 1.3e-3; sigmoid(z) = (1 + tanh(z/2))/2, so |z| ≥ 8 is the same
saturation for sigmoid units (σ'(8) = 3.4e-4 = tanh'(4)/4). A ReLU unit with z ≤ 0 on every point passes no
gradient at all (dead); a leaky one passes 1 % of it, and is counted as dead by the same rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

LEAKY_SLOPE = 0.01


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """1/(1+exp(-z)) where z ≥ 0 and exp(z)/(1+exp(z)) where z < 0: ``exp`` never overflows."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0, e) / (1.0 + e)


@dataclass(frozen=True)
class Activation:
    """One hidden activation: ``forward(z)`` (may overwrite ``z``), ``slope(a)`` = f'(z) from the output ``a``, and
    ``family`` ("saturating" or "relu"), which says whether a stuck unit is *saturated* or *dead*."""

    name: str
    forward: Callable[[np.ndarray], np.ndarray]
    slope: Callable[[np.ndarray], np.ndarray]
    family: str
    saturation_z: float = np.inf  # |z| at which a saturating unit counts as saturated


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in [
        Activation("tanh", lambda z: np.tanh(z, out=z), lambda a: 1 - a**2, "saturating", 4.0),
        Activation("sigmoid", _sigmoid, lambda a: a * (1 - a), "saturating", 8.0),
        Activation("relu", lambda z: np.maximum(z, 0.0, out=z), lambda a: (a > 0).astype(np.float64), "relu"),
        Activation(
            "leaky_relu",
            lambda z: np.where(z > 0, z, LEAKY_SLOPE * z),
            lambda a: np.where(a > 0, 1.0, LEAKY_SLOPE),
            "relu",
        ),
    ]
}
NAMES = tuple(ACTIVATIONS)


def stuck_units(z1: np.ndarray, activation: str) -> np.ndarray:
    """(R, P, H) hidden pre-activations -> (R, H) bool: the unit is saturated (tanh, sigmoid) or dead (ReLU
    family) on all four points; see the table above. Non-finite pre-activations count as neither."""
    act = ACTIVATIONS[activation]
    with np.errstate(invalid="ignore"):
        stuck = (z1 <= 0) if act.family == "relu" else (np.abs(z1) >= act.saturation_z)
    return np.asarray(stuck.all(axis=1))
