"""Tests for ``xorlab.core.config``: valid configs are accepted and canonicalised; every bad value is a one-line
``ConfigError`` naming its field."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import pytest

from xorlab.core.config import ConfigError, TrainConfig, field_defaults, positive, scalar_fields, spec
from xorlab.core.inits import PARAM_SHAPES, SCHEMES
from xorlab.core.rng import RNG_KINDS


def assert_config_error(field: str, **kwargs) -> ConfigError:
    """Build ``TrainConfig(**kwargs)``; it must raise a one-line ``ConfigError`` for ``field``."""
    with pytest.raises(ConfigError) as info:
        TrainConfig(**kwargs)
    err = info.value
    text = str(err)
    assert "\n" not in text and "\r" not in text, text
    assert err.field == field
    assert text.startswith(f"{field}: ") and len(text) > len(field) + 2, text
    return err


def write_npz(path, **overrides) -> str:
    arrays = {k: np.full(s, 0.5) for k, s in PARAM_SHAPES.items()}
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return str(path)


BAD_VALUES = [
    ("lr", 0),
    ("lr", -0.1),
    ("lr", math.nan),
    ("lr", math.inf),
    ("lr", "abc"),
    ("lr", "0.1"),
    ("lr", True),
    ("lr", None),
    ("max_steps", 0),
    ("max_steps", -5),
    ("max_steps", 1.5),
    ("max_steps", 10.0),
    ("max_steps", "10"),
    ("max_steps", True),
    ("seed", -1),
    ("seed", 0.5),
    ("seed", "1"),
    ("rng_skip", -1),
    ("rng_skip", 2.0),
    ("loss_threshold", 0),
    ("loss_threshold", math.nan),
    ("loss_threshold", "low"),
    ("rng", "mt19937"),
    ("rng", None),
    ("init", "kaiming"),
    ("init", None),
    ("init", ["notebook"]),
]


@pytest.mark.parametrize(("field", "value"), BAD_VALUES, ids=[f"{f}={v!r}" for f, v in BAD_VALUES])
def test_bad_value_is_one_line_error_naming_field(field, value):
    """Guards validation of every scalar field: bad values (≤ 0, NaN, inf, text, bool, fractions, negative
    seeds, unknown names) raise ``ConfigError('field: …')`` on one line, quoting the bad value."""
    err = assert_config_error(field, **{field: value})
    assert repr(value) in str(err)


def test_unknown_init_lists_known_schemes():
    """Guards the unknown-init message: it lists every registered scheme."""
    err = assert_config_error("init", init="kaiming")
    for name in SCHEMES:
        assert name in str(err)


def test_unknown_rng_lists_known_generators():
    """Guards the unknown-rng message: it lists the generator kinds."""
    err = assert_config_error("rng", rng="pcg")
    for kind in RNG_KINDS:
        assert kind in str(err)


@pytest.mark.parametrize(
    ("init", "params", "field"),
    [
        ("xavier_normal", {"std": 1.0}, "init.std"),
        ("normal", {"gain": 2.0}, "init.gain"),
        ("zeros", {"gain": 1.0}, "init.gain"),
        ("notebook", {"a": 1.0}, "init.a"),
        ("he_normal", {"foo": 1.0}, "init.foo"),
    ],
)
def test_unknown_init_param(init, params, field):
    """Guards init params: a parameter the scheme does not take names itself and the allowed ones."""
    err = assert_config_error(field, init=init, init_params=params)
    assert init in str(err)
    for allowed in SCHEMES[init].params:
        assert allowed in str(err)


@pytest.mark.parametrize(
    ("init", "params", "field"),
    [
        ("he_normal", {"gain": 0.0}, "init.gain"),
        ("he_normal", {"gain": -1.0}, "init.gain"),
        ("he_normal", {"gain": math.inf}, "init.gain"),
        ("normal", {"std": -0.1}, "init.std"),
        ("normal", {"std": math.nan}, "init.std"),
        ("uniform", {"a": "wide"}, "init.a"),
        ("uniform", {"a": False}, "init.a"),
    ],
)
def test_bad_init_param_values(init, params, field):
    """Guards init param values: gain must be > 0, std/a ≥ 0, all finite real numbers."""
    assert_config_error(field, init=init, init_params=params)


def test_init_params_must_be_a_mapping():
    """Guards ``init_params`` itself: a non-mapping is a ``ConfigError``."""
    assert_config_error("init_params", init="normal", init_params=[("std", 1.0)])


# --- from_file ----------------------------------------------------------------------------------------------


def test_from_file_needs_path():
    """Guards ``from_file`` without a path."""
    assert_config_error("init.path", init="from_file")


def test_from_file_path_must_be_text():
    """Guards ``from_file`` with a non-string path."""
    assert_config_error("init.path", init="from_file", init_params={"path": 3})


def test_from_file_missing_file(tmp_path):
    """Guards ``from_file`` pointing at no file."""
    err = assert_config_error("init.path", init="from_file", init_params={"path": str(tmp_path / "nope.npz")})
    assert "nope.npz" in str(err)


def test_from_file_corrupt_file(tmp_path):
    """Guards ``from_file`` on random bytes (not an npz)."""
    path = tmp_path / "corrupt.npz"
    path.write_bytes(np.random.default_rng(0).bytes(512))
    assert_config_error("init.path", init="from_file", init_params={"path": str(path)})


def test_from_file_truncated_npz(tmp_path):
    """Guards ``from_file`` on a real npz cut in half (a zip with a broken directory)."""
    path = tmp_path / "half.npz"
    write_npz(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert_config_error("init.path", init="from_file", init_params={"path": str(path)})


@pytest.mark.parametrize(
    ("overrides", "mentions"),
    [
        ({"w1": np.zeros((4, 2))}, "w1"),
        ({"b1": np.zeros(4)}, "b1"),
        ({"b2": np.zeros((1,))}, "b2"),
        ({"w2": None}, "w2"),
        ({"b1": None, "b2": None}, "b1"),
        ({"w2": np.full((4, 1), np.nan)}, "w2"),
        ({"w1": np.full((2, 4), np.inf)}, "w1"),
    ],
    ids=["w1-shape", "b1-shape", "b2-shape", "missing-w2", "missing-b1-b2", "nan", "inf"],
)
def test_from_file_bad_contents(tmp_path, overrides, mentions):
    """Guards ``from_file`` contents: wrong shape, missing key, NaN/inf values name the array at fault."""
    path = write_npz(tmp_path / "p.npz", **overrides)
    err = assert_config_error("init.path", init="from_file", init_params={"path": path})
    assert mentions in str(err)


def test_from_file_valid(tmp_path):
    """Guards the happy path: a correct file is accepted and kept as the path."""
    path = write_npz(tmp_path / "ok.npz")
    cfg = TrainConfig(init="from_file", init_params={"path": path})
    assert cfg.init_params == {"path": path}


# --- valid configs ------------------------------------------------------------------------------------------


def test_defaults_and_init_defaults_filled():
    """Guards canonicalisation: a scheme's default params are filled in, given ones override them."""
    assert TrainConfig().init_params == {}
    assert TrainConfig(init="he_normal").init_params == {"gain": 1.0}
    assert TrainConfig(init="he_normal", init_params={"gain": 2}).init_params == {"gain": 2}
    assert TrainConfig(init="normal").init_params == {"std": 1.0}
    assert TrainConfig(init="uniform", init_params={"a": 0.0}).init_params == {"a": 0.0}


