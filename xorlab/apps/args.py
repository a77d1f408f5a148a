"""argparse with the project's error contract: one line ``<prog>: error: …`` on stderr, exit status 2."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from xorlab.apps.errors import USAGE, say


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line (the usage is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        say(self.prog, f"{message} (see {self.prog} --help)")
        sys.exit(USAGE)
