"""``xorlab-runs``: what the run stores hold, one run in detail, two stores compared, an export to MLflow.

    xorlab-runs list [ROOT ...] [--json]                    # every store under runs/ (or the ROOTs)
    xorlab-runs show STORE RUN [--plot FILE.png]            # RUN: a run_id or a unique prefix of one
    xorlab-runs show STORE --where "lr == 1 and status == 'stuck'" [--limit N]
    xorlab-runs compare STORE_A STORE_B [--out DIR]         # compare.md, compare.html, compare.csv
    xorlab-runs export-mlflow STORE [--tracking-uri URI] [--experiment NAME]

Bad input (a missing store, an unknown or ambiguous run id, a bad query) prints one line
``xorlab-runs: error: …`` and exits with status 2. pandas, pyarrow, matplotlib and MLflow are imported only
by the command that needs them, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from xorlab.analysis.text import terminal  # no dependencies: --help stays fast
from xorlab.apps.errors import AppError, exit_status
from xorlab.apps.publish import publish
from xorlab.store.layout import MANIFEST

if TYPE_CHECKING:
    from xorlab.store.reader import StoreReader

PROG = "xorlab-runs"


class RunsError(AppError):
    """A user error; ``str`` is the one-line message."""


class _Parser(argparse.ArgumentParser):
    """argparse with the project's one-line errors (the usage is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        raise RunsError(f"{message} (see {self.prog} --help)")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="What the run stores hold; one run; two stores compared; MLflow export.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ls = sub.add_parser(
        "list",
        help="one row per store: size, grid, code version, state",
        description=(
            "One row per store found under each ROOT: path, created, last written, runs recorded / planned, grid, "
            "code version (git commit, +dirty), state (complete, partial, running, crashed)."
        ),
    )
    ls.add_argument("roots", nargs="*", default=["runs"], metavar="ROOT", help="folders to search (default: runs)")
    ls.add_argument("--json", action="store_true", help="print a JSON list, one object per store")

    show = sub.add_parser(
        "show",
        help="one run in detail, or the runs matching a query",
        description=(
            "Config, outcome, failure mode, final predictions and parameters, and provenance of one run; or, with "
            "--where, the runs matching a condition (pandas-query syntax; no calls or attributes)."
        ),
    )
    show.add_argument("store", metavar="STORE")
    show.add_argument("run", nargs="?", metavar="RUN", help="a run_id or a unique prefix of one")
    show.add_argument("--plot", type=Path, metavar="FILE.png", help="draw the loss curve and decision surface")
    show.add_argument(
        "--where",
        metavar="QUERY",
        help='condition over the run table (its columns, plus init_label), e.g. "lr == 1 and status == '
        "'stuck'\"; lists the matching runs",
    )
    show.add_argument("--limit", type=int, default=20, metavar="N", help="rows --where lists (default 20)")

    cmp = sub.add_parser(
        "compare",
        help="two stores: success rates, identical runs, seed pairs",
        description=(
            "Per configuration cell in both stores: success rates with Wilson intervals and their difference; runs "
            "recorded in both: identical or changed outcomes; seed-paired comparison across the fields that differ. "
            "Writes compare.md, compare.html and compare.csv."
        ),
    )
    cmp.add_argument("store_a", metavar="STORE_A")
    cmp.add_argument("store_b", metavar="STORE_B")
    cmp.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: STORE_B/compare)")

    exp = sub.add_parser(
        "export-mlflow",
        help="per-cell statistics to MLflow (pip install 'xorlab[mlflow]')",
        description="One parent MLflow run per store, one child run per configuration cell; re-exporting updates them.",
    )
    exp.add_argument("store", metavar="STORE")
    exp.add_argument(
        "--tracking-uri", metavar="URI", help="default: MLFLOW_TRACKING_URI, else sqlite:///<store's parent>/mlflow.db"
    )
    exp.add_argument("--experiment", default="xorlab", metavar="NAME", help="experiment name (default: xorlab)")

    ui = sub.add_parser(
        "mlflow-ui",
        help="serve MLflow's UI on an export's database (pip install 'xorlab[mlflow-ui]')",
        description="MLflow's server and UI for FOLDER/mlflow.db (what export-mlflow writes beside the store), "
        "on the loopback address until Ctrl-C.",
    )
    ui.add_argument("folder", metavar="FOLDER", help="the folder holding mlflow.db (a store's parent), or the .db")
    ui.add_argument("--port", type=int, default=5000, metavar="N", help="port (default: 5000)")
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    return p


