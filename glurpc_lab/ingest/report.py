"""Flags, span, sampling interval and messages of a gridded series' quality report."""

from __future__ import annotations

import numpy as np

from glurpc_lab.ingest.quality import WARMUP_GAP_MINUTES
from glurpc_lab.ingest.readings import RawReadings
from glurpc_lab.ingest.series import GRID_MINUTES, GlucoseSeries
from glurpc_lab.ingest.units import REPORTING_RANGE_MGDL

INPUT_POINTS = 96
"""Grid points (8 h) a forecast reads."""

HORIZON_POINTS = 12
"""Grid points (1 h) a forecast predicts."""

WARMUP_HOURS = 24
"""Hours after a sensor-change gap in which readings may be calibration-affected."""

BENIGN_DROP_REASONS = frozenset(
    {
        "duplicate timestamp",
        "near-duplicate (same value within 60 s of the previous reading)",
        "scan reading (series built from historic readings)",
    }
)
"""Drop reasons that do not set the ``quality`` flag: duplicates have their
own flag, and Libre scans repeat the historic series."""


def fill_report(
    series: GlucoseSeries,
    raw: RawReadings,
    *,
    reading_seconds: np.ndarray,
    used_glucose: np.ndarray,
    interpolation_limit_minutes: int,
    conflicting_duplicates: int,
    out_of_order: int,
) -> None:
    """Fill the flags, span, sampling interval, segments and messages of ``series.quality``.

    Parameters
    ----------
    series : GlucoseSeries
        The gridded series; its report already contains the counts.
    raw : RawReadings
        What the format reader found, for units, record counts and notes.
    reading_seconds : numpy.ndarray
        ``int64`` epoch seconds of the valid, unique readings, sorted.
    used_glucose : numpy.ndarray
        mg/dL of the readings that were used.
    interpolation_limit_minutes : int
        The limit used for gridding, for the messages.
    conflicting_duplicates : int
        Dropped duplicates whose value differed from the kept reading.
    out_of_order : int
        Readings that came before their predecessor in the file; -1 when
        at least 90% did, that is the file lists the newest first.
    """
    report = series.quality
    report.calibration_records = raw.calibration_records
    report.other_records = dict(raw.other_records)
    report.messages.extend(raw.messages)

    bounds = series.segment_bounds()
    report.segments = len(bounds)
    report.segment_lengths = [stop - start for start, stop in bounds]
    report.points_imputed = int(series.imputed.sum())
    if len(series):
        report.span_start = str(series.time[0])
        report.span_end = str(series.time[-1])
    gaps_minutes = np.diff(reading_seconds) / 60.0
    if gaps_minutes.size:
        report.sampling_interval_minutes = float(np.median(gaps_minutes))

    # Warm-up: the latest data lies within 24 h after a sensor-change gap.
    long_gap = np.flatnonzero(gaps_minutes >= WARMUP_GAP_MINUTES)
    report.warmup_gaps = int(long_gap.size)
    report.warmup_starts = [str(np.datetime64(int(reading_seconds[i + 1]), "s")) for i in long_gap]
    report.time_zone = "UTC" if raw.utc else "device local time"
    report.declared_units = raw.declared_units
    report.dst_changes = raw.dst_changes
    in_warmup = bool(
        long_gap.size
        and reading_seconds[-1] - reading_seconds[long_gap[-1] + 1] < WARMUP_HOURS * 3600
    )

    report.too_short = not report.segment_lengths or report.segment_lengths[-1] < INPUT_POINTS + HORIZON_POINTS
    report.calibration = raw.calibration_records > 0 or in_warmup
    report.imputation = report.points_imputed > 0
    report.time_duplicates = bool(
        report.dropped.get("duplicate timestamp", 0)
        or report.dropped.get("near-duplicate (same value within 60 s of the previous reading)", 0)
    )
    report.out_of_range = bool(
        report.censored_high
        or report.censored_low
        or np.any(used_glucose < REPORTING_RANGE_MGDL[0])
        or np.any(used_glucose > REPORTING_RANGE_MGDL[1])
    )
    serious_drops = {r: n for r, n in report.dropped.items() if r not in BENIGN_DROP_REASONS}
    report.quality = bool(serious_drops or conflicting_duplicates or raw.quality_issues)

    _add_messages(report, raw, interpolation_limit_minutes, conflicting_duplicates, out_of_order, in_warmup)


def _add_messages(report, raw, limit_minutes, conflicting, out_of_order, in_warmup) -> None:
    """Append one plain sentence per finding to ``report.messages``."""
    messages = report.messages
    messages.extend(raw.quality_issues)
    if out_of_order < 0:
        messages.append("The file lists readings (mostly) newest first; they were sorted oldest first.")
    elif out_of_order:
        messages.append(f"{out_of_order} readings were out of time order and were sorted.")
    duplicates = report.dropped.get("duplicate timestamp", 0)
    if duplicates:
        messages.append(
            f"Dropped {duplicates} readings with a timestamp already seen (kept the first); "
            f"{conflicting} of them had a different value."
        )
    for reason, count in report.dropped.items():
        if reason != "duplicate timestamp":
            messages.append(f"Dropped {count} readings: {reason}.")
    censored = [
        f"{count} {'reading was' if count == 1 else 'readings were'} reported as {label}"
        for count, label in ((report.censored_high, "High"), (report.censored_low, "Low"))
        if count
    ]
    if censored:
        messages.append(
            " and ".join(censored) + "; they are kept at the sensor limit and marked as censored."
        )
    if report.calibration_records:
        messages.append(f"{report.calibration_records} calibration records were found (not used as readings).")
    if in_warmup:
        messages.append(
            f"The latest readings follow a gap of at least {WARMUP_GAP_MINUTES} min by less than "
            f"{WARMUP_HOURS} h; a new sensor may still be settling."
        )
    if report.sampling_interval_minutes and report.sampling_interval_minutes > 1.5 * GRID_MINUTES:
        messages.append(
            f"Readings are {report.sampling_interval_minutes:g} min apart, so most 5-minute grid points "
            "are interpolated; forecasts from such data are less reliable."
        )
    if report.sampling_interval_minutes and report.sampling_interval_minutes < 0.75 * GRID_MINUTES:
        messages.append(
            f"Readings are a median {report.sampling_interval_minutes:g} min apart, closer than the "
            "5-minute grid; a file that merges two sensors looks like this."
        )
    if report.points_imputed:
        messages.append(
            f"Interpolated {report.points_imputed} grid points across gaps of up to {limit_minutes} min."
        )
    if report.segments > 1:
        messages.append(f"Split into {report.segments} segments at gaps longer than {limit_minutes} min.")
    longest = max(report.segment_lengths, default=0)
    if longest < INPUT_POINTS:
        messages.append(
            f"No segment has the {INPUT_POINTS} points (8 h) a forecast needs; the longest has {longest}."
        )
    elif report.too_short:
        messages.append(
            f"The latest segment has {report.segment_lengths[-1]} points, fewer than the "
            f"{INPUT_POINTS + HORIZON_POINTS} needed to forecast it and check the forecast; "
            "earlier segments can still be forecast."
        )
