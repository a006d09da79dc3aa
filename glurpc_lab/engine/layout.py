"""Directory layout of the store, shared by the store, its byte budget and its checks.

::

    <root>/zarr.json                          store marker and format version
    <root>/locks/stripe-<nn>.lock             flock files, one per stripe of entry keys
    <root>/ns/<namespace>/datasets/<handle>/  one zarr group per processed upload
    <root>/ns/<namespace>/forecasts/<key>/    one zarr group per forecast set
    <root>/ns/<namespace>/lineage/<anchor>/<key>.json
                                              markers that find forecasts of a series
                                              that a longer upload extends

Entries are written to hidden ``.tmp-*`` directories and renamed into place;
``.old-*`` directories are entries on their way to deletion. Names that are
not 64 hex digits are never entries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from glurpc_lab.engine.keys import is_key

ENTRY_KINDS = ("datasets", "forecasts")
"""Sub-directories of a namespace that contain entries."""

TEMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".old-"

LOCK_STRIPES = 256
"""Number of lock files. Entries whose keys share a stripe serialise their writes,
which bounds the number of lock files however many entries the store has."""


def namespaces_dir(root: Path) -> Path:
    """Return the directory that contains one directory per namespace."""
    return root / "ns"


def entry_parent(root: Path, namespace: str, kind: str) -> Path:
    """Return the directory of the ``kind`` entries of ``namespace``."""
    return namespaces_dir(root) / namespace / kind


def lock_path(root: Path, namespace: str, kind: str, key: str) -> Path:
    """Return the lock file that guards writes to one entry."""
    digest = hashlib.sha256(f"{namespace}/{kind}/{key}".encode()).digest()
    stripe = int.from_bytes(digest[:4], "little") % LOCK_STRIPES
    return root / "locks" / f"stripe-{stripe:03d}.lock"


def iter_namespaces(root: Path) -> Iterator[str]:
    """Yield the namespaces that have a directory in the store."""
    folder = namespaces_dir(root)
    if not folder.is_dir():
        return
    for entry in sorted(folder.iterdir()):
        if entry.is_dir():
            yield entry.name


def iter_entries(root: Path, namespace: str | None = None) -> Iterator[tuple[str, str, Path]]:
    """Yield ``(namespace, kind, path)`` of every published entry, in one namespace or all."""
    names = [namespace] if namespace is not None else list(iter_namespaces(root))
    for name in names:
        for kind in ENTRY_KINDS:
            parent = entry_parent(root, name, kind)
            if not parent.is_dir():
                continue
            for entry in parent.iterdir():
                if is_key(entry.name):
                    yield name, kind, entry


def directory_bytes(path: Path) -> int:
    """Return the summed size of the files under ``path``; 0 when it vanished meanwhile."""
    total = 0
    stack = [path]
    while stack:
        folder = stack.pop()
        try:
            children = list(folder.iterdir())
        except FileNotFoundError:
            continue
        for child in children:
            try:
                if child.is_dir():
                    stack.append(child)
                else:
                    total += child.stat().st_size
            except FileNotFoundError:
                continue
    return total