# ----------------------------------------------------------------------------------------------- list
def _when(iso: str | None) -> str:
    return "–" if not iso else iso.replace("T", " ")[:16]


def cmd_list(args: argparse.Namespace) -> None:
    from xorlab.tracking import catalog

    infos = [catalog.describe(path) for path in catalog.find_stores(args.roots)]
    if args.json:
        print(json.dumps([i.to_json() for i in infos], indent=2))
        return
    rows: list[tuple[str, ...]] = [("path", "created", "last written", "runs", "grid", "held fixed", "code", "state")]
    for i in infos:
        planned = "?" if i.planned is None else f"{i.planned:,}"
        row = (
            i.path,
            _when(i.created),
            _when(i.last_written),
            f"{i.runs:,}/{planned}",
            i.grid,
            i.conditions,
            i.code,
            i.state,
        )
        rows.append(tuple(terminal(v) for v in row))  # a store's own strings never drive the terminal
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    for i in infos:
        for note in i.notes:
            print(terminal(f"{PROG}: note: {i.path}: {note}"), file=sys.stderr)


# ----------------------------------------------------------------------------------------------- show
def _fmt(value: Any) -> str:
    import pandas as pd

    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return "–"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _config_text(row: Any, columns: Sequence[str]) -> str:
    return " ".join(f"{'init' if c == 'init_label' else c}={_fmt(row[c])}" for c in columns)


def _failure_mode(row: Any) -> str:
    """The ``mode`` column when the store has one (older stores lack it), else status and plateau."""
    from xorlab.core.outcome import PLATEAU_TEXT

    if "mode" in row.index and _fmt(row["mode"]) != "–":
        return str(row["mode"])
    if row["status"] == "solved":
        return "none (solved)"
    if row["status"] == "stuck":
        plateau = _fmt(row["plateau"])
        return (
            f"stuck on the {PLATEAU_TEXT.get(plateau, plateau)} plateau"
            if plateau != "other"
            else ("stuck far from every plateau (typically saturated)")
        )
    if row["status"] == "slow":
        return "slow: all four points right, loss above the threshold"
    return f"diverged at step {_fmt(row['diverged_step'])}"


def _show_run(reader: StoreReader, run_id: str, plot: Path | None) -> None:
    import numpy as np

    from xorlab.analysis import stats
    from xorlab.store.records import CONFIG_COLUMNS, PRED_COLUMNS, params_of

    path = reader.path
    frame, chunk = reader.run(run_id)  # this run's runs file, read once (the ids came from the id columns)
    row = stats.with_init_label(frame).iloc[0]
    config = [c for c in CONFIG_COLUMNS if c == "init" or _fmt(row[c]) != "–"]
    solved = _fmt(row["steps_to_solve"])
    lines = [
        f"run {run_id} in {path}",
        f"config:      {_config_text(row, config)}",
        f"outcome:     {row['status']} after {row['max_steps']:,} steps; final loss {row['final_loss']:.6g}",
        f"solved at:   {'step ' + solved if solved != '–' else 'never within max_steps'}",
        f"failure:     {_failure_mode(row)}",
        "predictions: " + "  ".join(f"{c[5:]} {row[c]:.6f}" for c in PRED_COLUMNS) + "   (XOR targets 0 1 1 0)",
        "parameters:",
    ]
    with np.printoptions(precision=6, suppress=False, floatmode="maxprec"):
        for name, value in params_of(row).items():  # one line per row of the matrix (any width: lines wrap)
            text = np.array2string(value, separator=", ", prefix=f"  {name} = ")
            lines += [f"  {name} = {part}" if i == 0 else part for i, part in enumerate(text.splitlines())]
    session = reader.session(chunk)
    code = session.get("git_commit") or "unknown"
    if session.get("git_dirty"):
        code += " (uncommitted changes)"
    found = session.get("packages")
    packages: dict = found if isinstance(found, dict) else {}
    engine = _fmt(row["engine"]) if "engine" in row.index else "–"
    if engine == "–":
        engine = "not recorded (a store older than the engine column: numpy)"
    numba = packages.get("numba")
    lines += [
        "provenance:",
        f"  session {session.get('session', 'unknown')} ({session.get('app', 'unknown app')}), host "
        f"{session.get('host', '?')}, started {session.get('started', '?')}, status {session.get('status', '?')}",
        f"  code {code}",
        f"  engine {engine}; numba {numba or 'not recorded'}",
    ]
    if packages:
        lines.append("  " + " ".join(f"{k} {v}" for k, v in packages.items() if v))
    command = session.get("command")
    if isinstance(command, list):
        lines.append("  command: " + " ".join(map(str, command)))
    print("\n".join(terminal(line) for line in lines))  # host, command, commit come from a file anyone can edit
    if plot is not None:
        curve = reader.curves(chunk, [run_id])
        from xorlab.report.run_figure import run_figure

        fig = run_figure(row, curve)
        try:
            fig.savefig(plot, dpi=110, metadata={"Software": None})
        except (OSError, ValueError) as exc:
            raise RunsError(f"--plot: cannot write {plot} ({getattr(exc, 'strerror', None) or exc})") from None
        print(terminal(f"plot: {plot}"))


