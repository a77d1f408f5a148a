"""A report read as its author thinks: numeric order, stated conditions, an explicit reference, exact files, a
multirun as one study, and what the inputs held (planned vs recorded runs, a live writer)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from tests.test_stats import fake_runs
from xorlab.analysis import findings, stats
from xorlab.apps import report as report_app
from xorlab.core.config import TrainConfig
from xorlab.engine.batch import train_batch
from xorlab.report import builder
from xorlab.store.reader import load_runs
from xorlab.store.records import runs_frame
from xorlab.sweep.grid import Grid
from xorlab.sweep.runner import SweepOptions, run_sweep

STDS = [0.01, 0.03, 0.1, 0.3, 1, 2, 3, 5, 7, 10]  # text order would put 10 before 2 and 3


def std_scan(n_seeds: int = 6) -> pd.DataFrame:
    rates = {s: (i % 4) / 4 for i, s in enumerate(STDS)}
    frames = []
    for s in STDS:
        k = round(rates[s] * n_seeds)
        frames.append(
            fake_runs(
                ["solved"] * k + ["stuck"] * (n_seeds - k), init="normal", init_std=float(s), lr=0.5, max_steps=2000
            )
        )
    runs = pd.concat(frames, ignore_index=True)
    runs["run_id"] = [f"r{i:05d}" for i in range(len(runs))]
    return stats.with_init_label(runs)


def labels_in(text: str) -> list[str]:
    return re.findall(r"normal\(std=[0-9.e+-]+\)", text)


def test_tables_and_csv_list_a_numeric_scan_in_numeric_order(tmp_path):
    runs = std_scan()
    expected = [f"normal(std={s:g})" for s in STDS]
    table = stats.stats_table(runs, "init")
    assert list(table["init_label"]) == expected
    assert list(stats.summarize(runs, ["init_label"])["init_label"]) == expected
    text = findings.summary_table(table, ["init_label"])["init_label"].tolist()
    assert text == expected
    stats.write_csv(table, tmp_path / "stats.csv")
    back = pd.read_csv(tmp_path / "stats.csv", comment="#")
    assert list(back["init_label"]) == expected


def test_several_axes_sort_each_by_meaning():
    runs = pd.concat(
        [
            fake_runs(["solved", "stuck"], lr=lr, init="normal", init_std=s)
            for lr in (10.0, 2.0, 0.5)
            for s in (10.0, 2.0)
        ],
        ignore_index=True,
    )
    runs["run_id"] = [f"r{i}" for i in range(len(runs))]
    table = stats.summarize(runs, ["lr", "init_label"])
    assert list(zip(table["lr"], table["init_label"], strict=True)) == [
        (lr, f"normal(std={s})") for lr in (0.5, 2.0, 10.0) for s in (2, 10)
    ]


def test_stats_csv_round_trips_every_float_exactly(tmp_path):
    """Guards a found bug: stats.csv was written with %.6g, so its numbers were rounded."""
    runs = std_scan(7)  # rates of 7 runs: 1/7, 2/7 … have no short decimal form
    table = stats.stats_table(runs, "init")
    stats.write_csv(table, tmp_path / "stats.csv", ["first line", "second\nline"])
    text = (tmp_path / "stats.csv").read_text()
    assert text.startswith("# first line\n# second line\n")
    back = pd.read_csv(tmp_path / "stats.csv", comment="#")
    for col in table.columns:
        if pd.api.types.is_float_dtype(table[col]):
            a = table[col].to_numpy(dtype=float)
            b = back[col].to_numpy(dtype=float)
            assert np.array_equal(a.view(np.uint64)[~np.isnan(a)], b.view(np.uint64)[~np.isnan(b)]), col
            assert np.array_equal(np.isnan(a), np.isnan(b)), col


def test_no_silent_reference_when_notebook_is_absent():
    """Guards a found bug: the alphabetically first label became the reference."""
    runs = std_scan()
    assert stats.reference_init(runs["init_label"]) is None
    assert "diff_vs_ref" not in stats.stats_table(runs, "init")
    md = builder.to_markdown(builder.document(stats.stats_table(runs, ["init_label"]), runs, ["init_label"], ["x"], []))
    assert "Reference init: none" in md and "--reference" in md
    assert "Paired comparisons" not in md


@pytest.mark.parametrize("spelling", ["normal(std=1.0)", "normal(std=1)", "normal(std=1e0)", "normal"])
def test_reference_accepts_numerically_equal_spellings(spelling):
    runs = std_scan()
    assert stats.resolve_reference(runs["init_label"], spelling) == "normal(std=1)"
    table = stats.stats_table(runs, "init", reference=spelling)
    assert set(table["ref_init"].dropna()) == {"normal(std=1)"}


@pytest.mark.parametrize("spelling", ["normal(std=1.5)", "he_normal", "normal(gain=2)"])
def test_reference_that_is_not_there_is_an_error_naming_the_labels(spelling):
    with pytest.raises(ValueError, match=r"no init .* found: normal\(std=0.01\), normal\(std=0.03\)"):
        stats.resolve_reference(std_scan()["init_label"], spelling)


def test_paired_comparisons_are_ranked_by_effect_size_not_p():
    table = pd.DataFrame(
        {
            "init_label": ["a", "b", "c", "d"],
            "diff_vs_ref": [-1.0, 0.30, 0.05, -0.40],
            "diff_lo": [-1.0, 0.20, -0.05, -0.80],
            "diff_hi": [-1.0, 0.40, 0.15, -0.01],
            "mcnemar_p_bh": [1e-60, 1e-4, 0.5, 0.04],
            "ref_init": "ref",
        }
    )
    ranked = findings.ranked_comparisons(table)
    assert list(ranked["init_label"]) == ["a", "b", "d", "c"]  # d: larger |diff| than b but its interval nears 0


def test_ties_are_named_in_full():
    """Guards a found bug: '… and 1 more' hid tied groups."""
    runs = std_scan()
    runs.loc[:, "status"] = "solved"
    md = builder.to_markdown(builder.document(stats.stats_table(runs, ["init_label"]), runs, ["init_label"], ["x"], []))
    assert "more" not in md.split("## Summary")[0]
    runs.loc[runs["init_std"] == 10, "status"] = "stuck"
    table = stats.stats_table(runs, ["init_label"])
    line = findings.stratum_line(table, "Every group", ["init_label"])
    assert all(f"**normal(std={s:g})**" in line for s in STDS[:-1]) and " more" not in line


def test_conditions_name_every_fixed_field_engine_budget_and_threshold():
    runs = std_scan().assign(engine="compiled")
    text = " ".join(findings.conditions(runs))
    for part in (
        "`lr` = 0.5",
        "`max_steps` = 2,000 (training budget)",
        "`loss_threshold` = 0.05 (solve threshold)",
        "`rng` = default",
        "`rng_skip` = 0",
        "Engine: compiled (60 runs)",
    ):
        assert part in text, part
    assert "`init` (10 values: normal(std=0.01), normal(std=0.03), …, normal(std=10))" in text
    assert "`seed` (6 values: 0–5)" in text


def test_a_report_states_its_conditions_and_what_it_read(tmp_path):
    cfgs = [TrainConfig(lr=0.5, max_steps=200, seed=s, init="xavier_uniform") for s in range(4)]
    batch = train_batch(cfgs, log_every=20)
    from xorlab.store.records import curves_frame

    runs, curves = runs_frame(batch), curves_frame(batch)
    read = ["`somewhere`: **partial** — 4 of 40 planned runs recorded; the numbers describe the recorded runs only."]
    builder.build_report(runs, curves, tmp_path / "r", inputs=["somewhere"], read=read)
    md = (tmp_path / "r" / "report.md").read_text()
    head = md.split("## Key findings")[0]
    assert read[0] in head and "`lr` = 0.5" in head and "`max_steps` = 200 (training budget)" in head
    assert "`loss_threshold` = 0.05 (solve threshold)" in head and "Engine: numpy (4 runs)" in head
    csv_head = (tmp_path / "r" / "stats.csv").read_text().splitlines()[:2]
    assert csv_head[0] == "# " + read[0]
    assert "Held fixed" in csv_head[1]
    assert "partial" in (tmp_path / "r" / "report.html").read_text()


def test_two_init_file_contents_at_one_path_are_two_groups(tmp_path):
    """Issue 17: the same from_file path with two contents must never be pooled into one row."""
    path = tmp_path / "w.npz"
    starts = []
    for scale in (0.5, 2.0):
        rng = np.random.default_rng(0)
        np.savez(
            path,
            w1=rng.standard_normal((2, 4)) * scale,
            b1=np.zeros((1, 4)),
            w2=rng.standard_normal((4, 1)) * scale,
            b2=np.zeros((1, 1)),
        )
        batch = train_batch(
            [
                TrainConfig(lr=0.5, max_steps=50, seed=s, init="from_file", init_params={"path": str(path)})
                for s in range(3)
            ]
        )
        starts.append(runs_frame(batch))
    runs = stats.with_init_label(pd.concat(starts, ignore_index=True))
    table = stats.stats_table(runs)
    assert len(table) == 2 and table["n"].tolist() == [3, 3]
    assert all("@" in lab for lab in table["init_label"])


def _multirun(root, n: int = 11):
    """A folder like Hydra's multirun: multirun.yaml and one store per job (0 … n-1)."""
    (root).mkdir()
    (root / "multirun.yaml").write_text("hydra: {}\n")
    for job in range(n):
        run_sweep(
            Grid.from_mapping(
                {"lr": 0.5, "seed": job, "max_steps": 60, "init": "xavier_uniform" if job % 2 else "he_normal"}
            ),
            SweepOptions(dir=root / str(job), progress=False, engine="numpy"),
        )
    return root


