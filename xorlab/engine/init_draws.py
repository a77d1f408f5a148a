"""Draw the starting parameters of L runs at once, bit for bit as ``engine.start_params`` draws them one by one.

Per run, ``start_params`` builds the run's generator (``rng.make_rng``, ~8 µs for ``default``, ~90 µs for
``legacy``) and makes two small draws through Python (~15 µs in all). ``draw_starts`` makes the same numbers with
one generator per *distinct* stream and numpy arithmetic over the run axis:

1. Runs with the same generator key (rng kind, seed, rng_skip) read the same stream, and every layer scheme
   draws w1 (2, 4) then w2 (4, 1), one call each; so a run's weights are a function of the first 12 numbers
   of its stream (8 for w1, 4 for w2, in C order).
2. Normal family (notebook, xavier/he/lecun_normal, normal): ``w = standard_normal(shape) * std``. Draw the 12
   standard normals once per key; multiply per run by ``std(fan_in, fan_out, params)``, the scheme's own
   function (``layer.std`` in ``xorlab.core.inits``), evaluated once per distinct (scheme, params).
3. Uniform family (xavier/he/lecun_uniform, uniform): numpy computes ``uniform(-a, a, shape)`` as
   ``low + (high - low) * next_double`` in C, and ``random(12)`` / ``random_sample(12)`` return the same
   ``next_double`` values; the same two roundings done here by numpy give the same bits. A numpy built with
   that C expression contracted into a fused multiply-add (one rounding) would differ, so this is checked
   once per process (``uniform_is_affine``); where it fails, uniform runs take the per-run path.
4. Default keys, from ``SEED_BATCH`` of them on, are seeded in batch by ``xorlab.core.seeding`` (see there): the
   ``SeedSequence`` words of all seeds in numpy arithmetic; the 12 doubles of an unskipped stream computed
   straight from its PCG64 state; a PCG64 built from its precomputed words (~1 µs) for normals and skipped
   streams. ~2 µs per distinct seed with its draws instead of ~10. ``seeding.exact`` checks all of it against
   numpy once per process; where it fails (a numpy that seeds otherwise), or for fewer keys, each key builds
   ``make_rng(seed, "default", skip)`` as before.
5. A key needed by both families gives each its stream from the start: ``default`` saves and restores
   ``bit_generator.state`` (~2.5 µs; unskipped batch-seeded streams need no restore, their doubles come from the
   state); ``legacy`` reseeds one ``RandomState`` (``rng.reseed_legacy``, ~1.5 µs plus the skip; its
   ``get_state``/``set_state`` cost ~65 µs, worth it only for skips over ``LEGACY_RESKIP`` draws).
6. Everything else goes through the per-run path unchanged: orthogonal (QR), zeros, from_file, names not in
   ``SCHEMES``, unknown rng kinds (which raise there), and scales that are not plain floats or ints, whose
   products numpy might compute in another precision.

No draw comes from anywhere but the run's own stream: a reseeded ``RandomState``, a restored ``PCG64`` and one
built from its words are in exactly the state a freshly built generator would be, and computed doubles are that
generator's. The exceptions are ``uniform_is_affine`` and ``seeding.exact``, platform checks whose fixed-seed
numbers are compared and discarded. The result has no dependence on the batch: a run's columns are the same alone
or at any position in any batch (tests/test_init_draws.py checks this bit for bit).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np

from xorlab.core import seeding
from xorlab.core.inits import SCHEMES, W1_SHAPE, W2_SHAPE
from xorlab.core.inits import init_params as init_one  # the name `init_params` is draw_starts' argument
from xorlab.core.net import Params
from xorlab.core.rng import RNG_KINDS, discard, make_rng, reseed_legacy

NORMAL, UNIFORM, PER_RUN = 0, 1, 2  # how a run is drawn
N1, N2 = math.prod(W1_SHAPE), math.prod(W2_SHAPE)  # 8 numbers for w1, then 4 for w2
N_DRAWS = N1 + N2
DEFAULT, LEGACY = RNG_KINDS.index("default"), RNG_KINDS.index("legacy")
_KIND_CODE = {kind: code for code, kind in enumerate(RNG_KINDS)}
#: A legacy key needed by both families is reseeded and skipped again up to this many skipped draws (~20 ns
#: each), and saved and restored with ``get_state``/``set_state`` (~65 µs) beyond.
LEGACY_RESKIP = 3000
#: Default keys are seeded through ``xorlab.core.seeding`` from this many on: its batch arithmetic costs a fixed ~0.1 ms
#: (~0.2 ms with direct doubles), the ~8 µs per key it saves pays for it from about 16 keys.
SEED_BATCH = 16
_EXACT_INT = 2**53  # ints up to this convert to float64 exactly, whichever way numpy converts them

# A run's plan: (family, w1 offset, w1 scale, w2 offset, w2 scale). Normal: w = z * scale (offset unused);
# uniform: w = offset + scale * u with offset = low = -a and scale = high - low, as numpy's C code has them.
_PER_RUN_PLAN = (PER_RUN, 0.0, 0.0, 0.0, 0.0)


def draw_starts(
    init: Sequence[str],
    init_params: Sequence[Mapping[str, Any]],
    seed: Sequence[int] | np.ndarray,
    rng: Sequence[str],
    rng_skip: Sequence[int] | np.ndarray,
) -> Params:
    """Starting parameters of L runs, run axis last, bit for bit those of ``engine.start_params`` per run.

    Parameters
    ----------
    init : L scheme names (keys of ``inits.SCHEMES``).
    init_params : L mappings, each run's scheme params (defaults are filled in as ``Scheme.init`` does); scales
        are computed once per distinct (scheme, params), whether the mappings are one object or equal copies.
    seed : (L,) integers: each run's seed.
    rng : L generator kinds, ``"default"`` or ``"legacy"``.
    rng_skip : (L,) integers: standard-normal draws discarded before the init draws.

    Returns
    -------
    ``Params`` with w1 (2, 4, L), b1 (4, L), w2 (4, L), b2 (L,), equal to
    ``stack_params([init_params(init[i], make_rng(seed[i], rng[i], rng_skip[i]), init_params[i]) ...])``.
    Errors (unknown scheme or rng kind, seeds out of range) are those of that per-run path.
    """
    names, params, kinds = list(init), list(init_params), list(rng)
    seeds, skips = _integers("seed", seed), _integers("rng_skip", rng_skip)
    n = len(names)
    lengths = {"init": n, "init_params": len(params), "seed": len(seeds), "rng": len(kinds), "rng_skip": len(skips)}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"draw_starts: one value per run expected; got lengths {lengths}")
    plans = _plans(names, params)  # (L, 5)
    family = plans[:, 0].astype(np.int8)
    kind = np.array([_KIND_CODE.get(k, -1) if isinstance(k, str) else -1 for k in kinds], dtype=np.int8)
    family[kind < 0] = PER_RUN  # make_rng raises for it on the per-run path
    if not uniform_is_affine():
        family[family == UNIFORM] = PER_RUN

    w1, b1, w2, b2 = np.empty((*W1_SHAPE, n)), np.zeros((N2, n)), np.empty((N2, n)), np.zeros(n)
    w1_rows = w1.reshape(N1, n)  # a view: w1 is C-contiguous
    fast = np.flatnonzero(family != PER_RUN)
    if fast.size:
        group, first = _group(kind[fast], seeds[fast], skips[fast])
        fam = family[fast]
        need = [np.zeros(first.size, bool) for _ in (NORMAL, UNIFORM)]
        for f in (NORMAL, UNIFORM):
            need[f][group[fam == f]] = True
        lead = fast[first]  # one run per key
        z, u = _streams(kind[lead], seeds[lead], skips[lead], *need)  # (G, 12) each
        for f, base in ((NORMAL, z), (UNIFORM, u)):
            sel = fam == f
            if not sel.any():
                continue
            runs, draws = fast[sel], base[group[sel]].T  # (12, k): run j's stream in column j
            for rows, block, off, scale in ((w1_rows, draws[:N1], 1, 2), (w2, draws[N1:], 3, 4)):
                if f == NORMAL:  # standard_normal(shape) * std
                    rows[:, runs] = block * plans[runs, scale]
                else:  # uniform(-a, a, shape) = low + (high - low) * next_double
                    rows[:, runs] = plans[runs, off] + plans[runs, scale] * block

    for i in np.flatnonzero(family == PER_RUN).tolist():  # the per-run path, unchanged
        one = init_one(names[i], make_rng(int(seeds[i]), kinds[i], int(skips[i])), params[i])
        w1[..., i], b1[:, i], w2[:, i], b2[i] = one["w1"], one["b1"][0], one["w2"][:, 0], one["b2"][0, 0]
    return Params(w1=w1, b1=b1, w2=w2, b2=b2)


def _integers(name: str, values: Sequence[int] | np.ndarray) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise TypeError(f"draw_starts: {name} must be a 1-d sequence of integers, got dtype {arr.dtype}")
    return arr


def _plans(names: list[str], params: list[Mapping[str, Any]]) -> np.ndarray:
    """(L, 5) plans, each computed once per distinct (scheme name, params) content.

    The engine hands every run its own params dict, so the cache key is the content: floats with their type and
    sign (0.0 == -0.0, yet a std of -0.0 flips the zeros' signs), ints with their type (2 == 2.0 == float32(2),
    but only plain numbers are multiplied alike), anything else by object identity.
    """
    index: dict[tuple, int] = {}
    table: list[Any] = []
    which: list[int] = []
    for name, p in zip(names, params, strict=True):
        key: list[Any] = [name]
        for k, v in p.items() if p else ():
            t = type(v)
            if t is float or t is np.float64:
                key += (k, t, v, math.copysign(1.0, v))
            else:
                key += (k, t, v) if t is int else (k, t, id(v))
        j = index.setdefault(tuple(key), len(table))
        if j == len(table):
            table.append(_plan(name, p))
        which.append(j)
    return np.array(table, dtype=np.float64).reshape(-1, 5)[which]


def _plan(name: str, p: Mapping[str, Any] | None) -> tuple[float, ...]:
    """How to draw a run of scheme ``name`` with params ``p``: its family and its per-layer coefficients."""
    scheme = SCHEMES.get(name) if isinstance(name, str) else None
    if scheme is None or scheme.make is not None:
        return _PER_RUN_PLAN
    full = {**scheme.params, **(p or {})}  # as Scheme.init
    shapes = (W1_SHAPE, W2_SHAPE)
    std = getattr(scheme.layer, "std", None)
    if std is not None:
        s1, s2 = (std(*shape, full) for shape in shapes)
        if _exact(s1) and _exact(s2):
            return (NORMAL, 0.0, float(s1), 0.0, float(s2))
        return _PER_RUN_PLAN
    bound = getattr(scheme.layer, "bound", None)
    if bound is None:
        return _PER_RUN_PLAN
    coefs: list[float] = []
    for shape in shapes:
        a = bound(*shape, full)
        if not _exact(a):
            return _PER_RUN_PLAN
        low, high = float(-a), float(a)  # uniform(-a, a) reads its arguments with PyFloat_AsDouble, i.e. float()
        width = high - low
        if not (math.isfinite(width) and width >= 0):  # numpy raises (or, for legacy, draws downwards)
            return _PER_RUN_PLAN
        coefs += [low, width]
    return (UNIFORM, *coefs)


def _exact(x: Any) -> bool:
    """Whether ``float64_array * x`` is ``float64_array * float(x)``: plain floats and not too large ints."""
    return type(x) in (float, np.float64) or (type(x) is int and abs(x) <= _EXACT_INT)


def _group(*keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows equal in every key share a group: (group of each row (n,), first row of each group (G,))."""
    order = np.lexsort(keys[::-1])  # stable, first key primary
    new = np.zeros(order.size, dtype=bool)
    new[0] = True
    for key in keys:
        k = key[order]
        new[1:] |= k[1:] != k[:-1]
    group = np.empty(order.size, dtype=np.intp)
    group[order] = np.cumsum(new) - 1
    return group, order[new]