def _as_text(column):
    """A categorical sort key as its values (a categorical sorts by the order its categories were met)."""
    return column.astype(object) if column.dtype == "category" else column


def _show_where(path: Path, query: str, limit: int) -> None:
    import pyarrow as pa

    from xorlab.analysis import stats
    from xorlab.analysis.query import QueryError, parse, where
    from xorlab.report.builder import RUN_COLUMNS_USED
    from xorlab.store.format import named_columns
    from xorlab.store.reader import load_runs

    pa.set_memory_pool(pa.system_memory_pool())  # Arrow's own pool keeps what the load freed: ~240 MiB more peak
    try:
        condition = parse(query)  # before reading the store: a bad query answers at once
        columns = list(dict.fromkeys([*RUN_COLUMNS_USED, *named_columns(query)]))  # not the parameters it skips
        runs = stats.with_init_label(load_runs(path, columns=columns, categories=True))  # few-valued text: small
        hit = where(runs, condition)
    except QueryError as exc:
        raise RunsError(f"--where: {exc}") from None
    swept = [c for c in stats.swept_axes(runs) if c not in stats.INIT_COLUMNS[1:]]
    shown = ["init_label" if c == "init" else c for c in swept] or ["init_label"]
    hit = hit.sort_values([*shown, "run_id"], kind="stable", key=_as_text)
    for _, r in hit.head(limit).iterrows():
        solved = _fmt(r["steps_to_solve"])
        print(
            terminal(
                f"{r['run_id']}  {_config_text(r, shown)}  {r['status']}"
                f"{' at ' + solved if solved != '–' else ''}  final loss {r['final_loss']:.4g}"
            )
        )
    more = len(hit) - limit
    tail = f"; {more:,} more not shown (--limit)" if more > 0 else ""
    print(f"{len(hit):,} of {len(runs):,} runs match{tail}")


def cmd_show(args: argparse.Namespace) -> None:
    from xorlab.tracking import catalog

    path = Path(args.store)
    if not (path / MANIFEST).is_file():
        raise RunsError(f"{path}: not an xorlab store (no {MANIFEST})")
    if args.where is not None:
        if args.run is not None or args.plot is not None:
            raise RunsError("--where lists runs; give either RUN or --where, and --plot only with RUN")
        if args.limit < 1:
            raise RunsError(f"--limit: must be ≥ 1, got {args.limit}")
        _show_where(path, args.where, args.limit)
        return
    if args.run is None:
        raise RunsError("show: give a RUN (run_id or prefix) or --where QUERY")
    from xorlab.store.reader import StoreReader

    reader = StoreReader(path)
    _show_run(reader, catalog.resolve_run(path, args.run, reader.all_ids()), args.plot)


