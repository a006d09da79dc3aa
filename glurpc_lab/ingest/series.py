"""Gridded glucose series: the contract between ingestion and forecasting."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from glurpc_lab.ingest.quality import QualityReport

GRID_MINUTES = 5
"""Sampling interval of every gridded series, in minutes."""


@dataclass(frozen=True)
class GlucoseSeries:
    """One subject's glucose on a regular 5-minute grid, split into gap-free segments.

    All arrays have the same length ``n`` and are sorted by time. Inside a
    segment consecutive points are exactly 5 minutes apart; between segments
    there is a gap longer than the interpolation limit, and no forecasting
    window ever spans two segments.

    Attributes
    ----------
    subject : str
        Subject label. For single-person exports this is ``"series-1"``; for
        research tables it is the table's ``id`` value.
    time : numpy.ndarray
        ``datetime64[s]`` naive device time of each grid point, shape ``(n,)``.
    glucose : numpy.ndarray
        Glucose in mg/dL, ``float32``, shape ``(n,)``.
    segment : numpy.ndarray
        ``int32`` segment number of each point, non-decreasing from 0.
    imputed : numpy.ndarray
        ``bool``, True where the value was interpolated across a short gap.
    censored : numpy.ndarray
        ``int8``: +1 where the device reported "High", -1 for "Low", 0 otherwise.
    quality : QualityReport
        Counts and flags for this series.
    """

    subject: str
    time: np.ndarray
    glucose: np.ndarray
    segment: np.ndarray
    imputed: np.ndarray
    censored: np.ndarray
    quality: QualityReport

    def __len__(self) -> int:
        return int(self.glucose.shape[0])

    def segment_bounds(self) -> list[tuple[int, int]]:
        """Return ``(start, stop)`` index pairs of each segment, oldest first."""
        if len(self) == 0:
            return []
        change = np.flatnonzero(np.diff(self.segment)) + 1
        starts = np.concatenate([[0], change])
        stops = np.concatenate([change, [len(self)]])
        return [(int(a), int(b)) for a, b in zip(starts, stops)]


@dataclass(frozen=True)
class CgmDataset:
    """Everything read from one uploaded file: one series per subject.

    Attributes
    ----------
    source_format : str
        Detected format, e.g. ``"dexcom"``, ``"libre"``, ``"unified"``, ``"research-table"``.
    series : tuple of GlucoseSeries
        One entry per subject, in file order.
    """

    source_format: str
    series: tuple[GlucoseSeries, ...] = field(default_factory=tuple)
