"""``xorlab-runs``: list, show, compare, export-mlflow; one-line errors; nothing heavy imported for --help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from xorlab.apps import runs as app
from xorlab.store.reader import load_runs
from xorlab.sweep.grid import Grid
from xorlab.sweep.runner import SweepOptions, run_sweep

GRID = {"lr": [0.5, 3.0], "init": ["notebook", "zeros"], "seed": "range(0,8)", "max_steps": [40, 100]}  # 64 runs


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    for name, changes in (("a", {}), ("b", {"loss_threshold": 0.01})):
        grid = {**GRID, **changes}
        run_sweep(Grid.from_mapping(grid), SweepOptions(dir=root / name, progress=False), config={"grid": grid})
    return root


def call(capsys, *argv: object) -> tuple[int, str, str]:
    code = app.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_error(code: int, out: str, err: str, contains: str) -> str:
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert line.startswith("xorlab-runs: error: ") and contains in line, line
    return line


def test_help_imports_nothing_heavy():
    """--help must answer at once: the app module adds no heavy import to what ``import xorlab`` costs."""
    code = (
        "import sys, xorlab; before = set(sys.modules); import xorlab.apps.runs as r; r.parser(); "
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    added = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    heavy = {
        "matplotlib",
        "mlflow",
        "scipy",
        "seaborn",
        "hydra",
        "xorlab.tracking.catalog",
        "xorlab.report.compare",
        "xorlab.analysis.comparison",
    }
    assert not {m.split(".")[0] for m in added} & heavy and not set(added) & heavy, added
    out = subprocess.run([sys.executable, "-m", "xorlab.apps.runs", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "export-mlflow" in out.stdout


def test_list_text_and_json(root, capsys, monkeypatch):
    code, out, err = call(capsys, "list", root)
    assert code == 0 and err == ""
    header, *rows = out.splitlines()
    assert header.split()[:2] == ["path", "created"] and len(rows) == 2
    assert rows[0].startswith(str(root / "a")) and "64/64" in rows[0] and "complete" in rows[0]
    assert "init×2 lr×2 seed×8 max_steps×2" in rows[0]
    code, out, _ = call(capsys, "list", root / "a", root / "b", "--json")
    records = json.loads(out)
    assert [r["path"] for r in records] == [str(root / "a"), str(root / "b")]
    assert records[0]["runs"] == records[0]["planned"] == 64 and records[0]["state"] == "complete"
    assert records[0]["axes"]["seed"] == 8 and len(records[0]["commit"]) == 40
    monkeypatch.chdir(root.parent)  # the default root is runs/, relative to the working directory
    one_line_error(*call(capsys, "list"), "runs: no such file or directory")


def test_show_one_run_by_prefix_with_plot(root, capsys, tmp_path):
    runs = load_runs(root / "a")
    stuck = runs[runs["status"] == "stuck"].sort_values("run_id").iloc[0]
    rid = stuck["run_id"]
    prefix = next(rid[:n] for n in range(4, 17) if (runs["run_id"].str[:n] == rid[:n]).sum() == 1)
    png = tmp_path / "run.png"
    code, out, err = call(capsys, "show", root / "a", prefix, "--plot", png)
    assert code == 0 and err == ""
    assert out.startswith(f"run {stuck['run_id']} in {root / 'a'}")
    for label in ("config:", "outcome:", "solved at:", "failure:", "predictions:", "parameters:", "provenance:"):
        assert f"\n{label}" in out
    assert "outcome:     stuck" in out and "never within max_steps" in out and "w1 = [[" in out
    assert "\\x0a" not in out and "\n        [" in out  # a matrix prints one row per line (no escaped newlines)
    assert "\n  code " in out and "xorlab-sweep" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_show_errors(root, capsys):
    ids = sorted(load_runs(root / "a")["run_id"])
    shared = next(c for c in "0123456789abcdef" if sum(i.startswith(c) for i in ids) > 1)
    line = one_line_error(*call(capsys, "show", root / "a", shared), f"run id '{shared}' is ambiguous; candidates: ")
    assert ids[[i.startswith(shared) for i in ids].index(True)] in line
    one_line_error(*call(capsys, "show", root / "a", "zzzz"), "no run in")
    one_line_error(*call(capsys, "show", root / "nope", "ab"), "not an xorlab store")
    one_line_error(*call(capsys, "show", root / "a"), "give a RUN")


def test_show_where(root, capsys):
    code, out, _ = call(capsys, "show", root / "a", "--where", "lr == 3 and status == 'stuck'", "--limit", "3")
    runs = load_runs(root / "a")
    n = int(((runs["lr"] == 3) & (runs["status"] == "stuck")).sum())
    lines = out.splitlines()
    assert code == 0 and len(lines) == 4 and n > 3
    assert all(" lr=3 " in ln and " stuck" in ln for ln in lines[:3])
    assert lines[-1] == f"{n} of 64 runs match; {n - 3} more not shown (--limit)"
    code, out, _ = call(capsys, "show", root / "a", "--where", "init_label == 'zeros' and max_steps == 40")
    assert out.splitlines()[-1] == "16 of 64 runs match"
    one_line_error(*call(capsys, "show", root / "a", "--where", "lr === 1"), "--where: ")
    one_line_error(*call(capsys, "show", root / "a", "--where", "nosuchcolumn > 1"), "--where: ")
    one_line_error(*call(capsys, "show", root / "a", "--where", "lr > 1", "--limit", "0"), "--limit")


@pytest.mark.parametrize(
    "template",
    [
        "lr.to_csv('{out}') == 0",  # pandas' query ran this: a file written through the CLI
        "status.to_csv('{out}') == 0 and lr > 0",
        "lr.__class__.__init__.__globals__['__builtins__']['open']('{out}', 'w').write('x') > 0",
        "__import__('os').system('touch {out}') == 0",
    ],
)
def test_show_where_never_runs_a_query(root, capsys, tmp_path, template):
    out = tmp_path / "pwned"
    line = one_line_error(*call(capsys, "show", root / "a", "--where", template.format(out=out)), "--where: ")
    assert "not allowed" in line and not out.exists()


def test_compare_writes_atomically_and_summarises(root, capsys, tmp_path):
    out_dir = tmp_path / "cmp"
    for _ in range(2):  # a second run replaces the files in place
        code, out, err = call(capsys, "compare", root / "a", root / "b", "--out", out_dir)
        assert code == 0 and err == ""
        lines = out.splitlines()
        assert len(lines) == 7 and lines[0].startswith("configuration: ") and lines[1].startswith("engine: ")
        assert lines[3].startswith("cells: ") and lines[4].startswith("same runs: ")
        assert lines[5].startswith("seed-paired (across loss_threshold): 64 pairs")
        assert lines[6] == f"wrote {out_dir / 'compare.md'} (and compare.html, compare.csv)"
        assert {p.name for p in out_dir.iterdir()} >= {"compare.md", "compare.html", "compare.csv"}
        assert [p.name for p in tmp_path.iterdir()] == ["cmp"]  # no temp folder left behind
    assert set(pd.read_csv(out_dir / "compare.csv")["comparison"]) == {"paired"}
    one_line_error(*call(capsys, "compare", root / "a", root / "missing"), "not an xorlab store")


def test_bad_command_is_one_line(capsys):
    one_line_error(*call(capsys, "frobnicate"), "invalid choice")
    one_line_error(*call(capsys, "show"), "required")


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")  # MLflow on SQLAlchemy 2.1
def test_export_mlflow_command(root, capsys, tmp_path):
    pytest.importorskip("mlflow")
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    code, out, err = call(capsys, "export-mlflow", root / "a", "--tracking-uri", uri, "--experiment", "t")
    assert code == 0 and err == "" and "created, 8 cell runs" in out and uri in out
    code, out, _ = call(capsys, "export-mlflow", root / "a", "--tracking-uri", uri, "--experiment", "t")
    assert "unchanged (already current), 8 cell runs" in out
    one_line_error(*call(capsys, "export-mlflow", root / "a", "--tracking-uri", "nosuch://x"), "tracking URI")


def test_mlflow_ui_says_what_is_missing(root, capsys, tmp_path, monkeypatch):
    """No database: one line saying how to make one. No server package (only the skinny client): one line saying
    which extra to install, instead of MLflow's traceback about flask."""
    from xorlab.tracking import mlflow_ui

    one_line_error(*call(capsys, "mlflow-ui", tmp_path), "no mlflow.db here; export a store first")
    (tmp_path / "mlflow.db").write_bytes(b"")
    real = mlflow_ui.importlib.util.find_spec
    monkeypatch.setattr(mlflow_ui.importlib.util, "find_spec", lambda n: None if n == "flask" else real(n))
    one_line_error(*call(capsys, "mlflow-ui", tmp_path), "pip install 'xorlab[mlflow-ui]'")
    one_line_error(*call(capsys, "mlflow-ui", tmp_path, "--port", "70000"), "--port")


