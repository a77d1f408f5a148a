"""The boundary between solving and not solving on a map, and its box-counting dimension.

On a map of grid points (``xorlab.analysis.maps``), a point is a *boundary point* when one of its four neighbours
is on the other side (solved vs not). The box-counting dimension of the boundary is the slope of log N(s) against
log(1/s), N(s) being the number of s x s boxes of grid points holding a boundary point, fitted by least squares
over box sizes ``SIZES`` (2 to 128 points: below 2 the count is the boundary's own pixel count, above 128 a
1,000-point map has fewer than 8 boxes a side). A smooth curve gives 1, a boundary that fills the plane 2; the
boundary of trainability of small tanh networks measured between 1.2 and 1.98 (Sohl-Dickstein 2024).
"""

from __future__ import annotations

import numpy as np

SIZES = (2, 4, 8, 16, 32, 64, 128)


def boundary(solved: np.ndarray) -> np.ndarray:
    """Boolean (y, x) map of the grid points with a 4-neighbour on the other side of ``solved`` (a boolean map)."""
    solved = np.asarray(solved, dtype=bool)
    edge = np.zeros(solved.shape, dtype=bool)
    rows = solved[1:, :] != solved[:-1, :]
    cols = solved[:, 1:] != solved[:, :-1]
    edge[1:, :] |= rows
    edge[:-1, :] |= rows
    edge[:, 1:] |= cols
    edge[:, :-1] |= cols
    return edge


def box_counts(edge: np.ndarray, sizes: tuple[int, ...] = SIZES) -> np.ndarray:
    """N(s): how many s x s boxes (tiling from the origin; a partial last row/column of boxes is dropped) hold a
    boundary point, for each s of ``sizes``."""
    out = []
    for s in sizes:
        h, w = edge.shape[0] // s * s, edge.shape[1] // s * s
        out.append(int(edge[:h, :w].reshape(h // s, s, w // s, s).any(axis=(1, 3)).sum()))
    return np.array(out, dtype=np.int64)


def dimension(solved: np.ndarray, sizes: tuple[int, ...] = SIZES) -> tuple[float, np.ndarray]:
    """Box-counting dimension of the solve/fail boundary of ``solved`` and the counts N(s) it is fitted to (NaN
    when fewer than two sizes have a boundary box)."""
    counts = box_counts(boundary(solved), sizes)
    ok = counts > 0
    if ok.sum() < 2:
        return float("nan"), counts
    slope = np.polyfit(np.log(1.0 / np.asarray(sizes, dtype=float)[ok]), np.log(counts[ok]), 1)[0]
    return float(slope), counts
