"""The store's layout and its light contract, importable without pandas or pyarrow: file and folder names,
format version, liveness constants, ``StoreError`` and the manifest. The Arrow schemas are in ``format``."""

from __future__ import annotations

import errno
import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("xorlab.store")

FORMAT = "xorlab-store"
VERSION = 1
MANIFEST = "xorlab-store.json"
TEMP_PREFIX = ".tmp-"

# Which init file a from_file run started from is part of what determines its result:
# ``records`` keeps it as the ``init_file_sha256`` column; stores written before it read it as null.
FILE_HASH = "init_file_sha256"

# Liveness. A writer refreshes its heartbeat every HEARTBEAT_EVERY s. A writer not heard from for HEARTBEAT_TIMEOUT s
# is 'stalled', and dead only on proof (xorlab.store.liveness): its pid gone on this host, or, on another host, its
# heartbeat watched unchanged that long by the reader's own clock (six missed beats leave room for a slow shared
# filesystem).
HEARTBEAT_EVERY = 5.0
HEARTBEAT_TIMEOUT = 60.0
STATUSES = ("running", "finished", "interrupted", "failed")

SAFE = "finished chunks are kept and the store is consistent (nothing half-written)"


class StoreError(ValueError):
    """A store path that cannot be read or written; ``str`` is one line naming the path."""


def read_manifest(path: Path, missing_ok: bool = False) -> dict[str, Any] | None:
    """The store's manifest; ``StoreError`` if unreadable or written by an incompatible format version."""
    manifest = path / MANIFEST
    # A writer creates the manifest before runs/: seeing runs/ is checked first, then the manifest, so a store
    # being created meanwhile by a concurrent writer (SLURM array jobs start together) is never taken for one
    # whose manifest was lost.
    has_runs = (path / "runs").is_dir()
    if not manifest.exists():
        if missing_ok:
            if has_runs:
                raise StoreError(no_manifest(path))
            return None
        raise StoreError(f"{path}: not an xorlab store (no {MANIFEST})")
    try:
        info = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        raise StoreError(f"{manifest}: unreadable store manifest ({exc})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise StoreError(f"{manifest}: not an xorlab store manifest")
    if info.get("version") != VERSION:
        raise StoreError(
            f"{path}: store format version {info.get('version')!r}, this xorlab reads version {VERSION}; "
            "use a new directory or the xorlab version that wrote it"
        )
    return info


def no_manifest(path: Path) -> str:
    return (
        f"{path}: has runs/ but no {MANIFEST}: a store whose manifest was lost, or not an xorlab store; "
        f"restore {MANIFEST} (e.g. from a sibling store) or move the folder away"
    )


def oserror_text(exc: OSError) -> str:
    """The reason an OS error gives, in the words every xorlab message uses (``no space left on the device``)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno == errno.ENOSPC:
        reason = "no space left on the device"
    elif exc.errno == errno.EDQUOT:
        reason = "disk quota exceeded"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        reason = f"not writable ({exc.strerror})"
    elif exc.errno == errno.ENAMETOOLONG:
        reason = "file name too long"
    return reason
