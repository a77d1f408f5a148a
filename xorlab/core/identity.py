"""The texts that name a run and its trajectory, and their hashes: one definition for one run and for many.

A run's id is the sha256 of its identity (``TrainConfig.identity()``) as sorted-key compact JSON, first
``ID_LENGTH`` hex digits; a trajectory's hash is the sha256 of ``repr(cfg.trajectory_key())``. Both texts are a
sequence of per-field pairs between brackets, so ``run_id`` builds them from ``id_pair``/``traj_pair`` here, and a
sweep builds the same texts for many runs at once from the same pair functions (``xorlab.sweep.keys``): there is
no second spelling to keep in step.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

ID_LENGTH = 16  # hex digits of a run_id (64 bits)
ID_SEP, TRAJ_SEP = ",", ", "  # between the pairs of a run's id text / of its trajectory text


def id_pair(key: str, value: Any) -> str:
    """One ``"key":value`` entry of a run's identity text (compact JSON, nested keys sorted)."""
    return f"{json.dumps(key)}:{json.dumps(value, sort_keys=True, separators=(',', ':'), allow_nan=False)}"


def traj_pair(key: str, value: Any) -> str:
    """One ``('key', value)`` entry of a trajectory text (``repr`` of a ``trajectory_key()`` item)."""
    return repr((key, value))


def int_pair_parts(pair: Any, key: str) -> tuple[str, str]:
    """``(head, tail)`` with ``pair(key, n) == head + str(n) + tail`` for every int ``n`` (JSON and repr both
    write an int as ``str(n)``): lets a sweep write millions of integer pairs (seeds) by concatenation."""
    text = pair(key, 0)
    head, tail = text[: text.rindex("0")], text[text.rindex("0") + 1 :]
    return head, tail


def id_of_pairs(body: str) -> str:
    """The run id of a body of ``id_pair`` texts joined by ``ID_SEP`` (keys in sorted order)."""
    return hashlib.sha256(("{" + body + "}").encode()).hexdigest()[:ID_LENGTH]


def traj_hash_of_pairs(body: str) -> int:
    """The trajectory hash (32 bits) of a body of ``traj_pair`` texts joined by ``TRAJ_SEP``."""
    return int(hashlib.sha256(("(" + body + ")").encode()).hexdigest()[:8], 16)


def run_id_of(identity: Mapping[str, Any]) -> str:
    """``run_id`` of one identity mapping."""
    return id_of_pairs(ID_SEP.join(id_pair(k, v) for k, v in sorted(identity.items())))


def traj_hash_of(items: Iterable[tuple[str, Any]]) -> int:
    """The trajectory hash of one ``trajectory_key()`` (a tuple of ``(key, value)`` pairs)."""
    items = tuple(items)
    body = TRAJ_SEP.join(traj_pair(k, v) for k, v in items)
    return traj_hash_of_pairs(body + ("," if len(items) == 1 else ""))
