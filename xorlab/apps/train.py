"""``xorlab-train``: one training run from a Hydra config, printed like the notebook and recorded to disk.

    xorlab-train                                   # the notebook's run: lr 0.1, 1000 steps, notebook init
    xorlab-train lr=0.5 init=he_normal seed=3      # any TrainConfig field; init is a config group
    xorlab-train init=normal init.std=0.01
    xorlab-train experiment=notebook_replay        # reproduces the notebook's printed table
    xorlab-train -m init='glob(*,exclude=from_file)' seed=0,1,2 hydra/launcher=joblib

The run's record (config, per-step losses, outcome) goes into the Hydra output directory in the run-store
format (``xorlab.store``), so ``xorlab.load_runs`` reads single runs, multiruns and sweeps alike. The app
returns the final loss, which is what ``hydra/sweeper=optuna`` minimises. Pandas and pyarrow are imported
only to write the record, so ``--help`` and bad input answer fast.
"""

from __future__ import annotations

import logging
import sys

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from xorlab.apps.cli import hydra_entry, parse_argv, reported, run_app, to_container
from xorlab.apps.schema import register, train_config
from xorlab.core.config import ConfigError, TrainConfig, check_int
from xorlab.core.data import POINT_LABELS
from xorlab.engine.batch import train_batch
from xorlab.engine.results import ENGINES, TrainResult

PROG = "xorlab-train"
log = logging.getLogger(__name__)
register()


def check(cfg: DictConfig) -> TrainConfig:
    """Validate a composed config; returns the typed run config."""
    check_int("print_every", cfg.print_every, 1)
    check_int("log_every", cfg.log_every, 1)
    if cfg.engine not in ENGINES:
        raise ConfigError("engine", f"unknown engine {cfg.engine!r}; allowed: {', '.join(ENGINES)}")
    return train_config(cfg)


def precheck(cfg: DictConfig) -> None:
    """Before Hydra starts: the config (``check``) and the folder the record will go to, which must be creatable
    and writable (``hydra.run.dir``, or ``hydra.sweep.dir`` of a multirun), so that nothing is half-written."""
    from hydra.types import RunMode

    from xorlab.store.files import check_writable

    check(cfg)
    hydra = HydraConfig.get()
    multirun = hydra.mode == RunMode.MULTIRUN or parse_argv(sys.argv[1:])[2]
    field, path = ("hydra.sweep.dir", hydra.sweep.dir) if multirun else ("hydra.run.dir", hydra.run.dir)
    check_writable(path, field)  # a StoreError naming the field: one line, like any user error


def _loss(value: float) -> str:
    """Three decimals like the notebook; very large losses (a saturated net at a huge lr) in ``%.6g``."""
    return f"{value:.3f}" if abs(value) < 1e6 else f"{value:.6g}"


def notebook_table(res: TrainResult, print_every: int) -> str:
    """The notebook's printout: loss every ``print_every`` steps, final loss, predictions, outcome."""
    m = res.config.max_steps
    lines = [
        f"{step}/{m}: loss = {_loss(loss)}"
        for step, loss in zip(res.loss_steps, res.losses, strict=True)
        if step % print_every == 0
    ]
    lines.append(f"Final loss = {_loss(res.final_loss)}")
    lines += [f"  yhat({p}) = {y:.8f}" for p, y in zip(POINT_LABELS, res.predictions, strict=True)]
    solved = "never" if res.steps_to_solve is None else f"step {res.steps_to_solve}"
    plateau = f", nearest plateau {res.plateau}" if res.plateau else ""
    lines.append(f"status: {res.status}, failure mode {res.mode} (first solved: {solved}{plateau})")
    return "\n".join(lines)


def run(cfg: DictConfig, out_dir: str) -> float:
    """Train the configured run, print it, record it in ``out_dir``; returns the final loss."""
    from xorlab.store.records import curves_frame, run_id, runs_frame
    from xorlab.store.writer import StoreWriter

    train_cfg = check(cfg)
    batch = train_batch([train_cfg], log_every=1, engine=cfg.engine)
    res = batch[0]
    print(notebook_table(res, cfg.print_every), flush=True)
    ids = [run_id(train_cfg)]
    with StoreWriter(out_dir, config=to_container(cfg), meta={"app": PROG}) as store:
        store.write(runs_frame(batch, ids), curves_frame(batch, ids, every=cfg.log_every))
    log.info("run %s recorded in %s", ids[0], out_dir)
    return res.final_loss


@hydra_entry("train")
def hydra_main(cfg: DictConfig) -> float:
    with reported(PROG):
        return run(cfg, HydraConfig.get().runtime.output_dir)


def main() -> None:
    """Console script ``xorlab-train``: Ctrl-C or SIGTERM at any moment ends with one line, never a traceback."""
    from xorlab.store.signals import interrupt_guard

    with interrupt_guard(PROG, "the run is recorded only when it finishes"):
        run_app(PROG, "train", hydra_main, precheck)


if __name__ == "__main__":
    main()
