"""Decision surfaces: what a trained network outputs over the input plane, as a tidy frame for the figures.

The analysis layer runs the network here (``xorlab.net.forward`` on the recorded final parameters), so the
figures only draw frames. ``SURFACE_BOUNDS`` is the square [−0.5, 1.5]² around the four XOR points.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xorlab.engine import stack_params
from xorlab.net import forward
from xorlab.outcome import PLATEAU_LABELS, PLATEAU_TEXT
from xorlab.records import params_of

SURFACE_RESOLUTION = 161  # grid points per axis: odd, so 0, 0.5 and 1 lie on the grid
SURFACE_BOUNDS = (-0.5, 1.5)


def example_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """One run per outcome found — solved, slow, stuck on each plateau, diverged (the lowest run_id of each) —
    with an ``example`` column naming the outcome."""
    out = []
    ordered = runs.sort_values("run_id", kind="stable")
    for status in ("solved", "slow", "stuck", "diverged"):
        sub = ordered[ordered["status"] == status]
        if status == "stuck":
            for name in PLATEAU_LABELS:
                hit = sub[sub["plateau"].eq(name).fillna(False).to_numpy(dtype=bool)]
                if len(hit):
                    out.append(hit.iloc[[0]].assign(example=f"stuck ({PLATEAU_TEXT[name]})"))
        elif len(sub):
            out.append(sub.iloc[[0]].assign(example=status))
    return pd.concat(out, ignore_index=True) if out else runs.iloc[:0].assign(example=pd.Series(dtype=str))


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
    p = stack_params([params_of(row) for _, row in runs.iterrows()])
    with np.errstate(all="ignore"):  # diverged runs may hold huge or non-finite parameters
        yhat = forward(p, grid, np.zeros(len(grid))).yhat  # (n², runs)
    return pd.DataFrame(
        {
            "run_id": np.repeat(runs["run_id"].to_numpy(dtype=object), len(grid)),
            "x1": np.tile(grid[:, 0], len(runs)),
            "x2": np.tile(grid[:, 1], len(runs)),
            "yhat": yhat.T.ravel(),
        }
    )
