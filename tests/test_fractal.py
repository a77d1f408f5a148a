"""Tests for ``xorlab.analysis.fractal``: shapes of known box-counting dimension."""

from __future__ import annotations

import numpy as np
import pytest

from xorlab.analysis import fractal


def test_boundary_marks_both_sides_of_an_edge():
    solved = np.zeros((4, 6), dtype=bool)
    solved[:, 3:] = True
    edge = fractal.boundary(solved)
    assert edge[:, 2].all() and edge[:, 3].all() and edge.sum() == 8


@pytest.mark.parametrize(
    ("name", "expected", "tolerance"),
    [("line", 1.0, 0.02), ("disc", 1.0, 0.06), ("noise", 2.0, 0.06), ("carpet", np.log(8) / np.log(3), 0.12)],
)
def test_dimension_of_known_shapes(name, expected, tolerance):
    n = 729 if name == "carpet" else 1024
    yy, xx = np.mgrid[:n, :n]
    if name == "line":
        solved = xx < n // 2 + 0.3
    elif name == "disc":
        solved = (xx - n / 2) ** 2 + (yy - n / 2) ** 2 < (0.35 * n) ** 2
    elif name == "noise":
        solved = np.random.default_rng(0).random((n, n)) < 0.5
    else:  # Sierpinski carpet: the boundary of its holes has dimension log 8 / log 3 ≈ 1.89
        solved = np.ones((n, n), dtype=bool)
        x, y = xx.copy(), yy.copy()
        while x.any() or y.any():
            solved &= ~((x % 3 == 1) & (y % 3 == 1))
            x, y = x // 3, y // 3
    d, counts = fractal.dimension(solved, sizes=(3, 9, 27, 81) if name == "carpet" else fractal.SIZES)
    assert abs(d - expected) <= tolerance, (d, counts)


def test_no_boundary_is_nan():
    d, counts = fractal.dimension(np.ones((64, 64), dtype=bool))
    assert np.isnan(d) and (counts == 0).all()