def test_failure_mode_prefers_the_mode_column():
    row = pd.Series({"status": "stuck", "plateau": "ln2", "diverged_step": pd.NA})
    assert app._failure_mode(row) == "stuck on the ln 2 plateau"
    assert app._failure_mode(pd.Series({**row, "plateau": "other"})).startswith("stuck far from every plateau")
    assert app._failure_mode(pd.concat([row, pd.Series({"mode": "dead_units"})])) == "dead_units"
    assert app._failure_mode(pd.Series({"status": "diverged", "plateau": pd.NA, "diverged_step": 7})) == (
        "diverged at step 7"
    )


# ---------------------------------------------------------------------------------------- stated
def test_list_states_what_each_store_held_fixed(root, capsys):
    code, out, _ = call(capsys, "list", root)
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "held fixed" in out.splitlines()[0]
    assert "rng=default rng_skip=0 loss_threshold=0.05 engine=" in rows[str(root / "a")]
    assert "loss_threshold=0.01" in rows[str(root / "b")]
    code, out, _ = call(capsys, "list", root, "--json")
    (a, _b) = json.loads(out)
    assert a["fixed"]["loss_threshold"] == "0.05" and a["engines"]


def test_list_counts_an_xorlab_train_store_as_one_planned_run(tmp_path, capsys):
    """Guards a found bug: xorlab-train stores were listed as 1/?."""
    from xorlab.core.config import TrainConfig
    from xorlab.engine.batch import train_batch
    from xorlab.store.records import curves_frame, runs_frame
    from xorlab.store.writer import StoreWriter

    store = tmp_path / "train_run"
    batch = train_batch([TrainConfig(lr=0.5, max_steps=30, seed=2)])
    with StoreWriter(store, meta={"app": "xorlab-train"}) as writer:  # an old train store: no planned_runs
        writer.write(runs_frame(batch), curves_frame(batch))
    code, out, _ = call(capsys, "list", tmp_path)
    assert code == 0 and " 1/1 " in out and "lr=0.5" in out and "seed=2" in out and "/?" not in out


