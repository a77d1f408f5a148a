"""xorlab.store.compact: run tables with categorical strings hold the same values; frames stacked column by column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from xorlab.store.compact import encode_strings, stack
from xorlab.store.reader import load_runs
from xorlab.sweep.grid import Grid
from xorlab.sweep.runner import SweepOptions, run_sweep


def _values(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell as a plain Python value, missing as None: what two dtypes of the same values share."""
    return frame.astype(object).where(frame.notna(), None)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("compact")
    grids = {
        "a": {"seed": "range(0,6)", "lr": [0.1, 1.0], "max_steps": [40], "init": ["notebook", "xavier_normal"]},
        "b": {"seed": "range(0,6)", "lr": [1.0], "max_steps": [40], "init": ["he_normal"], "rng": ["legacy"]},
    }
    for name, grid in grids.items():
        run_sweep(Grid.from_mapping(grid), SweepOptions(dir=root / name, progress=False, chunk_size=5, engine="numpy"))
    return root


def test_categorical_load_holds_the_same_values(stores):
    for paths in ([stores / "a"], [stores / "a", stores / "b"]):  # one store, and two (categories unified)
        plain, small = load_runs(paths), load_runs(paths, categories=True)
        assert list(small.columns) == list(plain.columns) and len(small) == len(plain) > 0
        strings = [c for c in plain.columns if isinstance(plain[c].dtype, pd.StringDtype)]
        assert {"init", "rng", "status", "engine", "sweep", "init_label"} <= set(strings)
        for c in plain.columns:
            if c in strings and c != "run_id":
                assert isinstance(small[c].dtype, pd.CategoricalDtype), c
            else:  # run_id, numbers, the params lists
                assert small[c].dtype == plain[c].dtype, c
        pd.testing.assert_frame_equal(_values(small), _values(plain))


def test_encode_strings_leaves_run_ids_and_numbers():
    table = pa.table({"run_id": ["x", "y", "z"], "status": ["solved", None, "solved"], "lr": [0.1, 0.2, 0.3]})
    out = encode_strings(table)
    assert out.schema.field("run_id").type == pa.string() and out.schema.field("lr").type == pa.float64()
    assert pa.types.is_dictionary(out.schema.field("status").type)
    assert out.column("status").to_pylist() == ["solved", None, "solved"]


def test_stack_unions_categories_and_empties_its_inputs():
    a = pd.DataFrame({"s": pd.Categorical(["x", "y", None]), "v": [1.0, np.nan, 3.0], "n": [1, 2, 3]})
    b = pd.DataFrame({"s": pd.Categorical(["z", "x"]), "v": [4.0, 5.0], "n": [4, 5]})
    expected = pd.concat([a.astype({"s": object}), b.astype({"s": object})], ignore_index=True)
    frames = [a.copy(deep=False), b.copy(deep=False)]
    out = stack(frames)
    assert isinstance(out["s"].dtype, pd.CategoricalDtype) and list(out["s"].cat.categories) == ["x", "y", "z"]
    pd.testing.assert_frame_equal(_values(out), _values(expected))
    assert out["n"].dtype == np.int64 and out["v"].dtype == np.float64
    assert all(f.columns.empty for f in frames)
    assert list(a.columns) == ["s", "v", "n"] and len(a) == 3  # the frames copied from are untouched


def test_stack_of_a_column_missing_everywhere_in_one_frame():
    # a store without a value in a string column (no from_file init: init_path all missing) beside one with
    a = pd.DataFrame({"path": pd.Series([None, None], dtype=object).astype("category")})
    b = pd.DataFrame({"path": pd.Categorical(["w.npz"])})
    out = stack([a.copy(deep=False), b.copy(deep=False)])
    assert isinstance(out["path"].dtype, pd.CategoricalDtype)
    assert _values(out)["path"].tolist() == [None, None, "w.npz"]


@pytest.mark.parametrize("shape", ["shuffled", "sorted", "duplicates", "two stores"])
def test_unique_sorted_is_drop_duplicates_then_sort(shape):
    """``unique_sorted`` gives exactly ``drop_duplicates(key).sort_values(key, kind="stable",
    ignore_index=True)``, whichever shape the table has."""
    from xorlab.store.compact import unique_sorted

    rng = np.random.default_rng(1)
    ids = np.array([f"{v:016x}" for v in rng.integers(0, 2**62, 300)])
    frame = pd.DataFrame(
        {"sweep": "a", "run_id": ids, "x": np.arange(300.0), "s": pd.Categorical(["u", "v", "w"] * 100)}
    )
    if shape == "sorted":
        frame = frame.sort_values("run_id", ignore_index=True)
    if shape == "duplicates":
        frame = pd.concat([frame, frame.iloc[::7].assign(x=-1.0)], ignore_index=True)
    if shape == "two stores":
        frame = pd.concat([frame, frame.iloc[::3].assign(sweep="b", x=-2.0), frame.iloc[::5]], ignore_index=True)
    frame.index = frame.index * 3 + 11  # an index that is not 0..n-1
    key = ["sweep", "run_id"]
    want = frame.drop_duplicates(key).sort_values(key, kind="stable", ignore_index=True)
    pd.testing.assert_frame_equal(unique_sorted(frame, key), want)
