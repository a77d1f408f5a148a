"""``xorlab-report``: statistics, figures and a Markdown/HTML report of one or more recorded sweeps.

    xorlab-report runs/init_comparison                       # -> runs/init_comparison/report/
    xorlab-report runs/a runs/b --out reports/ab --by lr,init    # grouped by store (`sweep`) first
    xorlab-report runs/a --where 'lr >= 0.1 and init != "zeros"' --budget 1000
    python -m xorlab.apps.report runs/a

Writes ``report.md`` (renders on a git host), a self-contained ``report.html``, ``stats.csv`` and
``figures/*.png|svg`` (built by ``xorlab.report.builder``). The report is built in a hidden temporary folder next to the
output and moved into place only when complete, so a failure leaves nothing half-written. Bad input (a missing,
empty or corrupt store, an unknown axis, a bad ``--where`` query, a ``--budget`` no run has) prints one line
``xorlab-report: error: …`` and exits with status 2.

Several stores are loaded one by one, each run tagged with a ``sweep`` column (the path as given); the report
groups by ``sweep`` first, so runs of different stores are never merged, even when they share a ``run_id``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from xorlab.apps.errors import AppError, exit_status
from xorlab.apps.publish import publish

PROG = "xorlab-report"


class ReportError(AppError):
    """A user error; ``str`` is the one-line message."""


def parser() -> argparse.ArgumentParser:
    from xorlab.apps.args import OneLineParser

    p = OneLineParser(prog=PROG, description="Statistics, figures and a report of recorded sweeps.")
    p.add_argument("sweep_dirs", nargs="+", metavar="SWEEP_DIR", help="sweep or run store directories")
    p.add_argument("--out", type=Path, help="output directory (default: SWEEP_DIR/report of the first input)")
    p.add_argument(
        "--by",
        metavar="AXES",
        help="comma-separated grouping axes, e.g. lr,init (default: every swept axis except seed)",
    )
    p.add_argument("--reference", metavar="INIT", help="init label the comparisons are against (default: notebook)")
    p.add_argument(
        "--where",
        metavar="EXPR",
        help="keep only runs matching this condition over run columns (pandas-query syntax, parsed: no calls or "
        "attributes), e.g. 'lr >= 0.1 and init != \"zeros\"' (columns: every config field, init_label, sweep, "
        "status, mode, final_loss, steps_to_solve, …)",
    )
    p.add_argument(
        "--budget", type=int, metavar="N", help="max_steps the figures show (default: each configuration's longest)"
    )
    p.add_argument(
        "--formats",
        default="png,svg",
        metavar="LIST",
        help="figure formats: png (always) and optionally svg (default: png,svg)",
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show stages and an ETA on stderr (default: when stderr is a terminal)",
    )
    return p


def formats(text: str) -> tuple[str, ...]:
    """``--formats`` as a tuple; PNG is required (the pages embed it)."""
    from xorlab.report.figures import FORMATS

    got = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    bad = [f for f in got if f not in FORMATS]
    if bad or "png" not in got:
        what = f"unknown format {bad[0]!r}" if bad else "png is required (the report pages embed it)"
        raise ReportError(f"--formats: {what}; allowed: {', '.join(FORMATS)}, e.g. png or png,svg")
    return got


def columns(where_expr: str | None) -> list[str]:
    """The run columns a report reads: what its statistics and figures use, and any column ``--where`` names."""
    import re

    from xorlab.report.builder import RUN_COLUMNS_USED
    from xorlab.store.format import RUN_SCHEMA

    named = set(re.findall(r"\w+", where_expr or "")) & set(RUN_SCHEMA.names)
    return [*RUN_COLUMNS_USED, *sorted(named - set(RUN_COLUMNS_USED))]


def load(paths: Sequence[str], columns: Sequence[str] | None = None):
    """Each store loaded on its own (only ``columns`` when given), tagged ``sweep`` = its path as given, then
    stacked (never merged)."""
    import pandas as pd

    from xorlab.store.reader import load_runs, store_label

    frames = []
    for path in paths:
        runs = load_runs(path, columns=columns, categories=True)  # text of a few values as categoricals: small
        if runs.empty:
            raise ReportError(f"{path}: no runs recorded")
        runs = runs.drop(columns="init_label", errors="ignore")  # labels: over all stores, below
        if runs["sweep"].nunique() == 1:  # one store: named by the path as given; a folder keeps one per store
            runs = runs.assign(sweep=store_label(path))
        frames.append(runs)
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def read_lines(paths: Sequence[str]) -> list[str]:
    """What each input held when it was read: runs recorded of those planned, and whether a writer is still
    running or the plan is unfinished, so a partial or growing store is never reported as if it were whole."""
    from xorlab.tracking import catalog

    lines = []
    for path in paths:
        infos = [catalog.describe(s) for s in catalog.find_stores(path)]
        recorded = sum(i.runs for i in infos)
        plans = [i.planned for i in infos]
        planned = None if None in plans else sum(p for p in plans if p is not None)
        states = {i.state for i in infos}
        stores = f" in {len(infos)} stores" if len(infos) > 1 else ""
        of = f"{recorded:,} runs recorded (plan unknown)"
        if planned is not None:
            of = f"{recorded:,} of {planned:,} planned run{'' if planned == 1 else 's'} recorded"
        if "running" in states:
            text = (
                f"`{path}`: **a writer is still running** — {of}{stores} when read; the numbers below describe "
                "those runs only and will change"
            )
        elif planned is not None and recorded < planned:
            text = (
                f"`{path}`: **partial** — {of}{stores} ({', '.join(sorted(states))}); the numbers below "
                "describe the recorded runs only"
            )
        else:
            text = f"`{path}`: {of}{stores} (complete)"
        lines.append(text + ".")
    return lines


def where(runs, expr: str):
    """The runs matching ``expr`` (``xorlab.analysis.query``: parsed, never executed); errors are one line."""
    from xorlab.analysis.query import QueryError
    from xorlab.analysis.query import where as matching

    try:
        kept = matching(runs, expr)
    except QueryError as exc:
        raise ReportError(f"--where: {exc}") from None
    if kept.empty:
        raise ReportError(f"--where: no run matches {expr!r}")
    return kept


def run(args: argparse.Namespace) -> Path:
    """Load the stores, build the report into ``args.out``; return the path of ``report.md``."""
    from xorlab.analysis import maps, stats
    from xorlab.analysis.curves import StoreCurves
    from xorlab.analysis.text import md_code
    from xorlab.report import builder as report
    from xorlab.report.progress import Progress
    from xorlab.store.format import StoreError

    paths = list(dict.fromkeys(str(p) for p in args.sweep_dirs))
    figure_formats = formats(args.formats)
    notes = []
    weights = {
        "reading runs": 20,
        "statistics": 5,  # the statistics then run beside the figures and curves, on a thread of their own
        "figures and loss curves": 50,  # the bands' pass over the curves files beside the figures without them
        "curve figures": 15,
        "maps": 20,
        "pages": 5,
    }
    with Progress(weights, enabled=args.progress) as progress, ThreadPoolExecutor(max_workers=1) as pool:
        progress.start("reading runs")
        reading = pool.submit(read_lines, paths)  # what the inputs hold, read while the runs load
        try:
            runs = stats.with_init_label(load(paths, columns(args.where)))
            if args.where is not None:
                n = len(runs)
                runs = where(runs, args.where)
                notes.append(f"Filter {md_code('--where ' + args.where)}: {len(runs):,} of {n:,} runs kept.")
            try:
                by = maps.default_by(runs) if args.by is None else stats.resolve_by(runs, args.by)
            except ValueError as exc:
                raise ReportError(f"--by: {exc}") from None
            reference = None
            if args.reference is not None:
                try:
                    reference = stats.resolve_reference(runs["init_label"].unique(), args.reference)
                except ValueError as exc:
                    raise ReportError(f"--{exc}") from None
            report.figure_runs(runs, args.budget)  # a --budget no run has: one line before anything is built
            curves = StoreCurves(paths)  # read out of core, only the figure runs' curves
        except (StoreError, ValueError) as exc:
            raise ReportError(str(exc)) from None
        out = args.out if args.out is not None else Path(paths[0]) / "report"
        read = reading.result()
        publish(
            lambda d: report.build_report(
                runs,
                curves,
                d,
                inputs=paths,
                by=by,
                reference=reference,
                budget=args.budget,
                notes=notes,
                read=read,
                formats=figure_formats,
                progress=progress,
            ),
            out,
        )
    return out / "report.md"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``xorlab-report`` and ``python -m xorlab.apps.report``; returns the exit status."""
    from xorlab.analysis.text import terminal

    args = parser().parse_args(argv)
    md: list[Path] = []
    try:
        status = exit_status(PROG, lambda: md.append(run(args)))
    except KeyboardInterrupt:  # the report is built aside and moved into place whole: nothing half-written
        print(f"{PROG}: interrupted; no report written", file=sys.stderr)
        return 130
    if status == 0:
        print(terminal(f"{PROG}: wrote {md[0]} (and report.html, stats.csv, figures/ beside it)"))
    return status


if __name__ == "__main__":
    sys.exit(main())