def test_numpy_scalars_accepted():
    """Guards that numpy numbers (what sweeps produce) are valid, not rejected as non-Python types."""
    cfg = TrainConfig(lr=np.float64(0.5), max_steps=np.int64(10), seed=np.int32(3), rng_skip=np.int64(0))
    assert cfg.canonical()["max_steps"] == 10 and cfg.canonical()["lr"] == 0.5


def test_canonical_is_complete_and_plain():
    """Guards ``canonical``: every field present, init params flattened (None where unused), plain types."""
    c = TrainConfig(lr=0.5, max_steps=7, seed=2, init="orthogonal", init_params={"gain": 2}).canonical()
    assert c == {
        "lr": 0.5,
        "max_steps": 7,
        "seed": 2,
        "init": "orthogonal",
        "rng": "default",
        "rng_skip": 0,
        "loss_threshold": 0.05,
        "lr_hidden": 1.0,
        "lr_output": 1.0,
        "width": 4,
        "activation": "tanh",
        "init_gain": 2.0,
        "init_std": None,
        "init_a": None,
        "init_path": None,
    }
    assert type(c["init_gain"]) is float


def test_from_mapping():
    """Guards ``from_mapping``: plain values build the same config; an unknown key names itself."""
    cfg = TrainConfig.from_mapping({"lr": 0.2, "init": "normal", "init_params": {"std": 0.5}})
    assert cfg == TrainConfig(lr=0.2, init="normal", init_params={"std": 0.5})
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_mapping({"lr": 0.2, "learning_rate": 0.1})
    assert info.value.field == "learning_rate" and "\n" not in str(info.value)


@pytest.mark.parametrize("value", [None, 3, "std", [1, 2]])
def test_from_mapping_bad_init_params_is_config_error(value):
    """Guards ``from_mapping`` on a non-mapping ``init_params`` (e.g. ``init_params: null`` in YAML): a
    one-line ``ConfigError`` for ``init_params``, not a TypeError/ValueError traceback from ``dict()``."""
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_mapping({"init": "normal", "init_params": value})
    assert info.value.field == "init_params"


