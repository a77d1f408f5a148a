"""Tests for ``xorlab.report``: the report files from in-memory frames, and the text computed from numbers."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from xorlab import report as reporting
from xorlab import stats
from xorlab.config import TrainConfig
from xorlab.engine import train_batch
from xorlab.records import curves_frame, runs_frame


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

    table = pd.read_csv(tmp_path / "out" / "stats.csv")
    assert len(table) == 2 * 2 * 3 and table["n"].eq(12).all()  # lr × max_steps × init, 12 seeds each


def test_markdown_is_deterministic_and_row_order_free(data):
    runs = data[0]
    assert markdown(runs) == markdown(runs) == markdown(runs.sample(frac=1, random_state=3))


def test_figures_use_the_longest_runs(data):
    runs = data[0]
    assert set(reporting.figure_runs(runs)["max_steps"]) == {300}


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


def test_key_findings_are_computed_from_the_numbers(data):
    runs = stats.with_init_label(data[0])
    table = stats.stats_table(runs)
    by = stats.default_by(runs)
    findings = reporting.key_findings(table, runs, by)
    for line, (steps, group) in zip(findings, runs.groupby("max_steps"), strict=False):  # one line per length
        k, n = int((group.status == "solved").sum()), len(group)
        assert line.startswith(f"After {steps:,} steps: {k:,} of {n:,} runs solved")
    # zeros never learns (symmetric start) while notebook does at lr = 1: a significant, negative difference
    comparison = findings[-1]
    assert "reference init **notebook**" in comparison
    assert "lr=1, max_steps=300, init_label=zeros (-100.0 pts" in comparison


def test_group_by_without_init_has_no_comparisons(data):
    md = markdown(data[0], by="lr")
    assert "| lr | n |" in md and "Δ solved" not in md and "Paired by seed" not in md


def test_empty_runs_are_rejected(data, tmp_path):
    with pytest.raises(ValueError, match="no runs"):
        reporting.build_report(data[0].iloc[:0], data[1], tmp_path)
