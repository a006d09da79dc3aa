"""Overlapping device tracks: two receivers, two sensors or two sections covering the same hours.

Readings of two tracks are never averaged or interleaved. The track with
the most readings is kept whole; another track keeps only the readings in
time the kept tracks do not cover. A track whose readings repeat a kept
track's values after a whole-hour shift is a copy from a device whose clock
was set to another time zone, and is set aside entirely.
"""

from __future__ import annotations

import numpy as np

from glurpc_lab.ingest.readings import RawReadings

OVERLAP_REASON = "overlapping device track (a device with more readings covers the same time)"
SHIFTED_COPY_REASON = "copy of another device's readings shifted by whole hours (device clock in another time zone)"

NEAR_SECONDS = 150
"""A reading within half a grid step of a kept reading is covered by it."""

SHIFT_MATCH_FRACTION = 0.8
"""Share of a track's readings that must equal a kept track's readings after one whole-hour shift
for the track to count as a shifted copy."""


def resolve_overlaps(raw: RawReadings, *, limit_seconds: int) -> None:
    """Keep one track wherever tracks overlap, counting every reading set aside.

    Parameters
    ----------
    raw : RawReadings
        Readings with ``track`` labels; nothing happens without labels or with one track.
    limit_seconds : int
        Gap between consecutive kept readings that still counts as covered
        (the interpolation limit, in seconds).
    """
    if raw.track is None:
        return
    valid = ~np.isnat(raw.time)
    labels, first_seen, counts = np.unique(raw.track[valid].astype(str), return_index=True, return_counts=True)
    if len(labels) < 2:
        return

    # Most readings first; the earlier track in the file breaks ties.
    order = sorted(range(len(labels)), key=lambda i: (-counts[i], first_seen[i]))
    seconds = raw.time.astype("datetime64[s]").astype(np.int64)
    track = raw.track.astype(str)
    keep = np.ones(len(seconds), dtype=bool)
    shifted_copy = np.zeros(len(seconds), dtype=bool)
    primary = np.flatnonzero(valid & (track == labels[order[0]]))
    primary = primary[np.argsort(seconds[primary], kind="stable")]
    kept_seconds = seconds[primary]
    kept_values = raw.glucose[primary]
    for position in order[1:]:
        members = np.flatnonzero(valid & (track == labels[position]))
        shift = _whole_hour_shift(seconds[members], raw.glucose[members], kept_seconds, kept_values)
        if shift is not None:
            shifted_copy[members] = True
            raw.messages.append(
                f"A second device's {len(members)} readings repeat the main device's readings "
                f"{shift:+d} h apart (a device clock set to another time zone); they were set aside. "
                "Upload the export of one device to choose the other."
            )
            continue
        covered = _covered(seconds[members], kept_seconds, limit_seconds)
        keep[members[covered]] = False
        added = members[~covered]
        merged = np.argsort(np.concatenate([kept_seconds, seconds[added]]), kind="stable")
        kept_values = np.concatenate([kept_values, raw.glucose[added]])[merged]
        kept_seconds = np.concatenate([kept_seconds, seconds[added]])[merged]

    overlapping = int((~keep).sum())
    if overlapping:
        raw.messages.append(
            f"{len(labels)} devices or sections recorded overlapping hours; {overlapping} readings of "
            "the devices with fewer readings were set aside where another device covers the same time."
        )
    raw.keep(~shifted_copy, SHIFTED_COPY_REASON)
    raw.keep(keep[~shifted_copy], OVERLAP_REASON)


def _covered(times: np.ndarray, kept: np.ndarray, limit_seconds: int) -> np.ndarray:
    """Return True for each time near a kept reading or inside a short gap between two."""
    if kept.size == 0:
        return np.zeros(len(times), dtype=bool)
    after = np.searchsorted(kept, times, side="left")
    before = after - 1
    has_after = after < kept.size
    has_before = before >= 0
    next_time = kept[np.minimum(after, kept.size - 1)]
    previous_time = kept[np.maximum(before, 0)]
    near = (has_after & (np.abs(next_time - times) <= NEAR_SECONDS)) | (
        has_before & (np.abs(times - previous_time) <= NEAR_SECONDS)
    )
    inside = has_after & has_before & (next_time - previous_time <= limit_seconds)
    return near | inside


def _whole_hour_shift(times, values, kept_times, kept_values) -> int | None:
    """Return the shift in hours (-14 to 14, not 0) that maps most readings onto equal kept readings."""
    if len(times) == 0 or kept_times.size == 0:
        return None
    for hours in [h for h in range(-14, 15) if h != 0]:
        moved = times - hours * 3600
        index = _nearest(kept_times, moved)
        close = np.abs(kept_times[index] - moved) <= NEAR_SECONDS
        equal = close & (np.abs(kept_values[index] - values) <= 1.0)
        if equal.mean() >= SHIFT_MATCH_FRACTION:
            return hours
    return None


def _nearest(sorted_times: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Return the index of the nearest element of non-empty ``sorted_times`` for each of ``times``."""
    after = np.clip(np.searchsorted(sorted_times, times), 0, sorted_times.size - 1)
    before = np.maximum(after - 1, 0)
    closer_before = np.abs(times - sorted_times[before]) < np.abs(sorted_times[after] - times)
    return np.where(closer_before, before, after)
