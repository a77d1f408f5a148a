"""Width and activation (issue: beyond four tanh units): the numpy engine against a plain per-run loop for every
activation and several widths, batches of mixed widths equal to each part alone, inits that follow the shapes,
records of any width, the notebook's network unchanged, and bad values refused in one line."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xorlab.core.activations import ACTIVATIONS, LEAKY_SLOPE
from xorlab.core.config import ConfigError, TrainConfig
from xorlab.core.data import X, Y
from xorlab.core.inits import SCHEMES, init_params
from xorlab.core.rng import make_rng
from xorlab.engine.batch import start_params, train_batch
from xorlab.store.reader import load_runs
from xorlab.store.records import PARAM_COLUMNS, WIDE_PARAMS, params_of, run_id, runs_frame
from xorlab.sweep.grid import Grid
from xorlab.sweep.options import SweepOptions
from xorlab.sweep.runner import run_sweep

ACTS = list(ACTIVATIONS)


def naive_run(cfg: TrainConfig, steps: int) -> tuple[list[float], dict[str, np.ndarray]]:
    """The notebook's loop written plainly with matrices, for any width and activation: (losses before each
    update, final parameters)."""
    p = {k: v.copy() for k, v in start_params(cfg).items()}
    x, y = X, Y[:, None]

    def act(z):
        return {
            "tanh": np.tanh(z),
            "sigmoid": 1 / (1 + np.exp(-z)),
            "relu": np.maximum(z, 0),
            "leaky_relu": np.where(z > 0, z, LEAKY_SLOPE * z),
        }[cfg.activation]

    def slope(a):
        return {
            "tanh": 1 - a**2,
            "sigmoid": a * (1 - a),
            "relu": (a > 0) * 1.0,
            "leaky_relu": np.where(a > 0, 1.0, LEAKY_SLOPE),
        }[cfg.activation]

    losses = []
    for _ in range(steps):
        a1 = act(x @ p["w1"] + p["b1"])
        yhat = 1 / (1 + np.exp(-(a1 @ p["w2"] + p["b2"])))
        losses.append(float(np.mean(-(y * np.log(yhat) + (1 - y) * np.log(1 - yhat)))))
        dz2 = yhat - y
        dz1 = (dz2 @ p["w2"].T) * slope(a1)
        grads = {"w2": a1.T @ dz2, "b2": dz2.sum(0, keepdims=True), "w1": x.T @ dz1, "b1": dz1.sum(0, keepdims=True)}
        for k in p:
            p[k] = p[k] - cfg.lr * grads[k]
    return losses, p


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("width", [1, 3, 8])
def test_numpy_engine_matches_a_plain_loop(width, activation):
    cfgs = [
        TrainConfig(lr=0.5, max_steps=60, seed=s, init="he_normal", width=width, activation=activation)
        for s in range(3)
    ]
    batch = train_batch(cfgs, log_every=1)
    for i, cfg in enumerate(cfgs):
        losses, params = naive_run(cfg, 60)
        np.testing.assert_allclose(batch.losses[i], losses, rtol=1e-10, atol=1e-13)
        got = batch[i].params
        for k in params:
            assert got[k].shape == params[k].shape
            np.testing.assert_allclose(got[k], params[k], rtol=1e-9, atol=1e-12)


def test_mixed_batch_equals_each_part_alone_bit_for_bit():
    cfgs = [
        TrainConfig(lr=lr, max_steps=m, seed=s, init=init, width=w, activation=a)
        for w, a in [(2, "relu"), (4, "tanh"), (8, "sigmoid"), (4, "leaky_relu")]
        for lr, m, s, init in [(0.5, 50, 0, "xavier_normal"), (2.0, 80, 1, "notebook")]
    ]
    mixed = train_batch(cfgs, log_every=5)
    for i, cfg in enumerate(cfgs):
        alone = train_batch([cfg], log_every=5)[0]
        got = mixed[i]
        np.testing.assert_array_equal(got.losses, alone.losses)
        assert got.final_loss == alone.final_loss and got.status == alone.status and got.mode == alone.mode
        for k in alone.params:
            np.testing.assert_array_equal(got.params[k], alone.params[k])


def test_the_notebook_network_is_unchanged():
    """Width 4 tanh is the default: the same config, the same run_id, the same numbers, with or without the fields
    written out (their defaults are left out of the identity, like every later field)."""
    plain = TrainConfig(lr=0.5, max_steps=100, seed=3)
    spelled = TrainConfig(lr=0.5, max_steps=100, seed=3, width=4, activation="tanh")
    assert run_id(plain) == run_id(spelled) and "width" not in plain.identity()
    assert run_id(TrainConfig(width=5)) != run_id(plain) and run_id(TrainConfig(activation="relu")) != run_id(plain)
    a, b = train_batch([plain]), train_batch([spelled])
    np.testing.assert_array_equal(a.losses, b.losses)
    assert plain.trajectory_key() == spelled.trajectory_key()


@pytest.mark.parametrize("width", [1, 2, 8, 32])
def test_inits_follow_the_shapes(width):
    fans = {"w1": (2, width), "w2": (width, 1)}
    for name in SCHEMES:
        if name == "from_file":
            continue
        p = init_params(name, make_rng(7), {}, width)
        assert {k: v.shape for k, v in p.items()} == {
            "w1": (2, width),
            "b1": (1, width),
            "w2": (width, 1),
            "b2": (1, 1),
        }
    # he_normal: standard normals of each shape, w1 then w2 from one stream, scaled by sqrt(2 / fan_in)
    rng, got = make_rng(11), init_params("he_normal", make_rng(11), {}, width)
    for k in ("w1", "w2"):
        np.testing.assert_array_equal(got[k], rng.standard_normal(fans[k]) * math.sqrt(2 / fans[k][0]))
    # the notebook's scale is 1/sqrt(fan_in), its own expressions at width 4
    rng, nb = make_rng(11), init_params("notebook", make_rng(11), {}, width)
    np.testing.assert_array_equal(nb["w1"], rng.standard_normal((2, width)) * np.sqrt(2) ** -1)
    np.testing.assert_array_equal(nb["w2"], rng.standard_normal((width, 1)) * np.sqrt(width) ** -1)
    # orthogonal on a non-square shape: orthonormal rows (or columns) as PyTorch's orthogonal_
    w1 = init_params("orthogonal", make_rng(3), {}, width)["w1"]
    gram = w1 @ w1.T if width >= 2 else w1.T @ w1
    np.testing.assert_allclose(gram, np.eye(gram.shape[0]), atol=1e-12)


def test_notebook_std_at_width_4_is_the_notebooks_numbers():
    rng, nb = make_rng(5), init_params("notebook", make_rng(5))
    np.testing.assert_array_equal(nb["w1"], rng.standard_normal((2, 4)) * np.sqrt(2) ** -1)
    np.testing.assert_array_equal(nb["w2"], rng.standard_normal((4, 1)) * 0.5)


def test_records_hold_any_width_and_read_back(tmp_path):
    grid = Grid.from_mapping(
        {"width": [1, 4, 16], "activation": ["tanh", "relu"], "seed": "range(0,4)", "lr": [0.5], "max_steps": [40]}
    )
    store = tmp_path / "store"
    run_sweep(grid, SweepOptions(dir=store, progress=False, engine="numpy"))
    runs = load_runs(store).set_index("run_id")
    assert len(runs) == 24
    cfgs = [c for t in grid.trajectories() for c in t]
    batch = train_batch(cfgs)
    for i, cfg in enumerate(cfgs):
        row = runs.loc[run_id(cfg)]
        want = batch[i].params
        got = params_of(row)
        for k in want:
            np.testing.assert_array_equal(got[k], want[k])
        four = cfg.width == 4
        assert row[PARAM_COLUMNS].notna().all() == four and (row[WIDE_PARAMS] is None) == four
    frame = runs_frame(batch)
    assert frame.loc[frame["width"] == 4, WIDE_PARAMS].isna().all()
    assert (frame.loc[frame["width"] == 16, WIDE_PARAMS].map(len) == 4 * 16 + 1).all()


def test_compiled_engine_trains_other_widths_on_its_wide_kernel():
    pytest.importorskip("numba")
    cfgs = [TrainConfig(lr=0.5, max_steps=30, seed=s, width=w) for s in range(2) for w in (4, 8)]
    frame = runs_frame(train_batch(cfgs, engine="compiled"))
    assert (frame["engine"] == "compiled").all()


def test_where_the_wide_kernel_cannot_run_those_runs_train_on_numpy_with_a_notice(monkeypatch, capsys):
    pytest.importorskip("numba")
    from xorlab.engine import batch as batch_module
    from xorlab.engine import kernel

    def broken():
        raise RuntimeError("engine 'compiled' cannot compile its wide kernel (TypingError)")

    monkeypatch.setattr(kernel, "_compiled_wide", broken)
    monkeypatch.setattr(batch_module, "_notified", set())
    cfgs = [TrainConfig(lr=0.5, max_steps=30, seed=s, width=w) for s in range(2) for w in (4, 8)]
    batch = train_batch(cfgs, engine="compiled")
    frame = runs_frame(batch)
    assert frame.set_index("width")["engine"].to_dict() == {4: "compiled", 8: "numpy"}
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["xorlab: engine 'compiled' cannot compile its wide kernel (TypingError); width 8 tanh runs train "
                   "on the numpy engine"]  # fmt: skip
    ref = train_batch(cfgs[1::2])  # the width-8 runs alone on the numpy engine: the same bits
    np.testing.assert_array_equal(batch.losses[1::2], ref.losses)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"width": 0}, "width: must be an integer in 1 … 256, got 0"),
        ({"width": 257}, "width: must be an integer in 1 … 256, got 257"),
        ({"width": 2.5}, "width: must be an integer in 1 … 256, got 2.5"),
        ({"activation": "gelu"}, "activation: unknown activation 'gelu'; allowed: tanh, sigmoid, relu, leaky_relu"),
    ],
)
def test_bad_width_or_activation_is_one_line(values, message):
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_mapping(values)
    assert str(err.value) == message


def test_from_file_needs_the_shapes_of_its_width(tmp_path):
    path = tmp_path / "w8.npz"
    np.savez(path, w1=np.full((2, 8), 0.1), b1=np.zeros((1, 8)), w2=np.full((8, 1), 0.2), b2=np.zeros((1, 1)))
    cfg = TrainConfig(init="from_file", init_params={"path": str(path)}, width=8, max_steps=5)
    assert train_batch([cfg])[0].params["w1"].shape == (2, 8)
    with pytest.raises(ConfigError, match=r"init.path: .*w1 has shape \(2, 8\), expected \(2, 4\)"):
        TrainConfig(init="from_file", init_params={"path": str(path)})


def test_extending_other_widths_continues_from_their_records(tmp_path):
    """A longer budget on the same store continues each recorded run from its stored parameters (any width), and
    lands on the numbers of training it from scratch (numpy engine: bit for bit)."""
    store = tmp_path / "store"
    axes = {"width": [3, 8], "activation": ["relu", "sigmoid"], "seed": "range(0,3)", "lr": [0.5]}
    short = run_sweep(
        Grid.from_mapping({**axes, "max_steps": [50]}), SweepOptions(dir=store, progress=False, engine="numpy")
    )
    longer = Grid.from_mapping({**axes, "max_steps": [150]})  # continuing needs TAIL = 64 steps or more
    done = run_sweep(longer, SweepOptions(dir=store, progress=False, engine="numpy"))
    assert short.trained == 12 and done.trained == 12 and done.continued == 12  # none diverged at lr 0.5
    runs = load_runs(store).set_index("run_id")
    cfgs = [c for t in longer.trajectories() for c in t]
    fresh = train_batch(cfgs)
    for i, cfg in enumerate(cfgs):
        row = runs.loc[run_id(cfg)]
        assert row["final_loss"] == fresh.final_loss[i]
        for k, v in params_of(row).items():
            np.testing.assert_array_equal(v, fresh[i].params[k])


def test_a_store_written_before_width_resumes_and_extends_without_retraining(tmp_path):
    """A store as 0.2.0 wrote it (no width, activation, dead_units or params columns) reads as width 4 tanh, is
    complete for the same grid, and a longer budget continues its runs instead of retraining them."""
    import pyarrow.parquet as pq

    from xorlab.store.records import DEFAULTED_COLUMNS

    store = tmp_path / "store"
    axes = {"lr": [0.5, 1.0], "seed": "range(0,6)", "init": ["notebook", "he_normal"]}
    run_sweep(Grid.from_mapping({**axes, "max_steps": [100]}), SweepOptions(dir=store, progress=False, engine="numpy"))
    newer = [c for c in [*DEFAULTED_COLUMNS, "dead_units", WIDE_PARAMS] if c not in ("lr_hidden", "lr_output")]
    for f in (store / "runs").glob("*.parquet"):
        pq.write_table(pq.read_table(f).drop_columns(newer), f)
    old = load_runs(store)
    assert (old["width"] == 4).all() and (old["activation"] == "tanh").all() and old[WIDE_PARAMS].isna().all()
    again = run_sweep(Grid.from_mapping({**axes, "max_steps": [100]}), SweepOptions(dir=store, progress=False))
    assert again.trained == 0
    longer = run_sweep(
        Grid.from_mapping({**axes, "max_steps": [300]}), SweepOptions(dir=store, progress=False, engine="numpy")
    )
    assert longer.trained == 24 and longer.continued == 24 - int(old["diverged_step"].notna().sum())
