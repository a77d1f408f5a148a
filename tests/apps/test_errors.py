"""Tests for ``xorlab.apps.errors``: every app speaks one error style — ``PROG: error: <one line>``, exit 2 for
bad input, 1 for a failure while doing the work, never a traceback."""

from __future__ import annotations

import errno

import pytest

from xorlab.apps import errors
from xorlab.apps import report as report_app
from xorlab.apps import runs as runs_app
from xorlab.apps import store as store_app


def one_line(capsys, prog: str) -> str:
    err = capsys.readouterr().err
    (line,) = err.splitlines()
    assert line.startswith(f"{prog}: error: "), err
    return line


@pytest.mark.parametrize(
    ("main", "prog", "argv"),
    [
        (runs_app.main, "xorlab-runs", ["frobnicate"]),
        (runs_app.main, "xorlab-runs", ["show", "/no/such/store", "abc"]),
        (report_app.main, "xorlab-report", ["/no/such/store"]),
        (report_app.main, "xorlab-report", ["--budget", "x", "s"]),
        (store_app.main, "xorlab-store", ["check", "/no/such/store"]),
        (store_app.main, "xorlab-store", ["wipe"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, main, prog, argv):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors exit from inside the parser
        code = exc.code
    assert code == 2
    one_line(capsys, prog)


def test_a_failure_is_one_line_and_exit_1(capsys):
    def body():
        raise OSError(errno.EIO, "Input/output error", "/mnt/store/runs/x.parquet")

    assert errors.exit_status("xorlab-x", body) == errors.FAILURE
    assert one_line(capsys, "xorlab-x") == "xorlab-x: error: /mnt/store/runs/x.parquet: Input/output error"


def test_a_bug_is_not_disguised_as_a_user_error():
    with pytest.raises(ZeroDivisionError):
        errors.exit_status("xorlab-x", lambda: 1 / 0)


def test_an_app_error_keeps_its_status(capsys):
    def body():
        raise errors.AppError("half the store is unreadable", status=errors.FAILURE)

    assert errors.exit_status("xorlab-x", body) == 1
    one_line(capsys, "xorlab-x")
