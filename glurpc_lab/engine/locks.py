"""Advisory file locks that let several processes share one store.

zarr 3 has no synchronizer, so processes that write the same entry must
coordinate themselves. ``flock`` locks belong to an open file description:
the kernel drops them when the holder exits, even after SIGKILL, so a killed
writer never leaves a lock behind.

NOTE: ``fcntl.flock`` exists on POSIX only. On NFS it works only where client
and server support it, so keep a shared store on a local disk.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path


class LockTimeoutError(TimeoutError):
    """The lock stayed held by another process or thread for the whole wait."""


class FileLock:
    """An exclusive ``flock`` on one lock file, usable as a context manager.

    Each :meth:`acquire` opens its own file description, so two threads of one
    process exclude each other too. The lock file is never deleted: deleting a
    lock file while another process waits on it would let two holders in.

    Parameters
    ----------
    path : str or os.PathLike
        Lock file; created (mode 0600) when missing.
    timeout : float, optional
        Maximum wait in seconds; None waits forever.
    """

    POLL_SECONDS = 0.01

    def __init__(self, path: str | os.PathLike, *, timeout: float | None = None) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._fd: int | None = None

    def acquire(self, *, blocking: bool = True) -> bool:
        """Take the lock; return False when ``blocking`` is False and another holder has it.

        Raises
        ------
        LockTimeoutError
            When ``timeout`` passed while another holder kept the lock.
        """
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fd = fd
                return True
            except OSError as error:
                if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    os.close(fd)
                    raise
            if not blocking:
                os.close(fd)
                return False
            if deadline is not None and time.monotonic() >= deadline:
                os.close(fd)
                raise LockTimeoutError(f"lock {self.path.name} stayed held for {self.timeout:g} s")
            time.sleep(self.POLL_SECONDS)

    def release(self) -> None:
        """Drop the lock; a no-op when it is not held."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()
