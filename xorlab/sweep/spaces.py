"""Continuous grid axes: ``linspace(a,b,n)`` and ``logspace(a,b,n)`` for every float axis, with exact values.

``linspace(a,b,n)`` is n evenly spaced values from a to b; ``logspace(a,b,n)`` is 10 to the power of each, i.e.
a to b in decades, as in numpy. The points are computed in decimal arithmetic (40 digits) and rounded to
``DIGITS`` significant digits, so a value is the decimal it should be: ``linspace(0.1,1,10)`` gives 0.3, never
numpy's 0.30000000000000004, and a run id or a label never carries binary noise. 12 digits keep neighbouring
points distinct for any grid a sweep can plan (a ratio of 1 + 1e-11); a grid finer than that is refused.
"""

from __future__ import annotations

import decimal
import re
from typing import Any

DIGITS = 12  # significant digits of every value
MAX_POINTS = 2_000_000  # no sweep plans more runs than this (``grid.MAX_GRID_RUNS``)
_NUMBER = r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*"
_SPACE = re.compile(rf"^\s*(linspace|logspace)\({_NUMBER},{_NUMBER},\s*(\d+)\s*\)\s*$")
_CALL = re.compile(r"^\s*(linspace|logspace)\s*\(")
USAGE = "linspace(a,b,n) or logspace(a,b,n) with numbers a, b and an integer n >= 1"


class SpaceError(ValueError):
    """A malformed or too fine space; ``str`` is the one-line reason."""


def is_space(value: Any) -> bool:
    """Whether ``value`` is written as a ``linspace``/``logspace`` call (well formed or not)."""
    return isinstance(value, str) and _CALL.match(value) is not None


def points(kind: str, a: str, b: str, n: int) -> list[float]:
    """The n points of ``kind`` (``linspace`` or ``logspace``) from a to b, each rounded to ``DIGITS`` digits."""
    with decimal.localcontext() as ctx:
        ctx.prec = 40
        lo, hi = decimal.Decimal(a), decimal.Decimal(b)
        step = (hi - lo) / (n - 1) if n > 1 else decimal.Decimal(0)
        exact = [lo + i * step for i in range(n)]
        if kind == "logspace":
            exact = [decimal.Decimal(10) ** p for p in exact]
        ctx.prec = DIGITS
        return [float(+p) for p in exact]  # unary plus rounds to the context's precision


def space(value: Any) -> list[float] | None:
    """The values of ``"linspace(a,b,n)"`` / ``"logspace(a,b,n)"``; None if ``value`` is not written as one.

    Raises ``SpaceError`` for a malformed call, n < 1, a value that is not finite, or points that coincide at
    ``DIGITS`` significant digits.
    """
    if not is_space(value):
        return None
    m = _SPACE.match(value)
    if m is None:
        raise SpaceError(f"expected {USAGE}, got {value!r}")
    kind, n = m[1], int(m[4])
    if not 1 <= n <= MAX_POINTS:
        raise SpaceError(f"{kind} takes 1 to {MAX_POINTS:,} points, got {value!r}")
    try:
        values = points(kind, m[2], m[3], n)
    except (decimal.Overflow, OverflowError):
        values = [float("inf")]
    if any(v != v or v in (float("inf"), float("-inf")) for v in values):
        raise SpaceError(f"{value.strip()} has values beyond float64")
    if len(set(values)) < n:
        raise SpaceError(f"{value.strip()}: points coincide at {DIGITS} significant digits; use fewer points")
    return values
