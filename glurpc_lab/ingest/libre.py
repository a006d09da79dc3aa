"""LibreView exports (Libre 1/2/3, Libre Pro; US and EU layouts).

cgm-format 0.13.0 rejects the US layout (an extra line above the header and
12-hour timestamps) and merges scan readings into the historic series, which
puts two readings on one minute. This reader finds the header by its columns,
builds the series from historic readings only and decides the date order
from the whole file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from glurpc_lab.ingest.errors import IngestError
from glurpc_lab.ingest.readings import RawReadings, to_seconds
from glurpc_lab.ingest.tables import cell, clean_cell, column_index, csv_rows, find_header
from glurpc_lab.ingest.units import LIBRE_LIMITS_MGDL, mmol_to_mgdl

HISTORIC = "0"
SCAN = "1"
STRIP = "2"
RECORD_KINDS = {"3": "other record", "4": "insulin", "5": "food", "6": "note"}

DAY_FIRST_FORMATS = ("%d-%m-%Y %H:%M", "%d-%m-%Y %I:%M %p", "%d/%m/%Y %H:%M", "%d/%m/%Y %I:%M %p")
MONTH_FIRST_FORMATS = ("%m-%d-%Y %H:%M", "%m-%d-%Y %I:%M %p", "%m/%d/%Y %H:%M", "%m/%d/%Y %I:%M %p")
ISO_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")


def is_libre_header(cells: list[str]) -> bool:
    """Return True for a LibreView header row: Device Timestamp, Record Type, Historic Glucose."""
    return (
        "Device Timestamp" in cells
        and "Record Type" in cells
        and any(c.startswith("Historic Glucose") for c in cells)
    )


def read_libre(text: str) -> RawReadings:
    """Read a LibreView CSV export into historic readings in mg/dL.

    Scan readings (record type 1) are counted as dropped, strip readings
    (type 2) as calibration records, and insulin, food and notes as other
    records. "HI" and "LO" become censored readings at 500 and 40 mg/dL.

    Raises
    ------
    IngestError
        When no historic reading has a parseable timestamp.
    """
    rows = csv_rows(text)
    header_at = find_header(rows, is_libre_header)
    if header_at is None:
        raise IngestError("The LibreView header row was not found. Upload the export unchanged.")
    header = [clean_cell(c) for c in rows[header_at]]
    time_col = column_index(header, lambda c: c == "Device Timestamp")
    type_col = column_index(header, lambda c: c == "Record Type")
    glucose_col = column_index(header, lambda c: c.startswith("Historic Glucose"))
    source_units = "mmol/L" if "mmol/L" in header[glucose_col] else "mg/dL"

    stamps: list[str] = []
    values: list[str] = []
    lines: list[int] = []
    scans = 0
    strips = 0
    other: dict[str, int] = {}
    for offset, row in enumerate(rows[header_at + 1 :]):
        kind = cell(row, type_col)
        if kind == HISTORIC:
            stamps.append(cell(row, time_col))
            values.append(cell(row, glucose_col))
            lines.append(header_at + 2 + offset)
        elif kind == SCAN:
            scans += 1
        elif kind == STRIP:
            strips += 1
        elif kind or any(c.strip() for c in row):
            name = RECORD_KINDS.get(kind, f"record type {kind or 'missing'}")
            other[name] = other.get(name, 0) + 1

    if not stamps:
        raise IngestError(
            "The LibreView export contains no historic glucose readings (record type 0). "
            "Export a date range in which the sensor was worn."
        )
    time, order_note = _parse_timestamps(stamps, lines, time_col)
    glucose, censored = _parse_values(values, source_units)

    raw = RawReadings(
        subject="series-1",
        time=time,
        glucose=glucose,
        censored=censored,
        source_units=source_units,
        calibration_records=strips,
        other_records=other,
    )
    raw.drop("scan reading (series built from historic readings)", scans)
    raw.messages.append(
        f"Read {len(stamps)} historic readings from a LibreView export in {source_units}; "
        f"{scans} scan readings were set aside."
    )
    if order_note:
        raw.messages.append(order_note)
    return raw


def _parse_timestamps(stamps: list[str], lines: list[int], column: int) -> tuple[np.ndarray, str]:
    """Parse device timestamps with the one format that fits the whole column."""
    series = pd.Series(stamps, dtype="string")
    parsed: dict[str, pd.Series] = {}
    for fmt in DAY_FIRST_FORMATS + MONTH_FIRST_FORMATS + ISO_FORMATS:
        candidate = pd.to_datetime(series, format=fmt, errors="coerce")
        parsed[fmt] = candidate
    best = max(parsed, key=lambda fmt: int(parsed[fmt].notna().sum()))
    best_count = int(parsed[best].notna().sum())
    if best_count == 0:
        raise IngestError(
            f"Line {lines[0]}, column {column + 1} (Device Timestamp): no timestamp could be "
            "parsed. Expected DD-MM-YYYY HH:MM or MM-DD-YYYY hh:mm AM/PM. Upload the export unchanged."
        )

    # Both date orders parse every stamp only when no day exceeds 12. The
    # order whose consecutive rows are closer in time is then the right one,
    # because an export runs in time order with small steps.
    note = ""
    ties = [fmt for fmt in parsed if int(parsed[fmt].notna().sum()) == best_count]
    if any(f in DAY_FIRST_FORMATS for f in ties) and any(f in MONTH_FIRST_FORMATS for f in ties):
        day_first = next(f for f in ties if f in DAY_FIRST_FORMATS)
        month_first = next(f for f in ties if f in MONTH_FIRST_FORMATS)
        steps = {f: parsed[f].diff().abs().sum() for f in (day_first, month_first)}
        best = day_first if steps[day_first] <= steps[month_first] else month_first
        order = "day-first" if best == day_first else "month-first"
        note = f"Every date fits both day and month orders; chose {order} because it keeps the readings in time order."
    return to_seconds(parsed[best].to_numpy()), note


def _parse_values(values: list[str], source_units: str) -> tuple[np.ndarray, np.ndarray]:
    """Parse glucose cells, mapping HI/LO markers to censored sensor limits."""
    upper = pd.Series(values, dtype="string").str.strip().str.upper()
    numbers = pd.to_numeric(upper.str.replace(",", ".", regex=False), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    glucose = mmol_to_mgdl(numbers) if source_units == "mmol/L" else numbers
    high = (upper == "HI").to_numpy(dtype=bool, na_value=False)
    low = (upper == "LO").to_numpy(dtype=bool, na_value=False)
    glucose[high] = LIBRE_LIMITS_MGDL[1]
    glucose[low] = LIBRE_LIMITS_MGDL[0]
    censored = np.where(high, 1, np.where(low, -1, 0)).astype(np.int8)
    return glucose, censored
