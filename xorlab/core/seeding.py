"""``numpy.random.default_rng(seed)`` for many seeds at once: its seed words, its PCG64 state, its first doubles.

``default_rng(seed)`` costs ~8 µs, almost all of it ``SeedSequence(seed)`` (a hash run through Python per seed) and
its ``generate_state(4, np.uint64)``. Both are fixed integer arithmetic, done here over a whole array of seeds:

1. Words (``seed_words``). ``SeedSequence`` splits an int into uint32 words, low first (one word below 2**32, two
   up to 2**64 - 1), hashes them into a pool of 4 words padded with hashes of 0 (so a one-word seed is its
   two-word form with a zero high word), mixes the pool, and hashes it out into 8 uint32 words read as 4
   little-endian uint64 words. Every step is uint32 multiply / xor / shift with constants that do not depend on
   the seed (numpy/random/bit_generator.pyx: INIT_A, MULT_A, MIX_MULT_L/R, INIT_B, MULT_B, XSHIFT = 16), so it
   runs as ~100 numpy operations over the batch (~0.1 µs per seed for thousands of seeds).
2. Generators (``generator``, ``first_normals``). ``PCG64(seed_seq)`` takes any ``ISeedSequence`` (numpy's
   public interface for seed sequences) and seeds itself from its ``generate_state(4, np.uint64)``; handing it
   the precomputed words gives the generator ``default_rng(seed)`` gives, for ~1 µs. (The other public route,
   loading each derived state into one reused PCG64 through the ``bit_generator.state`` setter, costs more:
   ~1.3 µs for the setter alone, which parses a dict of two 128-bit Python ints; benchmarks/bench_init_draws.py
   times both.) Normals (a ziggurat with rejections) come from such a generator, ~2 µs per seed for 12.
3. State and doubles (``pcg64_state``, ``first_doubles``). PCG64 seeds with words w as ``pcg64_set_seed``:
   inc = (w[2] << 64 | w[3]) << 1 | 1 and state = (inc + (w[0] << 64 | w[1])) * MULT + inc, mod 2**128; draw k
   outputs XSL-RR of the state after k steps, state * MULT**k + inc * (1 + MULT + ... + MULT**(k-1)): (hi ^ lo)
   rotated right by hi >> 58; and ``Generator.random()`` makes an output (output >> 11) * 2**-53. Done in uint64
   halves for all seeds and all k at once, so the first doubles of many streams need no generator (~0.3 µs per
   seed for 12).

``exact()`` checks once per process, against numpy itself, that all of this still holds: for fixed seeds (0, 1,
2**32 - 1, 2**32, 2**63 - 1, 2**64 - 1 and a few others) the words equal ``SeedSequence(seed).generate_state(4,
np.uint64)``; the derived state and that of ``generator(words)`` equal ``default_rng(seed).bit_generator.state``;
the first 12 doubles and normals equal ``default_rng(seed)``'s. A numpy that seeds or draws otherwise fails it (an
exception counts as failing), and callers then build ``default_rng(seed)`` per seed as before.
"""

from __future__ import annotations

import functools

import numpy as np

try:  # the public interface PCG64 accepts as a seed; without it generator() raises and exact() fails
    from numpy.random.bit_generator import ISeedSequence
except ImportError:  # pragma: no cover
    ISeedSequence = object  # type: ignore[assignment,misc]

U32, U64 = np.uint32, np.uint64
MAX_SEED = 2**64 - 1  # what a uint64 column can hold; default_rng takes any non-negative int
# numpy/random/bit_generator.pyx (SeedSequence), numpy/random/src/pcg64 (PCG_DEFAULT_MULTIPLIER_128)
INIT_A, MULT_A, INIT_B, MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
MIX_MULT_L, MIX_MULT_R, XSHIFT, POOL_SIZE = 0xCA01F9DD, 0x4973F715, 16, 4
PCG_MULT = 0x2360ED051FC65DA44385DF649FCCF645
_MULT_HI, _MULT_LO = U64(PCG_MULT >> 64), U64(PCG_MULT & (2**64 - 1))
_M32, _S32 = U64(0xFFFFFFFF), U64(32)
CHECK_SEEDS = (0, 1, 2**32 - 1, 2**32, 2**63 - 1, MAX_SEED, 42, 1337, 123456789012345, 0x5DEECE66D << 20)


