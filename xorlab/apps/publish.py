"""Writing an app's output folder whole: build in a hidden temp folder beside it, then rename into place."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

from xorlab.apps.errors import FAILURE, AppError
from xorlab.store.layout import oserror_text


def publish(build: Callable[[Path], object], out: Path, field: str = "--out: ") -> None:
    """Run ``build(tmp)`` in a hidden temp folder beside ``out``, then move it (or its files) into place.

    A new ``out`` appears whole (one rename); into an existing one each file is renamed over its old version,
    so a reader never sees a half-written file and a failed build leaves ``out`` as it was. Failures raise
    ``AppError`` with a one-line message naming ``field``; a full disk or a denied write is a failure (exit 1).
    """
    if out.exists() and not out.is_dir():
        raise AppError(f"{field}{out} exists and is not a directory")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:12]}"
        tmp.mkdir()  # not mkdtemp: its 0700 mode would become the output folder's
    except OSError as exc:
        raise AppError(f"{field}cannot create {out} ({oserror_text(exc)})", FAILURE) from None
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
        name = Path(os.fsdecode(exc.filename)) if exc.filename is not None else None
        scratch = name is not None and _within(name, (Path(tempfile.gettempdir()),)) and not _within(name, (tmp, out))
        if scratch:  # a scratch file in the temporary folder (the report's loss-band spill), not the output
            raise AppError(
                f"cannot write {name} ({oserror_text(exc)}; the temporary folder is "
                f"{tempfile.gettempdir()}, set TMPDIR to use another); {out} was not changed",
                FAILURE,
            ) from None
        raise AppError(f"{field}cannot write {out} ({oserror_text(exc)})", FAILURE) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _within(path: Path, folders: tuple[Path, ...]) -> bool:
    """Whether ``path`` lies in (or is) one of ``folders``."""
    path = path.absolute()
    return any(path == f.absolute() or f.absolute() in path.parents for f in folders)