# ----------------------------------------------------------------------------------------------- compare
def _study(path: str):
    """The runs of one store, or of one Hydra multirun (a folder whose stores are one study), and the code
    version(s) that wrote them."""
    from xorlab.report.builder import RUN_COLUMNS_USED
    from xorlab.store.reader import load_runs
    from xorlab.tracking import catalog

    if not Path(path).is_dir():
        raise RunsError(f"{path}: not an xorlab store (no {MANIFEST})")
    runs = load_runs(path, columns=RUN_COLUMNS_USED, categories=True)  # only what a comparison reads, strings small
    if runs["sweep"].nunique() > 1:
        raise RunsError(
            f"{path}: holds {runs['sweep'].nunique()} stores of different sweeps; compare takes one store or one "
            "multirun (give the store's own folder)"
        )
    codes = list(dict.fromkeys(catalog.code_version(s) for s in catalog.find_stores(path)))
    return runs, ", ".join(codes)


def cmd_compare(args: argparse.Namespace) -> None:
    from xorlab.report import compare
    from xorlab.store.reader import store_label

    paths = (str(args.store_a), str(args.store_b))
    names = (store_label(paths[0]), store_label(paths[1]))  # text a figure and a page can show (bytes paths)
    import pyarrow as pa

    # Arrow's own allocator keeps what a load freed for later; the system one gives it back (release_unused),
    # so the second store's load and the comparison reuse the first load's working memory (~250 MB less peak).
    pa.set_memory_pool(pa.system_memory_pool())
    studies = []
    for p in paths:  # each alone: stores never merge
        studies.append(_study(p))
        pa.system_memory_pool().release_unused()
    codes = (studies[0][1], studies[1][1])
    frames = [runs for runs, _ in studies]
    del studies
    try:  # the frames are handed over (popped), so compare can free them once it has its own table
        result = compare.compare(frames.pop(0), frames.pop(0), names=names, code=codes)
    except ValueError as exc:  # a store without runs
        raise RunsError(str(exc)) from None
    out = args.out if args.out is not None else Path(args.store_b) / "compare"
    publish(lambda d: compare.write(result, d), out)
    print("\n".join(terminal(line) for line in [*compare.differs_lines(result), *compare.summary_lines(result)]))
    print(terminal(f"wrote {out / 'compare.md'} (and compare.html, compare.csv)"))


# ----------------------------------------------------------------------------------------------- export
def cmd_export(args: argparse.Namespace) -> None:
    from xorlab.tracking import mlflow_export

    path = Path(args.store)
    if not (path / MANIFEST).is_file():
        raise RunsError(f"{path}: not an xorlab store (no {MANIFEST})")
    done = mlflow_export.export_store(path, args.tracking_uri, args.experiment)
    how = {"replaced": "replaced (the store changed since its last export)",
           "unchanged": "unchanged (already current)"}.get(done.status, done.status)  # fmt: skip
    print(
        f"exported {path} to MLflow {done.tracking_uri}, experiment {args.experiment!r} (id {done.experiment_id}): "
        f"parent run {done.parent_run_id} {how}, {len(done.cell_run_ids)} cell runs"
    )
    if done.tracking_uri.startswith("sqlite:///"):
        print(f"view it: mlflow ui --backend-store-uri {done.tracking_uri}   (pip install 'xorlab[mlflow-ui]')")


def cmd_mlflow_ui(args: argparse.Namespace) -> None:
    from xorlab.tracking import mlflow_ui

    if not 0 < args.port < 65536:
        raise RunsError(f"--port: must be in 1 … 65535, got {args.port}")
    try:
        db = mlflow_ui.database(args.folder)
        mlflow_ui.check_ui_installed()
    except mlflow_ui.UIError as exc:
        raise RunsError(str(exc)) from None
    print(f"MLflow UI for {db}: http://{args.host}:{args.port}  (Ctrl-C stops it)", flush=True)
    try:
        code = subprocess.run(mlflow_ui.server_command(db, args.host, args.port)).returncode
    except KeyboardInterrupt:
        code = 0
    if code not in (0, -signal.SIGINT, -signal.SIGTERM):
        raise RunsError(f"MLflow's server stopped with status {code} (see its messages above)")


COMMANDS = {
    "list": cmd_list,
    "show": cmd_show,
    "compare": cmd_compare,
    "export-mlflow": cmd_export,
    "mlflow-ui": cmd_mlflow_ui,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``xorlab-runs`` and ``python -m xorlab.apps.runs``; returns the exit status."""

    def body() -> None:
        args = parser().parse_args(argv)  # its usage errors are RunsErrors: reported like the others
        COMMANDS[args.command](args)

    return exit_status(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
