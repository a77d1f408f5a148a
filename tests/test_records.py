"""Tests for ``xorlab.store.records``: run ids, the tidy run and curve tables, and ``params_of``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields, replace

import numpy as np
import pandas as pd
import pytest

from xorlab.core.config import TrainConfig
from xorlab.engine.batch import train, train_batch
from xorlab.store.records import CURVE_COLUMNS, RUN_COLUMNS, curves_frame, params_of, run_id, runs_frame

BASE = TrainConfig(lr=0.3, max_steps=50, seed=4, init="normal", init_params={"std": 0.8})


def canonical_by_hand(cfg: TrainConfig) -> dict:
    """The documented canonical config: every field, init params flattened, None where the scheme has none."""
    p = cfg.init_params
    return {
        "lr": float(cfg.lr),
        "max_steps": int(cfg.max_steps),
        "seed": int(cfg.seed),
        "init": cfg.init,
        "rng": cfg.rng,
        "rng_skip": int(cfg.rng_skip),
        "loss_threshold": float(cfg.loss_threshold),
        "init_gain": float(p["gain"]) if "gain" in p else None,
        "init_std": float(p["std"]) if "std" in p else None,
        "init_a": float(p["a"]) if "a" in p else None,
        "init_path": p.get("path"),
    }


def test_run_id_is_sha256_of_canonical_json():
    """Guards the id definition: first 16 hex digits of sha256 of the sorted-key compact JSON config."""
    for cfg in [BASE, TrainConfig(), TrainConfig(init="orthogonal", init_params={"gain": 2}, rng="legacy")]:
        text = json.dumps(canonical_by_hand(cfg), sort_keys=True, separators=(",", ":"))
        assert run_id(cfg) == hashlib.sha256(text.encode()).hexdigest()[:16]


def test_run_id_stable_for_equal_configs():
    """Guards stability: separately built equal configs (defaults implicit or explicit, int or float)
    share an id."""
    assert run_id(TrainConfig(init="he_normal")) == run_id(TrainConfig(init="he_normal", init_params={"gain": 1}))
    assert run_id(BASE) == run_id(TrainConfig.from_mapping({**vars(BASE), "init_params": {"std": 0.8}}))
    assert run_id(TrainConfig(lr=1)) == run_id(TrainConfig(lr=1.0))


CHANGES = [
    {"lr": 0.31},
    {"max_steps": 51},
    {"seed": 5},
    {"init": "uniform", "init_params": {}},
    {"init_params": {"std": 0.81}},
    {"rng": "legacy"},
    {"rng_skip": 1},
    {"loss_threshold": 0.04},
    {"lr_hidden": 0.5},
    {"lr_output": 2.0},
    {"width": 8},
    {"activation": "relu"},
]


def test_run_id_changes_with_every_field():
    """Guards uniqueness: changing any single field gives a new id (and all ids differ from each other)."""
    ids = [run_id(BASE)] + [run_id(replace(BASE, **change)) for change in CHANGES]
    assert len(set(ids)) == len(ids)
    assert {f for c in CHANGES for f in c} >= {f.name for f in fields(BASE)}  # every field is exercised


@pytest.fixture(scope="module")
def batch():
    cfgs = [
        TrainConfig(lr=0.5, max_steps=5, seed=0, init="he_normal"),
        TrainConfig(lr=0.5, max_steps=300, seed=1, init="he_normal"),  # solved
        TrainConfig(lr=0.5, max_steps=8, init="zeros"),  # stuck
        TrainConfig(lr=1e306, max_steps=3, seed=0, init="normal", init_params={"std": 1e3}),  # diverged
    ]
    return train_batch(cfgs)


def test_runs_frame(batch):
    """Guards the run table: one row per run, ``RUN_COLUMNS`` in order, values equal to the batch result
    (config, outcome with nullable steps, predictions, row-major parameters)."""
    frame = runs_frame(batch)
    assert list(frame.columns) == RUN_COLUMNS and len(frame) == len(batch)
    # id, config, file hash, outcome, modes, engine, predictions, width-4 parameters, any-width parameters
    assert len(RUN_COLUMNS) == 1 + 15 + 1 + 5 + 11 + 1 + 4 + 17 + 1
    assert frame["run_id"].tolist() == [run_id(c) for c in batch.configs]
    assert frame["status"].tolist() == ["stuck", "solved", "stuck", "diverged"] == batch.status.tolist()
    assert frame["steps_to_solve"].dtype == "Int64" and frame["diverged_step"].dtype == "Int64"
    for i, cfg in enumerate(batch.configs):
        row = frame.iloc[i]
        r = batch[i]
        for key, value in canonical_by_hand(cfg).items():
            assert pd.isna(row[key]) if value is None else row[key] == value, key
        for key in ("steps_to_solve", "diverged_step", "plateau"):
            expected = getattr(r, key)
            assert pd.isna(row[key]) if expected is None else row[key] == expected, key
        assert row["final_loss"] == r.final_loss
        assert [row[f"pred_{p}"] for p in ("00", "01", "10", "11")] == r.predictions.tolist()
        for a in range(2):
            for b in range(4):
                assert row[f"w1_{a}{b}"] == r.params["w1"][a, b]
        for j in range(4):
            assert row[f"b1_{j}"] == r.params["b1"][0, j] and row[f"w2_{j}"] == r.params["w2"][j, 0]
        assert row["b2"] == r.params["b2"][0, 0]
        assert row["mode"] == r.mode and row["trend"] == r.behaviour["trend"]
    assert frame["steps_to_solve"].notna().tolist() == [False, True, False, False]
    assert frame["diverged_step"].tolist()[3] == 1
    assert frame["mode"].tolist()[1] == "solved" and frame["mode"].tolist()[3] == "diverged"
    custom = runs_frame(batch, ids=["a", "b", "c", "d"])
    assert custom["run_id"].tolist() == ["a", "b", "c", "d"]


@pytest.mark.parametrize(("log_every", "every"), [(1, 1), (3, 1), (1, 4), (2, 3)])
def test_curves_frame(log_every, every):
    """Guards the curves table: per run (rows contiguous, steps ascending) the logged steps that are multiples
    of ``every`` and < max_steps with their losses, then one row step = max_steps holding final_loss."""
    cfgs = [TrainConfig(lr=0.5, max_steps=m, seed=m) for m in (13, 3, 8)]
    b = train_batch(cfgs, log_every=log_every)
    frame = curves_frame(b, every=every)
    assert list(frame.columns) == CURVE_COLUMNS
    assert frame["step"].dtype == np.int64 and frame["loss"].dtype == np.float64
    ids = frame["run_id"].astype(str).to_numpy()
    assert len(set(ids)) == len(cfgs) and (ids[1:] != ids[:-1]).sum() == len(cfgs) - 1  # one block per run
    total = 0
    for i, cfg in enumerate(cfgs):
        part = frame[ids == run_id(cfg)]
        steps = [t for t in range(0, cfg.max_steps, log_every) if t % every == 0] + [cfg.max_steps]
        assert part["step"].tolist() == steps
        full = train(cfg)  # every-step losses of the same run
        assert part["loss"].tolist() == full.losses[steps[:-1]].tolist() + [full.final_loss]
        assert part["loss"].iloc[-1] == b.final_loss[i]
        total += len(steps)
    assert len(frame) == total


def test_curves_frame_with_repeated_config():
    """Guards ``curves_frame`` on a batch holding the same config twice (``train_batch`` allows it and
    ``runs_frame`` gives two rows): both runs' curves, not a ValueError about categories."""
    cfg = TrainConfig(max_steps=3)
    b = train_batch([cfg, cfg])
    frame = curves_frame(b)
    assert len(runs_frame(b)) == 2
    assert len(frame) == 2 * 4 and (frame["run_id"].astype(str) == run_id(cfg)).all()


