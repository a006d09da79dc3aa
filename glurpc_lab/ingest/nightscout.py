"""Nightscout entries: the JSON API and the headerless API CSV.

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

from glurpc_lab.ingest.errors import IngestError
from glurpc_lab.ingest.readings import RawReadings, to_seconds
from glurpc_lab.ingest.tables import csv_rows
from glurpc_lab.ingest.timestamps import parse_iso_times

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
    """Read a Nightscout entries JSON array (``/api/v1/entries.json``).

    The time of an entry is its epoch-millisecond ``date``, which is UTC
    whatever the uploader's clock; ``dateString`` is used only when ``date``
    is missing. Glucose is read from ``sgv`` only (never ``unfiltered`` or
    ``filtered``, which are raw sensor counts) and may be fractional. Each
    uploading ``device`` is a track. The entries are parsed here rather than
    by cgm-format 0.13.0, which rejects a whole file when one ``dateString``
    has a different UTC offset and quotes it in its error.

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
    # Some uploaders omit the type; an entry with an sgv is a sensor reading.
    entries = [r for r in records if isinstance(r, dict) and r.get("type", "sgv") == "sgv" and "sgv" in r]
    if not entries:
        raise IngestError(
            "The JSON file contains no Nightscout sgv entries. Upload the output of "
            "/api/v1/entries.json with a count large enough for the period you need."
        )

    epoch_ms = pd.to_numeric(pd.Series([e.get("date") for e in entries], dtype="object"), errors="coerce")
    from_epoch = to_seconds(pd.to_datetime(epoch_ms, unit="ms", errors="coerce").to_numpy())
    strings = parse_iso_times([e["dateString"] if isinstance(e.get("dateString"), str) else "" for e in entries])
    time = np.where(np.isnat(from_epoch), strings.time, from_epoch)
    sgv = pd.to_numeric(pd.Series([e.get("sgv") for e in entries], dtype="object"), errors="coerce")
    devices = np.array([str(e.get("device", "")) for e in entries], dtype=object)

    raw = _entries_to_readings(time, sgv.to_numpy(dtype=np.float64, na_value=np.nan), devices)
    raw.messages.insert(0, f"Read {len(entries)} sgv entries from Nightscout JSON in mg/dL.")
    _note_local_offsets(raw, entries, from_epoch, strings.time)
    _note_declared_units(raw, entries)
    return raw


def _note_local_offsets(raw: RawReadings, entries: list[dict], from_epoch: np.ndarray, from_string: np.ndarray) -> None:
    """Report the uploaders' ``utcOffset`` values, and dateStrings that are local time labelled UTC."""
    offsets = sorted({int(e["utcOffset"]) for e in entries if isinstance(e.get("utcOffset"), (int, float))})
    if offsets:
        local_zones = ", ".join(f"UTC{minutes / 60:+g} h" for minutes in offsets)
        raw.messages.append(f"The uploaders' local time was {local_zones} (utcOffset); the series stays in UTC.")
    fake_utc = 0
    for entry, epoch, string in zip(entries, from_epoch, from_string):
        offset = entry.get("utcOffset")
        if np.isnat(epoch) or np.isnat(string) or not isinstance(offset, (int, float)) or not offset:
            continue
        if str(entry.get("dateString", "")).endswith("Z") and (string - epoch) == np.timedelta64(int(offset) * 60, "s"):
            fake_utc += 1
    if fake_utc:
        raw.messages.append(
            f"{fake_utc} entries have a dateString in local time marked as UTC ('Z'); "
            "their time was taken from the epoch-millisecond date field."
        )


def _note_declared_units(raw: RawReadings, entries: list[dict]) -> None:
    """Warn when entries declare mmol/L: Nightscout stores sgv in mg/dL whatever the display unit."""
    declared = {str(e["units"]).lower() for e in entries if "units" in e}
    if not any(unit.startswith("mmol") for unit in declared):
        return
    raw.declared_units = "mmol/L"
    raw.quality_issues.append(
        "The entries declare mmol/L, but Nightscout stores sgv in mg/dL whatever the site's display "
        "unit, so the values were read as mg/dL (detected: mg/dL, declared: mmol/L). "
        "Check the series against the device if that seems wrong."
    )


def _entries_to_readings(time: np.ndarray, sgv: np.ndarray, devices: np.ndarray | None = None) -> RawReadings:
    """Set aside error codes and wrap Nightscout readings in UTC."""
    error_code = np.isfinite(sgv) & (sgv < ERROR_CODE_BELOW_MGDL)
    raw = RawReadings(
        subject="series-1",
        time=time[~error_code],
        glucose=sgv[~error_code],
        censored=np.zeros(int((~error_code).sum()), dtype=np.int8),
        utc=True,
        track=None if devices is None else devices[~error_code],
    )
    raw.drop(ERROR_CODE_REASON, int(error_code.sum()))
    raw.messages.append(UTC_NOTE)
    return raw
