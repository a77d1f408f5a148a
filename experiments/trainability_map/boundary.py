"""Box-counting dimension of the solve/fail boundary of each trainability map: lr × init std (the base map and its
zooms) and the two layers' rates (the layers map).

    .venv/bin/python experiments/trainability_map/boundary.py runs/trainability_map --out experiments/trainability_map

Reads each store's map axes and ``status`` columns only, builds the solved map (one cell per grid point,
``xorlab.analysis.maps``), and measures the box-counting dimension of its boundary (``xorlab.analysis.fractal``).
Writes, for each group of maps whose stores are all under the root folder, a CSV (one row per map: window, grid,
boundary share, N(s) per box size, dimension) and a PNG (the solved maps and the log-log fits):
``boundary.csv``/``.png`` for base, zoom10, zoom100, zoom1000; ``boundary_layers.csv``/``.png`` for layers and its
zooms layers_zoom10, layers_zoom100, layers_zoom1000.
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

GROUPS = {  # output name -> {store name -> magnification}
    "boundary": {"base": 1, "zoom10": 10, "zoom100": 100, "zoom1000": 1000},
    "boundary_layers": {"layers": 1, "layers_zoom10": 10, "layers_zoom100": 100, "layers_zoom1000": 1000},
}
COLUMNS = ["lr", "init_std", "lr_hidden", "lr_output", "status", "mode", "steps_to_solve"]


def short(name: str) -> str:
    """A map axis as the CSV names it: ``init_std`` -> ``std``."""
    return name.removeprefix("init_")


def measure(store: Path) -> tuple[dict, np.ndarray, tuple]:
    runs = load_runs(store, columns=COLUMNS)
    axes = maps.map_axes(runs)
    m = maps.point_maps(runs, axes)
    solved = m["solved_rate"] > 0.5
    d, counts = fractal.dimension(solved)
    ax, ay = axes
    row = {
        "store": store.name,
        f"{short(ax.name)}_from": ax.values[0],
        f"{short(ax.name)}_to": ax.values[-1],
        f"{short(ay.name)}_from": ay.values[0],
        f"{short(ay.name)}_to": ay.values[-1],
        "points": int(m["n"].size),
        "runs": int(m["n"].sum()),
        "solved_share": float(solved.mean()),
        "boundary_share": float(fractal.boundary(solved).mean()),
        **{f"boxes_{s}": int(c) for s, c in zip(fractal.SIZES, counts, strict=True)},
        "dimension": d,
    }
    return row, solved, axes


def write_group(name: str, stores: dict[str, int], root: Path, out: Path) -> None:
    rows, images = [], []
    for store, mag in stores.items():
        row, solved, axes = measure(root / store)
        rows.append({"magnification": mag, **row})
        images.append((mag, solved, axes))
        print(f"{store}: dimension {row['dimension']:.3f}, boundary {row['boundary_share']:.1%} of the points")
    table = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / f"{name}.csv", index=False, float_format="%.6g", lineterminator="\n")
    fig = Figure(figsize=(4 * (len(images) + 1), 4.6), dpi=110, layout="constrained")
    axs = fig.subplots(1, len(images) + 1)
    for a, (mag, solved, (ax_x, ax_y)) in zip(axs, images, strict=False):
        ext = [np.log10(ax_x.values[0]), np.log10(ax_x.values[-1]), np.log10(ax_y.values[0]), np.log10(ax_y.values[-1])]
        a.imshow(solved, origin="lower", extent=ext, aspect="auto", cmap=mpl.colormaps["gray"], interpolation="nearest")
        a.set(title=f"{mag:,}×: solved (white)", xlabel=f"log10 {ax_x.name}", ylabel=f"log10 {ax_y.name}")
    fit = axs[-1]
    sizes = np.asarray(fractal.SIZES, dtype=float)
    for row in rows:
        counts = np.array([row[f"boxes_{s}"] for s in fractal.SIZES], dtype=float)
        fit.loglog(
            1 / sizes, counts, "o-", label=f"{row['store']} {row['magnification']:,}×: D = {row['dimension']:.2f}"
        )
    fit.set(xlabel="1 / box size (grid points)", ylabel="boxes holding boundary", title="box counting")
    fit.legend(fontsize=8)
    fig.savefig(out / f"{name}.png", metadata={"Software": None})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="folder holding the stores (base, zoom10, zoom100, zoom1000, layers)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    present = {n: g for n, g in GROUPS.items() if all((args.root / s).is_dir() for s in g)}
    if not present:
        raise SystemExit(
            f"boundary.py: error: {args.root}: none of the stores {', '.join(sum(map(list, GROUPS.values()), []))}"
        )
    for name, stores in present.items():
        write_group(name, stores, args.root, args.out)


if __name__ == "__main__":
    main()
