"""Tests for ``xorlab.engine.init_draws``: ``draw_starts`` against the per-run path, bit for bit.

The reference draws each run alone, as ``engine.start_params`` does: a fresh ``make_rng(seed, rng, rng_skip)``,
``inits.init_params``, then ``engine.stack_params``. Equality is checked with ``np.array_equal`` and on the raw
bytes, so a -0.0 for a 0.0 (or a different NaN) would show.
"""

from __future__ import annotations

import numpy as np
import pytest

from xorlab.core import seeding
from xorlab.core.config import TrainConfig
from xorlab.core.inits import SCHEMES, init_params
from xorlab.core.net import Params
from xorlab.core.rng import MAX_SEED, make_rng
from xorlab.engine import init_draws
from xorlab.engine.batch import start_params
from xorlab.engine.init_draws import LEGACY_RESKIP, SEED_BATCH, draw_starts, uniform_is_affine
from xorlab.engine.results import stack_params

SEEDS = {"default": [0, 1, 2**32 - 1, 2**32, 2**63 - 1], "legacy": [0, 1, 1337, 2**32 - 1]}
SKIPS = [0, 5, 144]
GAINS = [{"gain": g} for g in (1.0, 0.5, 3.0, 2, 1e-300, 1e300)]
VALUES = {  # scheme -> the param sets tried (complete, as TrainConfig.init_params holds them)
    "notebook": [{}],
    "xavier_normal": GAINS,
    "xavier_uniform": GAINS,
    "he_normal": GAINS,
    "he_uniform": GAINS,
    "lecun_normal": GAINS,
    "lecun_uniform": GAINS,
    "orthogonal": [{"gain": 1.0}, {"gain": 2.5}],
    "normal": [{"std": s} for s in (1.0, 0.0, 0.25, 3, 1e-300, 1e300)],
    "uniform": [{"a": a} for a in (1.0, 0.0, 0.1, 2, 1e-300, 1e300)],
    "zeros": [{}],
    "from_file": None,  # filled by the ``start_file`` fixture
}


@pytest.fixture(autouse=True, params=["batch", "per_key"])
def seeding_mode(request, monkeypatch) -> str:
    """Every test twice: default keys seeded in batch by ``xorlab.core.seeding`` however few (``batch``), and each
    built as its own generator (``per_key``: the path below ``SEED_BATCH`` keys and where ``seeding.exact``
    fails). Tests that set the mode themselves, or test ``xorlab.core.seeding`` alone, run the same both times."""
    monkeypatch.setattr(init_draws, "SEED_BATCH", 1 if request.param == "batch" else 2**62)
    return request.param


@pytest.fixture(scope="module")
def values(tmp_path_factory) -> dict[str, list[dict]]:
    """VALUES with a ``from_file`` init file holding -0.0 and a subnormal (their bits must survive)."""
    path = tmp_path_factory.mktemp("init") / "start.npz"
    w1 = np.random.default_rng(5).standard_normal((2, 4))
    w1[0, 0], w1[1, 3] = -0.0, 5e-324
    np.savez(path, w1=w1, b1=np.full((1, 4), -0.0), w2=np.arange(4.0).reshape(4, 1) - 1.5, b2=np.array([[0.25]]))
    return {**VALUES, "from_file": [{"path": str(path)}]}


def reference(init, params, seed, rng, skip) -> Params:
    """Each run drawn alone from its own fresh generator, then stacked: the engine's per-run path."""
    return stack_params(
        [init_params(init[i], make_rng(int(seed[i]), rng[i], int(skip[i])), params[i]) for i in range(len(init))]
    )


def assert_identical(got: Params, expected: Params) -> None:
    for name, a, b in zip(("w1", "b1", "w2", "b2"), got.arrays(), expected.arrays(), strict=True):
        assert a.dtype == b.dtype == np.float64 and a.shape == b.shape, name
        assert np.array_equal(a, b), name
        assert a.tobytes() == b.tobytes(), name


def check(init, params, seed, rng, skip) -> Params:
    got = draw_starts(init, params, seed, rng, skip)
    assert_identical(got, reference(init, params, seed, rng, skip))
    return got


