"""LibreView exports (Libre 1/2/3, Libre Pro; US and EU layouts; translated headers).

cgm-format 0.13.0 rejects the US layout (an extra line above the header and
12-hour timestamps), reads only English headers and merges scan readings
into the historic series, which puts two readings on one minute. This
reader finds the header by its columns in any of the known languages,
builds the series from historic readings only and decides the date order
from the whole file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from glurpc_lab.ingest.errors import IngestError
from glurpc_lab.ingest.readings import RawReadings
from glurpc_lab.ingest.timestamps import parse_dated_times
from glurpc_lab.ingest.tables import cell, clean_cell, column_index, find_header, parse_numbers
from glurpc_lab.ingest.units import LIBRE_LIMITS_MGDL, mmol_to_mgdl

HISTORIC = "0"
SCAN = "1"
STRIP = "2"
RECORD_KINDS = {"3": "other record", "4": "insulin", "5": "food", "6": "note"}

HEADER_NAMES = {
    "English": ("Device Timestamp", "Record Type", "Historic Glucose"),
    "German": ("Gerätezeitstempel", "Aufzeichnungstyp", "Glukosewert-Verlauf"),
    "French": ("Horodatage de l'appareil", "Type d'enregistrement", "Historique de la glycémie"),
    "Spanish": ("Sello de tiempo del dispositivo", "Tipo de registro", "Historial de glucosa"),
}
"""Per header language, the timestamp and record-type column names and the
prefix of the historic glucose column (followed by ``mg/dL`` or ``mmol/L``),
as LibreView writes them."""

DAY_FIRST_FORMATS = (
    "%d-%m-%Y %H:%M", "%d-%m-%Y %I:%M %p", "%d/%m/%Y %H:%M", "%d/%m/%Y %I:%M %p", "%d.%m.%Y %H:%M",
)
MONTH_FIRST_FORMATS = ("%m-%d-%Y %H:%M", "%m-%d-%Y %I:%M %p", "%m/%d/%Y %H:%M", "%m/%d/%Y %I:%M %p")
ISO_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")


def header_language(cells: list[str]) -> str | None:
    """Return the language of a LibreView header row, or None when ``cells`` is not one."""
    for language, (timestamp, record_type, historic) in HEADER_NAMES.items():
        if timestamp in cells and record_type in cells and any(c.startswith(historic) for c in cells):
            return language
    return None


def is_libre_header(cells: list[str]) -> bool:
    """Return True for a LibreView header row: device timestamp, record type, historic glucose."""
    return header_language(cells) is not None


def read_libre(rows: list[list[str]]) -> RawReadings:
    """Read a LibreView CSV export into historic readings in mg/dL.

    Scan readings (record type 1) are counted as dropped, strip readings
    (type 2) as calibration records, and insulin, food and notes as other
    records. "HI" and "LO" become censored readings at 500 and 40 mg/dL.

    Raises
    ------
    IngestError
        When no historic reading has a parseable timestamp.
    """
    header_at = find_header(rows, is_libre_header)
    if header_at is None:
        raise IngestError("The LibreView header row was not found. Upload the export unchanged.")
    header = [clean_cell(c) for c in rows[header_at]]
    language = header_language(header)
    timestamp_name, type_name, historic_prefix = HEADER_NAMES[language]
    time_col = column_index(header, lambda c: c == timestamp_name)
    type_col = column_index(header, lambda c: c == type_name)
    glucose_col = column_index(header, lambda c: c.startswith(historic_prefix))
    source_units = "mmol/L" if "mmol/l" in header[glucose_col].lower() else "mg/dL"

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
    time, order_note = parse_dated_times(
        stamps,
        day_first=DAY_FIRST_FORMATS,
        month_first=MONTH_FIRST_FORMATS,
        other=ISO_FORMATS,
        location=f"Line {lines[0]}, column {time_col + 1} ({timestamp_name})",
        expected="DD-MM-YYYY HH:MM or MM-DD-YYYY hh:mm AM/PM",
    )
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
        f"Read {len(stamps)} historic readings from a LibreView export in {source_units}."
    )
    if language != "English":
        raw.messages.append(f"The column headers are in {language}.")
    if order_note:
        raw.messages.append(order_note)
    return raw


def _parse_values(values: list[str], source_units: str) -> tuple[np.ndarray, np.ndarray]:
    """Parse glucose cells, mapping HI/LO markers to censored sensor limits."""
    upper = pd.Series(values, dtype="string").str.strip().str.upper()
    numbers = parse_numbers(values)
    glucose = mmol_to_mgdl(numbers) if source_units == "mmol/L" else numbers
    high = (upper == "HI").to_numpy(dtype=bool, na_value=False)
    low = (upper == "LO").to_numpy(dtype=bool, na_value=False)
    glucose[high] = LIBRE_LIMITS_MGDL[1]
    glucose[low] = LIBRE_LIMITS_MGDL[0]
    censored = np.where(high, 1, np.where(low, -1, 0)).astype(np.int8)
    return glucose, censored
