"""Readings as a format reader found them, before gridding."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RawReadings:
    """One subject's glucose readings in file order, in mg/dL.

    Format readers fill this; ``grid.grid_readings`` turns it into a
    ``GlucoseSeries``. Rows a reader already rejected (for example Libre scan
    readings) are not in the arrays but are counted in ``dropped``, so
    ``readings_in`` still counts every glucose reading of the file.

    Attributes
    ----------
    subject : str
        Subject label.
    time : numpy.ndarray
        ``datetime64[s]`` device time, shape ``(n,)``; NaT where the
        timestamp was missing or invalid.
    glucose : numpy.ndarray
        ``float64`` glucose in mg/dL, shape ``(n,)``; NaN where the value was
        missing or invalid. Censored readings carry the sensor limit.
    censored : numpy.ndarray
        ``int8``, +1 for "High", -1 for "Low", 0 otherwise, shape ``(n,)``.
    source_units : str
        ``"mg/dL"`` or ``"mmol/L"``, the unit the file stored glucose in.
    dropped : dict of str to int
        Readings the reader rejected, by reason.
    calibration_records : int
        Calibration or finger-stick records; they are not readings.
    other_records : dict of str to int
        Other non-glucose rows (insulin, carbs, notes), by kind.
    messages : list of str
        Notes for the user about how the file was read.
    quality_issues : list of str
        Notes that also set the report's ``quality`` flag.
    utc : bool
        True when ``time`` is UTC (Nightscout, or timestamps that carried
        offsets); False for device wall-clock time, which can jump at
        daylight-saving changes.
    track : numpy.ndarray or None
        ``str`` label of the device or sensor that recorded each reading,
        shape ``(n,)``, where the format names one; None otherwise.
    declared_units : str or None
        The unit the file's header or metadata declared, when it differs
        from ``source_units`` because the values contradict it.
    dst_shift : numpy.ndarray or None
        ``int64`` seconds added to each reading's time for a daylight-saving
        change, shape ``(n,)``; None until ``clock.repair_dst`` ran.
    dst_changes : int
        Daylight-saving changes that ``clock.repair_dst`` found.
    """

    subject: str
    time: np.ndarray
    glucose: np.ndarray
    censored: np.ndarray
    source_units: str = "mg/dL"
    dropped: dict[str, int] = field(default_factory=dict)
    calibration_records: int = 0
    other_records: dict[str, int] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    quality_issues: list[str] = field(default_factory=list)
    utc: bool = False
    track: np.ndarray | None = None
    declared_units: str | None = None
    dst_shift: np.ndarray | None = None
    dst_changes: int = 0

    @property
    def readings_in(self) -> int:
        """Every glucose reading of the file for this subject, kept or rejected."""
        return int(self.time.shape[0]) + sum(self.dropped.values())

    def drop(self, reason: str, count: int) -> None:
        """Count ``count`` readings rejected by the reader for ``reason``."""
        if count:
            self.dropped[reason] = self.dropped.get(reason, 0) + int(count)

    def keep(self, mask: np.ndarray, reason: str) -> None:
        """Keep only the readings where ``mask`` is True, counting the rest under ``reason``."""
        self.drop(reason, int((~mask).sum()))
        self.time = self.time[mask]
        self.glucose = self.glucose[mask]
        self.censored = self.censored[mask]
        if self.track is not None:
            self.track = self.track[mask]
        if self.dst_shift is not None:
            self.dst_shift = self.dst_shift[mask]


def to_seconds(stamps) -> np.ndarray:
    """Convert pandas or numpy timestamps to naive ``datetime64[s]``, NaT kept."""
    return np.asarray(stamps, dtype="datetime64[ns]").astype("datetime64[s]")
