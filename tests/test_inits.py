"""Tests for ``xorlab.core.inits``: every scheme rebuilt from its formula with a fresh generator.

Expected weights are drawn here from ``np.random.default_rng(seed)`` / ``np.random.RandomState(seed)``, in the
documented order (w1 (2,4) first, then w2 (4,1)), with fan_in/fan_out w1: 2/4, w2: 4/1.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from xorlab.core.config import TrainConfig
from xorlab.core.inits import PARAM_SHAPES, SCHEMES, InitFileError, init_params, load_params
from xorlab.core.rng import make_rng, reseed_legacy
from xorlab.engine.batch import start_params

FANS = {"w1": (2, 4), "w2": (4, 1)}  # (fan_in, fan_out) of the (in, out)-stored weights

# scheme -> (distribution, scale(fan_in, fan_out, gain)): std for "normal", bound a of U(-a, a) for "uniform"
GAIN_FORMULAS = {
    "xavier_normal": ("normal", lambda fi, fo, g: g * math.sqrt(2 / (fi + fo))),
    "xavier_uniform": ("uniform", lambda fi, fo, g: g * math.sqrt(6 / (fi + fo))),
    "he_normal": ("normal", lambda fi, fo, g: g * math.sqrt(2 / fi)),
    "he_uniform": ("uniform", lambda fi, fo, g: g * math.sqrt(6 / fi)),
    "lecun_normal": ("normal", lambda fi, fo, g: g * math.sqrt(1 / fi)),
    "lecun_uniform": ("uniform", lambda fi, fo, g: g * math.sqrt(3 / fi)),
}
OTHER_SCHEMES = {"notebook", "orthogonal", "normal", "uniform", "zeros", "from_file"}


def fresh(kind: str, seed: int):
    """A generator built here, independently of ``xorlab.core.rng``."""
    return np.random.default_rng(seed) if kind == "default" else np.random.RandomState(seed)


def draw(cfg: TrainConfig) -> dict[str, np.ndarray]:
    return start_params(cfg)


def expected_layer(rng, dist: str, scale: float, shape: tuple[int, int]) -> np.ndarray:
    if dist == "normal":
        return rng.standard_normal(shape) * scale
    return rng.uniform(-scale, scale, shape)


def gram_schmidt(a: np.ndarray) -> np.ndarray:
    """Orthonormalise the columns of ``a`` (classical Gram–Schmidt): the Q of the QR with diag(R) > 0."""
    q = np.zeros_like(a)
    for k in range(a.shape[1]):
        v = a[:, k].copy()
        for j in range(k):
            v -= (q[:, j] @ a[:, k]) * q[:, j]
        q[:, k] = v / np.linalg.norm(v)
    return q


def test_registry_is_fully_covered():
    """Guards that every registered scheme has a formula test here (a new scheme must get one)."""
    assert set(SCHEMES) == set(GAIN_FORMULAS) | OTHER_SCHEMES


@pytest.mark.parametrize("kind", ["default", "legacy"])
@pytest.mark.parametrize("gain", [None, 1.0, 2.5])
@pytest.mark.parametrize("scheme", list(GAIN_FORMULAS))
def test_gain_schemes_match_formula(scheme, gain, kind):
    """Guards xavier/he/lecun (normal and uniform): w1 then w2 drawn with the documented std/bound, gain
    applied (default 1), biases zero, on both generator kinds."""
    dist, scale = GAIN_FORMULAS[scheme]
    seed = 11
    cfg = TrainConfig(seed=seed, init=scheme, rng=kind, init_params={} if gain is None else {"gain": gain})
    got = draw(cfg)
    g = 1.0 if gain is None else gain
    rng = fresh(kind, seed)
    for name in ("w1", "w2"):
        expected = expected_layer(rng, dist, scale(*FANS[name], g), PARAM_SHAPES[name])
        np.testing.assert_allclose(got[name], expected, rtol=1e-15, atol=0)
    assert not got["b1"].any() and not got["b2"].any()
    assert {k: v.shape for k, v in got.items()} == PARAM_SHAPES


@pytest.mark.parametrize("kind", ["default", "legacy"])
def test_normal_and_uniform_schemes_use_their_parameter(kind):
    """Guards ``normal`` (N(0, std²)) and ``uniform`` (U(±a)), defaults std = a = 1."""
    seed = 5
    for scheme, dist, value in [("normal", "normal", 0.3), ("uniform", "uniform", 0.7)]:
        key = "std" if scheme == "normal" else "a"
        for params, scale in [({key: value}, value), ({}, 1.0)]:
            got = draw(TrainConfig(seed=seed, init=scheme, rng=kind, init_params=params))
            rng = fresh(kind, seed)
            for name in ("w1", "w2"):
                np.testing.assert_allclose(
                    got[name], expected_layer(rng, dist, scale, PARAM_SHAPES[name]), rtol=1e-15, atol=0
                )


@pytest.mark.parametrize("kind", ["default", "legacy"])
def test_notebook_scheme_is_the_notebook_expression(kind):
    """Guards ``notebook``: ``randn(2,4) * np.sqrt(2)**-1`` then ``randn(4,1) * 0.5``, bit for bit."""
    got = draw(TrainConfig(seed=1337, init="notebook", rng=kind))
    rng = fresh(kind, 1337)
    np.testing.assert_array_equal(got["w1"], rng.standard_normal((2, 4)) * np.sqrt(2) ** -1)
    np.testing.assert_array_equal(got["w2"], rng.standard_normal((4, 1)) * 0.5)
    assert not got["b1"].any() and not got["b2"].any()


def test_legacy_notebook_scheme_equals_global_np_random():
    """Guards the replay premise: ``rng="legacy"`` reproduces ``np.random.seed(s); np.random.randn(...)``,
    the notebook's own global-state calls (global state restored afterwards)."""
    state = np.random.get_state()  # noqa: NPY002
    try:
        np.random.seed(7)  # noqa: NPY002
        w1 = np.random.randn(2, 4) * np.sqrt(2) ** -1  # noqa: NPY002
        w2 = np.random.randn(4, 1) * 0.5  # noqa: NPY002
    finally:
        np.random.set_state(state)  # noqa: NPY002
    got = draw(TrainConfig(seed=7, init="notebook", rng="legacy"))
    np.testing.assert_array_equal(got["w1"], w1)
    np.testing.assert_array_equal(got["w2"], w2)