def test_params_of_round_trips_into_train(batch):
    """Guards ``params_of``: a run-table row gives back the exact final parameters in notebook shapes, and
    training on from them continues the run bit for bit (a steps then b steps = a + b steps)."""
    frame = runs_frame(batch)
    for i in range(len(batch)):
        got = params_of(frame.iloc[i])
        for k, v in batch[i].params.items():
            assert got[k].shape == v.shape and got[k].tobytes() == v.tobytes()
    cfg = batch.configs[0]  # 5 steps
    more = train(replace(cfg, max_steps=20), params=params_of(frame.iloc[0]))
    whole = train(replace(cfg, max_steps=25))
    assert more.losses.tobytes() == whole.losses[5:].tobytes()
    for k in whole.params:
        assert more.params[k].tobytes() == whole.params[k].tobytes()


def test_from_file_run_id_follows_the_file_not_the_spelling(tmp_path, monkeypatch):
    """Guards resumable sweeps with from_file: two spellings of one file are one run; new bytes are a new run."""
    rng = np.random.default_rng(0)
    params = {"w1": rng.normal(size=(2, 4)), "b1": np.zeros((1, 4)), "w2": rng.normal(size=(4, 1))}
    params["b2"] = np.zeros((1, 1))
    np.savez(tmp_path / "start.npz", **params)
    monkeypatch.chdir(tmp_path)
    by_name = run_id(TrainConfig(init="from_file", init_params={"path": "start.npz"}))
    by_dot = run_id(TrainConfig(init="from_file", init_params={"path": "./start.npz"}))
    by_abs = run_id(TrainConfig(init="from_file", init_params={"path": str(tmp_path / "start.npz")}))
    assert by_name == by_dot == by_abs
    np.savez(tmp_path / "start.npz", **{**params, "b2": np.ones((1, 1))})
    assert run_id(TrainConfig(init="from_file", init_params={"path": "start.npz"})) != by_name
