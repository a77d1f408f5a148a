"""Tests for ``xorlab.report.builder``: the report files from in-memory frames, and the text computed from numbers."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from tests.test_stats import fake_runs
from xorlab.analysis import findings, stats
from xorlab.core.config import TrainConfig
from xorlab.engine.batch import train_batch
from xorlab.report import builder as reporting
from xorlab.store.records import curves_frame, runs_frame


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    """lr × init × 12 seeds, each at max_steps 100 and 300 (two horizons of the same trajectories)."""
    cfgs = [
        TrainConfig(lr=lr, max_steps=m, seed=s, init=i)
        for lr in (0.05, 1.0)
        for i in ("notebook", "xavier_uniform", "zeros")
        for s in range(12)
        for m in (100, 300)
    ]
    batch = train_batch(cfgs, log_every=10)
    return runs_frame(batch), curves_frame(batch)


def markdown(runs: pd.DataFrame, by=None) -> str:
    runs = stats.with_init_label(runs.sort_values("run_id", ignore_index=True))
    by = stats.resolve_by(runs, by)
    return reporting.to_markdown(reporting.document(stats.stats_table(runs, by), runs, by, ["in-memory"], []))


def bullets(blocks: list[tuple]) -> dict[str, list[str]]:
    """Key-findings blocks as {section title: bullets}."""
    out, title = {}, None
    for kind, content in blocks:
        if kind == "h3":
            title = content
        elif kind == "ul":
            out[title] = content
    return out


def test_build_report_writes_every_promised_file(data, tmp_path):
    runs, curves = data
    paths = reporting.build_report(runs, curves, tmp_path / "out", inputs=["sweeps/a"])
    expected = {"stats.csv", "report.md", "report.html"} | {
        f"{s}.{e}" for s in reporting.FIGURES for e in ("png", "svg")
    }
    assert {p.name for p in paths.values()} == expected
    for path in paths.values():
        assert path.is_file() and path.stat().st_size > 0, path

    md = (tmp_path / "out" / "report.md").read_text()
    for link in re.findall(r"\]\((figures/[^)]+)\)", md):  # every figure link resolves
        assert (tmp_path / "out" / link).is_file(), link
    assert "| lr | max_steps | init_label | n |" in md and "## Key findings" in md and "## Method" in md

    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == len(reporting.FIGURES)
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html)  # nothing fetched from the network
    assert "<script" not in html and "<link" not in html

    table = pd.read_csv(tmp_path / "out" / "stats.csv", comment="#")
    assert len(table) == 2 * 2 * 3 and table["n"].eq(12).all()  # lr × max_steps × init, 12 seeds each


def test_markdown_is_deterministic_and_row_order_free(data):
    runs = data[0]
    assert markdown(runs) == markdown(runs) == markdown(runs.sample(frac=1, random_state=3))


def test_figures_use_the_longest_runs_or_the_budget_asked_for(data):
    runs = data[0]
    assert set(reporting.figure_runs(runs)["max_steps"]) == {300}
    assert set(reporting.figure_runs(runs, 100)["max_steps"]) == {100}
    with pytest.raises(ValueError, match=r"--budget: no runs with max_steps = 7; found: 100, 300"):
        reporting.figure_runs(runs, 7)


def test_report_names_the_budget_its_figures_show(data, tmp_path):
    runs, curves = data
    reporting.build_report(runs, curves, tmp_path, budget=100, formats=("png",))
    md = (tmp_path / "report.md").read_text()
    assert "Figures show 72 runs after 100 steps (`--budget`)." in md
    assert "per init and learning rate after 100 steps;" in md  # the heatmap's caption


def test_figures_keep_each_configurations_own_longest_run(data):
    """Guards inputs from different grids: a config whose longest run is shorter than another's must still be
    drawn (with its own longest run), not dropped."""
    runs = data[0]
    short_lr = runs["lr"].min()
    mixed = runs[~((runs["lr"] == short_lr) & (runs["max_steps"] == 300))]  # that lr only has its short runs
    shown = reporting.figure_runs(mixed)
    assert set(shown.loc[shown["lr"] == short_lr, "max_steps"]) == {int(mixed["max_steps"].min())}
    assert set(shown.loc[shown["lr"] != short_lr, "max_steps"]) == {300}
    assert len(shown) == len(runs) // 2  # one run per trajectory (each has a 100- and a 300-step run)


def test_headlines_are_per_budget_and_lr_never_pooled(data):
    """Guards a found bug: "After 1,000 steps: 54.4 %" pooled every init and lr, zeros and lr = 10 included."""
    runs = stats.with_init_label(data[0])
    by = stats.default_by(runs)
    table = stats.stats_table(runs, by)
    sections = bullets(findings.key_findings(table, by))
    assert list(sections)[:2] == ["After 100 steps", "After 300 steps"]
    for steps in (100, 300):
        lines = sections[f"After {steps} steps"]
        assert [ln.split(":")[0].split(" (")[0] for ln in lines[:-1]] == ["lr = 0.05", "lr = 1"]
        n = int((runs["max_steps"] == steps).sum())
        assert lines[-1].startswith("Failures at this budget, each run counted once: ")
        assert f" of {n:,} runs: " in lines[-1]  # each run once per budget, never both budgets added up
    text = str(sections)
    assert "runs solved XOR" not in text and "all runs" not in text


def test_zeros_is_significantly_worse_and_the_family_is_stated(data):
    runs = stats.with_init_label(data[0])
    by = stats.default_by(runs)
    blocks = findings.key_findings(stats.stats_table(runs, by), by)
    at = blocks.index(("h3", "Paired comparisons with the reference init"))
    (_, sentence), (_, ranked) = blocks[at + 1], blocks[at + 2]
    assert "reference init **notebook**" in sentence
    assert "one family per value of `lr` × `max_steps` (4 families, 2 comparisons each)" in sentence
    row = ranked[(ranked["init"] == "zeros") & (ranked["lr"] == "1") & (ranked["max_steps"] == "300")]
    assert row["Δ solved vs ref, pts [95% CI]"].iloc[0].startswith("-100.0")


def stratum(rates: dict[str, int], n: int = 100, **extra) -> pd.DataFrame:
    """A stats table of one lr: init -> solved runs out of n (solved at step 10, the others stuck)."""
    parts = []
    for init, k in rates.items():
        runs = fake_runs(
            ["solved"] * k + ["stuck"] * (n - k),
            steps=[10] * k + [None] * (n - k),
            init=init,
            init_gain=1.0 if init != "notebook" else float("nan"),
            **extra,
        )
        runs["run_id"] = runs["run_id"] + init
        runs["mode"] = pd.array(["solved"] * k + ["one_wrong"] * (n - k), dtype="string")
        parts.append(runs)
    return stats.summarize(pd.concat(parts, ignore_index=True), "lr,init")


def test_ties_are_reported_as_ties():
    """Guards a bug found in review: "Highest success rate: lr=1 … he_normal" picked one of 24 groups tied at 100 %."""
    line = findings.stratum_line(
        stratum({"notebook": 100, "he_normal": 100, "orthogonal": 100}), "lr = 1", ["init_label"]
    )
    assert line.startswith("lr = 1: all 3 inits solve 100.0 % (n = 100 each)")
    line = findings.stratum_line(
        stratum({"notebook": 100, "he_normal": 100, "xavier_normal": 90}), "lr = 1", ["init_label"]
    )
    assert "highest: 2 inits tie at 100.0 % (**he_normal**, **notebook**)" in line
    assert "lowest: **xavier_normal** 90.0 [" in line
    assert "fastest of those solving ≥ 50.0 %: 3 inits tie at a KM median steps to first solve of 10" in line


def test_no_fastest_claim_below_half_solved():
    line = findings.stratum_line(stratum({"notebook": 40, "he_normal": 30}), "lr = 3", ["init_label"])
    assert "fastest" not in line.replace("none is called fastest", "")
    single = findings.stratum_line(stratum({"notebook": 80}), "lr = 3", ["init_label"])
    assert "KM median steps to first solve 10 [" in single and "**all runs**" not in single


def test_failures_are_named_by_what_the_network_does():
    line = findings.stratum_line(stratum({"notebook": 60}), "lr = 2", ["init_label"])
    assert "`one_wrong` (three points right, one confidently wrong) 40" in line
    assert "typically saturated" not in line and "far from every plateau" not in line
    assert set(findings.MODE_TEXT) == set(stats.MODE_NAMES)


def test_summary_table_labels_and_p_values(data):
    runs = stats.with_init_label(data[0])
    by = stats.default_by(runs)
    cols = list(findings.summary_table(stats.stats_table(runs, by), by).columns)
    for col in (
        "KM median steps to first solve [95% CI]",
        "final loss median [Q1, Q3]",
        "McNemar p",
        "p adj. (BH in family)",
        "most common failure mode, % of runs",
    ):
        assert col in cols, col
    assert not any("IQR" in c or c.startswith("median steps") for c in cols)


def test_unrelated_store_changes_nothing_of_this_one(data):
    """Guards a bug found in review: an unrelated 300-run store changed the BH family and flipped the headline."""
    runs = stats.with_init_label(data[0]).assign(sweep="a")
    cfgs = [TrainConfig(lr=2.0, max_steps=200, seed=s, init=i) for i in ("notebook", "he_normal") for s in range(150)]
    other = stats.with_init_label(runs_frame(train_batch(cfgs))).assign(sweep="b")
    both = pd.concat([runs, other], ignore_index=True)
    by = stats.default_by(both)
    assert by[0] == "sweep"
    alone = stats.stats_table(runs, stats.default_by(runs))
    mixed = stats.stats_table(both, by)
    mine = mixed[mixed["sweep"] == "a"].drop(columns="sweep").reset_index(drop=True)
    mine["family"] = mine["family"].str.replace("sweep=a, ", "")
    pd.testing.assert_frame_equal(alone, mine, check_dtype=False)


def test_group_by_without_init_has_no_comparisons(data):
    md = markdown(data[0], by="lr")
    assert "| lr | n |" in md and "Δ solved" not in md and "Paired by seed" not in md


def test_empty_runs_are_rejected(data, tmp_path):
    with pytest.raises(ValueError, match="no runs"):
        reporting.build_report(data[0].iloc[:0], data[1], tmp_path)


def test_groups_that_pool_axes_say_so(data):
    """``--by init`` pools lr and both budgets: the findings must not call that "this budget"."""
    md = markdown(data[0], by="init")
    assert "### All budgets (groups pooled over `lr`, `max_steps`)" in md
    assert "Failures over all budgets together, each run counted once: " in md and "this budget" not in md
    assert "one family of 2 comparisons: every init against the reference" in md
