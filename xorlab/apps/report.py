"""``xorlab-report``: statistics, figures and a Markdown/HTML report of one or more recorded sweeps.

    xorlab-report runs/init_comparison                       # -> runs/init_comparison/report/
    xorlab-report runs/a runs/b --out reports/ab --by lr,init
    python -m xorlab.apps.report runs/a

Writes ``report.md`` (renders on a git host), a self-contained ``report.html``, ``stats.csv`` and
``figures/*.png|svg`` (built by ``xorlab.report``). The report is built in a hidden temporary folder next to the
output and moved into place only when complete, so a failure leaves nothing half-written. Bad input (a missing,
empty or corrupt store, an unknown axis) prints one line ``xorlab-report: error: …`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

PROG = "xorlab-report"


class ReportError(Exception):
    """A user error; ``str`` is the one-line message."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Statistics, figures and a report of recorded sweeps.")
    p.add_argument("sweep_dirs", nargs="+", metavar="SWEEP_DIR", help="sweep or run store directories")
    p.add_argument("--out", type=Path, help="output directory (default: SWEEP_DIR/report of the first input)")
    p.add_argument(
        "--by",
        metavar="AXES",
        help="comma-separated grouping axes, e.g. lr,init (default: every swept axis except seed)",
    )
    p.add_argument("--reference", metavar="INIT", help="init label the comparisons are against (default: notebook)")
    return p


def publish(build: Callable[[Path], object], out: Path) -> None:
    """Run ``build(tmp)`` in a hidden temp folder beside ``out``, then move its files into ``out``."""
    if out.exists() and not out.is_dir():
        raise ReportError(f"{out}: exists and is not a directory")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:12]}"
        tmp.mkdir()  # not mkdtemp: its 0700 mode would become the report folder's
    except OSError as exc:
        raise ReportError(f"{out}: cannot create the output directory ({exc.strerror or exc})") from None
    try:
        build(tmp)
        if not out.exists():
            os.replace(tmp, out)
            return
        for src in sorted(p for p in tmp.rglob("*") if p.is_file()):
            dst = out / src.relative_to(tmp)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    except OSError as exc:
        raise ReportError(f"{out}: cannot write the report ({exc.strerror or exc})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace) -> Path:
    """Load the stores, build the report into ``args.out``; return the path of ``report.md``."""
    from xorlab import report, stats
    from xorlab.store import StoreError, load_curves, load_runs

    paths = list(args.sweep_dirs)
    try:
        runs = load_runs(paths)
        if runs.empty:
            raise ReportError(f"{', '.join(paths)}: no runs recorded")
        runs = stats.with_init_label(runs)
        by = stats.resolve_by(runs, args.by)
        if args.reference is not None and args.reference not in set(runs["init_label"]):
            labels = ", ".join(sorted(set(runs["init_label"])))
            raise ReportError(f"--reference: no init {args.reference!r} in the runs; found: {labels}")
        curves = load_curves(paths, run_ids=report.figure_runs(runs)["run_id"])
    except (StoreError, ValueError) as exc:
        raise ReportError(str(exc)) from None
    out = args.out if args.out is not None else Path(paths[0]) / "report"
    publish(lambda d: report.build_report(runs, curves, d, inputs=paths, by=by, reference=args.reference), out)
    return out / "report.md"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``xorlab-report`` and ``python -m xorlab.apps.report``; returns the exit status."""
    args = parser().parse_args(argv)
    try:
        md = run(args)
    except ReportError as exc:
        print(f"{PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print(f"{PROG}: wrote {md} (and report.html, stats.csv, figures/ beside it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
