"""Tests for ``xorlab-report``: a report from a real sweep store, byte-identical rebuilds, one-line errors."""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path

import pandas as pd
import pytest

store = pytest.importorskip("xorlab.store")
runner = pytest.importorskip("xorlab.sweep.runner")

from xorlab.apps.report import main  # noqa: E402
from xorlab.sweep.grid import Grid  # noqa: E402

PROMISED = ["report.md", "report.html", "stats.csv"] + [
    f"figures/{s}.{e}"
    for s in (
        "convergence",
        "km_curves",
        "failure_heatmap",
        "failure_modes",
        "final_loss",
        "decision_surfaces",
        "mode_curves",
    )
    for e in ("png", "svg")
]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A real store written by the sweep runner: 2 lr × 2 inits × 10 seeds × budgets 100 and 200."""
    path = tmp_path_factory.mktemp("sweep") / "lr_init"
    grid = Grid.from_mapping(
        {"lr": [0.1, 1.0], "init": ["notebook", "zeros"], "seed": "range(0,10)", "max_steps": [100, 200]}
    )
    runner.run_sweep(grid, runner.SweepOptions(dir=path, progress=False))
    return path


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_report_from_sweep_dir_is_complete_and_byte_identical(sweep, tmp_path, capsys):
    assert main([str(sweep)]) == 0  # default output: SWEEP_DIR/report
    out = sweep / "report"
    assert f"wrote {out / 'report.md'}" in capsys.readouterr().out
    for name in PROMISED:
        assert (out / name).stat().st_size > 0, name
    assert "80 runs" in (out / "report.md").read_text()

    assert main([str(sweep), "--out", str(tmp_path / "again")]) == 0
    assert tree(out) == tree(tmp_path / "again") == sorted(PROMISED)
    _, mismatch, errors = filecmp.cmpfiles(out, tmp_path / "again", PROMISED, shallow=False)
    assert mismatch == errors == []
    assert not [p for p in sweep.iterdir() if p.name.startswith(".report")]  # no temp folder left behind


def test_a_report_from_a_store_names_the_engine_that_trained_it(sweep, tmp_path, capsys):
    """Guards a found bug: reading only the columns a report needs left out ``engine``, and every report of a
    store said "Engine: unknown (not recorded by this store's version)"."""
    assert main([str(sweep), "--out", str(tmp_path / "e"), "--formats", "png"]) == 0
    assert "- Engine: numpy (80 runs)." in (tmp_path / "e" / "report.md").read_text()
    assert "# Engine: numpy (80 runs)." in (tmp_path / "e" / "stats.csv").read_text()


def test_python_dash_m_and_by(sweep, tmp_path, cli):
    res = cli("xorlab-report", sweep, "--out", tmp_path / "r", "--by", "init", "--formats", "png", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = (tmp_path / "r" / "stats.csv").read_text().splitlines()
    header = next(line for line in lines if not line.startswith("# "))  # after the lines saying what was read
    assert lines[0].startswith("# ") and "planned runs recorded" in lines[0]
    assert header.startswith("init_label,n,solved,success_rate,success_lo,success_hi,")


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith("xorlab-report: error: "), err
    return err


def test_missing_dir(tmp_path, capsys):
    assert main([str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 2
    assert str(tmp_path / "nope") in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_empty_store(tmp_path, capsys):
    with store.StoreWriter(tmp_path / "empty"):
        pass  # a store with a manifest and a session, but no runs
    assert main([str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    assert str(tmp_path / "empty") in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_corrupt_runs_file(sweep, tmp_path, capsys):
    broken = tmp_path / "broken"
    for p in sweep.rglob("*"):
        if p.is_file() and "report" not in p.parts[len(sweep.parts) :]:
            dst = broken / p.relative_to(sweep)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(p.read_bytes())
    runs_file = next((broken / "runs").glob("*.parquet"))
    runs_file.write_bytes(runs_file.read_bytes()[:100])
    assert main([str(broken), "--out", str(tmp_path / "out")]) == 2
    assert str(runs_file) in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_bad_by_and_reference(sweep, tmp_path, capsys):
    assert main([str(sweep), "--out", str(tmp_path / "o"), "--by", "lr,colour"]) == 2
    line = one_error_line(capsys)
    assert "'colour'" in line and line.startswith("xorlab-report: error: --by: ")
    assert main([str(sweep), "--out", str(tmp_path / "o"), "--reference", "he_normal"]) == 2
    assert "he_normal" in one_error_line(capsys)
    assert not (tmp_path / "o").exists()


def test_output_path_is_a_file(sweep, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main([str(sweep), "--out", str(tmp_path / "file")]) == 2
    line = one_error_line(capsys)
    assert str(tmp_path / "file") in line and line.startswith("xorlab-report: error: --out: ")


def test_where_filters_runs_and_says_so(sweep, tmp_path):
    assert main([str(sweep), "--out", str(tmp_path / "w"), "--where", 'lr == 1 and init_label != "zeros"']) == 0
    md = (tmp_path / "w" / "report.md").read_text()
    assert 'Filter `--where lr == 1 and init_label != "zeros"`: 20 of 80 runs kept.' in md
    table = pd.read_csv(tmp_path / "w" / "stats.csv", comment="#")  # lr, init no longer vary: by max_steps only
    assert table["max_steps"].tolist() == [100, 200] and set(table["n"]) == {10}


@pytest.mark.parametrize("expr", ["lr >", "colour == 1", "lr > 100"])
def test_bad_where_is_one_line(sweep, tmp_path, capsys, expr):
    assert main([str(sweep), "--out", str(tmp_path / "o"), "--where", expr]) == 2
    assert one_error_line(capsys).startswith("xorlab-report: error: --where: ")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "template",
    ["lr.to_csv('{out}') == 0", "init_label.to_csv('{out}') == 0 or lr > 0", "@pd.DataFrame.to_csv(@runs, '{out}')"],
)
def test_where_never_runs_a_query(sweep, tmp_path, capsys, template):
    out = tmp_path / "pwned"
    assert main([str(sweep), "--out", str(tmp_path / "o"), "--where", template.format(out=out)]) == 2
    assert "not allowed" in one_error_line(capsys) and not out.exists() and not (tmp_path / "o").exists()


def test_budget_chooses_the_figures_runs(sweep, tmp_path, capsys):
    assert main([str(sweep), "--out", str(tmp_path / "b"), "--budget", "100", "--formats", "png"]) == 0
    assert "Figures show 40 runs after 100 steps (`--budget`)." in (tmp_path / "b" / "report.md").read_text()
    assert main([str(sweep), "--out", str(tmp_path / "c"), "--formats", "png"]) == 0  # default: the longest
    assert "Figures show 40 runs after 200 steps" in (tmp_path / "c" / "report.md").read_text()
    assert main([str(sweep), "--out", str(tmp_path / "x"), "--budget", "150"]) == 2
    assert "--budget: no runs with max_steps = 150; found: 100, 200" in one_error_line(capsys)


def test_several_stores_are_grouped_by_sweep_never_merged(sweep, tmp_path):
    """The same store twice: every run_id appears in both, yet each store keeps its own rows and families."""
    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy, ignore=shutil.ignore_patterns("report*"))
    assert main([str(sweep), str(copy), "--out", str(tmp_path / "s"), "--formats", "png"]) == 0
    table = pd.read_csv(tmp_path / "s" / "stats.csv", comment="#")
    assert list(table.columns[:4]) == ["sweep", "lr", "max_steps", "init_label"]
    assert set(table["sweep"]) == {str(sweep), str(copy)} and set(table["n"]) == {10}
    one = table[table["sweep"] == str(sweep)].drop(columns="sweep").reset_index(drop=True)
    two = table[table["sweep"] == str(copy)].drop(columns="sweep").reset_index(drop=True)
    one["family"] = one["family"].str.replace(f"sweep={sweep}, ", "")
    two["family"] = two["family"].str.replace(f"sweep={copy}, ", "")
    pd.testing.assert_frame_equal(one, two)  # adding a store changes nothing of the other


def test_a_folder_of_stores_is_grouped_by_store(sweep, tmp_path):
    """A folder holding two stores with the same runs: one group per store, never merged into one."""
    folder = tmp_path / "folder"
    for name in ("a", "b"):
        shutil.copytree(sweep, folder / name, ignore=shutil.ignore_patterns("report*"))
    assert main([str(folder), "--out", str(tmp_path / "f"), "--formats", "png"]) == 0
    table = pd.read_csv(tmp_path / "f" / "stats.csv", comment="#")
    assert set(table["sweep"]) == {str(folder / "a"), str(folder / "b")} and set(table["n"]) == {10}


def test_usage_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--out", str(tmp_path / "x")])
    assert info.value.code == 2
    assert one_error_line(capsys).startswith("xorlab-report: error: the following arguments are required")


def test_a_full_temporary_folder_is_named_and_nothing_is_written(sweep, tmp_path, capsys, monkeypatch):
    """The loss bands spill to the temporary folder; when it is full the error names it (and TMPDIR), not --out,
    the exit is 1 and --out is not created."""
    import errno
    import tempfile

    from xorlab.analysis import bands

    real = tempfile.NamedTemporaryFile

    class Full:
        def __init__(self, *args, **kwargs):
            self.inner = real(*args, **kwargs)
            self.name = self.inner.name

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.inner.__exit__(*exc)

    monkeypatch.setattr(bands.tempfile, "NamedTemporaryFile", Full)
    out = tmp_path / "out"
    assert main([str(sweep), "--out", str(out)]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("xorlab-report: error: cannot write ") and "xorlab-bands-" in line
    assert "no space left on the device" in line and "TMPDIR" in line and f"{out} was not changed" in line
    assert not out.exists() and not list(tmp_path.glob(".out.tmp-*"))
