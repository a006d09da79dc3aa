"""Dexcom Clarity exports (CSV, or .xlsx converted to CSV) through cgm-format.

cgm-format 0.13.0 parses the EGV rows, High/Low markers and both units. It
skips calibration rows and unknown event types without counting them. This
module therefore counts every row of the file itself. That count is
``readings_in``, and an EGV row that cgm-format did not return is reported as
dropped.
"""

from __future__ import annotations

import logging

import numpy as np
import polars as pl
from cgm_format import FormatParser, MMOL_TO_MGDL as CGM_FORMAT_MMOL_TO_MGDL, SupportedCGMFormat
from cgm_format.formats.dexcom import (
    DEXCOM_GLUCOSE_EVENT_TYPES,
    DEXCOM_HIGH_GLUCOSE_DEFAULT,
    DEXCOM_LOW_GLUCOSE_DEFAULT,
)
from cgm_format.formats.unified import Quality, UnifiedEventType

from glurpc_lab.ingest.errors import IngestError
from glurpc_lab.ingest.readings import RawReadings, to_seconds
from glurpc_lab.ingest.tables import cell, column_index, csv_rows, find_header
from glurpc_lab.ingest.units import DEXCOM_LIMITS_MGDL, mmol_to_mgdl

logger = logging.getLogger(__name__)


def is_clarity_header(cells: list[str]) -> bool:
    """Return True for a Clarity header row: Timestamp, Event Type and Glucose Value columns."""
    return (
        "Event Type" in cells
        and any(c.startswith("Timestamp") for c in cells)
        and any(c.startswith("Glucose Value") for c in cells)
    )


def read_dexcom(text: str, *, from_excel: bool = False) -> RawReadings:
    """Read a Clarity export into readings in mg/dL.

    Parameters
    ----------
    text : str
        Decoded CSV text. An .xlsx export arrives here as the CSV of its first sheet.
    from_excel : bool
        Whether the text came from an Excel workbook; only changes the messages.

    Returns
    -------
    RawReadings
        One subject, ``"series-1"``.

    Raises
    ------
    IngestError
        When the header has no timestamp column, no EGV rows exist, or
        cgm-format cannot parse the rows.
    """
    rows = csv_rows(text)
    header_at = find_header(rows, is_clarity_header)
    if header_at is None:
        raise IngestError("The Dexcom Clarity header row was not found. Upload the export unchanged.")
    header = [c.replace("\ufeff", "").strip().strip('"') for c in rows[header_at]]
    timestamp_col = column_index(header, lambda c: c.startswith("Timestamp"))
    event_col = column_index(header, lambda c: c == "Event Type")
    glucose_name = header[column_index(header, lambda c: c.startswith("Glucose Value"))]
    source_units = "mmol/L" if "mmol/L" in glucose_name else "mg/dL"

    # Count rows by event type. Rows without a timestamp are the preamble
    # (name, device, alert settings), not events.
    glucose_rows = 0
    calibration_rows = 0
    other: dict[str, int] = {}
    for row in rows[header_at + 1 :]:
        if not cell(row, timestamp_col):
            continue
        kind = cell(row, event_col)
        if kind.lower() in DEXCOM_GLUCOSE_EVENT_TYPES:
            glucose_rows += 1
        elif kind.lower() == "calibration":
            calibration_rows += 1
        else:
            other[kind.lower() or "unnamed event"] = other.get(kind.lower() or "unnamed event", 0) + 1
    if glucose_rows == 0:
        raise IngestError(
            "The Dexcom Clarity export contains no EGV rows (sensor glucose readings). "
            "Export a date range in which the sensor was worn."
        )

    frame = _parse_with_cgm_format(text)
    egv = frame.filter(pl.col("event_type") == UnifiedEventType.GLUCOSE.value)
    time = to_seconds(egv["original_datetime"].to_numpy())
    glucose = egv["original_glucose"].to_numpy().astype(np.float64)
    out_of_range = (egv["quality"].to_numpy() & Quality.OUT_OF_RANGE.value) != 0

    # cgm-format puts 39 and 401 mg/dL in place of "Low" and "High"; the
    # censored flag keeps the direction and the value becomes the limit.
    low = out_of_range & (glucose <= DEXCOM_LOW_GLUCOSE_DEFAULT)
    high = out_of_range & (glucose >= DEXCOM_HIGH_GLUCOSE_DEFAULT)
    if source_units == "mmol/L":
        # Undo cgm-format's factor at the export's 0.01 mmol/L resolution, so
        # that one factor (units.MMOL_TO_MGDL) converts every format.
        glucose = mmol_to_mgdl(np.round(glucose / CGM_FORMAT_MMOL_TO_MGDL, 2))
    glucose[low] = DEXCOM_LIMITS_MGDL[0]
    glucose[high] = DEXCOM_LIMITS_MGDL[1]
    censored = np.where(high, 1, np.where(low, -1, 0)).astype(np.int8)

    raw = RawReadings(
        subject="series-1",
        time=time,
        glucose=glucose,
        censored=censored,
        source_units=source_units,
        calibration_records=calibration_rows,
        other_records=other,
    )
    source = "Dexcom Clarity Excel workbook" if from_excel else "Dexcom Clarity CSV export"
    raw.messages.append(f"Read {glucose_rows} glucose readings from a {source} in {source_units}.")

    missing = glucose_rows - len(egv)
    if missing > 0:
        raw.drop("rejected by the cgm-format Clarity parser", missing)
    elif missing < 0:
        # NOTE: not seen on any test file. The counts still balance because
        # readings_in is then the parser's row count.
        logger.warning("cgm-format returned %d more EGV rows than the file has", -missing)
    return raw


def _parse_with_cgm_format(text: str) -> pl.DataFrame:
    """Run cgm-format's Clarity parser, turning its errors into IngestError without file content."""
    try:
        detected = FormatParser.detect_format(text)
        if detected not in (SupportedCGMFormat.DEXCOM, SupportedCGMFormat.DEXCOM_EU):
            raise IngestError(
                "The file has a Clarity header but cgm-format detected another format. "
                "Upload the Clarity export unchanged."
            )
        return FormatParser.parse_to_unified(text, detected)
    except (ValueError, pl.exceptions.PolarsError) as error:
        if isinstance(error, IngestError):
            raise
        # cgm-format messages can quote lines of the file, so only the type is kept.
        logger.info("cgm-format rejected a Clarity export: %s", type(error).__name__)
        raise IngestError(
            "The Dexcom Clarity export could not be parsed: a timestamp or glucose value "
            "has an unexpected layout (expected timestamps like 2024-01-31T13:45:00 and "
            "glucose as numbers, High or Low). Download the export again from Clarity "
            "and upload it unchanged."
        ) from None