def _consts(init: int, mult: int, n: int) -> list[tuple[np.uint32, np.uint32]]:
    """(xor constant, multiplier) of n successive hashes: the hash constant runs through fixed values."""
    out, h = [], init
    for _ in range(n):
        nxt = h * mult & 0xFFFFFFFF
        out.append((U32(h), U32(nxt)))
        h = nxt
    return out


_MIX_HASHES = _consts(INIT_A, MULT_A, POOL_SIZE + POOL_SIZE * (POOL_SIZE - 1))  # 4 entropy words + 12 mixes
_OUT_HASHES = _consts(INIT_B, MULT_B, 8)  # generate_state(4, np.uint64): 8 uint32 words


def seed_words(seeds: np.ndarray) -> np.ndarray:
    """(n, 4) uint64, C-contiguous: row i is ``SeedSequence(seeds[i]).generate_state(4, np.uint64)``.

    ``seeds``: integers in 0 … 2**64 - 1 (not checked; callers pass only those).
    """
    s = np.asarray(seeds).astype(U64).reshape(-1)
    hashes = iter(_MIX_HASHES)

    def hashmix(v: np.ndarray) -> np.ndarray:
        xor, mult = next(hashes)
        v = (v ^ xor) * mult
        return v ^ (v >> U32(XSHIFT))

    def mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        r: np.ndarray = U32(MIX_MULT_L) * x - U32(MIX_MULT_R) * y
        return r ^ (r >> U32(XSHIFT))

    zero = np.zeros(s.size, U32)
    pool = [hashmix(w) for w in ((s & _M32).astype(U32), (s >> _S32).astype(U32), zero, zero)]
    for src in range(POOL_SIZE):
        for dst in range(POOL_SIZE):
            if src != dst:
                pool[dst] = mix(pool[dst], hashmix(pool[src]))
    words = np.empty((s.size, 8), U32)
    for k, (xor, mult) in enumerate(_OUT_HASHES):
        v = (pool[k % POOL_SIZE] ^ xor) * mult
        words[:, k] = v ^ (v >> U32(XSHIFT))
    w = words.astype(U64)
    return np.ascontiguousarray(w[:, 0::2] | (w[:, 1::2] << _S32))  # little-endian pairs, as numpy reads them


class _Words(ISeedSequence):
    """A seed sequence that hands PCG64 precomputed ``generate_state(4, np.uint64)`` words."""

    __slots__ = ("words",)

    def __init__(self, words: np.ndarray) -> None:
        self.words = words

    def generate_state(self, n_words: int, dtype=np.uint32) -> np.ndarray:
        if n_words == 4 and (dtype is U64 or np.dtype(dtype) == np.dtype(U64)):  # what PCG64 asks for
            return self.words
        raise ValueError(f"precomputed words are 4 x uint64, asked for {n_words} x {np.dtype(dtype)}")


def generator(words: np.ndarray) -> np.random.Generator:
    """The generator ``default_rng(seed)`` returns, from ``seed_words``' row for that seed (~1 µs).

    ``words``: 4 native uint64 in one C-contiguous block, as ``seed_words``' rows are (PCG64 reads the buffer).
    """
    # numpy's stubs list only SeedSequence, but PCG64 takes any ISeedSequence (its documented interface); exact()
    # checks at run time that this route still gives default_rng's generator
    return np.random.Generator(np.random.PCG64(_Words(words)))  # type: ignore[arg-type]


def first_normals(words: np.ndarray, n: int) -> np.ndarray:
    """(rows, n): ``generator(words[i]).standard_normal(n)`` for each row (a ziggurat: one generator per row)."""
    out = np.empty((len(words), n))
    for row, w in zip(out, words, strict=True):
        generator(w).standard_normal(out=row)
    return out


def _mul64(a: np.ndarray, b: np.ndarray | np.uint64) -> tuple[np.ndarray, np.ndarray]:
    """Full 128-bit products of uint64s as (high, low) halves, through 32-bit pieces."""
    a0, a1, b0, b1 = a & _M32, a >> _S32, b & _M32, b >> _S32
    p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
    mid = (p00 >> _S32) + (p01 & _M32) + (p10 & _M32)
    return p11 + (p01 >> _S32) + (p10 >> _S32) + (mid >> _S32), (mid << _S32) | (p00 & _M32)


