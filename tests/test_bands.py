"""Tests for ``xorlab.analysis.bands``: the out-of-core loss bands equal ``stats.curve_bands`` on loaded frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xorlab.analysis import bands, stats
from xorlab.store.reader import load_curves, load_runs
from xorlab.store.scan import curve_tables
from xorlab.sweep.grid import Grid
from xorlab.sweep.runner import SweepOptions, run_sweep


def sweep(path, grid, log_every=10):
    run_sweep(Grid.from_mapping(grid), SweepOptions(dir=path, progress=False, log_every=log_every))
    return path


@pytest.fixture(scope="module")
def two_stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("bands")
    a = sweep(
        root / "a", {"lr": [0.5, 4.0], "init": ["notebook", "zeros"], "seed": "range(0,30)", "max_steps": [60, 150]}
    )  # two budgets: rows missing beyond the shorter one
    b = sweep(
        root / "b", {"lr": [0.5, 30.0], "init": ["notebook"], "seed": "range(0,25)", "max_steps": 150}, log_every=7
    )  # another logging interval, and runs shared with store a
    return a, b


@pytest.mark.parametrize("max_points", [5, 200])
def test_equals_the_in_memory_bands_for_one_store(two_stores, max_points):
    a, _ = two_stores
    runs = load_runs(a)
    curves = load_curves(a)
    runs = runs.assign(mode=runs["mode"].fillna("unknown"))
    groupings = {"main": ["init_label", "lr"], "mode": ["mode"], "all": []}
    got = bands.curve_bands(curve_tables(a), runs, groupings, max_points=max_points)
    for name, by in (("main", ["init_label", "lr"]), ("mode", ["mode"])):
        want = stats.curve_bands(curves, runs, by=by, max_points=max_points)
        pd.testing.assert_frame_equal(got[name], want, check_dtype=False, rtol=0, atol=0)
    pooled = stats.curve_bands(curves, runs.assign(one=1), by=["one"], max_points=max_points).drop(columns="one")
    pd.testing.assert_frame_equal(got["all"], pooled, check_dtype=False, rtol=0, atol=0)


def test_equals_the_in_memory_bands_over_several_stores(two_stores, max_points=200):
    a, b = two_stores
    """Each store's groups read that store's own curves (the stores share runs, logged at other intervals)."""
    runs = load_runs([a, b])
    by = ["sweep", "init_label", "lr"]
    got = bands.curve_bands(curve_tables([a, b]), runs, {"main": by}, max_points=max_points)["main"]
    assert set(got["sweep"]) == {str(a), str(b)}
    for store in (a, b):
        mine = runs[runs["sweep"] == str(store)]
        want = stats.curve_bands(load_curves(store), mine, by=by, max_points=max_points)
        pd.testing.assert_frame_equal(
            got[got["sweep"] == str(store)].reset_index(drop=True), want, check_dtype=False, rtol=0, atol=0
        )


def test_memory_is_bounded_by_slabs(two_stores, monkeypatch):
    """A group larger than one slab is sorted a few steps at a time, with the same result."""
    a, _ = two_stores
    runs = load_runs(a)
    whole = bands.curve_bands(curve_tables(a), runs, {"m": ["lr"]})["m"]
    monkeypatch.setattr(bands, "SLAB_BYTES", 8 * 7)  # fewer than one step of a group per slab
    sliced = bands.curve_bands(curve_tables(a), runs, {"m": ["lr"]})["m"]
    pd.testing.assert_frame_equal(sliced, whole)


def test_diverged_losses_count_as_the_worst():
    """Non-finite losses sort above every finite one, as in ``stats.curve_bands``."""
    import pyarrow as pa

    ids = [f"r{i}" for i in range(5)]
    table = pa.table(
        {
            "run_id": pa.array(ids).dictionary_encode(),
            "step": pa.array([0] * 5, pa.int64()),
            "loss": [1.0, np.nan, np.inf, 0.5, 2.0],
        }
    )
    runs = pd.DataFrame({"run_id": ids, "g": ["x"] * 5})
    got = bands.curve_bands([("s", table)], runs, {"g": ["g"]})["g"]
    assert got["loss_median"].tolist() == [2.0] and got["n"].tolist() == [5]
    assert got["loss_hi"].tolist() == [np.inf]


def test_order_statistics_match_scipy_quantile_test():
    """The interval is the exact binomial one ``scipy.stats.quantile_test`` gives for the median."""
    from scipy import stats as sps

    rng = np.random.default_rng(3)
    for n in (1, 2, 9, 10, 57, 400):
        x = rng.lognormal(size=n)
        ok, count, med, lo, hi = bands.order_statistics(np.sort(x)[:, None], 0.95)
        ci = sps.quantile_test(x, q=np.median(x), p=0.5).confidence_interval(0.95)
        assert med[0] == np.median(x) and count[0] == n
        if n >= 10:  # below that the exact interval is unbounded; the order statistics clamp to the sample
            assert (lo[0], hi[0]) == (ci.low, ci.high)


@pytest.mark.parametrize("seed", range(6))
def test_selected_order_statistics_equal_sorting_bit_for_bit(seed):
    """Selection (np.partition) gives the sorted order statistics exactly: rows of different counts (NaN = no
    value), ties, infinities (diverged runs) and single values."""
    rng = np.random.default_rng(seed)
    rows = rng.choice([0.1, 0.5, 1.0], size=(40, 257)) * rng.random((40, 257)).round(seed % 3 + 1)  # many ties
    rows[rng.random(rows.shape) < 0.05] = np.inf
    rows[rng.random(rows.shape) < rng.random((40, 1))] = np.nan  # each row its own count, some empty
    rows[0, 1:] = np.nan  # one value
    got = bands.selected_order_statistics(rows.copy(), 0.95)
    want = bands.order_statistics(np.sort(rows, axis=1).T, 0.95)
    for g, w in zip(got, want, strict=True):
        assert np.asarray(g).tobytes() == np.asarray(w).tobytes()


def test_curves_kept_from_the_bands_pass_equal_a_fresh_read(two_stores):
    """A report's sampled curves come from the bands' own pass over the curves files: the same rows, in the same
    order, as reading them again (runs shared by two stores, logged at other intervals: the first read wins)."""
    from xorlab.analysis.curves import StoreCurves

    a, b = two_stores
    runs = load_runs([a, b])
    ids = runs["run_id"].astype(str).drop_duplicates().sample(12, random_state=3).tolist()
    source = StoreCurves([a, b])
    source.bands(runs, {"main": ["sweep", "init_label"]}, lines=ids)
    kept = source.lines(ids[:7])
    fresh = StoreCurves([a, b]).lines(ids[:7])
    assert len(kept) and set(kept["run_id"].astype(str)) == set(ids[:7])
    pd.testing.assert_frame_equal(
        kept.astype({"run_id": str}).reset_index(drop=True), fresh.astype({"run_id": str}).reset_index(drop=True)
    )
    other = runs["run_id"].astype(str).drop_duplicates()
    outside = other[~other.isin(ids)].iloc[:2].tolist()  # not kept: read from the files
    assert set(source.lines(outside)["run_id"].astype(str)) == set(outside)


def _file(run_ids, steps_of, seed=0):
    """A curves table: each run's rows together, at its own steps."""
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    rid, step = [], []
    for r in run_ids:
        rid += [r] * len(steps_of(r))
        step += list(steps_of(r))
    loss = rng.random(len(step)).round(2)  # ties
    return pa.table({"run_id": pa.array(rid).dictionary_encode(), "step": pa.array(step, pa.int64()), "loss": loss})


