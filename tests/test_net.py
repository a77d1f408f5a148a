"""Tests for ``xorlab.core.net``: forward, backward and update against independent computations.

The references are the notebook's formulas written naively (``naive_notebook``) and central differences of
the loss; no expected number here was copied from a previous run.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from tests import naive_notebook as nb
from xorlab.core import net
from xorlab.core.config import TrainConfig
from xorlab.core.data import X, Y
from xorlab.core.inits import SCHEMES
from xorlab.engine.batch import train

NAMES = ("w1", "b1", "w2", "b2")


def batched(runs: list[dict[str, np.ndarray]], dtype=np.float64) -> net.Params:
    """Notebook-shaped dicts -> ``net.Params`` with the run axis last, built here (not with the engine)."""
    w1 = np.zeros((2, 4, len(runs)), dtype=dtype)
    b1 = np.zeros((4, len(runs)), dtype=dtype)
    w2 = np.zeros((4, len(runs)), dtype=dtype)
    b2 = np.zeros(len(runs), dtype=dtype)
    for n, r in enumerate(runs):
        for i in range(2):
            for j in range(4):
                w1[i, j, n] = r["w1"][i, j]
        for j in range(4):
            b1[j, n] = r["b1"][0, j]
            w2[j, n] = r["w2"][j, 0]
        b2[n] = r["b2"][0, 0]
    return net.Params(w1, b1, w2, b2)


def random_runs(n: int, scale: float, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "w1": rng.standard_normal((2, 4)) * scale,
            "b1": rng.standard_normal((1, 4)) * scale / 2,
            "w2": rng.standard_normal((4, 1)) * scale,
            "b2": rng.standard_normal((1, 1)) * scale / 2,
        }
        for _ in range(n)
    ]


def notebook_grad(g: net.Params, name: str, n: int) -> np.ndarray:
    """Run ``n``'s gradient of ``name`` from batched ``Params``, in notebook shape."""
    shapes = {"w1": (2, 4), "b1": (1, 4), "w2": (4, 1), "b2": (1, 1)}
    return np.reshape(getattr(g, name)[..., n], shapes[name])


# --- forward ------------------------------------------------------------------------------------------------


