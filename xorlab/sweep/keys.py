"""Run ids, trajectory hashes and duplicates of a grid's runs in bulk, without a config object per run.

``records.run_id(cfg)`` hashes the identity text of ``xorlab.core.identity`` (sorted ``"key":value`` JSON pairs)
and ``grid.shard_of`` hashes ``repr(cfg.trajectory_key())``; both are written by that module's pair functions,
which this module uses too. Both texts are a fixed sequence of ``key:value``
pairs, and each pair is set by one grid axis (``Grid.owner``): a field by its own axis, the init params and a
from_file run's file identity by ``init``. So the text of any run is the concatenation of per-axis-value
fragments, built once per axis value (``Grid.owned``), and planning a 100,000-run sweep costs string joins and
one sha256 per run instead of a config, a dict and a JSON encoding per run. ``tests/test_grid_keys.py``
checks both texts against ``run_id``/``shard_of`` of the configs ``Grid.trajectories`` builds.

Two grid values whose fragments are equal (``normal`` and ``{name: normal, std: 1.0}``; ``a.npz`` and
``./a.npz``) make equal runs; ``duplicates`` marks every run but the first of such a group, which is what
iterating the trajectories in order and skipping seen run ids gives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from xorlab.core.config import config_dtypes, plain_cast
from xorlab.core.identity import ID_SEP, TRAJ_SEP, id_of_pairs, id_pair, int_pair_parts, traj_hash_of_pairs, traj_pair
from xorlab.sweep.grid import Grid

Encode = Callable[[str, Any], str]


class _Text:
    """A run's text as segments: maximal runs of consecutive keys set by one axis, each a fragment per value."""

    def __init__(self, grid: Grid, keys: list[str], sep: str, encode: Encode, canonical: bool = False) -> None:
        self.grid, self.sep, self.encode, self.canonical = grid, sep, encode, canonical
        self.segments: list[tuple[str, tuple[str, ...]]] = []  # (axis, keys)
        for key in keys:
            axis = grid.owner(key)
            if self.segments and self.segments[-1][0] == axis:
                self.segments[-1] = (axis, (*self.segments[-1][1], key))
            else:
                self.segments.append((axis, (key,)))
        self._cache: dict[int, np.ndarray] = {}  # segment -> fragment per value (listed axes)

    def fragment(self, seg: int, j: int) -> str:
        """``sep`` + the pairs of segment ``seg`` for value ``j`` of its axis ("" if it sets none of them)."""
        axis, keys = self.segments[seg]
        owned = self.grid.owned(axis, j, self.canonical)
        return "".join(self.sep + self.encode(k, owned[k]) for k in keys if k in owned)

    def fragment_template(self, seg: int) -> tuple[str, str]:
        """(head, tail) with fragment = head + str(value) + tail, for a segment that is one integer field."""
        axis, keys = self.segments[seg]
        head, tail = int_pair_parts(self.encode, axis)
        return self.sep + head, tail

    def fragments(self, seg: int, idx: np.ndarray, prefix: str = "") -> np.ndarray:
        """``prefix`` + fragment of segment ``seg`` at value indices ``idx`` (object array of str)."""
        axis = self.segments[seg][0]
        values = self.grid.values(axis)
        if isinstance(values, range):  # possibly millions of integers: only those asked for, from a template
            head, tail = self.fragment_template(seg)
            head = prefix + head
            out = np.empty(np.shape(idx), dtype=object)
            out.reshape(-1)[:] = [head + str(v) + tail for v in self.grid.column(axis, idx).reshape(-1).tolist()]
            return out
        if seg not in self._cache:
            frags = np.empty(len(values), dtype=object)
            frags[:] = [self.fragment(seg, j) for j in range(len(values))]
            self._cache[seg] = frags
        return (prefix + self._cache[seg] if prefix else self._cache[seg])[idx]

    def join(self, idx: dict[str, np.ndarray], segments: range) -> np.ndarray:
        """The text of ``segments`` for every index; an axis with one value is a constant, folded into the
        fragments of the next axis (so it costs nothing per run)."""
        out, const = None, ""
        for seg in segments:
            axis = self.segments[seg][0]
            if len(self.grid.values(axis)) == 1:
                const += self.fragment(seg, 0)
                continue
            frags = self.fragments(seg, idx[axis], prefix=const)
            out, const = frags if out is None else out + frags, ""
        if out is None:
            return np.full(next(iter(idx.values())).shape, const, dtype=object)
        return out + const if const else out


