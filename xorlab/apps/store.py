"""``xorlab-store``: check a run store, or clean what killed writers left in it.

    xorlab-store check runs/init_comparison          # every file readable and consistent? grid complete?
    xorlab-store clean runs/init_comparison          # remove temp files, orphaned curves, dead claims
    xorlab-store clean runs/x --dry-run --grace 60

``check`` exits 0 when the store is whole, 1 when it found problems (each printed on a ``problem:`` line),
2 for a path that is not a store. ``clean`` never touches committed chunks, sessions or a live writer's files.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from xorlab.apps.errors import exit_status

PROG = "xorlab-store"


def parser() -> argparse.ArgumentParser:
    from xorlab.apps.args import OneLineParser

    p = OneLineParser(prog=PROG, description="Check or clean an xorlab run store.")
    sub = p.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="read every record file and report problems (changes nothing)")
    check.add_argument("dirs", nargs="+", metavar="DIR", help="store directories, or folders containing stores")
    clean = sub.add_parser("clean", help="remove leftovers of killed writers")
    clean.add_argument("dirs", nargs="+", metavar="DIR", help="store directories, or folders containing stores")
    clean.add_argument(
        "--grace",
        type=float,
        default=None,
        metavar="SECONDS",
        help="only remove temp files older than this (default: 600)",
    )
    clean.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``xorlab-store`` and ``python -m xorlab.apps.store``; returns the exit status."""
    args = parser().parse_args(argv)
    from xorlab.store.reader import find_stores
    from xorlab.tracking import maintenance  # heavy (pyarrow, pandas): only once the arguments are fine

    status = 0

    def body() -> int:
        nonlocal status
        for d in find_stores(args.dirs):  # a store, or a folder of stores (a multirun dir, runs/)
            if args.command == "check":
                report = maintenance.check_store(d)
                print("\n".join(report.lines()))
                status = max(status, 0 if report.ok else 1)
            else:
                grace = maintenance.TEMP_GRACE if args.grace is None else args.grace
                removed = maintenance.clean_store(d, grace=grace, dry_run=args.dry_run)
                verb = "would remove" if args.dry_run else "removed"
                for f in removed:
                    print(f"{verb} {f}")
                print(f"{PROG}: {d}: {verb} {len(removed)} leftover files; committed records untouched")
        return status

    return exit_status(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
