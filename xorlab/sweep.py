"""``xorlab-sweep``: train a whole grid as one numpy program into a resumable run store.

    xorlab-sweep grid.lr=[0.01,0.1,1] grid.seed='range(0,500)' sweep.dir=runs/lr_seeds
    xorlab-sweep experiment=init_comparison
    xorlab-sweep -m sweep.shard='range(0,4)' sweep.num_shards=4 hydra/launcher=joblib   # 4 processes, one store

Hydra composes the config and handles overrides and launchers; the training itself is ``xorlab.runner``.
Re-running with the same ``sweep.dir`` trains only runs that are not recorded yet.
"""

from __future__ import annotations

import re
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from xorlab.cli import CONF_DIR, VERSION_BASE, reported, run_app, to_container
from xorlab.grid import Grid
from xorlab.hydra_schema import register
from xorlab.runner import SweepOptions, run_sweep
from xorlab.store import check_writable

PROG = "xorlab-sweep"
register()
_GRID_RANGE = re.compile(r"^(grid\.\w+)=(range\(.*\))$")


def options(cfg: DictConfig, default_dir: str | None = None) -> SweepOptions:
    s = cfg.sweep
    return SweepOptions(
        dir=s.dir if s.dir is not None else default_dir or ".",
        shard=s.shard,
        num_shards=s.num_shards,
        chunk_size=s.chunk_size,
        log_every=s.log_every,
        progress=s.progress,
    )


def check(cfg: DictConfig) -> None:
    """Validate a composed config before anything is written: grid, options, and the store dir if given."""
    Grid.from_mapping(to_container(cfg.grid))
    opts = options(cfg)
    if cfg.sweep.dir is not None:
        check_writable(opts.dir, "sweep.dir")


def _store_dir() -> str:
    hc = HydraConfig.get()
    return hc.sweep.dir if hc.mode == RunMode.MULTIRUN else hc.runtime.output_dir


@hydra.main(config_path=str(CONF_DIR), config_name="sweep", version_base=VERSION_BASE)
def hydra_main(cfg: DictConfig) -> int:
    with reported(PROG):
        grid = Grid.from_mapping(to_container(cfg.grid))
        opts = options(cfg, _store_dir())
        shard = f", shard {opts.shard} of {opts.num_shards}" if opts.num_shards > 1 else ""
        print(f"{PROG}: planning the grid{shard}; store {opts.dir}", flush=True)
        try:
            summary = run_sweep(grid, opts, config=to_container(cfg))
        except KeyboardInterrupt:
            print(f"\n{PROG}: interrupted; finished chunks are recorded in {opts.dir}. "
                  "Re-run the same command (same sweep.dir) to train the rest.", file=sys.stderr)  # fmt: skip
            sys.exit(130)
    print(
        f"{PROG}: trained {summary.trained} runs in {summary.seconds:.1f} s "
        f"({summary.already_recorded} of the {summary.shard_runs} distinct runs{shard} were already recorded); "
        f"store {opts.dir}",
        flush=True,
    )
    return summary.trained


def _quote_grid_ranges(argv: list[str]) -> list[str]:
    """``grid.seed=range(0,500)`` is a grid axis, not a Hydra sweep: pass it on as the string it is."""
    return [_GRID_RANGE.sub(r"\1='\2'", a) for a in argv]


def main() -> None:
    """Console script ``xorlab-sweep``."""
    sys.argv[1:] = _quote_grid_ranges(sys.argv[1:])
    run_app(PROG, "sweep", hydra_main, check)


if __name__ == "__main__":
    main()
