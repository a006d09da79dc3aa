"""A byte budget for the store, kept by deleting the least recently used entries.

An entry's last use is its directory's modification time: entries never change
after publishing, so the store sets that time on every read (``Store.touch``).
Every process that writes to a store enforces the same budget after its own
writes. A global lock file keeps two processes from evicting at once.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import uuid
from pathlib import Path

from glurpc_lab.engine import layout
from glurpc_lab.engine.locks import FileLock

logger = logging.getLogger(__name__)


class DiskBudget:
    """Total size limit of the entries of every namespace of one store.

    Parameters
    ----------
    root : pathlib.Path
        Store root.
    max_bytes : int, optional
        Limit in bytes; None means no limit.
    """

    def __init__(self, root: Path, max_bytes: int | None = None) -> None:
        if max_bytes is not None and max_bytes < 0:
            raise ValueError(f"store budget must be a non-negative number of bytes, got {max_bytes}")
        self.root = root
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._evicted_entries = 0
        self._evicted_bytes = 0
        self._last_total: int | None = None

    def scan(self) -> list[tuple[float, int, str, str, Path]]:
        """Return ``(last_used, bytes, namespace, kind, path)`` of every entry, least recently used first.

        NOTE: the scan stats every file of every entry, so its cost grows with
        the store. It runs once per write when a budget is set.
        """
        entries = []
        for namespace, kind, path in layout.iter_entries(self.root):
            try:
                last_used = path.stat().st_mtime
            except FileNotFoundError:
                continue
            entries.append((last_used, layout.directory_bytes(path), namespace, kind, path))
        entries.sort(key=lambda entry: entry[0])
        return entries

    def enforce(self, protect: set[Path] = frozenset()) -> int:
        """Delete least recently used entries until the store fits, and return how many were deleted.

        Entries in ``protect`` (e.g. the one just written) and entries whose
        lock another writer holds are skipped. When another process is
        already evicting, this call returns 0 at once.
        """
        if self.max_bytes is None:
            return 0
        budget_lock = FileLock(self.root / "locks" / "budget.lock")
        if not budget_lock.acquire(blocking=False):
            return 0
        try:
            entries = self.scan()
            total = sum(entry[1] for entry in entries)
            evicted = 0
            freed = 0
            for _, size, namespace, kind, path in entries:
                if total <= self.max_bytes:
                    break
                if path in protect:
                    continue
                if self._evict(namespace, kind, path):
                    total -= size
                    freed += size
                    evicted += 1
        finally:
            budget_lock.release()

        with self._lock:
            self._evicted_entries += evicted
            self._evicted_bytes += freed
            self._last_total = total
        if evicted:
            logger.info("evicted %d store entries (%d bytes) to fit the %d-byte budget", evicted, freed, self.max_bytes)
        if total > self.max_bytes:
            logger.warning("store still uses %d bytes after eviction, over its %d-byte budget", total, self.max_bytes)
        return evicted

    def _evict(self, namespace: str, kind: str, path: Path) -> bool:
        lock = FileLock(layout.lock_path(self.root, namespace, kind, path.name))
        if not lock.acquire(blocking=False):
            return False
        try:
            # Rename first so that readers never see a half-deleted entry.
            trash = path.parent / f"{layout.TRASH_PREFIX}{path.name[:16]}-{uuid.uuid4().hex}"
            try:
                os.replace(path, trash)
            except FileNotFoundError:
                return False
        finally:
            lock.release()
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def stats(self) -> dict:
        """Return the limit, the size found by the last eviction pass and the eviction counters."""
        with self._lock:
            return {
                "max_bytes": self.max_bytes,
                "bytes_at_last_check": self._last_total,
                "evicted_entries": self._evicted_entries,
                "evicted_bytes": self._evicted_bytes,
            }