class GridKeys:
    """Bulk ``run_id``s, trajectory hashes and duplicate marks of a grid's runs."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid
        identity = set(config_dtypes(grid.config_cls))
        for j in range(len(grid.axes["init"])):  # a from_file entry adds its file's identity
            identity |= set(grid.owned("init", j))
        self.ids = _Text(grid, sorted(identity), ID_SEP, id_pair)
        canonical = [k for k in config_dtypes(grid.config_cls) if k != grid.budget]
        self._one = "," if len(canonical) == 1 else ""  # repr of a 1-tuple: ('k', v),
        self.traj = _Text(grid, canonical, TRAJ_SEP, traj_pair, canonical=True)  # trajectory_key(): canonical()
        (self._budget,) = [i for i, (axis, _) in enumerate(self.ids.segments) if axis == grid.budget]
        assert self.ids.segments[self._budget][1] == (grid.budget,), "the budget axis sets one identity entry"
        self._repeats: dict[str, np.ndarray] = {}

    def run_ids(self, traj: np.ndarray) -> np.ndarray:
        """(T, len(max_steps)) object array: ``run_id`` of every run of trajectories ``traj``."""
        return self.run_ids_at(traj, self.grid.max_steps)

    def run_ids_at(self, traj: np.ndarray, budgets: Sequence[int]) -> np.ndarray:
        """(T, len(budgets)) object array: ``run_id`` of trajectories ``traj`` trained for each of ``budgets``
        steps, in the grid or not (a sweep that extends a store looks up the shorter runs it continues from)."""
        idx = self.grid.axis_index(traj)
        head = self.ids.join(idx, range(self._budget))
        tail = self.ids.join(idx, range(self._budget + 1, len(self.ids.segments)))
        cast = plain_cast(self.grid.config_cls, self.grid.budget)
        out = np.empty((len(head), len(budgets)), dtype=object)
        for b, steps in enumerate(budgets):
            mid = ID_SEP + id_pair(self.grid.budget, cast(steps))  # the budget's one identity entry
            out[:, b] = [id_of_pairs((h + mid + t)[len(ID_SEP) :]) for h, t in zip(head, tail, strict=True)]
        return out

    def hashes(self, traj: np.ndarray) -> np.ndarray:
        """(T,) int64: the trajectory hash ``shard_of`` takes modulo the number of shards (or claim buckets)."""
        text = self.traj.join(self.grid.axis_index(traj), range(len(self.traj.segments)))
        return np.array([traj_hash_of_pairs(t[len(TRAJ_SEP) :] + self._one) for t in text], dtype=np.int64)

    def duplicates(self, traj: np.ndarray) -> np.ndarray:
        """(T, len(max_steps)) bool: runs equal to a run earlier in the grid (same identity text)."""
        idx = self.grid.axis_index(traj)
        dup = np.zeros(len(np.asarray(traj)), dtype=bool)
        for axis, i in idx.items():
            dup |= self._repeated(axis)[i]
        return dup[:, None] | self._repeated(self.grid.budget)[None, :]

    def _repeated(self, axis: str) -> np.ndarray:
        """Per value of ``axis``: True if an earlier value sets the same identity entries (never, for a range)."""
        if axis in self._repeats:
            return self._repeats[axis]
        values = self.grid.values(axis)
        if isinstance(values, range):
            self._repeats[axis] = np.zeros(len(values), dtype=bool)
            return self._repeats[axis]
        texts = [
            "".join(self.ids.fragment(s, j) for s, (a, _) in enumerate(self.ids.segments) if a == axis)
            for j in range(len(values))
        ]
        seen: set[str] = set()
        out = np.zeros(len(values), dtype=bool)
        for j, text in enumerate(texts):
            out[j] = text in seen
            seen.add(text)
        self._repeats[axis] = out
        return out
