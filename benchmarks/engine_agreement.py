"""How often the compiled engine ends a run exactly as the numpy reference does, per learning-rate regime.

Both engines do the network's arithmetic in the same order; only ``exp``, ``tanh`` and ``log1p`` are the
compiled engine's own polynomials (within a few ulp of numpy's). Trajectories therefore differ in their last
bits, and that difference grows at the rate the training dynamics amplify it. The question for a user is where
that matters: this script trains one grid with both engines and counts, per regime of ``lr`` (≤ 1, 1–3, > 3),
the runs whose ``status`` and ``steps_to_solve`` are identical, and the runs whose status alone is identical.

Grid (defaults): every init scheme except ``zeros`` and ``from_file`` × lr in each regime × seeds × steps.

    .venv/bin/python benchmarks/engine_agreement.py                       # ~1-2 min on 2 cores
    .venv/bin/python benchmarks/engine_agreement.py --seeds 50 --steps 1000
    .venv/bin/python benchmarks/engine_agreement.py --widths 1 2 3 8 32 --activations tanh relu leaky_relu sigmoid \
        --regimes "lr <= 1" --seeds 20          # other widths and activations: the wide kernel

Prints one table (regime, runs, identical outcome %, identical status %, the first few differing runs) and
exits 0. The figures are quoted in the docs (engines) and in the sweep's note when a grid reaches lr > 1
(``xorlab.engine.agreement.AGREEMENT``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from xorlab.core.activations import ACTIVATIONS
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
    ap.add_argument("--widths", type=int, nargs="+", default=[4], help="hidden widths (default: the notebook's 4)")
    ap.add_argument("--activations", nargs="+", default=["tanh"], choices=list(ACTIVATIONS))
    ap.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=list(REGIMES))
    args = ap.parse_args()
    schemes = [s for s in SCHEMES if s not in ("zeros", "from_file")]
    shapes = [(w, a) for w in args.widths for a in args.activations]
    configs = [
        TrainConfig(lr=lr, init=s, seed=seed, max_steps=args.steps, width=w, activation=a)
        for w, a in shapes
        for name in args.regimes
        for lr in REGIMES[name]
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
    shape = np.array([f"{c.width} {c.activation}" for c in configs])
    print(f"{'network':<15} {'regime':<13} {'runs':>7} {'identical outcome':>18} {'identical status':>17}  stated")
    for w, a in [*shapes, ("all", "")] if len(shapes) > 1 else shapes:
        for name in args.regimes:
            m = (regimes == name) & ((shape == f"{w} {a}") | (w == "all"))
            print(
                f"{f'{w} {a}':<15} {name:<13} {m.sum():>7,} {100 * same[m].mean():>17.2f}% "
                f"{100 * same_status[m].mean():>16.2f}%  {100 * AGREEMENT[name]:.2f}%"
            )
            for i in np.flatnonzero(m & ~same)[:3] if w != "all" else []:
                c = configs[i]
                print(
                    f"    differs: {c.init} lr {c.lr:g} seed {c.seed}: numpy {ref.status[i]} at "
                    f"{ref.steps_to_solve[i]}, compiled {fast.status[i]} at {fast.steps_to_solve[i]}"
                )


if __name__ == "__main__":
    main()