def test_a_multirun_is_one_study_for_the_cli_and_the_api(tmp_path):
    """Guards a found bug: the report split a multirun into n = 1 groups per store, stats_table pooled them."""
    root = _multirun(tmp_path / "mr")
    runs = load_runs(root)
    assert runs["sweep"].nunique() == 1
    api = stats.stats_table(runs, "init")
    md = report_app.run(report_app.parser().parse_args([str(root), "--by", "init", "--out", str(tmp_path / "o")]))
    cli = pd.read_csv(md.parent / "stats.csv", comment="#")
    assert list(cli["init_label"]) == list(api["init_label"]) == ["he_normal", "xavier_uniform"]
    assert list(cli["n"]) == list(api["n"]) == [6, 5]
    assert "11 of 11 planned runs recorded in 11 stores" in md.read_text()


def test_stores_of_a_multirun_load_in_natural_order(tmp_path):
    from xorlab.store.reader import find_stores

    root = _multirun(tmp_path / "mr", 12)
    assert [p.name for p in find_stores(root)] == [str(i) for i in range(12)]


def test_the_report_says_when_a_writer_is_still_running(tmp_path):
    store = tmp_path / "s"
    run_sweep(
        Grid.from_mapping({"lr": 0.5, "seed": "range(0,3)", "max_steps": 50}),
        SweepOptions(dir=store, progress=False, engine="numpy"),
    )
    (session,) = (store / "sessions").glob("*.json")
    info = json.loads(session.read_text())
    import datetime as dt
    import os

    info |= {
        "status": "running",
        "pid": os.getpid(),
        "ended": None,
        "heartbeat": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "planned_runs": 30,
    }
    info.pop("ended")
    session.write_text(json.dumps(info))
    (line,) = report_app.read_lines([str(store)])
    assert "**a writer is still running**" in line and "3 of 30 planned runs" in line


def test_the_ranking_lists_every_clear_comparison_and_only_those():
    table = pd.DataFrame(
        {
            "init_label": ["a", "b", "c", "d", "e"],
            "diff_vs_ref": [-1.0, 0.30, 0.05, -0.40, 0.02],
            "diff_lo": [-1.0, 0.20, -0.05, -0.80, -0.01],
            "diff_hi": [-1.0, 0.40, 0.15, -0.01, 0.05],
            "mcnemar_p_bh": [1e-60, 1e-4, 0.5, 0.04, 0.6],
            "n_pairs": 100,
            "only_this_solved": 1,
            "only_ref_solved": 1,
            "ref_init": "ref",
            "family": "all",
            "family_size": 5,
        }
    )
    assert findings.comparison_table(table, ["init_label"])["init"].tolist() == ["a", "b", "d"]
    unclear = table.assign(diff_lo=-1.0, diff_hi=1.0)
    assert findings.comparison_table(unclear, ["init_label"])["init"].tolist() == ["a", "d", "b", "c", "e"]
    assert "no interval excludes 0" in findings.comparison_sentence(unclear, ["init_label"])
