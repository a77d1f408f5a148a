"""``SweepOptions``: where and how a sweep runs — the one home of the sweep options and their defaults.

The ``sweep:`` section of the sweep app's config is derived from this dataclass (``xorlab.apps.schema``).
Kept apart from ``xorlab.sweep.runner`` so the apps can build their schema without importing pandas or pyarrow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xorlab.core.config import ConfigError, check_int
from xorlab.engine.results import ENGINES


@dataclass(frozen=True)
class SweepOptions:
    """Where and how to run a sweep (the ``sweep:`` section of ``conf/sweep/sweep.yaml``)."""

    dir: str | Path  # the run store; the app defaults it to Hydra's output dir
    shard: int = 0  # train shard `shard` of `num_shards` (deterministic split by trajectory hash)
    num_shards: int = 1
    chunk_size: int = 4096  # runs per chunk: each chunk is one array program and one atomic store commit
    log_every: int = 10  # loss-curve sampling; outcomes are computed at every step regardless
    progress: bool = True  # tqdm progress bar (runs done, runs/s, ETA)
    engine: str = "numpy"  # the bit-exact reference; "compiled" = the numba kernel (xorlab-sweep's default)

    def __post_init__(self) -> None:
        for name, minimum in (("num_shards", 1), ("shard", 0), ("chunk_size", 1), ("log_every", 1)):
            check_int(f"sweep.{name}", getattr(self, name), minimum)
        if self.shard >= self.num_shards:
            raise ConfigError("sweep.shard", f"must be in 0 … num_shards-1 = {self.num_shards - 1}, got {self.shard}")
        if not isinstance(self.progress, bool):
            raise ConfigError("sweep.progress", f"must be true or false, got {self.progress!r}")
        if self.engine not in ENGINES:
            raise ConfigError("sweep.engine", f"unknown engine {self.engine!r}; allowed: {', '.join(ENGINES)}")
        if not isinstance(self.dir, str | Path) or not str(self.dir):
            raise ConfigError("sweep.dir", f"must be a directory path, got {self.dir!r}")
