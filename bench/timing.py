"""Timing helpers shared by the benchmark modules."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def summarize_seconds(samples: list[float]) -> dict:
    """Summarize durations in seconds as median, p99, min, max and count."""
    values = np.asarray(samples, dtype=np.float64)
    if values.size == 0:
        return {"count": 0, "median_s": None, "p99_s": None, "min_s": None, "max_s": None}
    return {
        "count": int(values.size),
        "median_s": float(np.median(values)),
        "p99_s": float(np.percentile(values, 99)),
        "min_s": float(values.min()),
        "max_s": float(values.max()),
    }


def time_calls(function: Callable[[], object], *, repeats: int, warmup: int = 1) -> dict:
    """Call ``function`` ``warmup`` times untimed, then ``repeats`` times timed, and summarize the durations."""
    for _ in range(warmup):
        function()
    durations = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        durations.append(time.perf_counter() - started)
    return summarize_seconds(durations)
