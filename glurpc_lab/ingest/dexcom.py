"""Dexcom Clarity exports: G6 and G7, US and EU, CSV or .xlsx converted to rows.

Rows are recognised by content, not position: a row is a glucose reading
when its Event Type is one of cgm-format's Dexcom glucose event types (EGV,
and "Fasting Glucose" on G7), whatever the length of the preamble above it.
This module parses the rows itself instead of through cgm-format 0.13.0,
because that parser rejects a whole file for one timestamp with a UTC
offset (and quotes the value in its error), silently skips a row cut off by
a truncated download, and drops the Source Device ID that distinguishes
two receivers.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from cgm_format.formats.dexcom import DEXCOM_GLUCOSE_EVENT_TYPES

from glurpc_lab.ingest.errors import IngestError
from glurpc_lab.ingest.readings import RawReadings
from glurpc_lab.ingest.tables import cell, clean_cell, column_index, find_header, parse_numbers
from glurpc_lab.ingest.timestamps import apply_time_basis, parse_iso_times
from glurpc_lab.ingest.units import DEXCOM_LIMITS_MGDL, mmol_to_mgdl

logger = logging.getLogger(__name__)

CALIBRATION_EVENT = "calibration"


def is_clarity_header(cells: list[str]) -> bool:
    """Return True for a Clarity header row: Timestamp, Event Type and Glucose Value columns."""
    return (
        "Event Type" in cells
        and any(c.startswith("Timestamp") for c in cells)
        and any(c.startswith("Glucose Value") for c in cells)
    )


def read_dexcom(rows: list[list[str]], *, from_excel: bool = False) -> RawReadings:
    """Read a Clarity export into readings in mg/dL.

    Parameters
    ----------
    rows : list of list of str
        The file split into cells. An .xlsx export arrives as the rows of its first sheet.
    from_excel : bool
        Whether the rows came from an Excel workbook; only changes the messages.

    Returns
    -------
    RawReadings
        One subject, ``"series-1"``, with the Source Device ID of each
        reading as its track.

    Raises
    ------
    IngestError
        When the header is missing or no glucose rows exist.
    """
    header_at = find_header(rows, is_clarity_header)
    if header_at is None:
        raise IngestError("The Dexcom Clarity header row was not found. Upload the export unchanged.")
    header = [clean_cell(c) for c in rows[header_at]]
    timestamp_col = column_index(header, lambda c: c.startswith("Timestamp"))
    event_col = column_index(header, lambda c: c == "Event Type")
    glucose_col = column_index(header, lambda c: c.startswith("Glucose Value"))
    device_col = column_index(header, lambda c: c == "Source Device ID")
    source_units = "mmol/L" if "mmol/L" in header[glucose_col] else "mg/dL"

    # Classify rows by event type. Preamble rows (name, device, alert
    # settings) and blank rows have no timestamp and are not events.
    stamps: list[str] = []
    values: list[str] = []
    devices: list[str] = []
    calibration_rows = 0
    other: dict[str, int] = {}
    for row in rows[header_at + 1 :]:
        kind = cell(row, event_col).lower()
        if kind in DEXCOM_GLUCOSE_EVENT_TYPES:
            stamps.append(cell(row, timestamp_col))
            values.append(cell(row, glucose_col))
            devices.append(cell(row, device_col))
        elif not cell(row, timestamp_col):
            continue
        elif kind == CALIBRATION_EVENT:
            calibration_rows += 1
        else:
            # A row cut off by a truncated download lost its event type.
            name = kind or ("incomplete row" if len(row) < len(header) else "unnamed event")
            other[name] = other.get(name, 0) + 1
    if not stamps:
        raise IngestError(
            "The Dexcom Clarity export contains no EGV rows (sensor glucose readings). "
            "Export a date range in which the sensor was worn."
        )

    times = parse_iso_times(stamps)
    glucose, censored = _parse_values(values, source_units)
    raw = RawReadings(
        subject="series-1",
        time=times.time,
        glucose=glucose,
        censored=censored,
        source_units=source_units,
        calibration_records=calibration_rows,
        other_records=other,
        track=np.array(devices, dtype=object) if device_col is not None else None,
    )
    source = "Dexcom Clarity Excel workbook" if from_excel else "Dexcom Clarity CSV export"
    raw.messages.append(f"Read {len(stamps)} glucose readings from a {source} in {source_units}.")
    apply_time_basis(raw, times)
    return raw


def _parse_values(values: list[str], source_units: str) -> tuple[np.ndarray, np.ndarray]:
    """Parse glucose cells in the file's unit, mapping High and Low to censored sensor limits."""
    numbers = parse_numbers(values)
    glucose = mmol_to_mgdl(numbers) if source_units == "mmol/L" else numbers
    words = pd.Series(values, dtype="string").str.strip().str.lower()
    high = (words == "high").to_numpy(dtype=bool, na_value=False)
    low = (words == "low").to_numpy(dtype=bool, na_value=False)
    glucose[high] = DEXCOM_LIMITS_MGDL[1]
    glucose[low] = DEXCOM_LIMITS_MGDL[0]
    censored = np.where(high, 1, np.where(low, -1, 0)).astype(np.int8)
    return glucose, censored