def test_show_names_engine_and_numba(root, capsys):
    from xorlab.store.reader import load_runs as load

    run_id = load(root / "a")["run_id"].iloc[0]
    code, out, _ = call(capsys, "show", root / "a", run_id)
    (line,) = [x for x in out.splitlines() if x.strip().startswith("engine ")]
    assert "numba" in line and any(e in line for e in ("compiled", "numpy"))


def test_show_and_plot_a_run_of_another_width(tmp_path, capsys):
    store = tmp_path / "wide"
    grid = {"width": [6], "activation": ["relu"], "seed": "range(0,2)", "max_steps": [50], "lr": [0.5]}
    run_sweep(Grid.from_mapping(grid), SweepOptions(dir=store, progress=False, engine="numpy"))
    rid = sorted(load_runs(store)["run_id"])[0]
    png = tmp_path / "run.png"
    code, out, err = call(capsys, "show", store, rid, "--plot", png)
    assert code == 0 and err == "" and "width=6 activation=relu" in out
    w1 = out[out.index("  w1 = ") : out.index("  b1 = ")]
    assert w1.count(",") == 2 * 6 - 1 and "nan" not in w1  # w1 is (2, 6), read from the any-width record
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_show_where_lists_text_axes_in_text_order(tmp_path, capsys):
    """The runs are read with few-valued text as categoricals (small), yet listed in the order of their values,
    not in the order the categories were met: ``tanh`` runs were written first, ``relu`` is listed first
    (after ``seed``, the first swept axis)."""
    grid = {"activation": ["tanh", "relu"], "lr": [0.5], "seed": "range(0,3)", "max_steps": 20}
    run_sweep(Grid.from_mapping(grid), SweepOptions(dir=tmp_path / "s", progress=False), config={"grid": grid})
    code, out, _ = call(capsys, "show", tmp_path / "s", "--where", "max_steps == 20")
    lines = out.splitlines()[:-1]
    acts = [next(w.split("=")[1] for w in ln.split() if w.startswith("activation=")) for ln in lines]
    seeds = [next(w for w in ln.split() if w.startswith("seed=")) for ln in lines]
    assert code == 0 and seeds == ["seed=0"] * 2 + ["seed=1"] * 2 + ["seed=2"] * 2
    assert acts == ["relu", "tanh"] * 3, out
