"""Put readings on the clock-anchored 5-minute grid and account for every one.

Each grid instant (:00, :05, ... of the device clock) inside a segment gets
the value linearly interpolated between the two readings around it, so
values are never moved in time. Consecutive readings more than the
interpolation limit apart start a new segment; no grid point is created in
such a gap.
"""

from __future__ import annotations

import numpy as np

from glurpc_lab.ingest.quality import QualityReport
from glurpc_lab.ingest.readings import RawReadings
from glurpc_lab.ingest.report import fill_report
from glurpc_lab.ingest.series import GRID_MINUTES, GlucoseSeries

GRID_SECONDS = GRID_MINUTES * 60

DUPLICATE_REASON = "duplicate timestamp"
NEAR_DUPLICATE_REASON = "near-duplicate (same value within 60 s of the previous reading)"
NEAR_DUPLICATE_SECONDS = 60
DST_REPAIR = "time moved for a daylight-saving change"
INVALID_TIME_REASON = "missing or invalid timestamp"
INVALID_VALUE_REASON = "missing or invalid glucose value"
NO_GRID_INSTANT_REASON = "segment too short to reach a 5-minute grid instant"
BETWEEN_GRID_REASON = "between grid instants (sampled more often than every 5 minutes)"


def grid_readings(raw: RawReadings, *, interpolation_limit_minutes: int) -> GlucoseSeries:
    """Grid one subject's readings and build its quality report.

    Parameters
    ----------
    raw : RawReadings
        Readings in mg/dL, in any order.
    interpolation_limit_minutes : int
        Maximum gap between consecutive readings, in minutes, that is bridged
        by interpolation; a longer gap starts a new segment.

    Returns
    -------
    GlucoseSeries
        Gridded series whose report satisfies
        ``readings_in == readings_used + sum(dropped.values())``.
    """
    report = QualityReport(source_units=raw.source_units)
    report.readings_in = raw.readings_in
    for reason, count in raw.dropped.items():
        report.drop(reason, count)
    report.censored_high = int((raw.censored > 0).sum())
    report.censored_low = int((raw.censored < 0).sum())

    # Invalid rows first, then time order. The stable sort keeps file order
    # among equal timestamps, so "keep the first duplicate" means first in the file.
    bad_time = np.isnat(raw.time)
    bad_value = ~bad_time & ~np.isfinite(raw.glucose)
    report.drop(INVALID_TIME_REASON, int(bad_time.sum()))
    report.drop(INVALID_VALUE_REASON, int(bad_value.sum()))
    valid = ~(bad_time | bad_value)
    seconds = raw.time[valid].astype(np.int64)
    glucose = raw.glucose[valid].astype(np.float64)
    censored = raw.censored[valid].astype(np.int8)
    shifted = (raw.dst_shift[valid] != 0) if raw.dst_shift is not None else np.zeros(len(seconds), dtype=bool)
    out_of_order = int((np.diff(seconds) < 0).sum())
    if len(seconds) > 2 and out_of_order >= 0.9 * (len(seconds) - 1):
        out_of_order = -1
    order = np.argsort(seconds, kind="stable")
    seconds, glucose, censored, shifted = seconds[order], glucose[order], censored[order], shifted[order]

    # The leading False is omitted for an empty subject so lengths still match.
    first = np.zeros(min(1, len(seconds)), dtype=bool)
    duplicate = np.concatenate([first, np.diff(seconds) == 0])
    first_of_run = np.maximum.accumulate(np.where(~duplicate, np.arange(len(seconds)), 0))
    conflicting = int((duplicate & (glucose != glucose[first_of_run])).sum())
    report.drop(DUPLICATE_REASON, int(duplicate.sum()))
    seconds, glucose, censored, shifted = seconds[~duplicate], glucose[~duplicate], censored[~duplicate], shifted[~duplicate]

    # Two uploaders or a backfill can store one reading twice a few seconds
    # apart; the later copy of an equal value is dropped.
    near = np.concatenate([first, (np.diff(seconds) <= NEAR_DUPLICATE_SECONDS) & (np.diff(glucose) == 0)])
    report.drop(NEAR_DUPLICATE_REASON, int(near.sum()))
    seconds, glucose, censored, shifted = seconds[~near], glucose[~near], censored[~near], shifted[~near]

    limit_seconds = interpolation_limit_minutes * 60
    pieces = _grid_segments(seconds, glucose, censored, limit_seconds)
    used = pieces["used"]
    report.drop(NO_GRID_INSTANT_REASON, pieces["no_grid_readings"])
    report.drop(BETWEEN_GRID_REASON, int((~used).sum()) - pieces["no_grid_readings"])
    report.readings_used = int(used.sum())
    report.repair("censored value set to the sensor limit", int((used & (censored != 0)).sum()))
    report.repair(DST_REPAIR, int((used & shifted).sum()))

    series = GlucoseSeries(
        subject=raw.subject,
        time=pieces["time"].astype("datetime64[s]"),
        glucose=pieces["glucose"].astype(np.float32),
        segment=pieces["segment"].astype(np.int32),
        imputed=pieces["imputed"],
        censored=pieces["censored"].astype(np.int8),
        quality=report,
    )
    fill_report(
        series,
        raw,
        reading_seconds=seconds,
        used_glucose=glucose[used],
        interpolation_limit_minutes=interpolation_limit_minutes,
        conflicting_duplicates=conflicting,
        out_of_order=out_of_order,
    )
    return series


