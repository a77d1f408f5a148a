"""An independent, deliberately naive re-implementation of the notebook's network, for tests to compare with.

Written from the notebook's formulas (``/work/shared/reference/xor_notebook.txt``), one run at a time, in the
notebook's (points, units) matrix layout with ``@``, and sharing no code with ``xorlab.core.net``. Only for moderate
weights: like the notebook, it takes ``log(yhat)`` and would produce ``log(0)`` once the sigmoid saturates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)  # the notebook's x
Y = np.array([[0], [1], [1], [0]], dtype=np.float64)  # the notebook's y, (4, 1)


def tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def bce(yhat: np.ndarray, y: np.ndarray) -> float:
    """The notebook's loss: ``-(mean(y log yhat) + mean((1-y) log(1-yhat)))``."""
    return float(-(np.mean(y * np.log(yhat)) + np.mean((1 - y) * np.log(1 - yhat))))


@dataclass
class Net:
    """One network in notebook shapes: w1 (2,4), b1 (1,4), w2 (4,1), b2 (1,1)."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    @classmethod
    def from_params(cls, params: dict[str, np.ndarray]) -> Net:
        return cls(*(np.array(params[k], dtype=np.float64) for k in ("w1", "b1", "w2", "b2")))

    def forward(self, x: np.ndarray = X, y: np.ndarray = Y) -> tuple[np.ndarray, float]:
        self.a1 = tanh(x @ self.w1 + self.b1)  # (4, 4)
        self.yhat = sigmoid(self.a1 @ self.w2 + self.b2)  # (4, 1)
        return self.yhat, bce(self.yhat, y)

    def backward(self, x: np.ndarray = X, y: np.ndarray = Y) -> dict[str, np.ndarray]:
        dz2 = self.yhat - y  # (4, 1)
        dz1 = (dz2 @ self.w2.T) * (1 - self.a1**2)  # (4, 4)
        return {
            "w1": x.T @ dz1,
            "b1": dz1.sum(axis=0, keepdims=True),
            "w2": self.a1.T @ dz2,
            "b2": dz2.sum(axis=0, keepdims=True),
        }

    def step(self, lr: float) -> float:
        """forward, backward, update (the notebook's loop body); returns the loss before the update."""
        _, loss = self.forward()
        grads = self.backward()
        for name, g in grads.items():
            getattr(self, name)[...] -= lr * g
        return loss

    def params(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k).copy() for k in ("w1", "b1", "w2", "b2")}


def run(
    params: dict[str, np.ndarray], lr: float, max_steps: int, lr_output: float | None = None
) -> tuple[np.ndarray, np.ndarray, Net]:
    """Train naively; return losses before each update (max_steps,), predictions at t = 0..max_steps
    (max_steps + 1, 4), and the final net. With ``lr_output``, w2 and b2 step with that rate, w1 and b1 with ``lr``."""
    rates = {"w1": lr, "b1": lr, "w2": lr if lr_output is None else lr_output}
    rates["b2"] = rates["w2"]
    net = Net.from_params(params)
    losses, preds = [], []
    for _ in range(max_steps):
        yhat, loss = net.forward()
        preds.append(yhat[:, 0])
        losses.append(loss)
        for name, g in net.backward().items():
            getattr(net, name)[...] -= rates[name] * g
    yhat, _ = net.forward()
    preds.append(yhat[:, 0])
    return np.array(losses), np.array(preds), net
