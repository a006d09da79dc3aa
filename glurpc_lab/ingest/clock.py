"""Daylight-saving changes in device wall-clock time.

A device that follows local time repeats an hour when the clock goes back
and skips one when it goes forward. Read naively, the repeated hour looks
like duplicates (and would be dropped) and the skipped hour like a gap
(and would be imputed or split). Without a time zone in the file, the
change is recognised from its shape in file order. The clock went back when
the time steps back 45-60 minutes, and forward when it steps 61-76 minutes
ahead (one hour plus one 5- or 15-minute reading interval), at night, in a
month in which some time zone changes its clock.
The readings before the change are then moved by the hour, so the series
runs on the clock in use after the change, which is the clock of the
newest readings.
"""

from __future__ import annotations

import numpy as np

from glurpc_lab.ingest.readings import RawReadings

DST_MONTHS = frozenset({3, 4, 9, 10, 11})
"""Months in which time zones of both hemispheres change their clocks."""

BACK_STEP_SECONDS = (-3600, -2700)
"""File-order steps (inclusive) that mean the clock went back one hour."""

FORWARD_STEP_SECONDS = (3601, 4560)
"""File-order steps (inclusive) that mean the clock went forward one hour."""

CHANGE_HOURS = frozenset({0, 1, 2, 3, 4})
"""Local hours of the first reading after a change; clocks change between midnight and 04:00."""

ORDERED_FRACTION = 0.95
"""Share of steps that must go one way before a file is trusted to be in time order."""


def repair_dst(raw: RawReadings) -> None:
    """Move readings before each detected daylight-saving change onto the later clock.

    Works track by track in file order, forwards or backwards in time.
    Files of UTC times, and files not in time order, are left alone.
    Adds ``raw.dst_shift`` (seconds added to each reading) and one message per change.
    """
    raw.dst_shift = np.zeros(len(raw.time), dtype=np.int64)
    if raw.utc:
        return
    groups = [np.arange(len(raw.time))] if raw.track is None else [
        np.flatnonzero(raw.track == label) for label in dict.fromkeys(raw.track.tolist())
    ]
    for members in groups:
        members = members[~np.isnat(raw.time[members])]
        _repair_group(raw, members)


def _repair_group(raw: RawReadings, members: np.ndarray) -> None:
    """Detect changes in one track's readings (``members``, file order) and shift them."""
    if len(members) < 3:
        return
    seconds = raw.time[members].astype("datetime64[s]").astype(np.int64)
    steps = np.diff(seconds)
    moving = steps[steps != 0]
    if moving.size == 0:
        return
    backwards = (moving < 0).mean() > 0.5
    if max((moving < 0).mean(), (moving > 0).mean()) < ORDERED_FRACTION:
        return
    if backwards:
        members, seconds = members[::-1], seconds[::-1]
        steps = np.diff(seconds)

    # steps[i] is the step from reading i to reading i + 1, in time order.
    after = raw.time[members][1:]
    hours = after.astype("datetime64[h]").astype(np.int64) % 24
    months = after.astype("datetime64[M]").astype(np.int64) % 12 + 1
    at_night = np.isin(hours, list(CHANGE_HOURS)) & np.isin(months, list(DST_MONTHS))
    went_back = at_night & (steps >= BACK_STEP_SECONDS[0]) & (steps <= BACK_STEP_SECONDS[1])
    went_forward = at_night & (steps >= FORWARD_STEP_SECONDS[0]) & (steps <= FORWARD_STEP_SECONDS[1])

    # Every reading before a change takes that change's shift; shifts add up
    # from the newest change backwards.
    change = np.where(went_back, -3600, np.where(went_forward, 3600, 0))
    if not change.any():
        return
    shift = np.concatenate([np.cumsum(change[::-1])[::-1], [0]])
    raw.dst_shift[members] += shift
    raw.time[members] = raw.time[members] + shift.astype("timedelta64[s]")
    raw.dst_changes += int(np.count_nonzero(change))
    for index in np.flatnonzero(change):
        direction = "back (an hour repeated)" if change[index] < 0 else "forward (an hour skipped)"
        raw.messages.append(
            f"The device clock went {direction} at {str(after[index])[:16].replace('T', ' ')}, a "
            "daylight-saving change; the readings before it were moved "
            f"{'1 h earlier' if change[index] < 0 else '1 h later'} so that the series runs on the later clock."
        )
