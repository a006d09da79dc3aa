"""ISO 8601 timestamps with or without a UTC offset, kept apart at parse time.

A column whose timestamps all lack an offset is device wall-clock time and
stays naive. A column whose timestamps carry offsets (``+02:00``, ``Z``) is
converted to UTC, so that a daylight-saving change or a trip across time
zones does not bend the time axis. In such a column a timestamp without an
offset is ambiguous, so it becomes NaT and is counted separately.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from glurpc_lab.ingest.errors import IngestError
from glurpc_lab.ingest.readings import RawReadings, to_seconds

_ISO = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?P<offset>Z|[+-]\d{2}:?\d{2})?$"
)

NAIVE_AMONG_AWARE_REASON = "timestamp without a UTC offset in a column whose other timestamps have one"


@dataclass
class ParsedTimes:
    """Timestamps of one column, parsed.

    Attributes
    ----------
    time : numpy.ndarray
        ``datetime64[s]``, shape ``(n,)``: naive device time, or naive UTC
        when ``utc`` is True. NaT where a cell is missing, malformed (for
        example cut off by a truncated download) or naive among offsets.
    utc : bool
        True when the column carried UTC offsets and ``time`` is UTC.
    offsets : list of str
        Distinct offsets seen, in first-seen order, e.g. ``["+01:00", "+02:00"]``.
    naive_among_aware : numpy.ndarray or None
        ``bool``, True for cells set to NaT because they lacked the offset
        the others had; None when no cell had an offset.
    """

    time: np.ndarray
    utc: bool = False
    offsets: list[str] = field(default_factory=list)
    naive_among_aware: np.ndarray | None = None

    def subset(self, mask: np.ndarray) -> ParsedTimes:
        """Return the times where ``mask`` is True, with the same offset handling."""
        rejected = None if self.naive_among_aware is None else self.naive_among_aware[mask]
        return ParsedTimes(time=self.time[mask], utc=self.utc, offsets=self.offsets, naive_among_aware=rejected)


def parse_iso_times(cells: list[str]) -> ParsedTimes:
    """Parse ISO 8601 cells (``T`` or space, optional seconds and offset).

    Parameters
    ----------
    cells : list of str
        Raw timestamp cells; surrounding whitespace is ignored.

    Returns
    -------
    ParsedTimes
        The parsed times and how the offsets were handled.
    """
    stripped = [c.strip() for c in cells]
    matches = [_ISO.match(c) for c in stripped]
    offsets = [m.group("offset") if m else None for m in matches]
    well_formed = np.array([m is not None for m in matches], dtype=bool)
    aware = np.array([o is not None for o in offsets], dtype=bool)
    text = pd.Series([c if ok else None for c, ok in zip(stripped, well_formed)], dtype="object")

    if not aware.any():
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
        return ParsedTimes(time=to_seconds(parsed.to_numpy()))

    # Offset-aware: convert to UTC and drop the zone. Naive cells in the same
    # column would need a guess about their zone, so they become NaT.
    naive = well_formed & ~aware
    text[naive] = None
    parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce").dt.tz_localize(None)
    seen = list(dict.fromkeys(_normalise_offset(o) for o in offsets if o is not None))
    return ParsedTimes(
        time=to_seconds(parsed.to_numpy()), utc=True, offsets=seen, naive_among_aware=naive
    )


def _normalise_offset(offset: str) -> str:
    """Write ``Z``, ``+0200`` and ``+02:00`` the same way: ``+00:00``, ``+02:00``."""
    if offset == "Z":
        return "+00:00"
    if ":" not in offset:
        return f"{offset[:3]}:{offset[3:]}"
    return offset


def apply_time_basis(raw: RawReadings, times: ParsedTimes) -> None:
    """Record on ``raw`` whether its times are UTC, and set aside naive times among offsets.

    ``raw`` must hold one reading per cell that ``times`` was parsed from.
    """
    if not times.utc:
        return
    raw.utc = True
    raw.messages.append(f"Timestamps carry UTC offsets ({', '.join(times.offsets)}); the series is in UTC.")
    raw.keep(~times.naive_among_aware, NAIVE_AMONG_AWARE_REASON)


def parse_dated_times(
    stamps: list[str],
    *,
    day_first: tuple[str, ...],
    month_first: tuple[str, ...],
    other: tuple[str, ...] = (),
    location: str,
    expected: str,
) -> tuple[np.ndarray, str]:
    """Parse naive device timestamps with the one ``strptime`` format that fits the whole column.

    The date order is decided from the whole column: any day above 12
    settles it. When every date fits both orders, the order whose
    consecutive rows are closer in time wins, because an export runs in time
    order (forwards or backwards) with small steps.

    Parameters
    ----------
    stamps : list of str
        Timestamp cells in file order.
    day_first, month_first, other : tuple of str
        Candidate formats with the day first, with the month first, and without that ambiguity.
    location : str
        Where the column is, for the error message, e.g. ``"Line 3, column 3 (Device Timestamp)"``.
    expected : str
        The layouts the error message names.

    Returns
    -------
    tuple of (numpy.ndarray, str)
        ``datetime64[s]`` times with NaT where a cell does not parse, and a
        note for the user when the date order was ambiguous (else "").

    Raises
    ------
    IngestError
        When no cell parses with any format.
    """
    series = pd.Series([s.strip() for s in stamps], dtype="string")
    parsed = {fmt: pd.to_datetime(series, format=fmt, errors="coerce") for fmt in day_first + month_first + other}
    best = max(parsed, key=lambda fmt: int(parsed[fmt].notna().sum()))
    best_count = int(parsed[best].notna().sum())
    if best_count == 0:
        raise IngestError(f"{location}: no timestamp could be parsed. Expected {expected}. Upload the export unchanged.")

    note = ""
    ties = [fmt for fmt in parsed if int(parsed[fmt].notna().sum()) == best_count]
    if any(f in day_first for f in ties) and any(f in month_first for f in ties):
        day = next(f for f in ties if f in day_first)
        month = next(f for f in ties if f in month_first)
        steps = {f: parsed[f].diff().abs().sum() for f in (day, month)}
        best = day if steps[day] <= steps[month] else month
        order = "day-first" if best == day else "month-first"
        note = f"Every date fits both day and month orders; chose {order} because it keeps the readings in time order."
    return to_seconds(parsed[best].to_numpy()), note
