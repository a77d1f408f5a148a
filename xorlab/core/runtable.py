"""``RunTable``: N runs as columns — the canonical config of every run, one array per field.

A sweep trains and records runs by the hundred thousand; building a ``TrainConfig`` object per run, and reading
its fields back one by one, would cost more than training it. A ``RunTable`` holds the same
information column-wise: ``columns`` are exactly ``TrainConfig.canonical()``'s entries (``config_dtypes`` order
and types: float64, int64, or object arrays of ``str``/``None``; float init params are NaN where the scheme has
no such parameter), plus each run's complete ``init_params`` mapping, its init file's sha256 (``from_file``
runs) and a ``trajectory`` code (equal codes ⇔ equal ``trajectory_key()``, so those runs share one lane).

It is also a ``Sequence[TrainConfig]``: ``table[i]`` builds the run's config, so code written for a list of
configs accepts a table unchanged. The engine reads its columns (``xorlab.engine.train_batch``), the records
turn them into the run table (``xorlab.store.records.config_frame``), and a sweep builds tables straight from its
grid (``xorlab.sweep.grid.Grid.table``) without a config object per run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xorlab.core.config import TrainConfig, config_dtypes, scalar_fields

_NUMPY = {"float64": np.float64, "int64": np.int64, "string": object}


def column_array(values: Sequence[Any], dtype: str) -> np.ndarray:
    """``values`` (canonical, possibly None) as a column of config dtype ``dtype`` (None -> NaN for floats)."""
    if dtype == "float64":
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    out = np.empty(len(values), dtype=_NUMPY[dtype])
    out[:] = list(values) if dtype == "string" else values
    return out


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True, eq=False)
class RunTable(Sequence[TrainConfig]):
    """N runs' canonical configs as columns; see the module docstring."""

    config_cls: type[TrainConfig]
    columns: dict[str, np.ndarray]  # canonical column -> (N,), in config_dtypes(config_cls) order
    init_params: np.ndarray  # (N,) object: each run's complete init params (shared mappings)
    file_sha256: np.ndarray  # (N,) object: sha256 of a from_file run's init file, else None
    trajectory: np.ndarray  # (N,) int64: equal codes <=> equal trajectory_key()

    def __len__(self) -> int:
        return len(self.trajectory)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return self.take(np.arange(len(self))[i])
        i = int(i)
        values = {f.name: _python(self.columns[f.name][i]) for f in scalar_fields(self.config_cls)}
        return self.config_cls._prevalidated(self.init_params[i], **values)

    def __iter__(self) -> Iterator[TrainConfig]:
        return (self[i] for i in range(len(self)))

    def take(self, rows: np.ndarray) -> RunTable:
        """The runs at ``rows`` (indices or a boolean mask), in that order."""
        return RunTable(
            self.config_cls,
            {k: v[rows] for k, v in self.columns.items()},
            self.init_params[rows],
            self.file_sha256[rows],
            self.trajectory[rows],
        )

    def lanes(self) -> tuple[np.ndarray, np.ndarray]:
        """(first run of each distinct trajectory, lane of each run): one simulated lane per trajectory."""
        _, first, lane_of = np.unique(self.trajectory, return_index=True, return_inverse=True)
        return first, lane_of.reshape(-1).astype(np.int64)

    @classmethod
    def from_configs(cls, configs: Sequence[TrainConfig]) -> RunTable:
        """The table of a sequence of configs (a table is returned as is)."""
        if isinstance(configs, RunTable):
            return configs
        configs = list(configs)
        config_cls = type(configs[0]) if configs else TrainConfig
        canon = [c.canonical() for c in configs]
        columns = {
            name: column_array([c[name] for c in canon], dtype) for name, dtype in config_dtypes(config_cls).items()
        }
        codes: dict[tuple, int] = {}
        trajectory = np.array([codes.setdefault(c.trajectory_key(), len(codes)) for c in configs], dtype=np.int64)
        params = np.empty(len(configs), dtype=object)
        params[:] = [c.init_params for c in configs]
        shas = np.empty(len(configs), dtype=object)
        shas[:] = [c.identity().get("init_file_sha256") if c.init_params.get("path") else None for c in configs]
        return cls(config_cls, columns, params, shas, trajectory)
