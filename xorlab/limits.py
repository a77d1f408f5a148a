"""Limits a sweep checks before it writes anything: values that pass ``TrainConfig`` validation but would fail
later (after chunks were committed) or cost more than a machine has.

- ``seed``: ``RandomState`` takes seeds < 2**32; the store's ``seed`` column is int64, so < 2**63 for
  ``default_rng``.
- ``rng_skip`` ≤ ``MAX_RNG_SKIP``: the skipped draws are generated as one array (8 bytes each).
- grid size ≤ ``MAX_GRID_RUNS``: planning hashes every run (~20 µs) and keeps ~0.2 KB per run.

Each check raises ``ConfigError`` naming the grid field and what is allowed. These belong in
``config.validate``/``Grid.from_mapping`` too (see NOTES-issue8.md); here they guard ``run_sweep``.
"""

from __future__ import annotations

from xorlab.config import ConfigError

SEED_LIMITS = {"legacy": 2**32, "default": 2**63}  # exclusive upper bounds per generator
MAX_RNG_SKIP = 1_000_000  # 8 MB of skipped draws; the notebook replay needs 144
MAX_GRID_RUNS = 2_000_000  # ~40 s of planning and ~0.4 GB of plan; split bigger studies into several sweeps


def check_seed(seed: int, rng: str, field: str = "seed") -> None:
    """Raise ``ConfigError`` unless ``seed`` fits generator ``rng`` (and the int64 store column)."""
    limit = SEED_LIMITS.get(rng, 2**63)
    if seed >= limit:
        raise ConfigError(field, f"must be < 2**{limit.bit_length() - 1} = {limit} for rng={rng}, got {seed}")


def check_rng_skip(skip: int, field: str = "rng_skip") -> None:
    if skip > MAX_RNG_SKIP:
        raise ConfigError(field, f"must be <= {MAX_RNG_SKIP:,} (skipped draws are held in memory), got {skip}")


def check_grid(grid) -> None:
    """Check a ``grid.Grid`` against every limit; ``ConfigError`` names ``grid.<field>``."""
    n = len(grid)
    if n > MAX_GRID_RUNS:
        raise ConfigError("grid", f"{n:,} runs; at most {MAX_GRID_RUNS:,} per sweep (split it into several sweeps)")
    seeds = grid.axes["seed"]
    for rng in grid.axes["rng"]:
        check_seed(max(seeds), rng, "grid.seed")
    check_rng_skip(max(grid.axes["rng_skip"]), "grid.rng_skip")