def grid(runs: list[tuple]) -> tuple[list, list, np.ndarray, list, np.ndarray]:
    """(scheme, params, seed, kind, skip) tuples -> draw_starts' five arguments."""
    init, params, seed, rng, skip = zip(*runs, strict=True)
    return list(init), list(params), np.array(seed, dtype=np.int64), list(rng), np.array(skip, dtype=np.int64)


@pytest.mark.parametrize("kind", ["default", "legacy"])
@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_every_scheme_matches_per_run_draws(scheme, kind, values):
    """Guards every scheme on both generators: all seeds (0 to the kind's maximum) x skips x param sets in one
    batch, equal bit for bit to drawing each run alone."""
    runs = [(scheme, p, s, kind, k) for s in SEEDS[kind] for k in SKIPS for p in values[scheme]]
    assert max(SEEDS[kind]) == MAX_SEED[kind]
    check(*grid(runs))


def test_random_mixed_batches(values):
    """Guards the grouping: a few hundred batches mixing schemes, params, kinds and skips over few seeds, so
    runs share generators in every combination (both families on one key, one family with several scales)."""
    meta = np.random.default_rng(20240611)
    schemes = sorted(SCHEMES)
    for _ in range(300):
        seeds = meta.choice([0, 1, 7, 2**32 - 1], size=meta.integers(1, 4), replace=False)
        runs = []
        for _ in range(meta.integers(1, 40)):
            scheme = schemes[meta.integers(len(schemes))]
            options = values[scheme]
            runs.append(
                (
                    scheme,
                    options[meta.integers(len(options))],
                    int(meta.choice(seeds)),
                    ["default", "legacy"][meta.integers(2)],
                    [0, 5, 144][meta.integers(3)],
                )
            )
        check(*grid(runs))


def test_sweep_shaped_batch_matches_start_params():
    """Guards the engine's use: 3 seeds x 4 lrs x 5 inits of TrainConfigs (one params dict per config, shared
    by runs as a grid shares them), against ``stack_params`` of ``start_params`` per config."""
    cfgs = [
        TrainConfig(seed=seed, init=init, lr=lr, rng=kind, rng_skip=skip)
        for seed in (3, 4, 5)
        for lr in (0.1, 0.3, 1.0, 3.0)
        for init in ("notebook", "xavier_normal", "he_normal", "lecun_normal", "uniform")
        for kind, skip in (("default", 0), ("legacy", 144))
    ]
    got = draw_starts(
        [c.init for c in cfgs],
        [c.init_params for c in cfgs],
        [c.seed for c in cfgs],
        [c.rng for c in cfgs],
        [c.rng_skip for c in cfgs],
    )
    assert_identical(got, stack_params([start_params(c) for c in cfgs]))


