"""Random generators: the only place xorlab creates randomness.

Every draw comes from a generator built here from a run's seed; nothing touches numpy's global state.

- ``rng="default"``: ``numpy.random.default_rng(seed)`` (PCG64), the modern generator.
- ``rng="legacy"``: ``numpy.random.RandomState(seed)`` (MT19937), the stream that ``np.random.seed(seed)``
  drives in the notebook, so notebook draws can be replayed exactly.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

RNG_KINDS = ("default", "legacy")
#: Largest seed per generator: RandomState takes 32-bit seeds; default_rng any, but the run store keeps seeds in
#: an int64 column, so xorlab stops at 2**63 - 1 for both to fail before training, not after.
MAX_SEED = {"default": 2**63 - 1, "legacy": 2**32 - 1}
SKIP_BLOCK = 1 << 20  # skipped draws are made in blocks of this many, so a large rng_skip costs 8 MB, not 8·skip


class Draws(Protocol):
    """What init schemes may draw: both numpy generator kinds provide these two methods."""

    def standard_normal(self, size: int | tuple[int, ...]) -> np.ndarray: ...

    def uniform(self, low: float, high: float, size: int | tuple[int, ...]) -> np.ndarray: ...


def make_rng(seed: int, kind: str = "default", skip: int = 0) -> Draws:
    """Return the run's generator, after discarding ``skip`` standard-normal draws.

    ``skip`` replays a position in a stream: the notebook's table comes from the 13th ``Net()`` built after
    ``np.random.seed(1337)``, i.e. ``RandomState(1337)`` after 12 x 12 = 144 normal draws.
    """
    if kind == "default":
        rng: Draws = np.random.default_rng(seed)
    elif kind == "legacy":
        rng = np.random.RandomState(seed)
    else:  # validated earlier; this guards direct callers
        raise ValueError(f"rng: unknown generator {kind!r}; allowed: {', '.join(RNG_KINDS)}")
    discard(rng, skip)
    return rng


def reseed_legacy(rng: np.random.RandomState, seed: int, skip: int = 0) -> np.random.RandomState:
    """Put ``rng`` in exactly the state ``make_rng(seed, "legacy", skip)`` returns, and return it.

    A ``RandomState`` is its MT19937 key and position plus one cached Box–Muller normal; ``RandomState.seed``
    sets all of them as ``RandomState(seed)`` does, in ~1.5 µs instead of ~90 µs (a new ``RandomState`` first
    fills its MT19937's 624 words from fresh OS entropy, then reseeds it). For callers drawing many legacy streams.
    """
    rng.seed(seed)
    discard(rng, skip)
    return rng


def discard(rng: Draws, skip: int) -> None:
    """Discard ``skip`` standard-normal draws (none if ``skip <= 0``), as ``make_rng`` does."""
    while skip > 0:  # same stream as one call of `skip` draws, in bounded memory
        rng.standard_normal((min(skip, SKIP_BLOCK),))
        skip -= SKIP_BLOCK