@pytest.mark.parametrize("kind", ["default", "legacy"])
@pytest.mark.parametrize("gain", [1.0, 0.5, 3.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_orthogonal_matches_gram_schmidt(seed, gain, kind):
    """Guards ``orthogonal`` (PyTorch ``orthogonal_``): Q of the positive-diagonal QR of a standard-normal
    (fan_out, fan_in) draw (transposed when fan_out < fan_in), times gain, stored transposed, checked
    against Gram–Schmidt of the same draws; plus w1 @ w1.T = gain² I and |w2| = gain."""
    got = draw(TrainConfig(seed=seed, init="orthogonal", rng=kind, init_params={"gain": gain}))
    rng = fresh(kind, seed)
    a1 = rng.standard_normal((4, 2))  # w1: (fan_out, fan_in) = (4, 2), tall: QR as is
    a2 = rng.standard_normal((1, 4))  # w2: (fan_out, fan_in) = (1, 4), wide: QR of its transpose
    w1 = (gram_schmidt(a1) * gain).T  # torch weight (4, 2) -> stored (2, 4)
    w2 = (gram_schmidt(a2.T).T * gain).T  # torch weight (1, 4) -> stored (4, 1)
    np.testing.assert_allclose(got["w1"], w1, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got["w2"], w2, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got["w1"] @ got["w1"].T, gain**2 * np.eye(2), atol=1e-13)
    np.testing.assert_allclose(got["w2"].T @ got["w2"], [[gain**2]], atol=1e-13)
    assert not got["b1"].any() and not got["b2"].any()


def test_zeros_scheme():
    """Guards ``zeros``: every parameter exactly 0 in the notebook shapes."""
    got = draw(TrainConfig(seed=3, init="zeros"))
    assert {k: v.shape for k, v in got.items()} == PARAM_SHAPES
    assert all(not v.any() for v in got.values())


def test_from_file_returns_file_contents_as_float64(tmp_path):
    """Guards ``from_file``: returns the npz arrays (any real dtype) as float64, independent of the seed."""
    rng = np.random.default_rng(0)
    arrays = {
        "w1": rng.standard_normal((2, 4)).astype(np.float32),
        "b1": rng.integers(-3, 3, (1, 4)),
        "w2": rng.standard_normal((4, 1)),
        "b2": np.array([[0.25]]),
    }
    path = tmp_path / "p.npz"
    np.savez(path, **arrays)
    for seed in (0, 1):
        got = draw(TrainConfig(seed=seed, init="from_file", init_params={"path": str(path)}))
        for name, arr in arrays.items():
            assert got[name].dtype == np.float64
            np.testing.assert_array_equal(got[name], arr.astype(np.float64))


@pytest.mark.parametrize("bad", ["complex", "text"])
def test_load_params_rejects_non_real_dtypes(tmp_path, bad):
    """Guards ``load_params``: complex or text arrays are an ``InitFileError``, not silently cast."""
    arrays = {k: np.zeros(s) for k, s in PARAM_SHAPES.items()}
    arrays["w2"] = np.zeros((4, 1), dtype=complex) if bad == "complex" else np.full((4, 1), "x")
    path = tmp_path / "p.npz"
    np.savez(path, **arrays)
    with pytest.raises(InitFileError, match="w2"):
        load_params(path)


@pytest.mark.parametrize("kind", ["default", "legacy"])
@pytest.mark.parametrize("skip", [1, 3, 144])
def test_rng_skip_discards_normal_draws(kind, skip):
    """Guards ``rng_skip``: the init uses the stream after ``skip`` standard-normal draws (checked against
    one long draw, so an odd skip also exercises the legacy generator's cached Box–Muller value)."""
    got = draw(TrainConfig(seed=9, init="notebook", rng=kind, rng_skip=skip))
    tail = fresh(kind, 9).standard_normal(skip + 12)[skip:]
    np.testing.assert_array_equal(got["w1"], tail[:8].reshape(2, 4) * np.sqrt(2) ** -1)
    np.testing.assert_array_equal(got["w2"], tail[8:].reshape(4, 1) * 0.5)
    # a uniform scheme after a skip draws its uniforms after the discarded normals
    got = draw(TrainConfig(seed=9, init="uniform", rng=kind, rng_skip=skip, init_params={"a": 2.0}))
    rng = fresh(kind, 9)
    rng.standard_normal(skip)
    np.testing.assert_array_equal(got["w1"], rng.uniform(-2.0, 2.0, (2, 4)))


def test_make_rng_kinds():
    """Guards ``make_rng``: "default" is PCG64 ``default_rng``, "legacy" is ``RandomState``; others raise."""
    assert make_rng(4, "default").standard_normal((3,)).tolist() == fresh("default", 4).standard_normal(3).tolist()
    assert make_rng(4, "legacy").standard_normal((3,)).tolist() == fresh("legacy", 4).standard_normal(3).tolist()
    with pytest.raises(ValueError, match="rng"):
        make_rng(4, "mt19937")


@pytest.mark.parametrize("skip", [0, 5, 144])
def test_reseed_legacy_is_a_fresh_make_rng(skip):
    """Guards ``reseed_legacy``: a RandomState left mid-stream (an odd number of normals, so a cached Box–Muller
    normal) reseeded is in exactly the state of ``make_rng(seed, "legacy", skip)``, cache included."""
    rs = make_rng(99, "legacy")
    rs.standard_normal(7)
    rs.random_sample(3)
    reseeded = reseed_legacy(rs, 1337, skip)
    assert reseeded is rs
    got, expected = rs.get_state(legacy=False), make_rng(1337, "legacy", skip).get_state(legacy=False)
    assert got["state"]["pos"] == expected["state"]["pos"]
    np.testing.assert_array_equal(got["state"]["key"], expected["state"]["key"])
    assert (got["has_gauss"], got["gauss"]) == (expected["has_gauss"], expected["gauss"])
    assert rs.standard_normal(5).tolist() == make_rng(1337, "legacy", skip).standard_normal(5).tolist()


@pytest.mark.parametrize("kind", ["default", "legacy"])
def test_init_statistics_over_many_seeds(kind):
    """Statistical sanity (a bonus to the exact tests above): over 1000 seeds, normal schemes have the
    formula's std and uniform schemes stay within ±bound with variance bound²/3 (5 % tolerance)."""
    for scheme, (dist, scale) in GAIN_FORMULAS.items():
        draws = [init_params(scheme, make_rng(s, kind), {"gain": 1.5}) for s in range(1000)]
        for name in ("w1", "w2"):
            vals = np.concatenate([d[name].ravel() for d in draws])
            s = scale(*FANS[name], 1.5)
            if dist == "normal":
                assert np.std(vals) == pytest.approx(s, rel=0.05), (scheme, name)
            else:
                assert np.abs(vals).max() <= s
                assert np.abs(vals).max() > 0.99 * s
                assert np.var(vals) == pytest.approx(s**2 / 3, rel=0.05), (scheme, name)
            assert abs(np.mean(vals)) < 0.1 * s


def test_an_init_file_is_read_and_hashed_once_per_grid(tmp_path, monkeypatch):
    """Validation, run ids and every run's init draw of a grid share one read of the file."""
    from pathlib import Path

    from xorlab.core import inits
    from xorlab.engine.batch import train_batch
    from xorlab.store.records import run_id
    from xorlab.sweep.grid import Grid

    path = tmp_path / "start.npz"
    np.savez(path, **{k: np.full(s, 0.25) for k, s in PARAM_SHAPES.items()})
    reads = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self) or real(self))
    inits._INIT_FILES.clear()
    grid = Grid.from_mapping(
        {"init": [{"name": "from_file", "path": str(path)}], "seed": "range(0,50)", "max_steps": [3, 5]}
    )
    configs = [c for runs in grid.trajectories() for c in runs]
    ids = {run_id(c) for c in configs}
    train_batch(configs)
    assert len(ids) == 100 and reads == [path.resolve()]
    np.savez(path, **{k: np.full(s, 0.5) for k, s in PARAM_SHAPES.items()})  # edited: read anew, new ids
    edited = TrainConfig(init="from_file", init_params={"path": str(path)}, max_steps=3)
    assert run_id(edited) not in ids and len(reads) == 2
