"""The one error style of every app: ``PROG: error: <one line>`` on stderr, exit 2 for bad input (usage, config,
a path that is not a store), 1 for a failure while doing the work (an OS error), never a traceback for either.

Imports nothing heavy: the error types of the library's layers are looked up among the modules already loaded,
so an app that never loaded the store cannot be handed a ``StoreError``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn

from xorlab.store.layout import oserror_text

USAGE, FAILURE = 2, 1
# (module, exception) pairs that mean bad input, whichever app meets them
_USER_ERRORS = (
    ("xorlab.core.config", "ConfigError"),
    ("xorlab.store.layout", "StoreError"),
    ("xorlab.tracking.catalog", "CatalogError"),
    ("xorlab.tracking.mlflow_export", "ExportError"),
)


class AppError(Exception):
    """An error an app reports as one line (``str``), with its exit status (default: bad input, 2)."""

    def __init__(self, message: str, status: int = USAGE) -> None:
        super().__init__(message)
        self.status = status


def say(prog: str, message: object) -> None:
    """Print ``prog: error: message`` as one line on stderr."""
    from xorlab.analysis.text import terminal  # no dependencies

    # a path or a store's text is shown with its control characters escaped, never obeyed by the terminal
    print(f"{prog}: error: {terminal(' '.join(str(message).split()))}", file=sys.stderr)


def fail(prog: str, message: object, status: int = USAGE) -> NoReturn:
    say(prog, message)
    sys.exit(status)


def user_errors() -> tuple[type[Exception], ...]:
    found: list[type[Exception]] = [AppError]
    for module, name in _USER_ERRORS:
        if module in sys.modules:
            found.append(getattr(sys.modules[module], name))
    return tuple(found)


def exit_status(prog: str, body: Callable[[], int | None]) -> int:
    """Run an app's ``body`` and return its exit status, reporting errors in the one style."""
    try:
        return body() or 0
    except BrokenPipeError:  # output piped into head & co.: stop quietly, as other CLI tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # the library names its own paths; this is the rest (a failure, not the input)
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        say(prog, f"{where}{oserror_text(exc)}")
        return FAILURE
    except Exception as exc:
        if not isinstance(exc, user_errors()):
            raise
        say(prog, exc)
        return getattr(exc, "status", USAGE)