def _mul128(
    hi: np.ndarray, lo: np.ndarray, c_hi: np.ndarray | np.uint64, c_lo: np.ndarray | np.uint64
) -> tuple[np.ndarray, np.ndarray]:
    """(hi, lo) * (c_hi, c_lo) mod 2**128 on uint64 halves (broadcasting); the cross terms wrap mod 2**64."""
    p_hi, p_lo = _mul64(lo, c_lo)
    return p_hi + lo * c_hi + hi * c_lo, p_lo


def _add128(a_hi: np.ndarray, a_lo: np.ndarray, b_hi: np.ndarray, b_lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo = a_lo + b_lo
    return a_hi + b_hi + (lo < a_lo).astype(U64), lo


def _halves(values: list[int]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([v >> 64 for v in values], U64), np.array([v & (2**64 - 1) for v in values], U64)


@functools.cache
def _jumps(n: int) -> tuple[np.ndarray, ...]:
    """Halves of MULT**k and of 1 + MULT + ... + MULT**(k-1), k = 1 … n: k steps are state * MULT**k + inc * that."""
    powers, sums, p, t = [], [], 1, 0
    for _ in range(n):
        p, t = p * PCG_MULT % 2**128, (t * PCG_MULT + 1) % 2**128
        powers.append(p)
        sums.append(t)
    return (*_halves(powers), *_halves(sums))


def pcg64_state(words: np.ndarray) -> tuple[np.ndarray, ...]:
    """(state high, state low, inc high, inc low) uint64 arrays of ``generator(words)``, as ``pcg64_set_seed``
    sets them: inc = initseq << 1 | 1, then one step from 0 (state = inc), add initstate, step again."""
    w = np.asarray(words, dtype=U64).reshape(-1, 4)
    inc = (w[:, 2] << U64(1)) | (w[:, 3] >> U64(63)), (w[:, 3] << U64(1)) | U64(1)
    hi, lo = _mul128(*_add128(*inc, w[:, 0], w[:, 1]), _MULT_HI, _MULT_LO)
    return (*_add128(hi, lo, *inc), *inc)


def first_doubles(words: np.ndarray, n: int) -> np.ndarray:
    """(rows, n): ``generator(words[i]).random(n)`` for each row, computed without a generator.

    Draw k outputs XSL-RR of the state after k steps, state * MULT**k + inc * (1 + ... + MULT**(k-1)), all k at
    once; ``random()`` makes each output one double, (output >> 11) * 2**-53 (numpy's ``next_double``).
    """
    hi, lo, inc_hi, inc_lo = (a[:, None] for a in pcg64_state(words))
    pow_hi, pow_lo, sum_hi, sum_lo = _jumps(n)
    hi, lo = _add128(*_mul128(hi, lo, pow_hi, pow_lo), *_mul128(inc_hi, inc_lo, sum_hi, sum_lo))
    x, rot = hi ^ lo, hi >> U64(58)
    raw = (x >> rot) | (x << ((U64(64) - rot) & U64(63)))  # rotate right (rot = 0 leaves x)
    return (raw >> U64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def state_dicts(words: np.ndarray) -> list[dict]:
    """``bit_generator.state`` of ``generator(words[i])`` per row, from ``pcg64_state`` (for checks and tests)."""
    halves = zip(*(a.tolist() for a in pcg64_state(words)), strict=True)
    return [
        {
            "bit_generator": "PCG64",
            "state": {"state": s1 << 64 | s0, "inc": i1 << 64 | i0},
            "has_uint32": 0,
            "uinteger": 0,
        }
        for s1, s0, i1, i0 in halves
    ]


@functools.cache
def exact() -> bool:
    """Whether this numpy seeds and draws as this module computes, on ``CHECK_SEEDS`` (once per process)."""
    try:
        words = seed_words(np.array(CHECK_SEEDS, dtype=U64))
        doubles, normals = first_doubles(words, 12), first_normals(words, 12)
        for i, (seed, state) in enumerate(zip(CHECK_SEEDS, state_dicts(words), strict=True)):
            expected = np.random.SeedSequence(seed).generate_state(4, np.uint64)
            if expected.dtype != U64 or expected.tobytes() != words[i].tobytes():
                return False
            if not np.random.default_rng(seed).bit_generator.state == generator(words[i]).bit_generator.state == state:
                return False
            if np.random.default_rng(seed).random(12).tobytes() != doubles[i].tobytes():
                return False
            if np.random.default_rng(seed).standard_normal(12).tobytes() != normals[i].tobytes():
                return False
    except Exception:  # any failure means: do not use this module's shortcuts
        return False
    return True
