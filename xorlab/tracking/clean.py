"""``clean_store``: remove what dead writers left in a store, and nothing that is not provably theirs.

A file is removed only when all of these hold:

- **inside the store**: its path, with every symlink resolved, lies inside the store's resolved folder, and it
  is not itself a symlink (writers never make links: a link is the user's, and so is what it points to). A
  ``curves/`` that is a symlink to another disk is left alone and ``xorlab-store check`` names it.
- **this store's**: its name carries the id of a session recorded in this store's ``sessions/`` (temp files
  are named ``.tmp-<session>-…``, uncommitted chunks ``<session>-<seq>.parquet``, set-aside claims
  ``.stale-<session>-…``; a claim names its session inside). A ``.tmp-*`` file of anyone else — the user's own
  in a folder used as ``sweep.dir``, or of an older xorlab that did not name its temp files — is kept.
- **its writer provably dead** (``xorlab.store.liveness``): the session ended (finished, interrupted, failed),
  or its pid is gone on this host, or, for another host, this host watched its heartbeat stay unchanged for
  ``HEARTBEAT_TIMEOUT`` s (run ``clean`` again a minute later). A live pid is never dead, whatever its
  heartbeat: a paused sweep (Ctrl-Z, a suspended VM) keeps every file, and reads ``stalled``.

An uncommitted curves file is also re-checked just before it is removed: if its runs file appeared meanwhile
(the chunk was committed), it is kept. Committed chunks and session files are never touched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from xorlab.store.claims import CLAIMS, read_claim
from xorlab.store.files import store_path
from xorlab.store.format import TEMP_PREFIX, read_manifest
from xorlab.store.liveness import StoreObserver
from xorlab.store.reader import committed_chunks
from xorlab.store.sessions import read_sessions, session_state


def _owner(folder: str, name: str) -> str | None:
    """The session a leftover's name says wrote it (None: not a name a writer gives)."""
    if name.startswith(TEMP_PREFIX):  # .tmp-<session>-<12 hex><suffix>
        rest = name[len(TEMP_PREFIX) :].rsplit("-", 1)
        return rest[0] if len(rest) == 2 else None
    if folder == CLAIMS and name.startswith(".stale-"):  # .stale-<session>-<bucket>-<8 hex>
        rest = name[len(".stale-") :].rsplit("-", 2)
        return rest[0] if len(rest) == 3 else None
    if folder == "curves" and name.endswith(".parquet"):  # <session>-<seq>.parquet
        rest = name[: -len(".parquet")].rsplit("-", 1)
        return rest[0] if len(rest) == 2 and rest[1].isdigit() else None
    return None


DEAD = ("finished", "interrupted", "failed", "crashed")


@dataclass
class Cleaning:
    """What ``clean_store`` removed (or would remove) and what it kept, and why."""

    removed: list[Path] = field(default_factory=list)
    kept: dict[str, list[Path]] = field(default_factory=dict)  # reason -> files

    def keep(self, reason: str, p: Path) -> None:
        self.kept.setdefault(reason, []).append(p)


def outside_links(store: Path) -> list[tuple[Path, Path]]:
    """(link, target) of every symlink in the store's own folders whose target lies outside the store."""
    root = store.resolve()
    out = []
    for folder in (store, *(store / s for s in ("runs", "curves", "sessions", CLAIMS))):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            if e.is_symlink():
                try:
                    target = Path(e.path).resolve()
                except (OSError, RuntimeError):  # a symlink loop: it points nowhere, inside or out
                    out.append((Path(e.path), Path(os.readlink(e.path))))
                    continue
                if not target.is_relative_to(root):
                    out.append((Path(e.path), target))
    return out


def _own_folder(folder: Path, root: Path) -> bool:
    """Whether ``folder`` is a real directory of the store (not a symlink, not missing): only then does the
    absence of a runs file in it prove that a chunk was never committed."""
    try:
        return not folder.is_symlink() and folder.is_dir() and folder.resolve().parent == root
    except (OSError, RuntimeError):
        return False


def _inside(p: Path, root: Path) -> bool:
    if p.is_symlink():
        return False
    try:
        return p.resolve(strict=True).is_relative_to(root)
    except (OSError, RuntimeError):  # gone meanwhile, or a symlink loop above it
        return False


def clean(path: str | Path, dry_run: bool = False) -> Cleaning:
    """Remove leftovers of dead writers from the store at ``path`` (see the module docstring)."""
    path = store_path(path)
    read_manifest(path)
    root = path.resolve()
    observer = StoreObserver(path)
    states = {str(s.get("session")): session_state(s, observer=observer) for s in read_sessions(path)}
    observer.save()
    result = Cleaning()
    committed = {p.name for p in committed_chunks(path)}
    # Whether a curves file's chunk was committed is read from runs/; if runs/ is not the store's own folder (a
    # symlink, say to a mount that is not there), its absence proves nothing and no curves file is removed.
    commits_known = _own_folder(path / "runs", root)
    candidates: list[tuple[Path, str | None]] = []
    for folder in (path, path / "runs", path / "curves", path / "sessions", path / CLAIMS):
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            if folder.name == CLAIMS and name.endswith(".claim") and not name.startswith("."):
                owner = (read_claim(folder / name) or {}).get("session")
                candidates.append((folder / name, owner if isinstance(owner, str) else None))
            elif name.startswith((TEMP_PREFIX, ".stale-")) or (
                folder.name == "curves" and name.endswith(".parquet") and name not in committed
            ):
                candidates.append((folder / name, _owner(folder.name, name)))
    for p, owner in candidates:
        if not _inside(p, root):
            result.keep("outside the store (a symlink, or under a folder that links elsewhere)", p)
        elif owner is None or owner not in states:
            result.keep("not named for a session of this store", p)
        elif states[owner] not in DEAD:
            result.keep(f"its writer is {states[owner]} (not provably dead)", p)
        elif p.parent.name == "curves" and not commits_known:
            result.keep("runs/ is not this store's own folder: whether its chunk was committed is unknown", p)
        elif p.parent.name == "curves" and (path / "runs" / p.name).exists():
            continue  # committed meanwhile
        else:
            result.removed.append(p)
    if not dry_run:
        for p in result.removed:
            if p.parent.name == "curves" and (path / "runs" / p.name).exists():
                continue  # committed since it was listed: the writer's chunk is whole, keep it
            p.unlink(missing_ok=True)
    return result