def _grid_segments(
    seconds: np.ndarray, glucose: np.ndarray, censored: np.ndarray, limit_seconds: int
) -> dict:
    """Interpolate sorted, unique readings at grid instants, segment by segment."""
    used = np.zeros(len(seconds), dtype=bool)
    no_grid_readings = 0
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("time", "glucose", "segment", "imputed", "censored")}
    if len(seconds) == 0:
        return {"used": used, "no_grid_readings": 0, **{k: np.array([]) for k in parts}}

    breaks = np.flatnonzero(np.diff(seconds) > limit_seconds) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [len(seconds)]])
    segment_number = 0
    for start, stop in zip(starts, stops):
        t = seconds[start:stop]
        first = -(-t[0] // GRID_SECONDS) * GRID_SECONDS
        last = (t[-1] // GRID_SECONDS) * GRID_SECONDS
        if first > last:
            no_grid_readings += stop - start
            continue
        grid = np.arange(first, last + 1, GRID_SECONDS, dtype=np.int64)

        # right: first reading at or after the instant; left: the one before,
        # or the same reading when it lies exactly on the instant.
        right = np.searchsorted(t, grid, side="left")
        exact = t[right] == grid
        left = np.where(exact, right, right - 1)
        used[start + left] = True
        used[start + right] = True

        # A point is imputed when a reading is missing around it: its
        # neighbours are more than 1.5 grid steps apart and neither is
        # within half a step of it.
        before = grid - t[left]
        after = t[right] - grid
        imputed = ~exact & ((t[right] - t[left]) > 1.5 * GRID_SECONDS) & (np.minimum(before, after) > GRID_SECONDS / 2)

        # A point next to a censored reading is censored too, taking the
        # direction of the nearer censored neighbour.
        near_is_left = before <= after
        near = np.where(near_is_left, censored[start + left], censored[start + right])
        far = np.where(near_is_left, censored[start + right], censored[start + left])
        parts["censored"].append(np.where(near != 0, near, far))
        parts["time"].append(grid)
        parts["glucose"].append(np.interp(grid, t, glucose[start:stop]))
        parts["segment"].append(np.full(len(grid), segment_number))
        parts["imputed"].append(imputed)
        segment_number += 1

    merged = {k: (np.concatenate(v) if v else np.array([])) for k, v in parts.items()}
    merged["imputed"] = merged["imputed"].astype(bool)
    return {"used": used, "no_grid_readings": int(no_grid_readings), **merged}
