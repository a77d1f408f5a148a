"""Decision surfaces and example runs: what a trained network outputs over the input plane, as tidy frames.

The analysis layer runs the network here (``xorlab.core.net.forward`` on the recorded final parameters), so the
figures only draw frames. ``SURFACE_BOUNDS`` is the square [−0.5, 1.5]² around the four XOR points.

Which runs to show: ``typical_runs`` picks, per failure mode, the *medoid* of the mode's final predictions
(the run whose four outputs are closest, in summed Euclidean distance, to all the others of that mode), so the
surface shown is what the mode typically looks like, with how many runs share it. ``sample_runs`` draws a few
runs per mode with a fixed seed from the runs sorted by ``run_id``, so the same store gives the same sample.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist

from xorlab.analysis.stats import MODE_NAMES, UNKNOWN_MODE, run_modes
from xorlab.core.net import forward
from xorlab.core.outcome import PLATEAU_TEXT
from xorlab.engine.results import stack_params
from xorlab.store.records import PRED_COLUMNS, params_of

SURFACE_RESOLUTION = 161  # grid points per axis: odd, so 0, 0.5 and 1 lie on the grid
SURFACE_BOUNDS = (-0.5, 1.5)
MEDOID_MAX = 2000  # a mode with more runs takes its medoid over a seeded sample of this many (O(n²) distances)
SAMPLE_SEED = 0


def mode_labels(runs: pd.DataFrame) -> pd.Series:
    """Failure mode per run; where it is null (older stores), the status, and the plateau for stuck runs."""
    mode = pd.Series(run_modes(runs), index=runs.index, dtype=object)
    old = mode == UNKNOWN_MODE
    if old.any():
        status = runs.loc[old, "status"].astype(object)
        plateau = runs.loc[old, "plateau"].astype(object)
        mode[old] = [
            f"stuck ({PLATEAU_TEXT.get(p, p)})" if s == "stuck" and isinstance(p, str) else s
            for s, p in zip(status, plateau, strict=True)
        ]
    return mode.rename("mode")


def _order(labels: pd.Series) -> list[str]:
    """Modes in ``MODE_NAMES`` order (the precedence), then any fallback labels sorted."""
    present = set(labels)
    return [m for m in MODE_NAMES if m in present] + sorted(present - set(MODE_NAMES))


def medoid(points: np.ndarray, seed: int = SAMPLE_SEED, max_n: int = MEDOID_MAX) -> int:
    """Index of the row of ``points`` (n, d) with the least summed Euclidean distance to the others.

    Rows with a non-finite value are never chosen (unless all are). Above ``max_n`` finite rows the medoid is
    taken over a sample of ``max_n`` of them drawn with ``seed``. Ties go to the lowest index.
    """
    finite = np.flatnonzero(np.isfinite(points).all(axis=1))
    if finite.size == 0:
        return 0
    if finite.size > max_n:
        finite = np.sort(np.random.default_rng(seed).choice(finite, max_n, replace=False))
    p = points[finite]
    dist = cdist(p, p).sum(axis=1)  # the distances of sqrt(((p_i - p_j) ** 2).sum()), bit for bit, without the
    # (n, n, d) difference array numpy broadcasting makes (128 MB at 2,000 runs) and 11 x faster
    return int(finite[np.argmin(dist)])


def _by_run_id(runs: pd.DataFrame) -> np.ndarray:
    """Positions of ``runs`` in ``run_id`` order (stable), found on that column alone."""
    ids = runs["run_id"].reset_index(drop=True)
    if ids.is_monotonic_increasing:
        return np.arange(len(ids))
    return ids.sort_values(kind="stable").index.to_numpy()


def typical_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The typical run of each mode found: rows of ``runs`` (sorted by ``run_id``) with ``example`` (the mode),
    ``n_mode`` (runs in that mode) and ``n_runs`` (all runs), in precedence order."""
    order = _by_run_id(runs)
    labels = mode_labels(runs).to_numpy(dtype=object)[order]
    preds = runs[PRED_COLUMNS].to_numpy(dtype=np.float64)[order]
    out = []
    for mode in _order(pd.Series(labels)):
        idx = np.flatnonzero(labels == mode)
        i = medoid(preds[idx])
        out.append(runs.iloc[[order[idx[i]]]].assign(example=mode, n_mode=idx.size, n_runs=len(runs)))
    if not out:
        return runs.iloc[:0].assign(example=pd.Series(dtype=str), n_mode=0, n_runs=0)
    return pd.concat(out, ignore_index=True)


def sample_runs(runs: pd.DataFrame, k: int = 5, seed: int = SAMPLE_SEED) -> pd.DataFrame:
    """Up to ``k`` runs per mode, drawn without replacement with a generator seeded ``seed`` (one per mode, in
    precedence order) from the runs sorted by ``run_id``: ``run_id, mode`` plus the run's columns."""
    order = _by_run_id(runs)
    labels = mode_labels(runs).to_numpy(dtype=object)[order]
    parts = []
    for i, mode in enumerate(_order(pd.Series(labels))):
        idx = np.flatnonzero(labels == mode)
        pick = np.sort(np.random.default_rng([seed, i]).choice(idx, min(k, idx.size), replace=False))
        parts.append(runs.iloc[order[pick]].assign(mode=mode))
    if not parts:
        return runs.iloc[:0].reset_index(drop=True).assign(mode=pd.Series(dtype=str))
    return pd.concat(parts, ignore_index=True)


def surface_grid(n: int = SURFACE_RESOLUTION, bounds: tuple[float, float] = SURFACE_BOUNDS) -> np.ndarray:
    """The n × n input grid over ``bounds``², row-major with x1 fastest: (n², 2)."""
    g = np.linspace(*bounds, n)
    xx, yy = np.meshgrid(g, g)
    return np.column_stack([xx.ravel(), yy.ravel()])


def decision_surface(
    runs: pd.DataFrame, n: int = SURFACE_RESOLUTION, bounds: tuple[float, float] = SURFACE_BOUNDS
) -> pd.DataFrame:
    """Network output ŷ on an n × n grid over ``bounds``² for each run-table row, long form:
    ``run_id, x1, x2, yhat`` (n² rows per run, x1 fastest; NaN where the parameters are not finite)."""
    grid = surface_grid(n, bounds)
    if runs.empty:
        return pd.DataFrame({"run_id": pd.Series(dtype=str), "x1": [], "x2": [], "yhat": []})
    params = [params_of(row) for _, row in runs.iterrows()]
    acts = runs["activation"].astype(str).to_numpy() if "activation" in runs else np.full(len(runs), "tanh")
    widths = np.array([q["b1"].shape[1] for q in params])
    yhat = np.empty((len(grid), len(runs)))
    for w, a in sorted({(int(w), str(a)) for w, a in zip(widths, acts, strict=True)}):  # one network shape each
        cols = np.flatnonzero((widths == w) & (acts == a))
        with np.errstate(all="ignore"):  # diverged runs may hold huge or non-finite parameters
            yhat[:, cols] = forward(stack_params([params[i] for i in cols]), grid, np.zeros(len(grid)), a).yhat
    return pd.DataFrame(
        {
            "run_id": np.repeat(runs["run_id"].to_numpy(dtype=object), len(grid)),
            "x1": np.tile(grid[:, 0], len(runs)),
            "x2": np.tile(grid[:, 1], len(runs)),
            "yhat": yhat.T.ravel(),
        }
    )
