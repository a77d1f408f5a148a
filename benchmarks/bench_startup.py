"""Start-up cost of the apps, as a user waits for it: ``--help`` of both Hydra apps, one 1,000-step
``xorlab-train`` run and a one-run ``xorlab-sweep`` with the compiled engine (imports, config composition,
pre-validation, loading the numba kernel from its cache, training, the record written).

    python benchmarks/bench_startup.py                  # this checkout
    python benchmarks/bench_startup.py --ref OTHER_DIR  # also an older checkout, side by side (same venv)

Each command runs as a fresh subprocess (``python -m <module>``) in an empty temporary directory, ``--repeat``
times; the table shows the median and the best wall time. With ``--ref`` the same commands run against the
other checkout (put first on PYTHONPATH; module names as that checkout has them) and the ratio is printed.
Each command runs once untimed first, so a checkout's first compile of the numba kernel is not timed.
Targets: each ``--help`` ≤ 0.8 s, one 1,000-step run ≤ 1.5 s. The one-run sweep has no target: at
100,000 runs the engine needs about 2 s, and everything this row measures is paid on top of that.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
TARGETS = {
    "xorlab-train --help": 0.8,
    "xorlab-sweep --help": 0.8,
    "xorlab-train (1,000 steps, recorded)": 1.5,
    "xorlab-sweep (1 run, compiled, recorded)": None,
}


def commands(checkout: Path) -> dict[str, list[str]]:
    """The commands, with the module names of ``checkout`` (older checkouts kept the apps beside the library)."""
    apps = "xorlab.apps." if (checkout / "xorlab" / "apps").is_dir() else "xorlab."
    return {
        "xorlab-train --help": ["-m", f"{apps}train", "--help"],
        "xorlab-sweep --help": ["-m", f"{apps}sweep", "--help"],
        "xorlab-train (1,000 steps, recorded)": ["-m", f"{apps}train", "hydra.run.dir=out"],
        "xorlab-sweep (1 run, compiled, recorded)": [
            "-m",
            f"{apps}sweep",
            "grid.seed=[0]",
            "sweep.dir=out",
            "sweep.progress=false",
        ],
    }


def wall(args: list[str], checkout: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], cwd=tmp, env=env, check=True, capture_output=True)
        return time.perf_counter() - start


def measure(checkouts: dict[str, Path], repeat: int) -> dict[str, dict[str, list[float]]]:
    """Interleaved (every checkout and command once per round, the checkouts' order alternating), so drift on a
    shared machine hits all alike."""
    out: dict[str, dict[str, list[float]]] = {k: {name: [] for name in TARGETS} for k in checkouts}
    for checkout in checkouts.values():  # warm-up: compiles the numba kernel if the checkout has no cache yet
        for args in commands(checkout).values():
            wall(args, checkout)
    for r in range(repeat):
        order = list(checkouts.items())
        for key, checkout in order if r % 2 == 0 else order[::-1]:  # alternate who goes first
            for name, args in commands(checkout).items():
                out[key][name].append(wall(args, checkout))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ref", type=Path, help="another checkout to time side by side (e.g. a worktree of main)")
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args()
    checkouts = {"this": HERE} | ({"ref": args.ref.resolve()} if args.ref else {})
    runs = measure(checkouts, args.repeat)
    pyc = "; PYTHONDONTWRITEBYTECODE set: sources compiled in every run" * bool(os.getenv("PYTHONDONTWRITEBYTECODE"))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.repeat} runs each (median / best, s){pyc}")
    head = f"{'command':40} {'this':>15} {'target':>8}"
    print(head + (f" {'ref':>15} {'ref/this':>9}" if "ref" in runs else ""))
    for name, target in TARGETS.items():
        t = runs["this"][name]
        line = f"{name:40} {statistics.median(t):7.3f} / {min(t):5.3f} {'–' if target is None else f'≤ {target}':>8}"
        if "ref" in runs:
            r = runs["ref"][name]
            line += f" {statistics.median(r):7.3f} / {min(r):5.3f} {statistics.median(r) / statistics.median(t):8.2f}×"
        print(line)


if __name__ == "__main__":
    main()