def _streams(
    kind: np.ndarray, seed: np.ndarray, skip: np.ndarray, need_z: np.ndarray, need_u: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The first 12 standard normals (where ``need_z``) and 12 uniform doubles (where ``need_u``) of G streams,
    each from the stream's start. (G, 12) each; rows not needed are left unset."""
    z, u = np.empty((kind.size, N_DRAWS)), np.empty((kind.size, N_DRAWS))
    by_words = (kind == DEFAULT) & (seed >= 0)  # a negative seed raises on the per-key path, as per run
    if np.count_nonzero(by_words) >= SEED_BATCH and seeding.exact():
        _seeded_streams(np.flatnonzero(by_words), seed, skip, need_z, need_u, z, u)
        rest = np.flatnonzero(~by_words)
    else:
        rest = np.arange(kind.size)
    legacy = None  # one RandomState, reseeded per key
    for g, k, s, n, want_z, want_u in zip(
        rest.tolist(), *(a[rest].tolist() for a in (kind, seed, skip, need_z, need_u)), strict=True
    ):
        if k == DEFAULT:
            _fill(cast(np.random.Generator, make_rng(s, "default", n)), z[g], u[g], want_z, want_u)
        else:
            legacy = reseed_legacy(legacy if legacy is not None else _legacy(s), s, n)
            saved = legacy.get_state(legacy=False) if want_z and want_u and n > LEGACY_RESKIP else None
            if want_z:
                z[g] = legacy.standard_normal(N_DRAWS)
                if want_u:
                    if saved is not None:
                        legacy.set_state(saved)
                    else:
                        reseed_legacy(legacy, s, n)
            if want_u:
                u[g] = legacy.random_sample(N_DRAWS)
    return z, u


def _seeded_streams(
    rows: np.ndarray, seed: np.ndarray, skip: np.ndarray, need_z: np.ndarray, need_u: np.ndarray, z, u
) -> None:
    """``_streams`` for the default keys ``rows``, seeded by ``xorlab.core.seeding``: all seed words at once, the
    doubles of unskipped streams straight from their PCG64 states, a generator from its words for the rest."""
    words, skips, want_z, want_u = seeding.seed_words(seed[rows]), skip[rows], need_z[rows], need_u[rows]
    direct = want_u & (skips <= 0)
    if direct.any():
        u[rows[direct]] = seeding.first_doubles(words[direct], N_DRAWS)
    want_u &= ~direct
    plain = want_z & ~want_u & (skips <= 0)  # the common case: the first 12 normals of a fresh stream
    if plain.any():
        z[rows[plain]] = seeding.first_normals(words[plain], N_DRAWS)
    todo = np.flatnonzero((want_z | want_u) & ~plain)
    for g, w, n, wz, wu in zip(
        rows[todo].tolist(), words[todo], *(a[todo].tolist() for a in (skips, want_z, want_u)), strict=True
    ):
        gen = seeding.generator(w)
        if n > 0:
            discard(gen, n)
        _fill(gen, z[g], u[g], wz, wu)  # both families after a skip: rare


def _fill(gen: np.random.Generator, z: np.ndarray, u: np.ndarray, want_z: bool, want_u: bool) -> None:
    """A default stream's first normals into ``z`` and/or first doubles into ``u``, each from the stream's current
    position (the state is saved and restored between the two)."""
    saved = gen.bit_generator.state if want_z and want_u else None
    if want_z:
        gen.standard_normal(out=z)
    if saved is not None:
        gen.bit_generator.state = saved
    if want_u:
        gen.random(out=u)


@functools.cache
def uniform_is_affine() -> bool:
    """Whether this numpy's ``uniform(low, high)`` equals ``low + (high - low) * random()`` done in numpy.

    numpy's C code computes ``low + range * next_double`` with two roundings unless the compiler contracted it
    into one fused multiply-add (compilers may, e.g. on arm64). Checked on both generator kinds with bounds of
    several magnitudes; a fused build differs on a large share of draws, so 256 per case show it.
    """
    for kind in RNG_KINDS:
        for a in (1 / 3, 0.7, 2.5e-300, 1.3e300):
            expected = make_rng(20240611, kind).uniform(-a, a, 256)
            low, high = float(-a), float(a)
            got = low + (high - low) * cast(Any, make_rng(20240611, kind)).random(256)
            if got.tobytes() != expected.tobytes():
                return False
    return True


def _legacy(seed: int) -> np.random.RandomState:
    """A legacy generator to reseed (``make_rng`` returns one for kind ``legacy``)."""
    return cast(np.random.RandomState, make_rng(seed, "legacy"))
