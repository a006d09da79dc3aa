"""Per-series data-quality report: every reading in is counted out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

WARMUP_GAP_MINUTES = 120
"""A gap this long usually means a sensor change: a Dexcom G6 warms up for
2 h after insertion (G7 30 min, Libre 2 1 h). cgm-format 0.13.0 uses 2 h
45 min (``CALIBRATION_GAP_THRESHOLD`` = 9900 s), which misses a G6 change
done promptly."""


@dataclass
class QualityReport:
    """What ingestion did to one series, reading by reading.

    The counts balance: ``readings_in == readings_used + sum(dropped.values())``.
    ``readings_repaired`` counts used readings whose value or time was changed
    (snapped to the grid, censored value replaced); ``points_imputed`` counts
    grid points that were filled by interpolation and were never readings.

    The boolean flags mirror the predecessor's warnings (too short,
    calibration, quality, imputation, out of range, time duplicates).
    ``calibration_records`` and ``other_records`` count rows that are not
    readings (finger-stick calibrations; insulin, carbs, notes by kind), so
    they are outside ``readings_in``. ``segment_lengths`` is the number of
    grid points of each segment, oldest first, and ``warmup_gaps`` the number
    of gaps between readings of at least ``WARMUP_GAP_MINUTES``, after which
    a new sensor may still be warming up; ``warmup_starts`` is the time of
    the first reading after each such gap.

    ``time_zone`` is ``"device local time"`` or ``"UTC"``; ``dst_changes``
    counts the daylight-saving changes found in local time, whose earlier
    readings were moved by the hour. ``declared_units`` is the unit the file
    declared when its values contradict it and ``source_units`` was set from
    the values instead.
    """

    readings_in: int = 0
    readings_used: int = 0
    readings_repaired: int = 0
    points_imputed: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    repaired: dict[str, int] = field(default_factory=dict)
    too_short: bool = False
    calibration: bool = False
    quality: bool = False
    imputation: bool = False
    out_of_range: bool = False
    time_duplicates: bool = False
    censored_high: int = 0
    censored_low: int = 0
    segments: int = 0
    span_start: str | None = None
    span_end: str | None = None
    sampling_interval_minutes: float | None = None
    source_units: str = "mg/dL"
    messages: list[str] = field(default_factory=list)
    calibration_records: int = 0
    other_records: dict[str, int] = field(default_factory=dict)
    segment_lengths: list[int] = field(default_factory=list)
    warmup_gaps: int = 0
    warmup_starts: list[str] = field(default_factory=list)
    time_zone: str = "device local time"
    dst_changes: int = 0
    declared_units: str | None = None

    @property
    def has_warnings(self) -> bool:
        """True when any of the predecessor's warning flags is set."""
        return any(
            (
                self.too_short,
                self.calibration,
                self.quality,
                self.imputation,
                self.out_of_range,
                self.time_duplicates,
            )
        )

    def drop(self, reason: str, count: int = 1) -> None:
        """Count ``count`` readings dropped for ``reason``."""
        if count:
            self.dropped[reason] = self.dropped.get(reason, 0) + int(count)

    def repair(self, reason: str, count: int = 1) -> None:
        """Count ``count`` used readings repaired for ``reason``."""
        if count:
            self.repaired[reason] = self.repaired.get(reason, 0) + int(count)
            self.readings_repaired += int(count)

    def to_dict(self) -> dict:
        """Return a JSON-ready dict, including ``has_warnings``."""
        data = asdict(self)
        data["has_warnings"] = self.has_warnings
        return data
