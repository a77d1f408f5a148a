"""Benchmark: wall time of ``xorlab-report`` on a 10,000-run sweep (the issue's target: ≤ 30 s on 2 cores).

Writes a real store with the sweep runner (5 learning rates × 10 init schemes × 200 seeds, 1,000 steps, loss
logged every 10 steps → 10,000 runs, 1,010,000 curve rows) in a temporary directory, then times

- ``python -m xorlab.apps.report SWEEP_DIR`` as a subprocess: everything a user waits for (imports, loading the
  store, statistics, five figures as PNG + SVG, report.md/html, stats.csv);
- ``build_report`` in process on the same tables (statistics + figures + writing, no loading).

It is a report, not a test: it prints seconds and marks a missed target with MISS.

    .venv/bin/python benchmarks/bench_report.py [--seeds 200] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from xorlab.report.builder import build_report
from xorlab.store.reader import load_curves, load_runs
from xorlab.sweep.grid import Grid
from xorlab.sweep.runner import SweepOptions, run_sweep

TARGET_S = 30.0
GRID = {
    "lr": [0.01, 0.1, 0.5, 1.0, 4.0],
    "init": [
        "notebook",
        "xavier_normal",
        "xavier_uniform",
        "he_normal",
        "he_uniform",
        "lecun_normal",
        "lecun_uniform",
        "orthogonal",
        "normal",
        "zeros",
    ],
    "max_steps": 1000,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200, help="seeds per (lr, init); 200 -> 10,000 runs")
    parser.add_argument("--keep", type=Path, help="build the sweep and report here instead of a temp dir")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        sweep = root / "sweep"
        t0 = time.perf_counter()
        grid = Grid.from_mapping({**GRID, "seed": f"range(0,{args.seeds})"})
        run_sweep(grid, SweepOptions(dir=sweep, progress=False, log_every=10))
        print(f"sweep: {len(grid):,} runs written in {time.perf_counter() - t0:.1f} s ({os.cpu_count()} cores)")

        t1 = time.perf_counter()
        cmd = [sys.executable, "-m", "xorlab.apps.report", str(sweep), "--out", str(root / "report_cli")]
        subprocess.run(cmd, check=True, capture_output=True)
        cli_s = time.perf_counter() - t1
        print(f"xorlab-report (subprocess, end to end): {cli_s:.1f} s {'ok' if cli_s <= TARGET_S else 'MISS'}")

        runs, curves = load_runs(sweep), load_curves(sweep)
        t2 = time.perf_counter()
        build_report(runs, curves, root / "report_inproc", inputs=[str(sweep)])
        print(f"build_report (in process, tables already loaded): {time.perf_counter() - t2:.1f} s")


if __name__ == "__main__":
    main()
