"""Medtronic CareLink CSV exports: the EU ``;`` layout with sections and the US comma layout.

The EU export puts patient metadata above a separator row
(``-------;<device>;<kind>;<serial>;-------``), then a header and the rows,
newest first, and repeats separator and header for every device section.
Numbers use decimal commas and numeric cells may hold ``-------``
placeholders. cgm-format 0.13.0 detects the format but reads one section
only. This reader takes the sensor glucose of every section and gives each
section its own track, so two sections covering the same hours are resolved
like overlapping sensors rather than merged.
"""

from __future__ import annotations

import numpy as np

from glurpc_lab.ingest.errors import IngestError
from glurpc_lab.ingest.readings import RawReadings
from glurpc_lab.ingest.tables import cell, clean_cell, column_index, parse_numbers
from glurpc_lab.ingest.timestamps import parse_dated_times
from glurpc_lab.ingest.units import mmol_to_mgdl

SENSOR_GLUCOSE = "Sensor Glucose"
SEPARATOR = "-------"

DAY_FIRST_FORMATS = ("%d/%m/%Y %H:%M:%S", "%d/%m/%y %H:%M:%S", "%d.%m.%Y %H:%M:%S", "%d-%m-%Y %H:%M:%S")
MONTH_FIRST_FORMATS = ("%m/%d/%y %H:%M:%S", "%m/%d/%Y %H:%M:%S", "%m/%d/%y %H:%M", "%m/%d/%Y %H:%M")
OTHER_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M")


def is_carelink_header(cells: list[str]) -> bool:
    """Return True for an English CareLink header: Index, Date, Time and a Sensor Glucose column."""
    return (
        bool(cells)
        and cells[0] == "Index"
        and "Date" in cells
        and "Time" in cells
        and any(c.startswith(SENSOR_GLUCOSE) for c in cells)
    )


def looks_like_carelink(rows: list[list[str]]) -> bool:
    """Return True when rows have CareLink's layout (section separators or a wide ``Index`` header).

    Used to recognise a CareLink export whose headers are in another language.
    """
    for row in rows:
        cells = [clean_cell(c) for c in row]
        if len(cells) >= 3 and cells[0].startswith(SEPARATOR) and cells[-1].startswith(SEPARATOR):
            return True
        if len(cells) >= 30 and cells[0] == "Index":
            return True
    return False


def read_carelink(rows: list[list[str]]) -> RawReadings:
    """Read the sensor glucose of every section of a CareLink export, in mg/dL.

    Rows with a sensor glucose value are readings. Rows with only a sensor
    calibration value are calibration records. The remaining rows of a
    section (pump, meter and alarm events) are counted as other records.

    Raises
    ------
    IngestError
        When no header is found, or no row has a sensor glucose value.
    """
    stamps: list[str] = []
    values: list[str] = []
    tracks: list[str] = []
    lines: list[int] = []
    units: set[str] = set()
    calibrations = 0
    events = 0
    columns: dict[str, int | None] | None = None
    section = 0
    for line, row in enumerate(rows, start=1):
        cells = [clean_cell(c) for c in row]
        if cells and cells[0].startswith(SEPARATOR):
            section += 1
            columns = None
            continue
        if is_carelink_header(cells):
            columns = _columns(cells)
            units.add(columns.pop("unit"))
            continue
        if columns is None or not any(cells):
            continue

        glucose_cell = cell(row, columns["glucose"])
        if glucose_cell and not glucose_cell.startswith(SEPARATOR):
            stamps.append(_timestamp(row, columns))
            values.append(glucose_cell)
            tracks.append(f"section {section}")
            lines.append(line)
        elif cell(row, columns["calibration"]).strip("-"):
            calibrations += 1
        else:
            events += 1

    if not units:
        raise IngestError(
            "The CareLink header row (Index, Date, Time, ..., Sensor Glucose) was not found. "
            "Upload the export unchanged."
        )
    if not stamps:
        raise IngestError(
            "The CareLink export contains no sensor glucose readings. Export a date range "
            "in which the sensor was worn."
        )
    if len(units) > 1:
        raise IngestError(
            "The CareLink sections use different glucose units (mg/dL and mmol/L). "
            "Export the data again with one unit setting."
        )
    source_units = units.pop()

    time, order_note = parse_dated_times(
        stamps,
        day_first=DAY_FIRST_FORMATS,
        month_first=MONTH_FIRST_FORMATS,
        other=OTHER_FORMATS,
        location=f"Line {lines[0]}, columns Date and Time",
        expected="YYYY/MM/DD with HH:MM:SS, or M/D/YY with HH:MM:SS",
    )
    glucose = parse_numbers(values)
    if source_units == "mmol/L":
        glucose = mmol_to_mgdl(glucose)
    raw = RawReadings(
        subject="series-1",
        time=time,
        glucose=glucose,
        censored=np.zeros(len(values), dtype=np.int8),
        source_units=source_units,
        calibration_records=calibrations,
        other_records={"pump or meter event": events} if events else {},
        track=np.array(tracks, dtype=object),
    )
    raw.messages.append(
        f"Read {len(values)} sensor glucose readings from a Medtronic CareLink export in "
        f"{source_units}, in {len(set(tracks))} section(s)."
    )
    if order_note:
        raw.messages.append(order_note)
    return raw


def _columns(header: list[str]) -> dict:
    """Return the column indexes a section needs, and its glucose unit under ``"unit"``."""
    glucose = column_index(header, lambda c: c.startswith(SENSOR_GLUCOSE))
    return {
        "date": column_index(header, lambda c: c == "Date"),
        "time": column_index(header, lambda c: c == "Time"),
        "timestamp": column_index(header, lambda c: c == "Timestamp"),
        "glucose": glucose,
        "calibration": column_index(header, lambda c: c.startswith("Sensor Calibration BG")),
        "unit": "mmol/L" if "mmol/l" in header[glucose].lower() else "mg/dL",
    }


def _timestamp(row: list[str], columns: dict) -> str:
    """Join the Date and Time cells, or use the US layout's Timestamp when they are empty."""
    date, time = cell(row, columns["date"]), cell(row, columns["time"])
    if date and time:
        return f"{date} {time}"
    return cell(row, columns["timestamp"])
