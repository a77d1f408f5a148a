"""A sweep grid: axes of ``TrainConfig`` values, their Cartesian product, trajectories and shards.

A grid is a mapping from ``TrainConfig`` field to a value or a list of values::

    lr: [0.01, 0.1, 1]              # or logspace(-2,0,3) / linspace(0.1,1,10): continuous axes
    max_steps: [1000, 5000]         # runs differing only here share one trajectory
    seed: range(0,200)              # also [0, 1, 2] or {start: 0, stop: 200, step: 1}
    init: [notebook, he_normal, {name: normal, std: [0.01, 0.1]}]
    rng: default                    # a scalar is a one-value axis
    loss_threshold: 0.05

Integer axes (``max_steps``, ``seed``, ``rng_skip``) accept Python-style ranges; float axes (``lr``,
``loss_threshold``, and the init parameters ``std``, ``gain``, ``a``) accept ``linspace(a,b,n)`` and
``logspace(a,b,n)`` (``xorlab.sweep.spaces``: exact decimal values, no binary noise). An ``init`` entry is a scheme
name or a mapping ``{name: ..., <param>: value or list}``; lists of params expand to one entry per value.
Everything here is plain Python: the Hydra app hands over a plain dict.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xorlab.core.config import (
    ConfigError,
    TrainConfig,
    budget_axes,
    config_dtypes,
    field_defaults,
    float_axes,
    grid_axes,
    int_axes,
    later_fields,
    plain_cast,
)
from xorlab.core.identity import traj_hash_of
from xorlab.core.inits import INIT_PARAM_NAMES, INIT_PARAM_TYPES
from xorlab.core.runtable import RunTable, column_array
from xorlab.sweep import spaces

#: A sweep plans at most this many runs: planning hashes every trajectory (and, resuming, every run id) before
#: the first chunk trains, ~1.6 µs a run (2.5 µs resuming) and ~35 B a run: 2 million runs take 3–5 s and ~70 MB.
MAX_GRID_RUNS = 2_000_000
# Axes come from TrainConfig's fields: a new field is a new axis with no edit here.
AXES = tuple(grid_axes())
TRAJECTORY_AXES = tuple(a for a in AXES if a not in budget_axes())
_RANGE = re.compile(r"^\s*range\(\s*(-?\d+)\s*,\s*(-?\d+)\s*(?:,\s*(-?\d+)\s*)?\)\s*$")
InitSpec = tuple[str, tuple[tuple[str, Any], ...]]  # (scheme, sorted params)


def _range(field: str, value: Any) -> range | None:
    """A range given as ``"range(a,b[,s])"`` or ``{start, stop[, step]}``, else None."""
    if isinstance(value, str) and (m := _RANGE.match(value)):
        start, stop, step = int(m[1]), int(m[2]), int(m[3] or 1)
    elif isinstance(value, Mapping) and set(value) <= {"start", "stop", "step"} and "stop" in value:
        start, stop, step = value.get("start", 0), value["stop"], value.get("step", 1)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, stop, step)):
            raise ConfigError(f"grid.{field}", f"range bounds must be integers, got {dict(value)}")
    else:
        return None
    if step == 0:
        raise ConfigError(f"grid.{field}", "range step must not be 0")
    return range(start, stop, step)  # kept lazy: a huge range is refused by its length, not by MemoryError


def _space(field: str, value: Any, floats: frozenset[str] | set[str]) -> list[float] | None:
    """The values of a ``linspace``/``logspace`` axis, or None; only float axes take one."""
    if not spaces.is_space(value):
        return None
    if field not in floats:
        named = [f for f in sorted(floats) if not f.startswith("init.")]
        raise ConfigError(
            f"grid.{field}",
            f"{value.strip()}: linspace/logspace are for float axes ("
            f"{', '.join(named)} and the init parameters std, gain, a); integer axes take "
            "range(a,b[,step])",
        )
    try:
        return spaces.space(value)
    except spaces.SpaceError as exc:
        raise ConfigError(f"grid.{field}", str(exc)) from None


Names = frozenset[str] | set[str]


def _values(field: str, value: Any, ints: Names = frozenset(), floats: Names = frozenset()) -> Sequence[Any]:
    values: Sequence[Any]
    if field in ints and (r := _range(field, value)) is not None:
        values = r
    elif (s := _space(field, value, floats)) is not None:
        values = s
    elif isinstance(value, str | bytes) or not isinstance(value, Sequence):
        values = [value]
    else:
        values = list(value)
    if not values:
        raise ConfigError(f"grid.{field}", "empty axis; give at least one value")
    return values


def _init_specs(value: Any) -> list[InitSpec]:
    specs: list[InitSpec] = []
    for entry in _values("init", value):
        if isinstance(entry, str):
            specs.append((entry, ()))
            continue
        if not isinstance(entry, Mapping) or "name" not in entry:
            raise ConfigError(
                "grid.init", f"each entry must be a scheme name or {{name: ..., param: ...}}, got {entry!r}"
            )
        params = {k: v for k, v in entry.items() if k != "name" and v is not None}
        for key in params:
            if key not in INIT_PARAM_NAMES:
                raise ConfigError(f"grid.init.{key}", f"unknown init parameter; allowed: {', '.join(INIT_PARAM_NAMES)}")
        keys = sorted(params)
        floats = {f"init.{k}" for k in keys if INIT_PARAM_TYPES[k] is float}
        for combo in itertools.product(*(_values(f"init.{k}", params[k], floats=floats) for k in keys)):
            specs.append((entry["name"], tuple(zip(keys, combo, strict=True))))
    return specs


def _count(values: Sequence[Any]) -> int:
    """``len(values)``, also for a range longer than ``len`` can return (2**63 or more values)."""
    if isinstance(values, range):
        return max(0, (values.stop - values.start + values.step - (1 if values.step > 0 else -1)) // values.step)
    return len(values)


def _unique(values: Sequence[Any]) -> Sequence[Any]:
    return values if isinstance(values, range) else list(dict.fromkeys(values))  # a range has no repeats: kept lazy


def _ends(values: Sequence[Any]) -> Sequence[Any]:
    return [values[0], values[-1]] if isinstance(values, range) else values


@dataclass(frozen=True)
class Grid:
    """Validated axes. ``len(grid)`` runs = trajectories x budget values (``max_steps``)."""

    axes: dict[str, Sequence[Any]]  # trajectory axes -> values (init as InitSpec); a range stays a range
    max_steps: Sequence[int]
    config_cls: type[TrainConfig] = TrainConfig

    @classmethod
    def from_mapping(cls, grid: Mapping[str, Any], config_cls: type[TrainConfig] = TrainConfig) -> Grid:
        """Parse and validate every axis value (raises ``ConfigError`` naming ``grid.<field>``).

        The axes are ``config_cls``'s fields (``grid_axes``); an axis left out takes the field's default.
        """
        axes_all = tuple(grid_axes(config_cls))
        unknown = set(grid) - set(axes_all)
        if unknown:
            raise ConfigError(f"grid.{sorted(unknown)[0]}", f"unknown axis; allowed: {', '.join(axes_all)}")
        (budget,) = budget_axes(config_cls)
        defaults, ints, floats = field_defaults(config_cls), int_axes(config_cls), float_axes(config_cls)
        axes: dict[str, Sequence[Any]] = {}
        for field in axes_all:
            if field == budget:
                continue
            raw = grid.get(field, defaults[field])
            axes[field] = _init_specs(raw) if field == "init" else _values(field, raw, ints, floats)
        max_steps = _values(budget, grid.get(budget, defaults[budget]), ints, floats)
        runs = math.prod(_count(v) for v in axes.values()) * _count(max_steps)
        if runs > MAX_GRID_RUNS:
            raise ConfigError(
                "grid",
                f"{runs:,} runs is more than a sweep plans ({MAX_GRID_RUNS:,}); split the grid "
                "into several sweeps (e.g. seed ranges) into one store",
            )
        cls(axes, max_steps, config_cls)._validate()  # every value as given, before repeats are dropped
        unique = {field: _unique(values) for field, values in axes.items()}
        return cls(unique, _unique(max_steps), config_cls)

    def _validate(self) -> None:
        """Build one config per axis value so every invalid value is reported before anything runs (a range:
        its first and last value; every check of an integer is a bound)."""
        base = {f: vals[0] for f, vals in self.axes.items()}
        for field, values in self.axes.items():
            for v in _ends(values):
                self._checked({**base, field: v}, self.max_steps[0])
        for m in _ends(self.max_steps):
            self._checked(base, m)
        if "seed" in self.axes and "rng" in self.axes:  # the one check that couples two fields
            for rng in self.axes["rng"]:
                self._checked({**base, "rng": rng, "seed": max(_ends(self.axes["seed"]))}, self.max_steps[0])

    def _checked(self, point: Mapping[str, Any], max_steps: Any) -> None:
        try:
            self._config(point, max_steps, checked=True)
        except ConfigError as exc:
            raise exc.under("grid") from None

    def _config(self, point: Mapping[str, Any], max_steps: int, checked: bool = False) -> TrainConfig:
        """The config at a grid point. Every axis value was validated by ``from_mapping``, and no check couples
        two fields except seed × rng (checked there for the extremes), so points are built unchecked."""
        name, params = point["init"]
        fields = {k: v for k, v in point.items() if k != "init"}
        if checked:
            return self.config_cls(**fields, max_steps=max_steps, init=name, init_params=dict(params))
        return self.config_cls._prevalidated(dict(params), **fields, max_steps=max_steps, init=name)

    def __len__(self) -> int:
        return self.n_trajectories * len(self.max_steps)

    @property
    def n_trajectories(self) -> int:
        n = 1
        for values in self.axes.values():
            n *= len(values)
        return n

    def trajectory(self, index: int) -> list[TrainConfig]:
        """Runs of trajectory ``index`` (row-major over the axes): one config per ``max_steps`` value."""
        point = {}
        for field in reversed(self.axes):
            index, i = divmod(index, len(self.axes[field]))
            point[field] = self.axes[field][i]
        return [self._config(point, m) for m in self.max_steps]

    def trajectories(self) -> Iterator[list[TrainConfig]]:
        """Lazily, every trajectory's runs in index order."""
        fields = list(self.axes)
        for combo in itertools.product(*self.axes.values()):
            point = dict(zip(fields, combo, strict=True))
            yield [self._config(point, m) for m in self.max_steps]

    # ------------------------------------------------------------------------------------- columnar access
    # A sweep never builds a config per run: it indexes per-axis columns (``table``) and hashes per-axis text
    # (``xorlab.sweep.keys``). Each canonical entry of a run is determined by exactly one axis: a field by its own
    # axis, the init params (and a from_file run's file identity) by ``init``.

    @property
    def budget(self) -> str:
        """The budget axis (``max_steps``): runs differing only there share a trajectory."""
        return budget_axes(self.config_cls)[0]

    def owner(self, key: str) -> str:
        """The axis whose value determines the canonical/identity entry ``key`` of every run."""
        return key if key in self.axes or key == self.budget else "init"

    def values(self, axis: str) -> Sequence[Any]:
        return self.max_steps if axis == self.budget else self.axes[axis]

    def axis_index(self, traj: np.ndarray) -> dict[str, np.ndarray]:
        """Trajectory indices (row-major over the axes) -> each axis's value index."""
        shape = tuple(len(v) for v in self.axes.values())
        return dict(zip(self.axes, np.unravel_index(np.asarray(traj, dtype=np.int64), shape), strict=True))

    @functools.cached_property
    def _init_runs(self) -> list[TrainConfig]:
        """One config per init entry (other axes at their first value): the init axis's canonical entries."""
        base = {f: vals[0] for f, vals in self.axes.items()}
        return [self._config({**base, "init": spec}, self.max_steps[0]) for spec in self.axes["init"]]

    def owned(self, axis: str, j: int, canonical: bool = False) -> dict[str, Any]:
        """The entries of ``TrainConfig.identity()`` (run_id's input; with ``canonical``: of ``canonical()``, the
        trajectory key's) that value ``j`` of ``axis`` sets."""
        if axis == "init":
            run = self._init_runs[j]
            entries = run.canonical() if canonical else run.identity()
            return {k: v for k, v in entries.items() if self.owner(k) == "init"}
        value = plain_cast(self.config_cls, axis)(self.values(axis)[j])
        later = later_fields(self.config_cls)
        if axis in later and value == later[axis]:  # a later field at its default is in neither text
            return {}
        return {axis: value}

    @functools.cached_property
    def _columns(self) -> dict[str, np.ndarray]:
        return {}  # axis -> canonical values of a listed (not range) axis, filled on first use

    def column(self, axis: str, idx: np.ndarray) -> np.ndarray:
        """Canonical values of ``axis`` at value indices ``idx`` (a range axis is computed, never listed)."""
        values = self.values(axis)
        if isinstance(values, range):
            idx = np.asarray(idx, dtype=np.int64)
            if max(abs(values.start), abs(values.step) * len(values)) < 2**62:  # int64 arithmetic cannot overflow
                return values.start + idx * values.step
            return np.array([values[j] for j in idx.reshape(-1).tolist()], dtype=np.int64).reshape(idx.shape)
        if axis not in self._columns:
            dtype = config_dtypes(self.config_cls)[axis]
            cast = plain_cast(self.config_cls, axis)
            self._columns[axis] = column_array([cast(v) for v in values], dtype)
        return self._columns[axis][idx]

    @functools.cached_property
    def _init_columns(self) -> dict[str, np.ndarray]:
        runs, dtypes = self._init_runs, config_dtypes(self.config_cls)
        canon = [c.canonical() for c in runs]
        out = {k: column_array([c[k] for c in canon], dtypes[k]) for k in dtypes if self.owner(k) == "init"}
        out["_params"] = np.empty(len(runs), dtype=object)
        out["_params"][:] = [c.init_params for c in runs]
        out["_sha256"] = np.empty(len(runs), dtype=object)
        out["_sha256"][:] = [self.owned("init", j).get("init_file_sha256") for j in range(len(runs))]
        return out

    def table(self, traj: np.ndarray, needed: np.ndarray | None = None) -> RunTable:
        """The runs of trajectories ``traj`` as a ``RunTable``: trajectory-major, budgets in grid order, only
        those where ``needed`` (T, len(max_steps)) is true. Equal to the configs ``trajectory`` builds."""
        traj = np.asarray(traj, dtype=np.int64)
        if needed is None:
            needed = np.ones((traj.size, len(self.max_steps)), dtype=bool)
        t_pos, b_idx = np.nonzero(needed)  # row-major: trajectory-major, then budget order
        idx = {axis: i[t_pos] for axis, i in self.axis_index(traj).items()}
        init = self._init_columns
        columns = {}
        for name in config_dtypes(self.config_cls):
            axis = self.owner(name)
            columns[name] = init[name][idx["init"]] if axis == "init" else self.column(axis, idx.get(axis, b_idx))
        return RunTable(
            self.config_cls, columns, init["_params"][idx["init"]], init["_sha256"][idx["init"]], t_pos.astype(np.int64)
        )


def shard_of(cfg: TrainConfig, num_shards: int) -> int:
    """Deterministic shard of a run's trajectory: its hash (ignoring ``max_steps``) modulo ``num_shards``.

    Depends only on the trajectory, not on the grid it sits in, so growing a grid never moves a run to another
    shard, and runs sharing a trajectory always land in the same shard.
    """
    return traj_hash_of(cfg.trajectory_key()) % num_shards