def test_forward_matches_notebook_formulas():
    """Guards forward: hidden activations, predictions and mean BCE equal the notebook's formulas."""
    runs = random_runs(7, scale=1.0)
    f = net.forward(batched(runs), X, Y)
    assert f.a1.shape == (4, 4, 7) and f.yhat.shape == (4, 7) and f.loss.shape == (7,)
    for n, r in enumerate(runs):
        ref = nb.Net.from_params(r)
        yhat, loss = ref.forward()
        np.testing.assert_allclose(f.a1[..., n], ref.a1, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(f.yhat[:, n], yhat[:, 0], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(f.z2[:, n], (ref.a1 @ r["w2"] + r["b2"])[:, 0], rtol=1e-13, atol=1e-14)
        assert f.loss[n] == pytest.approx(loss, rel=1e-12, abs=1e-15)


def test_forward_saturated_is_finite_and_exact():
    """Guards the stable sigmoid/BCE: with huge weights (|z2| up to ~1e4) loss is finite and equals the
    BCE-from-logit computed independently with ``np.logaddexp``; predictions stay in [0, 1]; no warnings."""
    runs = random_runs(9, scale=2000.0, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = net.forward(batched(runs), X, Y)
    assert np.isfinite(f.loss).all()
    assert ((f.yhat >= 0) & (f.yhat <= 1)).all()
    for n, r in enumerate(runs):
        z2 = (np.tanh(X @ r["w1"] + r["b1"]) @ r["w2"] + r["b2"])[:, 0]
        expected = np.mean(np.logaddexp(0.0, z2) - Y * z2)  # softplus(z) - y z = BCE(sigmoid(z), y)
        assert f.loss[n] == pytest.approx(expected, rel=1e-12)
        np.testing.assert_array_equal(f.yhat[:, n] > 0.5, z2 > 0)
    assert np.abs(f.z2).max() > 1000  # the test really saturates the sigmoid


# --- backward and update ------------------------------------------------------------------------------------


def test_backward_matches_notebook_formulas():
    """Guards backward: every gradient equals the notebook's ``Net.backward`` (summed BCE) for each run."""
    runs = random_runs(5, scale=1.0, seed=2)
    p = batched(runs)
    g = net.backward(p, net.forward(p, X, Y), X, Y)
    for n, r in enumerate(runs):
        ref = nb.Net.from_params(r)
        ref.forward()
        expected = ref.backward()
        for name in NAMES:
            np.testing.assert_allclose(notebook_grad(g, name, n), expected[name], rtol=1e-12, atol=1e-15)


def test_one_update_matches_notebook_step():
    """Guards update: one forward/backward/update with a per-run lr equals the notebook's loop body."""
    runs = random_runs(4, scale=1.0, seed=3)
    lrs = np.array([0.1, 0.5, 2.0, 1e-3])
    p = batched(runs)
    f = net.forward(p, X, Y)
    net.update(p, net.backward(p, f, X, Y), lrs)
    for n, r in enumerate(runs):
        ref = nb.Net.from_params(r)
        assert f.loss[n] == pytest.approx(ref.step(lrs[n]), rel=1e-12)
        for name in NAMES:
            np.testing.assert_allclose(notebook_grad(p, name, n), getattr(ref, name), rtol=1e-12, atol=1e-15)


# --- gradient check by central differences ------------------------------------------------------------------


def burned_in(scheme: str, tmp_path: Path) -> net.Params:
    """A run of ``scheme`` after 20 steps at lr 0.1 (``from_file`` starts from a file written here)."""
    init_params = {}
    if scheme == "from_file":
        path = tmp_path / "start.npz"
        np.savez(path, **random_runs(1, scale=1.0, seed=4)[0])
        init_params = {"path": str(path)}
    res = train(TrainConfig(lr=0.1, max_steps=20, seed=0, init=scheme, init_params=init_params))
    return batched([res.params])


def summed_loss(p: net.Params) -> np.ndarray:
    """The function ``net.backward`` differentiates: the summed BCE, 4 x the mean returned by forward."""
    return 4 * net.forward(p, X, Y).loss[0]


def central_difference(p: net.Params, name: str, ix: tuple[int, ...], h: float, five_point: bool) -> float:
    """d summed_loss / d p.name[ix], by the 2-point or 5-point central stencil."""
    a = getattr(p, name)
    old = a[ix]
    vals = {}
    for k in (-2, -1, 1, 2) if five_point else (-1, 1):
        a[ix] = old + k * h
        vals[k] = summed_loss(p)
    a[ix] = old
    if five_point:
        return float((vals[-2] - 8 * vals[-1] + 8 * vals[1] - vals[2]) / (12 * h))
    return float((vals[1] - vals[-1]) / (2 * h))


def analytic_gradient(p: net.Params) -> net.Params:
    return net.backward(p, net.forward(p, X, Y), X, Y)


def rel_error(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a) + abs(b), 1e-8)


@pytest.mark.skipif(
    np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps, reason="needs extended-precision long double"
)
@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_gradient_central_differences(scheme, tmp_path):
    """Guards backward = exact gradient of the summed BCE, for every parameter entry and every init scheme
    (after a 20-step burn-in): relative error < 1e-7.

    The float64 gradient is compared with a 5-point central difference of the same forward code evaluated in
    long double: in float64 the difference quotient's rounding noise (~eps·4L/h ≈ 1e-10) exceeds 1e-7 of
    the smallest gradient entries (~1e-6), so a float64-only check could not honestly reach 1e-7 everywhere.
    Entries whose analytic gradient is exactly 0 (all of them for ``zeros``: the symmetric net sits at a
    stationary point) are checked with an absolute tolerance instead.
    """
    p64 = burned_in(scheme, tmp_path)
    g = analytic_gradient(p64)
    p = net.Params(*(a.astype(np.longdouble) for a in p64.arrays()))
    h = np.longdouble(1e-4)
    for name in NAMES:
        for ix in np.ndindex(getattr(p, name).shape):
            a = float(getattr(g, name)[ix])
            num = central_difference(p, name, ix, h, five_point=True)
            if a == 0.0:
                assert abs(num) < 1e-12, (name, ix, num)
            else:
                assert rel_error(a, num) < 1e-7, (name, ix, a, num)
    if scheme != "zeros":
        assert np.count_nonzero(np.concatenate([a.ravel() for a in g.arrays()])) == 17


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_gradient_central_differences_float64(scheme, tmp_path):
    """Guards backward with the plain float64 check (h = 1e-6, 2-point stencil): every entry within
    1e-7 relative error plus the stencil's rounding bound 4·eps·|4L|/h. A gradient of the *mean* loss
    (off by 4x) or a wrong sign/term is off by far more than that bound."""
    p = burned_in(scheme, tmp_path)
    g = analytic_gradient(p)
    h = 1e-6
    noise = 4 * np.finfo(np.float64).eps * abs(summed_loss(p)) / h
    for name in NAMES:
        for ix in np.ndindex(getattr(p, name).shape):
            a = float(getattr(g, name)[ix])
            num = central_difference(p, name, ix, h, five_point=False)
            assert abs(a - num) <= 1e-7 * (abs(a) + abs(num)) + noise, (name, ix, a, num)


def test_gradient_is_of_summed_not_mean_loss():
    """Guards the documented convention: backward's gradient is 4x the gradient of the printed mean loss
    (finite differences of the mean loss itself are 4x smaller)."""
    p = batched(random_runs(1, scale=1.0, seed=5))
    g = analytic_gradient(p)
    h = 1e-6
    old = p.b2[0]
    p.b2[0] = old + h
    up = net.forward(p, X, Y).loss[0]
    p.b2[0] = old - h
    down = net.forward(p, X, Y).loss[0]
    mean_grad = (up - down) / (2 * h)
    assert g.b2[0] == pytest.approx(4 * mean_grad, rel=1e-6)
    assert abs(g.b2[0]) > 1e-3  # non-trivial gradient, so the factor 4 is visible
