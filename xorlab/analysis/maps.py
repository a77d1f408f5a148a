"""Maps over two continuous axes: per grid point, the failure mode, the fraction solved and the steps to first solve.

A sweep over two continuous axes (``linspace``/``logspace`` in the grid, at least ``MIN_VALUES`` values each, e.g.
lr x init std) is drawn as maps at full resolution, one cell per grid point, no binning (``xorlab.report.maps``).
Per point, over its runs (the seeds and every other pooled axis):

- ``n`` runs, ``solved`` (status solved at the end) and ``solved_rate``;
- ``mode``: the most common failure mode (ties: the first in ``MODES``' precedence);
- ``steps_median``: the first step by which half the point's runs had solved (the ceil(n/2)-th smallest
  ``steps_to_solve``; all runs of a point share one ``max_steps``, so this is the Kaplan-Meier median
  ``stats.km_median`` gives); NaN when fewer than half the runs ever solved.

The axes keep the scale the grid was built on: ``log`` when the values are evenly spaced in log (``logspace``),
else ``linear``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from xorlab.analysis import stats
from xorlab.analysis.stats import MODE_NAMES, UNKNOWN_MODE
from xorlab.store.records import CONFIG_COLUMNS, CONFIG_DTYPES

MIN_VALUES = 16  # an axis with at least this many values is drawn as a map axis


@dataclass(frozen=True)
class MapAxis:
    name: str  # run column, e.g. ``lr`` or ``init_std``
    values: np.ndarray  # sorted distinct values: the grid
    scale: str  # ``log`` or ``linear``


def _scale(values: np.ndarray) -> str:
    """``log`` when the values are more evenly spaced in log than in value (a ``logspace`` grid, even a narrow
    window of one, where both spacings are nearly even), else ``linear``."""
    if values.size > 2 and (values > 0).all():
        dl, dx = np.diff(np.log(values)), np.diff(values)
        if np.ptp(dl) / abs(dl.mean()) < np.ptp(dx) / abs(dx.mean()):
            return "log"
    return "linear"


def map_axes(runs: pd.DataFrame) -> tuple[MapAxis, MapAxis] | None:
    """The first two float config axes (``CONFIG_COLUMNS`` order) with at least ``MIN_VALUES`` distinct values,
    or None when there are fewer than two."""
    found = []
    for c in CONFIG_COLUMNS:
        if CONFIG_DTYPES[c] != "float64" or c not in runs.columns:
            continue
        values = np.unique(runs[c].to_numpy(dtype=np.float64))
        values = values[np.isfinite(values)]
        if values.size >= MIN_VALUES:
            found.append(MapAxis(c, values, _scale(values)))
    return (found[0], found[1]) if len(found) >= 2 else None


def _codes(column: pd.Series, names: list[str]) -> np.ndarray:
    """Index of each value in ``names`` (-1: null or not listed), via one factorisation (no string per row)."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    lookup = np.array([names.index(u) if u in names else -1 for u in uniques] + [-1], dtype=np.int64)
    return lookup[codes]  # code -1 (null) takes the appended -1


def mode_codes(runs: pd.DataFrame) -> np.ndarray:
    """``stats.run_modes`` as indices into ``MODE_NAMES``: the mode; where null, the status if it names the mode
    exactly (solved, diverged), else ``unknown``."""
    mode = _codes(runs["mode"], MODE_NAMES) if "mode" in runs.columns else np.full(len(runs), -1)
    status = _codes(runs["status"], MODE_NAMES)
    exact = np.isin(status, [MODE_NAMES.index("solved"), MODE_NAMES.index("diverged")])
    fallback = np.where(exact, status, MODE_NAMES.index(UNKNOWN_MODE))
    return np.where(mode >= 0, mode, fallback)


def point_maps(runs: pd.DataFrame, axes: tuple[MapAxis, MapAxis]) -> dict[str, np.ndarray]:
    """Per grid point, (y, x) arrays: ``n``, ``solved_rate``, ``mode`` (index into ``MODE_NAMES``, -1 = no run) and
    ``steps_median`` (NaN: fewer than half solved). ``x`` is ``axes[0]``, ``y`` is ``axes[1]``."""
    ax, ay = axes
    ix = np.searchsorted(ax.values, runs[ax.name].to_numpy(dtype=np.float64))
    iy = np.searchsorted(ay.values, runs[ay.name].to_numpy(dtype=np.float64))
    ok = (ix < ax.values.size) & (iy < ay.values.size)
    ok[ok] = (ax.values[ix[ok]] == runs[ax.name].to_numpy(dtype=np.float64)[ok]) & (
        ay.values[iy[ok]] == runs[ay.name].to_numpy(dtype=np.float64)[ok]
    )  # NaN axis values: no point
    shape = (ay.values.size, ax.values.size)
    point = iy[ok] * shape[1] + ix[ok]
    size = shape[0] * shape[1]
    n = np.bincount(point, minlength=size)
    codes = mode_codes(runs)[ok]
    solved = np.bincount(point, weights=_codes(runs["status"], ["solved"])[ok] == 0, minlength=size)
    per_mode = np.bincount(point * len(MODE_NAMES) + codes, minlength=size * len(MODE_NAMES))
    per_mode = per_mode.reshape(size, len(MODE_NAMES))
    mode = np.where(n > 0, per_mode.argmax(axis=1), -1)  # argmax: the first of equal counts, i.e. precedence
    steps = runs["steps_to_solve"].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)[ok]
    steps = np.where(np.isnan(steps), np.inf, steps)
    order = np.lexsort((steps, point))
    s_sorted = steps[order]
    start = np.searchsorted(point[order], np.arange(size))
    half = start + (n + 1) // 2 - 1  # the ceil(n/2)-th smallest: the first step by which half had solved
    median = np.full(size, np.nan)
    has = n > 0
    median[has] = s_sorted[half[has]]
    median[~np.isfinite(median)] = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(n > 0, solved / np.maximum(n, 1), np.nan)
    return {
        "n": n.reshape(shape),
        "solved_rate": rate.reshape(shape),
        "mode": mode.reshape(shape),
        "steps_median": median.reshape(shape),
    }


def default_by(runs: pd.DataFrame) -> list[str]:
    """``stats.default_by`` without the map axes: a map shows every point, so the statistics pool over them
    (``init_label`` too, when the init varies only through a map axis, e.g. ``normal(std=...)``)."""
    by = stats.default_by(runs)
    axes = map_axes(runs)
    if axes is None:
        return by
    names = {a.name for a in axes}
    out = [b for b in by if b not in names]
    if "init_label" in out and names & set(stats.INIT_COLUMNS):
        others = [c for c in stats.INIT_COLUMNS if c not in names and c in runs.columns]
        if len(runs[others].drop_duplicates()) == 1:
            out.remove("init_label")
    return out
