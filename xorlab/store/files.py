"""Files and folders: the path a store is written to, atomic writes (temp file, fsync, rename), the
writability check before anything is created, and file hashes.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from xorlab.store.format import FILE_HASH, TEMP_PREFIX, StoreError, read_manifest
from xorlab.store.layout import oserror_text  # noqa: F401  (re-exported: one definition, in layout)


# ----------------------------------------------------------------------------------------------- paths
def store_path(path: str | Path, base: str | Path | None = None) -> Path:
    """The absolute path a store is written to *and* checked at: ``~`` expanded, relative to ``base`` if given.

    Writing and the "what is recorded" check must agree on this, or a resumed sweep retrains everything.
    """
    p = Path(path).expanduser()
    if not p.is_absolute() and base is not None:
        p = Path(base).expanduser() / p
    return p.absolute()


# ----------------------------------------------------------------------------------------------- writing
def create_exclusive(path: Path) -> int:
    """``open(O_CREAT|O_EXCL)`` with mode 0666 so the umask decides the permissions (mkstemp forces 0600)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)


def temp_name(folder: Path, suffix: str = "", owner: str | None = None) -> Path:
    """A hidden temp file name in ``folder``: ``.tmp-<owner>-<random>``, named for the writing session (``owner``)
    so that ``xorlab-store clean`` can tell a dead writer's leftovers from anyone else's ``.tmp-*`` files."""
    return folder / f"{TEMP_PREFIX}{owner + '-' if owner else ''}{uuid.uuid4().hex[:12]}{suffix}"


def atomic_write(path: Path, write: Any, owner: str | None = None) -> None:
    """Write ``path`` via a hidden temp file (named for ``owner``) in the same folder, fsync, rename."""
    tmp = temp_name(path.parent, path.suffix, owner)
    fd = create_exclusive(tmp)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: dict[str, Any], owner: str | None = None) -> None:
    atomic_write(path, lambda fh: fh.write(json.dumps(obj, indent=2, default=str).encode()), owner)


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _check_names(path: Path, field: str) -> None:
    """Names longer than the filesystem allows fail at mkdir time; say so before anything is written."""
    existing = path
    while not os.path.exists(existing) and existing != existing.parent:
        existing = existing.parent
    limit = _name_max(existing)
    for part in path.parts:
        if len(os.fsencode(part)) > limit:
            raise StoreError(
                f"{field}: cannot use {path}: the name {part[:24]!r}… is {len(os.fsencode(part))} bytes; "
                f"this filesystem allows at most {limit} bytes per path component"
            )


def check_writable(path: str | Path, field: str = "dir") -> Path:
    """Raise ``StoreError`` unless ``path`` is (or can be created as) a writable, compatible store folder.

    Writes nothing: the check is done on the folder if it exists, else on its nearest existing parent (where a
    uniquely named folder is created and removed, since permission bits do not tell everything).
    """
    path = store_path(path)
    _check_names(path, field)
    for part in (path, *path.parents):  # a link to nowhere can neither be used nor be created over
        if part.exists():
            break
        if part.is_symlink():
            where = "" if part == path else f"cannot create {path}: "
            raise StoreError(
                f"{field}: {where}{part} is a symbolic link to {os.readlink(part)}, which does not exist; create "
                "it or give another path"
            )
    if path.exists():
        if not path.is_dir():
            raise StoreError(f"{field}: {path} exists and is not a directory")
        try:
            read_manifest(path, missing_ok=True)
        except StoreError as exc:
            raise StoreError(f"{field}: {exc}") from None
        probe = path
    else:
        probe = path.parent
        while not probe.exists():
            probe = probe.parent
        if not probe.is_dir():
            raise StoreError(f"{field}: cannot create {path}: {probe} is not a directory")
    try:
        read_only = bool(os.statvfs(probe).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    if read_only:
        raise StoreError(f"{field}: {path} is not writable ({probe} is on a read-only filesystem); nothing was written")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise StoreError(f"{field}: {path} is not writable (no write permission on {probe}); nothing was written")
    if probe != path:  # permission bits do not tell everything (/proc, /sys, root on odd mounts): try for real,
        trial = temp_name(probe, ".probe")  # under a name of our own: writers starting together never collide
        try:
            os.mkdir(trial)
            os.rmdir(trial)
        except OSError as exc:
            raise StoreError(f"{field}: cannot create {path} ({exc.strerror or exc}); nothing was written") from None
    return path


def file_sha256(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def with_file_hashes(runs: pd.DataFrame, hashes: dict[str, str] | None = None) -> pd.DataFrame:
    """``runs`` with ``init_file_sha256`` filled for its from_file rows (null elsewhere).

    ``hashes`` maps an ``init_path`` value to the sha256 the runs were trained with (the runner snapshots them
    before training); paths not in it are hashed now.
    """
    hashes = dict(hashes or {})
    values: list[Any] = []
    for init, path in zip(runs["init"], runs["init_path"], strict=True):
        if init != "from_file" or pd.isna(path):
            values.append(None)
            continue
        if path not in hashes:
            hashes[path] = file_sha256(path)
        values.append(hashes[path])
    out = runs.drop(columns=[FILE_HASH], errors="ignore")
    at = list(out.columns).index("init_path") + 1 if "init_path" in out else len(out.columns)
    out.insert(at, FILE_HASH, pd.array(values, dtype="string"))
    return out
