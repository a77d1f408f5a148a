"""``xorlab-sweep``: train a whole grid as one numpy program into a resumable run store.

    xorlab-sweep grid.lr=[0.01,0.1,1] grid.seed='range(0,500)' sweep.dir=runs/lr_seeds
    xorlab-sweep experiment=init_comparison sweep.dir=runs/init_comparison
    xorlab-sweep -m sweep.shard='range(0,4)' sweep.num_shards=4 hydra/launcher=joblib   # 4 processes, one store

Hydra composes the config and handles overrides and launchers; the training itself is ``xorlab.sweep.runner``
(imported when the sweep starts, so ``--help`` and bad input answer fast). ``sweep.dir`` is the store and
also Hydra's run/sweep dir (``conf/sweep/hydra/output/xorlab.yaml``); a relative one is relative to the
directory the command was started in, even with ``hydra.job.chdir=true``. Re-running with the same
``sweep.dir`` trains only runs that are not recorded yet.
"""

from __future__ import annotations

import re
import signal
import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from xorlab.apps.cli import hydra_entry, reported, run_app, to_container
from xorlab.apps.schema import register
from xorlab.sweep.grid import Grid
from xorlab.sweep.options import SweepOptions

PROG = "xorlab-sweep"
register()
# ``range(...)``, ``linspace(...)``, ``logspace(...)`` not already quoted, anywhere in a grid value (also inside an
# init entry such as ``{name:normal,std:logspace(-2,1,100)}``)
_GRID_CALL = re.compile(r"(?<![\w'\"])((?:range|linspace|logspace)\([^()'\"]*\))")


def options(cfg: DictConfig, default_dir: str | None = None, cwd: str | None = None) -> SweepOptions:
    """The ``sweep:`` section as ``SweepOptions``; a relative ``sweep.dir`` is taken relative to ``cwd``."""
    values = to_container(cfg.sweep)
    if values["dir"] is None:
        values["dir"] = default_dir or "."
    elif isinstance(values["dir"], str) and cwd is not None:
        values["dir"] = str(Path(cwd) / Path(values["dir"]).expanduser())
    return SweepOptions(**values)


def check(cfg: DictConfig) -> None:
    """Validate a composed config before anything is written: grid, options, and the store dir if given."""
    from xorlab.store.files import check_writable

    Grid.from_mapping(to_container(cfg.grid))
    opts = options(cfg)
    if cfg.sweep.dir is not None:
        check_writable(opts.dir, "sweep.dir")


def _store_dir() -> str:
    hc = HydraConfig.get()
    return hc.sweep.dir if hc.mode == RunMode.MULTIRUN else hc.runtime.output_dir


@hydra_entry("sweep")
def hydra_main(cfg: DictConfig) -> int:
    from xorlab.sweep.runner import run_sweep

    with reported(PROG):
        grid = Grid.from_mapping(to_container(cfg.grid))
        opts = options(cfg, _store_dir(), HydraConfig.get().runtime.cwd)
        shard = f", shard {opts.shard} of {opts.num_shards}" if opts.num_shards > 1 else ""
        print(f"{PROG}: planning the grid{shard}; engine {opts.engine}; store {opts.dir}", flush=True)
        _note_weak_agreement(grid, opts)
        _note_other_engines(opts)
        try:
            summary = run_sweep(grid, opts, config=to_container(cfg))
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (a SLURM time limit) as signals.StopRequested
            signum = getattr(exc, "signum", signal.SIGINT)
            name = signal.Signals(signum).name
            print(
                f"\n{PROG}: interrupted ({name}); finished chunks are recorded in {opts.dir}. "
                "Re-run the same command (same sweep.dir) to train the rest.",
                file=sys.stderr,
            )
            sys.exit(128 + signum)
    others = f"; {summary.recorded_by_others} more were recorded meanwhile by other writers" * bool(
        summary.recorded_by_others
    )
    continued = f", {summary.continued} of them continued from recorded shorter runs" * bool(summary.continued)
    print(
        f"{PROG}: trained {summary.trained} runs{continued} in {summary.seconds:.1f} s "
        f"({summary.already_recorded} of the {summary.shard_runs} distinct runs{shard} were already recorded"
        f"{others}); engine {opts.engine} ({summary.engine_seconds:.1f} s training); store {opts.dir}",
        flush=True,
    )
    return summary.trained


def _note_weak_agreement(grid: Grid, opts: SweepOptions) -> None:
    """The compiled engine's outcomes match the numpy reference less often at 1 < lr <= 3: say so when the grid
    trains there (figures measured by benchmarks/engine_agreement.py)."""
    from xorlab.engine.agreement import AGREEMENT, WEAK, WIDE_TANH_WEAK, regime

    lo, hi = WEAK
    weak = [lr for lr in grid.axes["lr"] if lo < lr <= hi]
    if opts.engine != "compiled" or not weak:
        return
    name = regime(weak[0])
    wide = "tanh" in grid.axes.get("activation", ["tanh"]) and max(grid.axes.get("width", [4])) > 4
    measured = ", ".join(f"{100 * v:.1f} % at width {w}" for w, v in WIDE_TANH_WEAK.items())
    print(
        f"{PROG}: note: at {name.replace('<=', '≤')} ({len(weak)} of the grid's lr values) the compiled engine ends "
        f"{100 * AGREEMENT[name]:.1f} % of runs exactly as the numpy reference does at 1,000 steps"
        + (f" (width 4 tanh; wider tanh networks fewer: {measured})" if wide else "")
        + f", fewer over longer runs ({100 * AGREEMENT['lr <= 1']:.2f} % at lr ≤ 1); sweep.engine=numpy gives the "
        "reference",
        flush=True,
    )


def _note_other_engines(opts: SweepOptions) -> None:
    """Resuming a store with the other engine is allowed: say so, once, before training."""
    from xorlab.engine.agreement import AGREEMENT
    from xorlab.store.reader import recorded_engines

    others = recorded_engines(opts.dir) - {opts.engine}
    if others:
        print(
            f"{PROG}: note: this store already holds runs trained with engine {', '.join(sorted(others))}; this "
            f"session trains with {opts.engine} (outcomes agree for {100 * AGREEMENT['lr <= 1']:.2f} % of runs at "
            f"lr ≤ 1, {100 * AGREEMENT['1 < lr <= 3']:.1f} % at 1 < lr ≤ 3; the `engine` column tells them apart)",
            flush=True,
        )


def _quote_grid_ranges(argv: list[str]) -> list[str]:
    """``grid.seed=range(0,500)`` or ``grid.lr=logspace(-2,1,100)`` is a grid axis, not a Hydra sweep or function:
    pass it on as the string it is."""
    return [_GRID_CALL.sub(r"'\1'", a) if a.startswith("grid.") else a for a in argv]


def main() -> None:
    """Console script ``xorlab-sweep``: Ctrl-C or SIGTERM at any moment (start-up, a joblib parent) ends with
    one line, never a traceback."""
    from xorlab.store.signals import interrupt_guard

    sys.argv[1:] = _quote_grid_ranges(sys.argv[1:])
    with interrupt_guard(PROG):
        run_app(PROG, "sweep", hydra_main, check)


if __name__ == "__main__":
    main()
