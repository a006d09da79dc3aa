"""An in-memory least-recently-used tier over the zarr store."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from glurpc_lab.forecast.result import Forecast


def forecast_bytes(forecast: Forecast) -> int:
    """Return the bytes of a forecast's arrays."""
    return sum(int(np.asarray(value).nbytes) for value in vars(forecast).values() if isinstance(value, np.ndarray))


class MemoryCache:
    """Forecasts kept in memory up to a byte limit, least recently used out first.

    Values are shared, not copied, so callers must not modify returned arrays.
    Thread-safe.

    Parameters
    ----------
    max_bytes : int
        Limit on the summed array bytes; 0 disables the tier. A single
        forecast larger than the limit is not kept.
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"memory cache size must be a non-negative number of bytes, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[str, tuple[Forecast, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._evictions = 0

    def get(self, key: str) -> Forecast | None:
        """Return the forecast under ``key`` and mark it used, or None."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self._misses += 1
                return None
            self._items.move_to_end(key)
            self._hits += 1
            return item[0]

    def put(self, key: str, forecast: Forecast) -> None:
        """Keep ``forecast`` under ``key``, evicting the least recently used ones to stay under the limit."""
        size = forecast_bytes(forecast)
        with self._lock:
            previous = self._items.pop(key, None)
            if previous is not None:
                self._bytes -= previous[1]
            if size > self.max_bytes:
                return
            self._items[key] = (forecast, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, evicted_size) = self._items.popitem(last=False)
                self._bytes -= evicted_size
                self._evictions += 1

    def discard(self, key: str) -> None:
        """Forget ``key`` if present."""
        with self._lock:
            item = self._items.pop(key, None)
            if item is not None:
                self._bytes -= item[1]

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def stats(self) -> dict:
        """Return entry count, bytes held, limit and hit, miss and eviction counters."""
        with self._lock:
            return {
                "entries": len(self._items),
                "bytes": self._bytes,
                "max_bytes": self.max_bytes,
                "hits": self._hits,
                "misses": self._misses,
                "evictions": self._evictions,
            }