def test_a_regular_file_and_the_same_rows_shuffled_give_the_same_bands():
    """A file whose runs all logged the same steps is read as one (runs x steps) matrix; the same rows in another
    order (no longer regular) take the general path: the bands are equal, and equal the in-memory ones."""
    ids = [f"{i:016x}" for i in range(0, 4000, 13)]
    table = _file(ids, lambda r: range(0, 50, 5))
    assert bands._regular(np.repeat(np.arange(len(ids)), 10), table.column("step").to_numpy()) is not None
    runs = pd.DataFrame(
        {"run_id": ids, "init_label": "n", "g": [i % 3 for i in range(len(ids))], "h": [i % 2 for i in range(len(ids))]}
    )
    groupings = {"g": ["g"], "gh": ["g", "h"]}
    regular = bands.curve_bands([("s", table)], runs, groupings)
    shuffled = table.take(np.random.default_rng(1).permutation(len(table)))
    general = bands.curve_bands([("s", shuffled)], runs, groupings)
    frame = table.to_pandas().astype({"run_id": str})
    for name, by in groupings.items():
        pd.testing.assert_frame_equal(regular[name], general[name])
        want = stats.curve_bands(frame, runs, by=by)
        pd.testing.assert_frame_equal(regular[name], want, check_dtype=False, rtol=0, atol=0)


@pytest.mark.parametrize(
    "steps_of",
    [
        lambda r: range(0, 30, 3) if r.endswith("0") else range(0, 60, 3),  # runs of two lengths
        lambda r: [0, 2, 2, 4],  # a step recorded twice
        lambda r: range(0, 12, 4) if r.endswith("1") else range(0, 12, 3),  # other steps per run
    ],
)
def test_irregular_files_take_the_general_path(steps_of):
    ids = [f"r{i}" for i in range(40)]
    table = _file(ids, steps_of)
    run = pd.Series(table.column("run_id").to_pylist()).map({r: i for i, r in enumerate(ids)}).to_numpy()
    assert bands._regular(run, table.column("step").to_numpy()) is None
    runs = pd.DataFrame({"run_id": ids, "init_label": "n", "g": [i % 4 for i in range(40)]})
    got = bands.curve_bands([("s", table)], runs, {"g": ["g"]})["g"]
    frame = table.to_pandas().astype({"run_id": str}).drop_duplicates(["run_id", "step"], keep="last")
    want = stats.curve_bands(frame, runs, by=["g"])
    pd.testing.assert_frame_equal(got, want, check_dtype=False, rtol=0, atol=0)


def test_run_ids_that_are_not_ascii_are_found():
    """Run ids are looked up by binary search over their bytes; ids that are not ASCII use a hash table."""
    ids = ["rü1", "r2", "ß3", "r4"]
    table = _file(ids, lambda r: [0, 1, 2])
    runs = pd.DataFrame({"run_id": ids, "g": [0, 0, 1, 1]})
    got = bands.curve_bands([("s", table)], runs, {"g": ["g"]})["g"]
    assert got["n"].tolist() == [2] * 6
    ascii_runs = pd.DataFrame({"run_id": ["r2", "r4", "zz"], "g": [0, 1, 1]})  # an ASCII list asked about other ids
    got = bands.curve_bands([("s", table)], ascii_runs, {"g": ["g"]})["g"]
    assert got["n"].tolist() == [1] * 6


def test_bands_without_preadv(two_stores, monkeypatch):
    """Where ``os.preadv`` does not exist (Windows) the spill is read by seek and readinto: the same bands."""
    a, _ = two_stores
    runs = load_runs(a)
    want = bands.curve_bands(curve_tables(a), runs, {"m": ["lr"]})["m"]
    monkeypatch.delattr(bands.os, "preadv")
    pd.testing.assert_frame_equal(bands.curve_bands(curve_tables(a), runs, {"m": ["lr"]})["m"], want)
