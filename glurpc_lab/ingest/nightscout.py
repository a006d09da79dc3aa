"""Nightscout entries: the JSON API (through cgm-format) and the headerless API CSV.

Nightscout stores ``sgv`` in mg/dL whatever the site's display unit, and
uses values below 39 as sensor error codes, so those are dropped, not read
as glucose. Times are UTC and are kept as naive UTC.
"""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pandas as pd
import polars as pl
from cgm_format import FormatParser, SupportedCGMFormat
from cgm_format.formats.unified import UnifiedEventType

from glurpc_lab.ingest.errors import IngestError
from glurpc_lab.ingest.readings import RawReadings, to_seconds
from glurpc_lab.ingest.tables import csv_rows

logger = logging.getLogger(__name__)

ERROR_CODE_BELOW_MGDL = 39.0
"""Nightscout treats sgv values below 39 as sensor error codes, not glucose."""

ERROR_CODE_REASON = "Nightscout sensor error code (sgv below 39)"
UTC_NOTE = "Nightscout times are UTC; the series is in UTC, not local device time."

_API_CSV_LINE = re.compile(r'^"?\d{4}-\d{2}-\d{2}T[\d:.]+Z?"?,\d{12,13},[\d.]+,')


def is_api_csv(first_line: str) -> bool:
    """Return True for a headerless entries line: ``dateString,date,sgv,direction,device``."""
    return bool(_API_CSV_LINE.match(first_line.strip()))


def read_api_csv(text: str) -> RawReadings:
    """Read the headerless CSV of ``/api/v1/entries.csv``; cgm-format does not support it.

    The epoch-millisecond ``date`` field gives the time because it is
    unambiguous UTC.
    """
    rows = [row for row in csv_rows(text) if any(c.strip() for c in row)]
    epoch_ms = pd.to_numeric(pd.Series([r[1] if len(r) > 1 else "" for r in rows]), errors="coerce")
    sgv = pd.to_numeric(pd.Series([r[2] if len(r) > 2 else "" for r in rows]), errors="coerce")
    time = to_seconds(pd.to_datetime(epoch_ms, unit="ms", errors="coerce").to_numpy())
    raw = _entries_to_readings(time, sgv.to_numpy(dtype=np.float64, na_value=np.nan))
    raw.messages.insert(0, f"Read {len(rows)} entries from a Nightscout entries CSV in mg/dL.")
    return raw


def read_entries_json(text: str) -> RawReadings:
    """Read a Nightscout entries JSON array through cgm-format.

    Raises
    ------
    IngestError
        When the JSON is invalid or contains no sgv entries.
    """
    try:
        records = json.loads(text)
    except json.JSONDecodeError as error:
        raise IngestError(
            f"Line {error.lineno}, column {error.colno}: the file is not valid JSON. "
            "Download the entries again from the Nightscout API (/api/v1/entries.json)."
        ) from None
    if isinstance(records, dict):
        records = records.get("entries") or records.get("result") or []
    if not isinstance(records, list):
        records = []
    # cgm-format reads entries without a type too (some uploaders omit it).
    entries = [
        r for r in records
        if isinstance(r, dict) and r.get("type", "sgv") == "sgv" and ("sgv" in r or "glucose" in r)
    ]
    if not entries:
        raise IngestError(
            "The JSON file contains no Nightscout sgv entries. Upload the output of "
            "/api/v1/entries.json with a count large enough for the period you need."
        )

    try:
        frame = FormatParser.parse_to_unified(text, SupportedCGMFormat.NIGHTSCOUT)
    except (ValueError, pl.exceptions.PolarsError) as error:
        logger.info("cgm-format rejected a Nightscout JSON file: %s", type(error).__name__)
        raise IngestError(
            "The Nightscout entries could not be parsed: a dateString or sgv field has an "
            "unexpected layout. Download the entries again from /api/v1/entries.json."
        ) from None
    egv = frame.filter(pl.col("event_type") == UnifiedEventType.GLUCOSE.value)
    time = to_seconds(egv["original_datetime"].to_numpy())
    raw = _entries_to_readings(time, egv["original_glucose"].to_numpy().astype(np.float64))
    raw.messages.insert(0, f"Read {len(entries)} sgv entries from Nightscout JSON in mg/dL.")
    raw.drop("missing dateString or sgv (rejected by cgm-format)", max(0, len(entries) - len(egv)))
    return raw


def _entries_to_readings(time: np.ndarray, sgv: np.ndarray) -> RawReadings:
    """Set aside error codes and wrap Nightscout readings."""
    error_code = np.isfinite(sgv) & (sgv < ERROR_CODE_BELOW_MGDL)
    raw = RawReadings(
        subject="series-1",
        time=time[~error_code],
        glucose=sgv[~error_code],
        censored=np.zeros(int((~error_code).sum()), dtype=np.int8),
    )
    raw.drop(ERROR_CODE_REASON, int(error_code.sum()))
    raw.messages.append(UTC_NOTE)
    return raw
