"""The notebook's 2 → 4 tanh → 1 sigmoid network as pure numpy functions over a batch of N runs (any hidden
width H and any activation of ``xorlab.core.activations``; the notebook's H = 4 tanh by default).

Layout: the run axis is *last* (structure of arrays). Every formula below is then a sequence of elementwise
operations on contiguous blocks of N numbers, which is what makes a whole grid train as one array program,
and it makes results batch invariant: no BLAS call, no reduction whose order depends on N, so a run's numbers
are bit-for-bit the same alone or at any position in a batch of any size.

Shapes (P = 4 XOR points, H = 4 hidden units, N runs)::

    w1 (2, H, N)   b1 (H, N)   w2 (H, N)   b2 (N,)      x (P, 2)   y (P,)

Forward and backward, each derivative beside its forward formula (the notebook's ``Net``)::

    z1 = x @ w1 + b1            (P, H, N)   dz1 = da1 * (1 - a1**2)        w1_grad = x.T @ dz1, b1_grad = Σ_p dz1
    a1 = tanh(z1)               (P, H, N)   da1 = dz2 ⊗ w2
    z2 = a1 @ w2 + b2           (P, N)      w2_grad = a1.T @ dz2,  b2_grad = Σ_p dz2
    yhat = sigmoid(z2)          (P, N)      dz2 = yhat - y
    loss = mean_p BCE(yhat, y)  (N,)

``dz2 = yhat - y`` is the gradient of the *summed* BCE over the 4 points, i.e. 4x the gradient of the printed
mean loss. xorlab keeps it because that is what the notebook does, so a learning rate means what it meant there
(lr = 0.1 in xorlab is lr = 0.1 in the notebook, not 0.4).

Numerical hazards of the notebook fixed without changing its numbers:

- ``tanh`` is ``np.tanh`` (the notebook's ``(e^x - e^-x)/(e^x + e^-x)`` overflows to nan for |x| > 710).
- ``sigmoid`` evaluates ``1/(1+exp(-z))`` only where z ≥ 0 (bit-identical to the notebook there) and the
  equal ``exp(z)/(1+exp(z))`` where z < 0, so ``exp`` never overflows.
- BCE is computed from the logit: ``softplus(z) - y·z = max(z, 0) - y·z + log1p(exp(-|z|))``, finite for any
  finite z, where ``log(yhat)`` of the notebook hits ``log(0) = -inf`` once the sigmoid saturates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xorlab.core.activations import ACTIVATIONS


@dataclass
class Params:
    """Parameters of N networks, run axis last: w1 (2, H, N), b1 (H, N), w2 (H, N), b2 (N,)."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.w1, self.b1, self.w2, self.b2


@dataclass
class Forward:
    """Forward-pass values kept for the backward pass."""

    a1: np.ndarray  # (P, H, N)
    z2: np.ndarray  # (P, N)
    yhat: np.ndarray  # (P, N)
    loss: np.ndarray  # (N,)


def _sum_points(a: np.ndarray) -> np.ndarray:
    """Σ over the leading axis, added strictly in order (numpy's own reductions may switch to pairwise
    summation depending on the array's shape, which would make results depend on N)."""
    out = a[0].copy()
    for i in range(1, a.shape[0]):
        out += a[i]
    return out


def forward(p: Params, x: np.ndarray, y: np.ndarray, activation: str = "tanh") -> Forward:
    """Predictions and mean BCE of N networks on the P points ``x`` with labels ``y`` (hidden units:
    ``activation``, a name of ``xorlab.core.activations.ACTIVATIONS``; the notebook's tanh by default)."""
    # z1 = x @ w1 + b1: the matmul written as a sum over inputs k, in the order BLAS would add them.
    z1 = x[:, 0, None, None] * p.w1[0]  # (P, H, N)
    for k in range(1, x.shape[1]):
        z1 += x[:, k, None, None] * p.w1[k]
    z1 += p.b1
    a1 = ACTIVATIONS[activation].forward(z1)  # (P, H, N); tanh: np.tanh(z1, out=z1)
    # z2 = a1 @ w2 + b2: sum over hidden units in a fixed order, independent of N.
    z2 = a1[:, 0] * p.w2[0]  # (P, N)
    for j in range(1, a1.shape[1]):
        z2 += a1[:, j] * p.w2[j]
    z2 += p.b2
    e = np.exp(-np.abs(z2))  # in (0, 1]: never overflows
    yhat = np.where(z2 >= 0, 1.0, e) / (1.0 + e)  # sigmoid(z2)
    # BCE from the logit; the per-point terms are summed in point order, then divided by P (np.mean's rule).
    bce = np.maximum(z2, 0.0) - y[:, None] * z2 + np.log1p(e)  # (P, N)
    loss = _sum_points(bce) / bce.shape[0]
    return Forward(a1=a1, z2=z2, yhat=yhat, loss=loss)


def backward(p: Params, f: Forward, x: np.ndarray, y: np.ndarray, activation: str = "tanh") -> Params:
    """Gradients of the summed BCE with respect to every parameter (the notebook's ``Net.backward``)."""
    dz2 = f.yhat - y[:, None]  # (P, N)
    w2_grad = _sum_points(f.a1 * dz2[:, None])  # a1.T @ dz2 -> (H, N)
    b2_grad = _sum_points(dz2)  # (N,)
    da1 = dz2[:, None] * p.w2  # dz2 @ w2.T -> (P, H, N)
    dz1 = da1 * ACTIVATIONS[activation].slope(f.a1)  # tanh' = 1 - tanh²
    w1_grad = np.stack([_sum_points(x[:, k, None, None] * dz1) for k in range(x.shape[1])])  # x.T @ dz1
    b1_grad = _sum_points(dz1)  # (H, N)
    return Params(w1=w1_grad, b1=b1_grad, w2=w2_grad, b2=b2_grad)


def update(p: Params, g: Params, lr: np.ndarray, lr_output: np.ndarray | None = None) -> None:
    """Plain gradient descent in place, ``p -= lr * g``, with one learning rate per run (``lr`` is (N,)); with
    ``lr_output``, the output layer (w2, b2) takes that rate instead and ``lr`` is the hidden layer's (w1, b1)."""
    out = lr if lr_output is None else lr_output
    for param, grad, rate in zip(p.arrays(), g.arrays(), (lr, lr, out, out), strict=True):
        param -= rate * grad
