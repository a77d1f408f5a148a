"""``xorlab-train``: one training run from a Hydra config, printed like the notebook and recorded to disk.

    xorlab-train                                   # the notebook's run: lr 0.1, 1000 steps, notebook init
    xorlab-train lr=0.5 init=he_normal seed=3      # any TrainConfig field; init is a config group
    xorlab-train init=normal init.std=0.01
    xorlab-train preset=notebook_replay            # reproduces the notebook's printed table
    xorlab-train -m init='glob(*,exclude=from_file)' seed=0,1,2 hydra/launcher=joblib

The run's record (config, per-step losses, outcome) goes into the Hydra output directory in the run-store
format (``xorlab.store``), so ``xorlab.load_runs`` reads single runs, multiruns and sweeps alike. The app
returns the final loss, which is what ``hydra/sweeper=optuna`` minimises.

``xorlab.train`` is also the training *function* of the public API (``from xorlab import train``); see the
note at the bottom of this module.
"""

from __future__ import annotations

import logging
import sys
import types

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from xorlab import engine
from xorlab.cli import CONF_DIR, VERSION_BASE, reported, run_app, to_container
from xorlab.config import TrainConfig, check_int
from xorlab.data import POINT_LABELS
from xorlab.hydra_schema import register, train_config
from xorlab.records import curves_frame, run_id, runs_frame
from xorlab.store import StoreWriter

PROG = "xorlab-train"
log = logging.getLogger(__name__)
register()


def check(cfg: DictConfig) -> TrainConfig:
    """Validate a composed config; returns the typed run config."""
    check_int("print_every", cfg.print_every, 1)
    check_int("log_every", cfg.log_every, 1)
    return train_config(cfg)


def notebook_table(res: engine.TrainResult, print_every: int) -> str:
    """The notebook's printout: loss every ``print_every`` steps, final loss, predictions, outcome."""
    m = res.config.max_steps
    lines = [f"{step}/{m}: loss = {loss:.3f}" for step, loss in zip(res.loss_steps, res.losses, strict=True)
             if step % print_every == 0]  # fmt: skip
    lines.append(f"Final loss = {res.final_loss:.3f}")
    lines += [f"  yhat({p}) = {y:.8f}" for p, y in zip(POINT_LABELS, res.predictions, strict=True)]
    solved = "never" if res.steps_to_solve is None else f"step {res.steps_to_solve}"
    plateau = f", nearest plateau {res.plateau}" if res.plateau else ""
    lines.append(f"status: {res.status} (first solved: {solved}{plateau})")
    return "\n".join(lines)


def run(cfg: DictConfig, out_dir: str) -> float:
    """Train the configured run, print it, record it in ``out_dir``; returns the final loss."""
    train_cfg = check(cfg)
    batch = engine.train_batch([train_cfg], log_every=1)
    res = batch[0]
    print(notebook_table(res, cfg.print_every), flush=True)
    ids = [run_id(train_cfg)]
    with StoreWriter(out_dir, config=to_container(cfg), meta={"app": PROG}) as store:
        store.write(runs_frame(batch, ids), curves_frame(batch, ids, every=cfg.log_every))
    log.info("run %s recorded in %s", ids[0], out_dir)
    return res.final_loss


@hydra.main(config_path=str(CONF_DIR), config_name="train", version_base=VERSION_BASE)
def hydra_main(cfg: DictConfig) -> float:
    with reported(PROG):
        return run(cfg, HydraConfig.get().runtime.output_dir)


def main() -> None:
    """Console script ``xorlab-train``."""
    run_app(PROG, "train", hydra_main, check)


class _CallableModule(types.ModuleType):
    """``xorlab.train`` is both this app module and the public function ``xorlab.train(cfg, params=None)``.

    Importing the submodule rebinds the package attribute ``xorlab.train`` to the module, which would shadow
    the function; making the module callable keeps ``from xorlab import train; train(cfg)`` working either way.
    """

    def __call__(self, cfg: TrainConfig, params: dict | None = None) -> engine.TrainResult:
        return engine.train(cfg, params)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    main()
