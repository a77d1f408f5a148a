"""xorlab.report.compare: cells in both stores, identical runs, seed-paired comparison, the written files."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from xorlab.analysis import stats
from xorlab.report import compare
from xorlab.store.reader import load_runs
from xorlab.sweep.grid import Grid
from xorlab.sweep.runner import SweepOptions, run_sweep

GRID = {"lr": [0.5, 2.0], "init": ["notebook", "xavier_normal"], "seed": "range(0,30)", "max_steps": [60, 150]}


def sweep(path, **changes):
    run_sweep(Grid.from_mapping({**GRID, **changes}), SweepOptions(dir=path, progress=False))
    return load_runs(path)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    return {
        "base": sweep(root / "base"),  # 240 runs
        "strict": sweep(root / "strict", loss_threshold=0.01),  # the same seeds, a stricter threshold
        "more": sweep(root / "more", lr=[0.5, 2.0, 1.0]),  # a superset of base's cells
    }


def test_newcombe_matches_the_published_example():
    # Newcombe (1998), method 10, example (a): 56/70 vs 48/80 -> 0.2000 [0.0524, 0.3339]
    lo_a, hi_a = stats.wilson_interval(48, 80)
    lo_b, hi_b = stats.wilson_interval(56, 70)
    d, lo, hi = compare.newcombe(*(np.array([v]) for v in (48 / 80, lo_a, hi_a, 56 / 70, lo_b, hi_b)))
    assert d[0] == pytest.approx(0.2) and lo[0] == pytest.approx(0.0524, abs=1e-4)
    assert hi[0] == pytest.approx(0.3339, abs=1e-4)


def test_same_store_twice_is_identical(runs):
    r = compare.compare(runs["base"], runs["base"])
    assert len(r.cells) == 8 and r.only == (0, 0) and r.across == []
    assert (r.cells["diff"] == 0).all() and (r.cells["n_a"] == 30).all()
    assert r.same["shared"].sum() == 240 and r.same["identical"].sum() == 240 and r.same["changed"].sum() == 0
    assert r.paired["n_pairs"].sum() == 240 and (r.paired["paired_diff"] == 0).all()
    lines = compare.summary_lines(r)
    assert len(lines) == 3 and "240 identical outcomes, 0 changed" in lines[1]


def test_cells_carry_wilson_intervals_of_each_store(runs):
    r = compare.compare(runs["base"], runs["more"], names=("base", "more"))
    assert len(r.cells) == 8 and r.only == (0, 4)
    base = stats.summarize(runs["base"], ["init_label", "lr", "max_steps"])
    merged = r.cells.merge(base, on=["init_label", "lr", "max_steps"])
    assert len(merged) == 8
    np.testing.assert_array_equal(merged["success_lo_a"], merged["success_lo"])
    np.testing.assert_array_equal(merged["success_hi_a"], merged["success_hi"])
    np.testing.assert_array_equal(merged["success_rate_a"], merged["success_rate"])
    assert "4 only in more" in compare.summary_lines(r)[0]


def test_changed_outcomes_are_counted(runs):
    b = runs["base"].copy()
    solved = b.index[b["status"] == "solved"][:2]
    b.loc[solved[0], "status"] = "slow"  # an outcome class flipped
    b.loc[solved[1], "final_loss"] = np.nextafter(b.loc[solved[1], "final_loss"], 1)  # one ulp: still a change
    r = compare.compare(runs["base"], b)
    assert r.same["changed"].sum() == 2 and r.same["status_changed"].sum() == 1
    assert r.same["identical"].sum() == 238


def test_seed_pairs_across_a_changed_threshold(runs):
    a, b = runs["base"], runs["strict"]
    r = compare.compare(a, b)
    assert r.across == ["loss_threshold"] and r.cells.empty and r.same.empty
    p = r.paired
    assert len(p) == 8 and p["n_pairs"].sum() == 240
    assert set(p["loss_threshold_a"]) == {0.05} and set(p["loss_threshold_b"]) == {0.01}
    # one group by hand: the same seeds, solved under each threshold
    row = p[(p["init_label"] == "notebook") & (p["lr"] == 2.0) & (p["max_steps"] == 60)].iloc[0]
    key = (a["init"] == "notebook") & (a["lr"] == 2.0) & (a["max_steps"] == 60)
    sa = a[key].set_index("seed")["status"].eq("solved")
    sb = (
        b[(b["init"] == "notebook") & (b["lr"] == 2.0) & (b["max_steps"] == 60)]
        .set_index("seed")["status"]
        .eq("solved")
    )
    sb = sb.reindex(sa.index)
    only_a, only_b = int((sa & ~sb).sum()), int((sb & ~sa).sum())
    assert (row["only_a_solved"], row["only_b_solved"]) == (only_a, only_b)
    assert row["paired_diff"] == pytest.approx((sb.sum() - sa.sum()) / 30)
    expected_p = sps.binomtest(only_b, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    assert row["mcnemar_p"] == pytest.approx(expected_p)
    assert row["paired_lo"] <= row["paired_diff"] <= row["paired_hi"]
    assert (p["success_rate_b"] <= p["success_rate_a"]).all()  # a stricter threshold never solves more


def test_write_files_and_table(runs, tmp_path):
    r = compare.compare(runs["base"], runs["more"], names=("runs/base", "runs/more"))
    paths = compare.write(r, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"compare.csv", "compare.md", "compare.html", "compare.png"}
    csv = pd.read_csv(paths["csv"])
    assert csv["comparison"].value_counts().to_dict() == {"cell": 8, "same_runs": 8, "paired": 8}
    assert list(csv.columns[:2]) == ["comparison", "init_label"]
    md = paths["md"].read_text()
    assert "## Success rate per configuration" in md and "](compare.png)" in md
    html = paths["html"].read_text()
    assert html.count("data:image/png;base64,") == 1 and "http" not in html.replace("http-equiv", "")


def test_empty_store_is_a_value_error(runs):
    with pytest.raises(ValueError, match="B: no runs recorded"):
        compare.compare(runs["base"], runs["base"].iloc[:0])


def test_diff_interval_contains_the_difference(runs):
    c = compare.compare(runs["base"], runs["more"]).cells
    assert ((c["diff_lo"] <= c["diff"]) & (c["diff"] <= c["diff_hi"])).all()
    assert not any(math.isnan(v) for v in c[["diff_lo", "diff_hi"]].to_numpy().ravel())


# ---------------------------------------------------------------------------------------- what differs
def _engines(runs, engine_a: str, engine_b: str, nudge: float, status_flips: int = 0):
    a = runs.assign(engine=engine_a)
    b = runs.assign(engine=engine_b)
    b["final_loss"] = b["final_loss"] * (1 + nudge)
    if status_flips:
        b.loc[b.index[b["status"] == "solved"][:status_flips], "status"] = "stuck"
    return a, b


def test_engine_differences_are_named_as_the_engine_not_the_code(runs):
    """Guards a found bug: compiled vs numpy runs were reported as 'the code changed the numbers'."""
    a, b = _engines(runs["base"], "compiled", "numpy", 1e-12)
    result = compare.compare(a, b, names=("c", "n"), code=("abc1234", "abc1234"))
    s = result.same
    assert int(s["changed_engine"].sum()) == len(a) and int(s["changed_same_engine"].sum()) == 0
    assert 5e-13 < float(s["max_rel_diff"].max()) < 2e-12
    text = "\n".join([*compare.differs_lines(result), *compare.summary_lines(result)])
    assert "different engines" in text and "say nothing about the code" in text
    assert "code changed" not in text
    assert "engine: A compiled (240 runs); B numpy (240 runs) (different engines)" in text
    assert "code: A abc1234; B abc1234 (the same)" in text


def test_same_engine_differences_blame_the_code(runs):
    a, b = _engines(runs["base"], "numpy", "numpy", 1e-9, status_flips=3)
    result = compare.compare(a, b, names=("old", "new"), code=("abc1234", "def5678"))
    s = result.same
    assert int(s["changed_same_engine"].sum()) == len(a) and int(s["changed_engine"].sum()) == 0
    line = compare.summary_lines(result)[1]
    assert "differ under the same engine: the code changed the numbers (abc1234 → def5678)" in line
    assert "3 with a different status" in line


def test_what_differs_names_configuration_of_both_sides(runs):
    result = compare.compare(runs["base"], runs["strict"], names=("base", "strict"))
    (config, engine, code) = compare.differs_lines(result)
    assert "loss_threshold 0.05 → 0.01" in config and "rng=default" in config
    md = compare.pages.to_markdown(compare.document(result, None))
    assert "## What differs" in md and "loss_threshold 0.05 → 0.01" in md


def test_compare_csv_round_trips_exactly(runs, tmp_path):
    result = compare.compare(runs["base"], runs["more"], names=("a", "b"))
    compare.write(result, tmp_path)
    back = pd.read_csv(tmp_path / "compare.csv")
    cells = back[back["comparison"] == "cell"].reset_index(drop=True)
    for col in ("success_lo_a", "success_hi_b", "diff_lo", "diff_hi"):
        a = result.cells[col].to_numpy(dtype=float)
        assert np.array_equal(a.view(np.uint64), cells[col].to_numpy(dtype=float).view(np.uint64)), col


def test_compare_figure_is_labelled_and_marks_what_its_test_finds(runs):
    """Guards a found bug: compare.png had no labels, and its fill (a paired test) contradicted its bars."""
    for other in ("more", "strict"):
        result = compare.compare(runs["base"], runs[other], names=("a", "b"))
        rows, _ = compare._figure_rows(result)
        fig = compare.figure(result)
        ax = fig.axes[0]
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert labels == list(rows["label"]) and all("init=" in lab for lab in labels)
        for container, filled in zip(ax.containers, (False, True), strict=False):
            mask = rows["significant"].to_numpy() == filled
            xs = container.lines[0].get_xdata()
            assert np.allclose(sorted(xs), sorted(100 * rows["diff"].to_numpy()[mask]))
        # the bars are the interval of the test that colours the marks: excluding 0 <=> filled for cells
        if other == "more":
            sig = (rows["lo"] > 0) | (rows["hi"] < 0)
            assert (sig == rows["significant"]).all()


def test_cells_and_pairs_list_in_meaning_order(runs):
    result = compare.compare(runs["base"], runs["more"], names=("a", "b"))
    cells = result.cells
    assert cells["init_label"].tolist() == sorted(cells["init_label"])
    for _, g in cells.groupby("init_label"):
        assert g["lr"].tolist() == sorted(g["lr"])


# ------------------------------------------------------------------------------- categorical run tables
def test_categorical_tables_compare_as_plain_ones(runs, tmp_path):
    # xorlab-runs compare loads its stores with categorical strings (load_runs(categories=True)): a string field
    # that differs between the stores (rng) is still compared across, an engine and a status that differ still
    # count as changes, every written file is the same byte for byte, and the caller's frames are left whole
    sweep(tmp_path / "legacy", rng="legacy")
    frames = {}
    for categories in (False, True):
        a, b = load_runs(tmp_path / "legacy"), load_runs(tmp_path / "legacy")
        b["engine"] = b["engine"].where(b.index >= 5, "compiled")  # a value a does not hold (numpy trained it)
        b.loc[b.index[b["status"] == "solved"][:3], "status"] = "stuck"
        if categories:  # as load_runs(categories=True) holds them
            for f in (a, b):
                for c in f.columns:
                    if c != "run_id" and not pd.api.types.is_numeric_dtype(f[c]):
                        f[c] = f[c].astype("category")
        frames[categories] = (a, b, a.copy(), b.copy())
    assert isinstance(frames[True][1]["engine"].dtype, pd.CategoricalDtype)
    written = {}
    for categories, (a, b, a0, b0) in frames.items():
        r = compare.compare(a, b)
        assert r.same["changed"].sum() == r.same["status_changed"].sum() == 3
        assert r.sides is not None and r.sides[1].engines == {"numpy": 235, "compiled": 5}
        pd.testing.assert_frame_equal(a, a0)
        pd.testing.assert_frame_equal(b, b0)
        out = tmp_path / f"out-{categories}"
        written[categories] = {k: p.read_bytes() for k, p in compare.write(r, out).items()}
    assert written[True] == written[False]
    legacy, base = load_runs(tmp_path / "legacy", categories=True), runs["base"]
    plain = compare.compare(base, load_runs(tmp_path / "legacy"))
    small = compare.compare(base, legacy)
    assert small.across == plain.across == ["rng"]
    assert compare.table(small).astype(object).equals(compare.table(plain).astype(object))


def test_the_comparison_does_not_depend_on_the_order_the_stores_hold_their_runs(runs):
    """Guards a found dependence: the paired bootstrap resampled pairs in store order, so a store holding the same
    runs in another order (another chunking, a compaction) gave another interval."""
    a, b = runs["base"], runs["strict"]
    mixed = [f.sample(frac=1.0, random_state=3).reset_index(drop=True) for f in (a, b)]
    pd.testing.assert_frame_equal(compare.table(compare.compare(a, b)), compare.table(compare.compare(*mixed)))
