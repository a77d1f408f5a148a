"""Order from meaning: numbers sort as numbers, also inside text (``normal(std=10)`` after ``normal(std=3)``,
store ``multirun/…/10`` after ``…/2``).

Every table, legend, figure and CSV of xorlab lists groups in this order, so a scan over a numeric parameter reads
monotone where the data are. Pure Python: the store layer sorts store paths with it too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

# An unsigned decimal number (1, 0.5, .5, 1e-3, 2.5E+2); a sign belongs to it only right after "=" (a parameter
# value), so the dashes of a date in a path (2026-12-03) are separators, not minus signs.
_NUMBER = re.compile(r"((?:(?<==)[-+])?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")


def natural_key(value: Any) -> tuple:
    """Sort key reading the numbers in ``value`` as numbers: ``a2 < a10``, ``std=0.5 < std=1e1``.

    Real numbers (not bools) sort by value before any text; missing values (None, NaN, NA) last. Ties
    between spellings of one number (``1`` and ``1.0``) are broken by the text, so the order is total.
    """
    if value is None or type(value).__name__ == "NAType" or (isinstance(value, float) and math.isnan(value)):
        return (2, ())
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    text = str(value)
    parts: list[tuple] = []
    for i, piece in enumerate(_NUMBER.split(text)):
        if i % 2:
            parts.append((1, float(piece), ""))
        elif piece:
            parts.append((0, 0.0, piece))
    return (1, tuple(parts), text)


def ordered(values: Iterable[Any]) -> list[Any]:
    """The distinct ``values`` in ``natural_key`` order."""
    return sorted(dict.fromkeys(values), key=natural_key)


def numbers_in(text: str) -> tuple[float, ...]:
    """The numbers written in ``text``, in order (``normal(std=0.01)`` -> ``(0.01,)``)."""
    return tuple(float(p) for i, p in enumerate(_NUMBER.split(str(text))) if i % 2)


_LABEL = re.compile(r"^(?P<name>[^()@]+)(?:\((?P<params>.*)\))?(?:@(?P<sha>[0-9a-f]+))?$")


def label_parts(label: str) -> tuple[str, dict[str, str], str | None]:
    """``normal(std=0.01, gain=2)@ab12`` -> ``("normal", {"std": "0.01", "gain": "2"}, "ab12")``: an init label
    (``xorlab.store.records.init_labels``) split into scheme, parameter texts and init-file hash."""
    m = _LABEL.match(str(label))
    if m is None:
        return str(label), {}, None
    params: dict[str, str] = {}
    for item in (m["params"] or "").split(", "):
        key, eq, val = item.partition("=")
        if eq:
            params[key.strip()] = val.strip()
    return m["name"], params, m["sha"]
