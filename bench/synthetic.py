"""Synthetic CGM exports in the ``id,time,gl`` research-table format.

The benchmarks need exports of a chosen length without personal health data,
so they draw glucose as a bounded random walk around a daily rhythm.
"""

from __future__ import annotations

import numpy as np

READINGS_PER_DAY = 288
"""5-minute readings in one day."""


def glucose_walk(n_readings: int, seed: int) -> np.ndarray:
    """Draw ``n_readings`` glucose values in mg/dL, clipped to the 40-400 sensor range."""
    rng = np.random.default_rng(seed)
    minutes = np.arange(n_readings) * 5.0
    daily = 30.0 * np.sin(2 * np.pi * minutes / (24 * 60))

    # A mean-reverting AR(1) walk (correlation time about 4 hours) stays in range without clipping much.
    noise = rng.normal(0.0, 4.0, n_readings)
    walk = np.empty(n_readings)
    level = 0.0
    for step in range(n_readings):
        level = 0.98 * level + noise[step]
        walk[step] = level
    return np.clip(120.0 + daily + walk, 40.0, 400.0)


def research_export(days: float, *, subjects: int = 1, seed: int = 0) -> bytes:
    """Build an ``id,time,gl`` CSV with ``days`` of 5-minute readings for each subject.

    Parameters
    ----------
    days : float
        Length of each subject's recording in days.
    subjects : int
        Number of subjects (series) in the file.
    seed : int
        Seed of the glucose values; a different seed gives different file bytes.

    Returns
    -------
    bytes
        UTF-8 CSV with a header row and ``subjects * days * 288`` readings.
    """
    n_readings = int(round(days * READINGS_PER_DAY))
    start = np.datetime64("2024-03-01T00:00:00", "s")
    times = (start + np.arange(n_readings) * np.timedelta64(300, "s")).astype(str)

    lines = ["id,time,gl"]
    for subject in range(subjects):
        glucose = glucose_walk(n_readings, seed * 1000 + subject)
        subject_id = f"subject{subject + 1}"
        lines.extend(f"{subject_id},{time.replace('T', ' ')},{value:.0f}" for time, value in zip(times, glucose))
    return ("\n".join(lines) + "\n").encode("utf-8")
