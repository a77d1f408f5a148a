"""How often the compiled engine ends a run exactly as the numpy reference does, per learning-rate regime.

Both engines do the network's arithmetic in the same order; only ``exp``, ``tanh`` and ``log1p`` are the
compiled engine's own polynomials (within a few ulp of numpy's). Trajectories therefore differ in their last
bits, and that difference grows at the rate the training dynamics amplify it. The question for a user is where
that matters: this script trains one grid with both engines and counts, per regime of ``lr`` (≤ 1, 1–3, > 3),
the runs whose ``status`` and ``steps_to_solve`` are identical, and the runs whose status alone is identical.

Grid (defaults): every init scheme except ``zeros`` and ``from_file`` × lr in each regime × seeds × steps.

    .venv/bin/python benchmarks/engine_agreement.py                       # ~1-2 min on 2 cores
    .venv/bin/python benchmarks/engine_agreement.py --seeds 50 --steps 1000

Prints one table (regime, runs, identical outcome %, identical status %, the first few differing runs) and
exits 0. The figures are quoted in the docs (engines) and in the sweep's note when a grid reaches lr > 1
(``xorlab.engine.agreement.AGREEMENT``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from xorlab.core.config import TrainConfig
from xorlab.core.inits import SCHEMES
from xorlab.engine.agreement import AGREEMENT, regime
from xorlab.engine.batch import train_batch

REGIMES = {  # the lr values trained in each regime; the upper bound of each is inclusive
    "lr <= 1": [0.03, 0.1, 0.3, 0.6, 1.0],
    "1 < lr <= 3": [1.5, 2.0, 2.5, 3.0],
    "lr > 3": [4.0, 6.0, 10.0, 30.0],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--steps", type=int, default=1000)
    args = ap.parse_args()
    schemes = [s for s in SCHEMES if s not in ("zeros", "from_file")]
    configs = [
        TrainConfig(lr=lr, init=s, seed=seed, max_steps=args.steps)
        for lrs in REGIMES.values()
        for lr in lrs
        for s in schemes
        for seed in range(args.seeds)
    ]
    t0 = time.perf_counter()
    ref = train_batch(configs, engine="numpy")
    t1 = time.perf_counter()
    fast = train_batch(configs, engine="compiled")
    t2 = time.perf_counter()
    print(
        f"{len(configs):,} runs × {args.steps:,} steps ({len(schemes)} schemes × {args.seeds} seeds per lr); "
        f"numpy {t1 - t0:.1f} s, compiled {t2 - t1:.1f} s"
    )
    lr = np.array([c.lr for c in configs])
    regimes = np.array([regime(x) for x in lr])
    same_status = ref.status == fast.status
    same = same_status & (ref.steps_to_solve == fast.steps_to_solve)
    print(f"{'regime':<13} {'runs':>7} {'identical outcome':>18} {'identical status':>17}  stated")
    for name in REGIMES:
        m = regimes == name
        print(
            f"{name:<13} {m.sum():>7,} {100 * same[m].mean():>17.2f}% {100 * same_status[m].mean():>16.2f}%  "
            f"{100 * AGREEMENT[name]:.2f}%"
        )
        for i in np.flatnonzero(m & ~same)[:3]:
            c = configs[i]
            print(
                f"    differs: {c.init} lr {c.lr:g} seed {c.seed}: numpy {ref.status[i]} at "
                f"{ref.steps_to_solve[i]}, compiled {fast.status[i]} at {fast.steps_to_solve[i]}"
            )


if __name__ == "__main__":
    main()
