"""A fixed pool of loaded model copies that requests borrow one at a time."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from glurpc_lab.engine.errors import ModelBusyError

logger = logging.getLogger(__name__)


def default_devices() -> list[str]:
    """Return every ``cuda:i`` device when CUDA is available, else ``["cpu"]``."""
    import torch

    if torch.cuda.is_available():
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return ["cpu"]


class ModelPool:
    """Model copies loaded once per device, lent out through a queue.

    Every copy is loaded when the pool is built and stays loaded until
    :meth:`close`. A borrower gets exclusive use of one copy, so a copy never
    runs two forward passes at once.

    Parameters
    ----------
    load : callable
        ``load(device) -> LoadedModel``; called once per copy.
    devices : sequence of str
        Torch device names. A device may repeat, e.g. ``["cpu", "cpu"]``.
    copies_per_device : int
        Copies loaded on each entry of ``devices``.
    wait_seconds : float
        Default maximum wait in :meth:`borrow` for a free copy, in seconds.
    """

    def __init__(
        self,
        load: Callable[[str], Any],
        devices: Sequence[str],
        copies_per_device: int = 1,
        *,
        wait_seconds: float = 600.0,
    ) -> None:
        if copies_per_device < 1:
            raise ValueError(f"copies_per_device must be at least 1, got {copies_per_device}")
        if not devices:
            raise ValueError("devices is empty; pass at least one device such as 'cpu'")

        self.wait_seconds = float(wait_seconds)
        self._free: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._waiting = 0
        self._borrows = 0
        self._timeouts = 0
        self._busy_seconds = 0.0

        started = time.perf_counter()
        copies = []
        for device in devices:
            for _ in range(copies_per_device):
                copies.append(load(device))

        model_ids = {copy.model_id for copy in copies}
        if len(model_ids) != 1:
            raise RuntimeError(f"model copies disagree on model_id: {sorted(model_ids)}")

        self.copies: tuple = tuple(copies)
        self.devices: tuple[str, ...] = tuple(devices)
        self.model_id: str = copies[0].model_id
        for copy in copies:
            self._free.put(copy)
        logger.info(
            "loaded %d model copies on %s in %.2f s",
            len(copies),
            ",".join(self.devices),
            time.perf_counter() - started,
        )

    @contextmanager
    def borrow(self, timeout: float | None = None) -> Iterator[Any]:
        """Lend one free model copy for the duration of a ``with`` block.

        Parameters
        ----------
        timeout : float, optional
            Maximum wait for a free copy in seconds; the pool's
            ``wait_seconds`` when None.

        Raises
        ------
        ModelBusyError
            When no copy became free within the wait.
        """
        wait = self.wait_seconds if timeout is None else float(timeout)
        with self._lock:
            self._waiting += 1
        try:
            copy = self._free.get(timeout=wait)
        except queue.Empty:
            with self._lock:
                self._timeouts += 1
            raise ModelBusyError(
                f"all {len(self.copies)} model copies stayed busy for {wait:g} s; retry later"
            ) from None
        finally:
            with self._lock:
                self._waiting -= 1

        started = time.perf_counter()
        try:
            yield copy
        finally:
            self._free.put(copy)
            with self._lock:
                self._borrows += 1
                self._busy_seconds += time.perf_counter() - started

    def acquire(self, timeout: float) -> Any | None:
        """Take a free copy for the scheduler, or return None after ``timeout`` seconds.

        Unlike :meth:`borrow`, an empty wait is not counted as a timeout,
        because the scheduler polls. Return the copy with :meth:`release`.
        """
        try:
            copy = self._free.get(timeout=timeout)
        except queue.Empty:
            return None
        with self._lock:
            self._borrows += 1
        return copy

    def release(self, copy: Any) -> None:
        """Return a copy taken with :meth:`acquire`."""
        self._free.put(copy)

    def stats(self) -> dict:
        """Return copy counts, current waiters and cumulative borrow counters."""
        with self._lock:
            return {
                "copies": len(self.copies),
                "free": self._free.qsize(),
                "waiting": self._waiting,
                "borrows": self._borrows,
                "timeouts": self._timeouts,
                "busy_seconds": round(self._busy_seconds, 3),
            }

    def close(self) -> None:
        """Drop the references to every copy so their memory can be freed."""
        while True:
            try:
                self._free.get_nowait()
            except queue.Empty:
                break
        self.copies = ()
