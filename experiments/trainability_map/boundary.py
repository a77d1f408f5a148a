"""Box-counting dimension of the solve/fail boundary of each trainability map (the base map and its zooms).

    .venv/bin/python experiments/trainability_map/boundary.py runs/trainability_map --out experiments/trainability_map

Reads each store's ``lr``, ``init_std`` and ``status`` columns only, builds the solved map (one cell per grid point,
``xorlab.analysis.maps``), and measures the box-counting dimension of its boundary (``xorlab.analysis.fractal``).
Writes ``boundary.csv`` (one row per magnification: window, grid, boundary share, N(s) per box size, dimension) and
``boundary.png`` (the four solved maps and the log-log fits).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from xorlab.analysis import fractal, maps
from xorlab.store.reader import load_runs

STORES = {"base": 1, "zoom10": 10, "zoom100": 100, "zoom1000": 1000}  # store name -> magnification


def measure(store: Path) -> tuple[dict, np.ndarray, tuple]:
    runs = load_runs(store, columns=["lr", "init_std", "status", "mode", "steps_to_solve"])
    axes = maps.map_axes(runs)
    m = maps.point_maps(runs, axes)
    solved = m["solved_rate"] > 0.5
    d, counts = fractal.dimension(solved)
    ax, ay = axes
    row = {
        "store": store.name,
        "lr_from": ax.values[0],
        "lr_to": ax.values[-1],
        "std_from": ay.values[0],
        "std_to": ay.values[-1],
        "points": int(m["n"].size),
        "runs": int(m["n"].sum()),
        "solved_share": float(solved.mean()),
        "boundary_share": float(fractal.boundary(solved).mean()),
        **{f"boxes_{s}": int(c) for s, c in zip(fractal.SIZES, counts, strict=True)},
        "dimension": d,
    }
    return row, solved, axes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="folder holding the stores base, zoom10, zoom100, zoom1000")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows, images = [], []
    for name, mag in STORES.items():
        row, solved, axes = measure(args.root / name)
        rows.append({"magnification": mag, **row})
        images.append((mag, solved, axes))
        print(f"{name}: dimension {row['dimension']:.3f}, boundary {row['boundary_share']:.1%} of the points")
    table = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "boundary.csv", index=False, float_format="%.6g", lineterminator="\n")
    fig = Figure(figsize=(16, 4.6), dpi=110, layout="constrained")
    axs = fig.subplots(1, len(images) + 1)
    for a, (mag, solved, (ax_x, ax_y)) in zip(axs, images, strict=False):
        ext = [np.log10(ax_x.values[0]), np.log10(ax_x.values[-1]), np.log10(ax_y.values[0]), np.log10(ax_y.values[-1])]
        a.imshow(solved, origin="lower", extent=ext, aspect="auto", cmap=mpl.colormaps["gray"], interpolation="nearest")
        a.set(title=f"{mag:,}×: solved (white)", xlabel="log10 lr", ylabel="log10 init std")
    fit = axs[-1]
    sizes = np.asarray(fractal.SIZES, dtype=float)
    for row in rows:
        counts = np.array([row[f"boxes_{s}"] for s in fractal.SIZES], dtype=float)
        fit.loglog(1 / sizes, counts, "o-", label=f"{row['magnification']:,}×: D = {row['dimension']:.2f}")
    fit.set(xlabel="1 / box size (grid points)", ylabel="boxes holding boundary", title="box counting")
    fit.legend(fontsize=8)
    fig.savefig(args.out / "boundary.png", metadata={"Software": None})


if __name__ == "__main__":
    main()
