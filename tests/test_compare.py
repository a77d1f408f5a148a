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
