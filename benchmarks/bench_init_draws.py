"""Per-run cost of drawing starting parameters: the per-run path vs ``xorlab.init_draws.draw_starts``.

Batches of 4,096 runs (one engine chunk), built as ``TrainConfig`` objects beforehand (not timed):

- ``shared``: 205 seeds x 20 configs (inits notebook, xavier_normal, he_normal, lecun_normal, uniform x 4 lrs;
  every run with its own ``init_params`` dict, as a grid's configs have them), the first 4,096;
- ``distinct``: 4,096 distinct seeds, notebook init;

each with ``rng="default"`` and with ``rng="legacy", rng_skip=144``. The reference is
``stack_params([start_params(cfg) for cfg in cfgs])``; ``draw_starts`` gets the five per-run columns (their
extraction from the configs is timed separately). Best of ``--repeats``; every result is checked bit for bit.

    .venv/bin/python benchmarks/bench_init_draws.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from xorlab.config import TrainConfig
from xorlab.engine import stack_params, start_params
from xorlab.init_draws import draw_starts

N = 4096
INITS = ("notebook", "xavier_normal", "he_normal", "lecun_normal", "uniform")
LRS = (0.1, 0.3, 1.0, 3.0)


def configs(case: str, kind: str) -> list[TrainConfig]:
    skip = 144 if kind == "legacy" else 0
    if case == "distinct":
        return [TrainConfig(seed=s, init="notebook", rng=kind, rng_skip=skip) for s in range(N)]
    grid = [(i, lr) for i in INITS for lr in LRS]  # 20 configs
    return [TrainConfig(seed=s, init=i, lr=lr, rng=kind, rng_skip=skip) for s in range(205) for i, lr in grid][:N]


def columns(cfgs: list[TrainConfig]) -> tuple:
    return (
        [c.init for c in cfgs],
        [c.init_params for c in cfgs],
        np.array([c.seed for c in cfgs]),
        [c.rng for c in cfgs],
        np.array([c.rng_skip for c in cfgs]),
    )


def best_of(repeats: int, fn) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    draw_starts(*columns(configs("distinct", "default")[:2]))  # the one-time uniform check, outside the timings
    print(f"{'batch (4,096 runs)':<28} {'per-run µs':>10} {'draw_starts µs':>14} {'columns µs':>10} {'speedup':>8}")
    for case in ("shared", "distinct"):
        for kind in ("default", "legacy"):
            cfgs = configs(case, kind)
            assert len(cfgs) == N
            t_ref, ref = best_of(args.repeats, lambda cfgs=cfgs: stack_params([start_params(c) for c in cfgs]))
            cols = columns(cfgs)
            t_new, got = best_of(args.repeats, lambda cols=cols: draw_starts(*cols))
            t_col, _ = best_of(args.repeats, lambda cfgs=cfgs: columns(cfgs))
            assert all(a.tobytes() == b.tobytes() for a, b in zip(got.arrays(), ref.arrays(), strict=True))
            print(
                f"{case + ', ' + kind:<28} {t_ref / N * 1e6:>10.2f} {t_new / N * 1e6:>14.2f} "
                f"{t_col / N * 1e6:>10.2f} {t_ref / t_new:>7.1f}x"
            )


if __name__ == "__main__":
    main()
