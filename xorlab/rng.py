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


class Draws(Protocol):
    """What init schemes may draw: both numpy generator kinds provide these two methods."""

    def standard_normal(self, size: tuple[int, ...]) -> np.ndarray: ...

    def uniform(self, low: float, high: float, size: tuple[int, ...]) -> np.ndarray: ...


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
    if skip:
        rng.standard_normal((skip,))
    return rng
