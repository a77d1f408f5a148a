"""Tests for ``xorlab.sweep.spaces`` and continuous grid axes: numpy's points, exactly rounded decimals, errors."""

from __future__ import annotations

import decimal

import numpy as np
import pandas as pd
import pytest

from xorlab.core.config import ConfigError
from xorlab.store.records import init_labels, run_id
from xorlab.sweep import spaces
from xorlab.sweep.grid import Grid


@pytest.mark.parametrize(
    ("text", "reference"),
    [
        ("linspace(0.1,1,10)", np.linspace(0.1, 1, 10)),
        ("linspace(-3, 5, 33)", np.linspace(-3, 5, 33)),
        ("logspace(-2,1,1000)", np.logspace(-2, 1, 1000)),
        ("logspace(0.5,-1.5,7)", np.logspace(0.5, -1.5, 7)),
        ("linspace(2,2,1)", np.array([2.0])),
        ("logspace(1e0,2.5E0,4)", np.logspace(1, 2.5, 4)),
    ],
)
def test_points_are_numpys_rounded_to_12_digits(text, reference):
    got = np.array(spaces.space(text))
    np.testing.assert_allclose(got, reference, rtol=1e-11, atol=1e-15)
    for v in got:  # each value is the decimal it prints as: at most 12 significant digits, no binary noise
        assert len(decimal.Decimal(repr(float(v))).as_tuple().digits) <= spaces.DIGITS


def test_linspace_of_decimals_is_exact():
    assert spaces.space("linspace(0.1,1,10)") == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert spaces.space("logspace(-3,0,4)") == [0.001, 0.01, 0.1, 1.0]


def test_not_a_space_is_none():
    assert spaces.space("0.5") is None and spaces.space(0.5) is None and spaces.space("range(0,3)") is None


@pytest.mark.parametrize(
    ("grid", "field", "words"),
    [
        ({"lr": "linspace(1,2)"}, "grid.lr", "expected linspace(a,b,n)"),
        ({"lr": "linspace(a,2,3)"}, "grid.lr", "expected linspace(a,b,n)"),
        ({"lr": "logspace(0,1,0)"}, "grid.lr", "1 to 2,000,000 points"),
        ({"lr": "logspace(0,1,3000000)"}, "grid.lr", "1 to 2,000,000 points"),
        ({"lr": "logspace(0,400,3)"}, "grid.lr", "beyond float64"),
        ({"lr": "linspace(-1,1,3)"}, "grid.lr", "must be a finite number > 0"),
        ({"lr": "linspace(1,1.0000000000001,3)"}, "grid.lr", "coincide at 12 significant digits"),
        ({"seed": "linspace(0,10,3)"}, "grid.seed", "for float axes"),
        ({"max_steps": "logspace(2,3,2)"}, "grid.max_steps", "range(a,b[,step])"),
        ({"init": [{"name": "normal", "std": "linspace(-1,1,3)"}]}, "grid.init.std", "-1.0"),
        ({"init": [{"name": "normal", "std": "logspace(1,2)"}]}, "grid.init.std", "expected"),
    ],
)
def test_bad_spaces_are_one_line_config_errors(grid, field, words):
    with pytest.raises(ConfigError) as err:
        Grid.from_mapping(grid)
    assert err.value.field == field and words in str(err.value) and "\n" not in str(err.value)


def test_every_float_axis_takes_spaces():
    grid = Grid.from_mapping(
        {
            "lr": "logspace(-1,0,3)",
            "loss_threshold": "linspace(0.01,0.05,5)",
            "init": [
                {"name": "he_normal", "gain": "linspace(0.5,1.5,3)"},
                {"name": "normal", "std": "logspace(-2,0,3)"},
                {"name": "uniform", "a": "linspace(0.5,1,2)"},
            ],
        }
    )
    assert grid.axes["lr"] == [0.1, 0.316227766017, 1.0]
    assert grid.axes["loss_threshold"] == [0.01, 0.02, 0.03, 0.04, 0.05]
    assert [p for _, p in grid.axes["init"]] == [
        (("gain", 0.5),),
        (("gain", 1.0),),
        (("gain", 1.5),),
        (("std", 0.01),),
        (("std", 0.1),),
        (("std", 1.0),),
        (("a", 0.5),),
        (("a", 1.0),),
    ]


def test_run_ids_and_labels_equal_a_written_out_list():
    """A space is only a way to write the list: the same runs, ids and labels as the values typed out."""
    spaced = Grid.from_mapping({"lr": "linspace(0.1,0.3,3)", "init": [{"name": "normal", "std": "logspace(-2,-1,3)"}]})
    listed = Grid.from_mapping(
        {"lr": [0.1, 0.2, 0.3], "init": [{"name": "normal", "std": [0.01, 0.0316227766017, 0.1]}]}
    )
    assert [run_id(c) for t in spaced.trajectories() for c in t] == [
        run_id(c) for t in listed.trajectories() for c in t
    ]
    frame = pd.DataFrame(spaced.table(np.arange(spaced.n_trajectories)).columns)
    assert sorted(set(init_labels(frame))) == ["normal(std=0.01)", "normal(std=0.0316227766017)", "normal(std=0.1)"]


def test_labels_of_fine_grids_are_distinct():
    values = spaces.space("logspace(-0.5001,-0.5,50)")
    frame = pd.DataFrame(
        {"init": "normal", "init_std": values, "init_gain": np.nan, "init_a": np.nan, "init_path": None}
    )
    labels = init_labels(frame)
    assert labels.nunique() == 50 and labels.iloc[0] == f"normal(std={values[0]!r})"
    coarse = frame.assign(init_std=[0.01, 0.1] * 25)
    assert set(init_labels(coarse)) == {"normal(std=0.01)", "normal(std=0.1)"}  # %g where it is exact
