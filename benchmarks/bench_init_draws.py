"""Per-run cost of drawing starting parameters: the per-run path vs ``xorlab.engine.init_draws.draw_starts``, whose
default keys are built one generator each ("before") or seeded in batch by ``xorlab.core.seeding`` ("after").

Batches of 4,096 runs (one engine chunk), built as ``TrainConfig`` objects beforehand (not timed):

- ``shared``: 205 seeds x 20 configs (inits notebook, xavier_normal, he_normal, lecun_normal, uniform x 4 lrs;
  every run with its own ``init_params`` dict, as a grid's configs have them), the first 4,096;
- ``distinct``: 4,096 distinct seeds (drawn log-uniformly over the kind's range, as hash-bucketed chunks have
  them), notebook init;
- ``distinct mixed``: the same seeds, inits cycling notebook, he_uniform, xavier_normal, uniform (half normal,
  half uniform family), also with ``rng_skip=144``;
- ``distinct both``: 2,048 seeds, each drawn by a notebook and a uniform run (one stream, both families);

``shared`` and ``distinct`` with ``rng="default"`` and with ``rng="legacy", rng_skip=144``; the others default
only. The reference is ``stack_params([start_params(cfg) for cfg in cfgs])``; ``draw_starts`` gets the five
per-run columns (their extraction from the configs is not timed). "before" forces the per-key generators
(``init_draws.SEED_BATCH`` out of reach: the code path draw_starts had before ``xorlab.core.seeding``). Best of
``--repeats``; every result is checked bit for bit.

A second table times ways to start 4,096 distinct default streams and draw 12 normals from each (12 doubles for
``first_doubles``), per seed: what ``xorlab.core.seeding`` chose and what it did not.

    .venv/bin/python benchmarks/bench_init_draws.py
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from xorlab.core import seeding
from xorlab.core.config import TrainConfig
from xorlab.core.rng import MAX_SEED
from xorlab.engine import init_draws
from xorlab.engine.batch import start_params
from xorlab.engine.init_draws import draw_starts
from xorlab.engine.results import stack_params

N = 4096
INITS = ("notebook", "xavier_normal", "he_normal", "lecun_normal", "uniform")
MIXED = ("notebook", "he_uniform", "xavier_normal", "uniform")
LRS = (0.1, 0.3, 1.0, 3.0)
CASES = (
    ("shared", "default", 0),
    ("shared", "legacy", 144),
    ("distinct", "default", 0),
    ("distinct", "legacy", 144),
    ("distinct mixed", "default", 0),
    ("distinct mixed", "default", 144),
    ("distinct both", "default", 0),
)


def distinct_seeds(kind: str, n: int = N) -> list[int]:
    """n distinct seeds, log-uniform over 0 … MAX_SEED[kind] (fixed)."""
    meta, top = np.random.default_rng(20240611), np.log2(MAX_SEED[kind] + 1.0)
    seeds: set[int] = set()
    while len(seeds) < n:
        seeds.add(min(int(2.0 ** meta.uniform(0, top)) - 1, MAX_SEED[kind]))
    return sorted(seeds)


def configs(case: str, kind: str, skip: int) -> list[TrainConfig]:
    def cfg(seed: int, init: str, lr: float = 0.1) -> TrainConfig:
        return TrainConfig(seed=seed, init=init, lr=lr, rng=kind, rng_skip=skip)

    if case == "shared":
        grid = [(i, lr) for i in INITS for lr in LRS]  # 20 configs
        return [cfg(s, i, lr) for s in range(205) for i, lr in grid][:N]
    if case == "distinct both":
        return [cfg(s, i) for s in distinct_seeds(kind, N // 2) for i in ("notebook", "uniform")]
    inits = MIXED if case == "distinct mixed" else ("notebook",)
    return [cfg(s, inits[j % len(inits)]) for j, s in enumerate(distinct_seeds(kind))]


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


def draw_before(cols: tuple):
    """draw_starts with every default key built as its own generator (the path before xorlab.core.seeding)."""
    saved, init_draws.SEED_BATCH = init_draws.SEED_BATCH, sys.maxsize
    try:
        return draw_starts(*cols)
    finally:
        init_draws.SEED_BATCH = saved


def same(a, b) -> bool:
    return all(x.tobytes() == y.tobytes() for x, y in zip(a.arrays(), b.arrays(), strict=True))


def draws_table(repeats: int) -> None:
    seeds = distinct_seeds("default")
    arr = np.array(seeds, dtype=np.uint64)

    def reference():
        return np.stack([np.random.default_rng(s).standard_normal(12) for s in seeds])

    def by_setter():  # derived states loaded into one reused PCG64 through the public state setter
        gen, out = np.random.default_rng(0), np.empty((N, 12))
        for row, state in zip(out, seeding.state_dicts(seeding.seed_words(arr)), strict=True):
            gen.bit_generator.state = state
            gen.standard_normal(out=row)
        return out

    def by_words():  # what draw_starts does: a PCG64 seeded from its precomputed words
        out = np.empty((N, 12))
        for row, w in zip(out, seeding.seed_words(arr), strict=True):
            seeding.generator(w).standard_normal(out=row)
        return out

    ref = reference()
    uniforms = np.stack([np.random.default_rng(s).random(12) for s in seeds])
    print(f"\n{'4,096 distinct default seeds':<60} {'µs/seed':>8}")
    for label, fn, expected in (
        ("default_rng(seed), 12 normals", reference, ref),
        ("seed_words + reused PCG64, state setter, 12 normals", by_setter, ref),
        ("seed_words + generator(words), 12 normals", by_words, ref),
        (
            "seed_words + first_doubles: 12 doubles, no generator",
            lambda: seeding.first_doubles(seeding.seed_words(arr), 12),
            uniforms,
        ),
    ):
        t, got = best_of(repeats, fn)
        assert got.tobytes() == expected.tobytes(), label
        print(f"{label:<60} {t / N * 1e6:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    assert seeding.exact() and init_draws.uniform_is_affine()  # the one-time checks, outside the timings
    print(
        f"{'batch (4,096 runs)':<34} {'keys':>5} {'per-run':>8} {'before':>8} {'after':>8} {'after':>8} {'before':>8}"
        f"\n{'':<40} {'µs/run':>8} {'µs/run':>8} {'µs/run':>8} {'µs/key':>8} {'/after':>8}"
    )
    for case, kind, skip in CASES:
        cfgs = configs(case, kind, skip)
        assert len(cfgs) == N
        cols = columns(cfgs)
        keys = len({(c.seed, c.rng_skip) for c in cfgs})
        t_ref, ref = best_of(args.repeats, lambda cfgs=cfgs: stack_params([start_params(c) for c in cfgs]))
        t_old, old = best_of(args.repeats, lambda cols=cols: draw_before(cols))
        t_new, new = best_of(args.repeats, lambda cols=cols: draw_starts(*cols))
        assert same(old, ref) and same(new, ref), case
        label = f"{case}, {kind}" + (f", skip {skip}" if skip else "")
        print(
            f"{label:<34} {keys:>5} {t_ref / N * 1e6:>8.2f} {t_old / N * 1e6:>8.2f} {t_new / N * 1e6:>8.2f} "
            f"{t_new / keys * 1e6:>8.2f} {t_old / t_new:>7.1f}x"
        )
    draws_table(args.repeats)


if __name__ == "__main__":
    main()
