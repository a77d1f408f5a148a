"""Limits a sweep checks before it writes anything: values that pass ``TrainConfig`` validation but would fail
later (after chunks were committed) or cost more than a machine has.

- ``seed``: ``RandomState`` takes seeds < 2**32; the store's ``seed`` column is int64, so < 2**63 for
  ``default_rng``.
- ``rng_skip`` ≤ ``config.MAX_RNG_SKIP`` (the skipped draws are made in 8 MB blocks; ~1 s per 10**8).
- grid size ≤ ``grid.MAX_GRID_RUNS``: planning hashes every run and keeps its pending ids.

The limits themselves live where the values are validated (``rng.MAX_SEED``, ``config.MAX_RNG_SKIP``,
``grid.MAX_GRID_RUNS``), so ``TrainConfig`` and ``Grid.from_mapping`` already refuse them; these checks guard
``run_sweep`` for grids built some other way. Each raises ``ConfigError`` naming the grid field.
"""

from __future__ import annotations

from xorlab.config import MAX_RNG_SKIP, ConfigError
from xorlab.grid import MAX_GRID_RUNS
from xorlab.rng import MAX_SEED

SEED_LIMITS = {kind: top + 1 for kind, top in MAX_SEED.items()}  # exclusive upper bounds per generator


def check_seed(seed: int, rng: str, field: str = "seed") -> None:
    """Raise ``ConfigError`` unless ``seed`` fits generator ``rng`` (and the int64 store column)."""
    limit = SEED_LIMITS.get(rng, 2**63)
    if seed >= limit:
        raise ConfigError(field, f"must be < 2**{limit.bit_length() - 1} = {limit} for rng={rng}, got {seed}")


def check_rng_skip(skip: int, field: str = "rng_skip") -> None:
    if skip > MAX_RNG_SKIP:
        raise ConfigError(field, f"must be <= {MAX_RNG_SKIP:,}, got {skip}")


def check_grid(grid) -> None:
    """Check a ``grid.Grid`` against every limit; ``ConfigError`` names ``grid.<field>``."""
    n = len(grid)
    if n > MAX_GRID_RUNS:
        raise ConfigError("grid", f"{n:,} runs; at most {MAX_GRID_RUNS:,} per sweep (split it into several sweeps)")
    seeds = grid.axes["seed"]
    for rng in grid.axes["rng"]:
        check_seed(max(seeds), rng, "grid.seed")
    check_rng_skip(max(grid.axes["rng_skip"]), "grid.rng_skip")