def test_batch_of_one_and_order(values):
    """Guards batch invariance: each run's columns are the same alone, and in a shuffled batch they move with
    the run."""
    runs = [
        (s, p, seed, kind, 5)
        for s in ("notebook", "uniform", "orthogonal")
        for p in values[s]
        for seed in (0, 9)
        for kind in ("default", "legacy")
    ]
    whole = check(*grid(runs))
    order = np.random.default_rng(1).permutation(len(runs))
    shuffled = check(*grid([runs[i] for i in order]))
    assert_identical(shuffled, Params(*(a[..., order] for a in whole.arrays())))
    for i in (0, len(runs) // 2, len(runs) - 1):
        alone = check(*grid([runs[i]]))
        assert_identical(alone, Params(*(a[..., i : i + 1] for a in whole.arrays())))


def test_runs_differing_only_in_kind_skip_or_high_seed_bits_are_not_merged():
    """Guards the generator key: same seed with another kind, another skip, or a seed equal in its low 32 bits,
    each must get its own stream (a merged group would repeat one run's weights)."""
    runs = [
        ("notebook", {}, 42, "default", 0),
        ("notebook", {}, 42, "legacy", 0),
        ("notebook", {}, 42, "default", 1),
        ("notebook", {}, 42 + 2**32, "default", 0),
        ("uniform", {"a": 1.0}, 42, "default", 0),
        ("uniform", {"a": 1.0}, 42, "legacy", 0),
    ]
    got = check(*grid(runs))
    w1 = got.w1.reshape(8, -1)
    assert len({w1[:, i].tobytes() for i in range(4)}) == 4
    assert w1[:, 4].tobytes() != w1[:, 5].tobytes()


def test_params_objects_shared_across_schemes_and_runs():
    """Guards the per-(scheme, params object) scale cache: one dict used by two schemes, equal dicts as distinct
    objects, and one dict repeated with different seeds."""
    shared, same = {"gain": 2.0}, {"gain": 2.0}
    runs = [
        ("xavier_normal", shared, 1, "default", 0),
        ("he_normal", shared, 1, "default", 0),
        ("he_uniform", shared, 1, "default", 0),
        ("he_normal", same, 1, "default", 0),
        ("xavier_normal", shared, 2, "legacy", 0),
        ("xavier_normal", {"gain": 0.5}, 1, "default", 0),
    ]
    check(*grid(runs))


def test_equal_params_that_draw_differently_are_not_merged():
    """Guards the scale cache's key: 0.0 == -0.0 (but a std of -0.0 flips the zeros' signs) and
    2 == 2.0 == float32(2) == longdouble(1/3)-like values must each keep their own plan."""
    stds = [0.0, -0.0, np.float64(-0.0), np.float64(0.0), 2, 2.0, np.float32(2.0), np.longdouble(2.0), 1 / 3]
    stds += [np.longdouble(1 / 3), np.float64(1 / 3)]
    runs = [("normal", {"std": s}, seed, "default", 0) for seed in (4, 5) for s in stds]
    got = check(*grid(runs))
    assert np.signbit(got.w1[..., 1]).tolist() != np.signbit(got.w1[..., 0]).tolist()


@pytest.mark.parametrize("kind", ["default", "legacy"])
def test_key_used_by_both_families_after_a_long_skip(kind):
    """Guards restarting a stream for the second family after a skip too long to repeat (legacy then restores
    its saved state) and after an odd skip (legacy's cached Box–Muller normal)."""
    runs = [
        (s, p, 11, kind, skip)
        for skip in (LEGACY_RESKIP + 1, 7)
        for s, p in (
            ("notebook", {}),
            ("uniform", {"a": 0.5}),
            ("normal", {"std": 2.0}),
            ("lecun_uniform", {"gain": 1.0}),
        )
    ]
    check(*grid(runs))


def test_uniform_runs_per_run_where_uniform_is_not_affine(monkeypatch, values):
    """Guards the fallback for a numpy whose ``uniform`` is a fused multiply-add: uniform runs go per run."""
    assert isinstance(uniform_is_affine(), bool)
    monkeypatch.setattr(init_draws, "uniform_is_affine", lambda: False)
    runs = [
        (s, values[s][0], seed, kind, 0)
        for s in ("uniform", "he_uniform", "notebook")
        for seed in (0, 3)
        for kind in ("default", "legacy")
    ]
    check(*grid(runs))


def test_scales_of_other_types_are_drawn_per_run():
    """Guards the exactness rule: scales numpy would multiply in another precision (float32 promotes exactly,
    longdouble does not; a large int) take the per-run path and still match."""
    runs = [
        ("normal", {"std": np.float32(0.3)}, 1, "default", 0),
        ("normal", {"std": np.longdouble(1) / 3}, 1, "default", 0),
        ("normal", {"std": 2**60}, 1, "legacy", 0),
        ("uniform", {"a": np.float32(0.3)}, 1, "default", 0),
        ("xavier_normal", {"gain": np.float32(1.5)}, 1, "legacy", 0),
        ("he_normal", {"gain": True}, 2, "default", 0),
    ]
    check(*grid(runs))


def test_errors_are_those_of_the_per_run_path():
    """Guards that bad inputs fail as ``start_params`` would, and a batch with a wrong length names them."""
    with pytest.raises(KeyError):
        draw_starts(["nope"], [{}], [0], ["default"], [0])
    with pytest.raises(ValueError, match="unknown generator"):
        draw_starts(["notebook"], [{}], [0], ["mt"], [0])
    with pytest.raises(ValueError, match="2\\*\\*32 - 1"):
        draw_starts(["notebook"], [{}], [2**32], ["legacy"], [0])
    with pytest.raises(ValueError, match="lengths"):
        draw_starts(["notebook"] * 2, [{}] * 2, [0], ["default"] * 2, [0] * 2)
    with pytest.raises(TypeError, match="seed"):
        draw_starts(["notebook"], [{}], [0.5], ["default"], [0])


def test_output_arrays_are_fresh_contiguous_and_empty_batches_work():
    got = draw_starts(["notebook", "zeros"], [{}, {}], [0, 1], ["default", "legacy"], [0, 0])
    assert all(a.flags.c_contiguous for a in got.arrays())
    assert not any(np.shares_memory(a, b) for i, a in enumerate(got.arrays()) for b in got.arrays()[i + 1 :])
    empty = draw_starts([], [], [], [], [])
    assert [a.shape for a in empty.arrays()] == [(2, 4, 0), (4, 0), (4, 0), (0,)]


def log_uniform_seeds(meta: np.random.Generator, n: int, top: int = MAX_SEED["default"]) -> np.ndarray:
    """n distinct seeds, log-uniform over 0 … top, with the edge seeds in front."""
    edges = [s for s in (0, 1, 2**32 - 1, 2**32, 2**63 - 1) if s <= top]
    draws = np.minimum(np.exp2(meta.uniform(0, np.log2(top + 1.0), 3 * n)), 2.0**63).astype(np.uint64) - 1
    seeds = list(dict.fromkeys(edges + [min(int(s), top) for s in draws]))[:n]
    assert len(seeds) == n
    return np.array(seeds, dtype=np.int64)


def test_seeding_matches_numpy_for_random_seeds():
    """Guards ``xorlab.core.seeding`` against numpy itself for 2,000 log-uniform seeds over 0 … 2**63 - 1 (and the
    uint64 top): the words are ``SeedSequence(seed).generate_state(4, np.uint64)``; the derived state, and the
    state of the generator built from the words, are ``default_rng(seed).bit_generator.state``; the computed
    doubles and the generator's normals are ``default_rng(seed)``'s first 12."""
    seeds = [*log_uniform_seeds(np.random.default_rng(7), 2000).tolist(), 2**63, 2**64 - 1]
    words = seeding.seed_words(np.array(seeds, dtype=np.uint64))
    assert words.dtype == np.uint64 and words.shape == (len(seeds), 4) and words.flags.c_contiguous
    states, doubles = seeding.state_dicts(words), seeding.first_doubles(words, 12)
    normals = seeding.first_normals(words[::10], 12)
    for i, seed in enumerate(seeds):
        assert words[i].tobytes() == np.random.SeedSequence(seed).generate_state(4, np.uint64).tobytes(), seed
        ref = np.random.default_rng(seed)
        assert states[i] == ref.bit_generator.state, seed
        if i % 10 == 0:
            assert seeding.generator(words[i]).bit_generator.state == ref.bit_generator.state, seed
            assert normals[i // 10].tobytes() == ref.standard_normal(12).tobytes(), seed
        assert doubles[i].tobytes() == np.random.default_rng(seed).random(12).tobytes(), seed


def test_distinct_seeds_over_the_full_range_match_per_run_draws(values):
    """Guards the batch seeding as a sweep chunk uses it: 2,000 distinct log-uniform seeds over 0 … 2**63 - 1,
    every scheme, skips 0/5/144, a tenth legacy (seeds below 2**32), and 400 of the streams drawn again by a
    second run of another scheme (often both families on one stream), against drawing each run alone."""
    meta, schemes = np.random.default_rng(11), sorted(SCHEMES)

    def scheme_and_params() -> tuple[str, dict]:
        scheme = schemes[meta.integers(len(schemes))]
        return scheme, values[scheme][meta.integers(len(values[scheme]))]

    runs = []
    for seed in log_uniform_seeds(meta, 2000).tolist():
        kind = "legacy" if seed <= MAX_SEED["legacy"] and meta.random() < 0.1 else "default"
        runs.append((*scheme_and_params(), seed, kind, [0, 5, 144][meta.integers(3)]))
    runs += [(*scheme_and_params(), *runs[i][2:]) for i in meta.choice(len(runs), 400, replace=False)]
    check(*grid(runs))


def test_unsigned_seeds_above_the_int64_range():
    """Guards seeds 2**63 … 2**64 - 1 (two full words; ``default_rng`` takes them) in a uint64 column."""
    seeds = np.array([2**63, 2**63 + 2**32, 2**64 - 1] * 2, dtype=np.uint64)
    init, params = ["notebook", "uniform"] * 3, [{}, {"a": 0.5}] * 3
    check(init, params, seeds, ["default"] * 6, np.array([0, 0, 0, 5, 5, 5]))


def test_batch_seeding_needs_seed_batch_keys(monkeypatch):
    """Guards the threshold: below ``SEED_BATCH`` default keys each builds its generator (no seed words are
    computed), from it they are seeded in batch; the draws are the same."""
    monkeypatch.setattr(init_draws, "SEED_BATCH", SEED_BATCH)
    calls = []
    monkeypatch.setattr(seeding, "seed_words", lambda s, f=seeding.seed_words: calls.append(len(s)) or f(s))
    seeds = log_uniform_seeds(np.random.default_rng(3), SEED_BATCH)
    for n in (SEED_BATCH - 1, SEED_BATCH):
        runs = [(s, p, int(seed), "default", 0) for seed in seeds[:n] for s, p in (("notebook", {}), ("uniform", {}))]
        runs.append(("notebook", {}, 1, "legacy", 0))  # legacy keys do not count
        check(*grid(runs))
    assert calls == [SEED_BATCH]


def test_per_key_generators_where_seeding_is_not_exact(monkeypatch):
    """Guards the fallback for a numpy that seeds otherwise: with ``seeding.exact`` off, no seed words are
    computed and every default key builds its own generator, with the same draws."""
    monkeypatch.setattr(seeding, "exact", lambda: False)
    monkeypatch.setattr(seeding, "seed_words", lambda s: pytest.fail("seed words computed"))
    seeds = log_uniform_seeds(np.random.default_rng(5), 40).tolist()
    runs = [
        (s, p, seed, "default", k)
        for seed in seeds
        for k in (0, 5)
        for s, p in (("notebook", {}), ("he_uniform", {"gain": 1.0}))
    ]
    check(*grid(runs))


def test_seeding_self_check_fails_on_a_numpy_that_seeds_otherwise(monkeypatch):
    """Guards ``seeding.exact``: true here; false if ``default_rng`` were another generator, if numpy's
    ``SeedSequence`` hashed with other constants, or if PCG64 were seeded otherwise from the words (and the
    words raise if PCG64 asks for others than 4 x uint64)."""
    assert seeding.exact() and seeding.exact.__wrapped__()
    with monkeypatch.context() as m:
        m.setattr(np.random, "default_rng", lambda seed: np.random.Generator(np.random.PCG64DXSM(seed)))
        assert not seeding.exact.__wrapped__()
    with monkeypatch.context() as m:
        m.setattr(seeding, "_OUT_HASHES", seeding._consts(seeding.INIT_B, seeding.MULT_B + 2, 8))
        assert not seeding.exact.__wrapped__()
    with monkeypatch.context() as m:
        m.setattr(seeding, "generator", lambda w: np.random.Generator(np.random.PCG64(w.view(np.uint32))))
        assert not seeding.exact.__wrapped__()
    with pytest.raises(ValueError, match="4 x uint64"):
        seeding._Words(np.zeros(4, np.uint64)).generate_state(8, np.uint32)
    assert seeding.exact.__wrapped__()


def test_negative_default_seeds_in_a_seeded_batch_raise_as_per_run():
    """Guards the seed range: a negative seed among enough default keys still raises ``default_rng``'s error."""
    seeds = [*range(SEED_BATCH), -3]
    with pytest.raises(ValueError, match="negative") as got:
        draw_starts(["notebook"] * len(seeds), [{}] * len(seeds), seeds, ["default"] * len(seeds), [0] * len(seeds))
    with pytest.raises(ValueError) as expected:
        make_rng(-3, "default")
    assert str(got.value) == str(expected.value)