# ------------------------------------------------------------------------------ one schema: a field flows
@dataclass(frozen=True)
class MomentumConfig(TrainConfig):
    """A hypothetical new field, added the one way the README documents: one line in the dataclass."""

    momentum: float = spec(0.0, positive(allow_zero=True), "heavy-ball momentum (hypothetical)")


def test_a_new_field_flows_to_grid_records_and_store_schema(tmp_path):
    import pyarrow.parquet as pq

    from xorlab.engine.batch import train_batch
    from xorlab.store.format import run_schema
    from xorlab.store.records import config_frame, curves_frame, run_dtypes, run_id, runs_frame
    from xorlab.store.writer import StoreWriter
    from xorlab.sweep.grid import Grid

    grid = Grid.from_mapping({"momentum": [0.0, 0.9], "seed": [0, 1], "max_steps": [5, 10]}, MomentumConfig)
    assert grid.axes["momentum"] == [0.0, 0.9] and len(grid) == 8
    cfgs = [c for runs in grid.trajectories() for c in runs]
    assert {c.momentum for c in cfgs} == {0.0, 0.9} and all(isinstance(c, MomentumConfig) for c in cfgs)
    assert len({c.trajectory_key() for c in cfgs}) == 4  # momentum is a trajectory axis, max_steps is not
    assert len({run_id(c) for c in cfgs}) == 8
    with pytest.raises(ConfigError, match=r"^grid\.momentum: must be a finite number >= 0"):
        Grid.from_mapping({"momentum": -1}, MomentumConfig)
    assert MomentumConfig.from_mapping({"momentum": 0.5, "init": {"name": "normal", "std": 0.1}}).momentum == 0.5

    assert run_dtypes(MomentumConfig)["momentum"] == "float64"
    assert config_frame(cfgs)["momentum"].tolist() == [c.momentum for c in cfgs]
    schema = run_schema(run_dtypes(MomentumConfig))
    batch = train_batch(cfgs)
    with StoreWriter(tmp_path, schema=schema) as store:
        store.write(runs_frame(batch), curves_frame(batch))
    (written,) = (tmp_path / "runs").glob("*.parquet")
    table = pq.read_table(written)
    assert str(table.schema.field("momentum").type) == "double"
    assert sorted(table.column("momentum").to_pylist()) == sorted(c.momentum for c in cfgs)


def test_derived_lists_match_the_dataclass():
    """Everything that names config fields is computed from TrainConfig (no list to keep in sync)."""
    from xorlab.apps.schema import GridConf, RunFields, TrainAppConf
    from xorlab.store.records import CONFIG_COLUMNS
    from xorlab.sweep.grid import AXES, TRAJECTORY_AXES

    names = [f.name for f in scalar_fields()]
    assert list(AXES) == names and "max_steps" not in TRAJECTORY_AXES
    assert CONFIG_COLUMNS == [*names, "init_gain", "init_std", "init_a", "init_path"]
    assert [f.name for f in fields(GridConf)] == names
    assert {f.name for f in fields(RunFields)} == set(names) - {"init"}
    assert {f.name: f.default for f in fields(GridConf)} == field_defaults()
    assert {"print_every", "log_every", "init"} <= {f.name for f in fields(TrainAppConf)}


def test_config_error_carries_field_and_message():
    err = assert_config_error("lr", lr=-1)
    assert err.message == "must be a finite number > 0, got -1" and str(err) == f"lr: {err.message}"
    assert str(err.under("grid")) == f"grid.lr: {err.message}"


def test_seed_limits_follow_the_generator():
    from xorlab.core.rng import MAX_SEED

    TrainConfig(seed=MAX_SEED["default"])
    TrainConfig(seed=MAX_SEED["legacy"], rng="legacy")
    assert "0 … 4294967295" in str(assert_config_error("seed", seed=2**32, rng="legacy"))
    assert_config_error("seed", seed=2**63)
    assert_config_error("rng_skip", rng_skip=10**8 + 1)


def test_rng_skip_in_blocks_is_the_same_stream():
    """A large skip is drawn in blocks (bounded memory) and leaves the generator where one big draw would."""
    from xorlab.core.rng import SKIP_BLOCK, make_rng

    skip = 2 * SKIP_BLOCK + 7
    for kind, ref in (("legacy", np.random.RandomState(3)), ("default", np.random.default_rng(3))):
        ref.standard_normal((skip,))
        assert np.array_equal(make_rng(3, kind, skip).standard_normal((5,)), ref.standard_normal((5,)))
