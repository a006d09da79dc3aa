"""Entry points: detect the format of an upload, read it and grid every series."""

from __future__ import annotations

import csv
import io
import logging
import os

import numpy as np
from cgm_format import FormatParser, SupportedCGMFormat, UnknownFormatError

from glurpc_lab.ingest import carelink, dexcom, libre, nightscout, research, unified
from glurpc_lab.ingest.clock import repair_dst
from glurpc_lab.ingest.decode import bytes_to_text, check_size, is_xlsx, xlsx_to_csv_text
from glurpc_lab.ingest.errors import MAX_INPUT_BYTES, IngestError
from glurpc_lab.ingest.grid import grid_readings
from glurpc_lab.ingest.readings import RawReadings
from glurpc_lab.ingest.series import GRID_MINUTES, CgmDataset
from glurpc_lab.ingest.tables import HEADER_SEARCH_LINES, DELIMITERS, clean_cell, csv_rows, find_header, head_rows, sniff_delimiter
from glurpc_lab.ingest.tracks import resolve_overlaps
from glurpc_lab.ingest.units import check_units

logger = logging.getLogger(__name__)

DEFAULT_INTERPOLATION_LIMIT_MINUTES = 45
"""Maximum gap bridged by interpolation, in minutes; GlucoBench uses 45 min (30 for the Hall data set)."""

MIN_READINGS = 2
"""Minimum number of valid readings a file must contain: one reading is no time series."""

_UNIFIED_FORMATS = (SupportedCGMFormat.UNIFIED_CGM, SupportedCGMFormat.UNIFIED_EXTENDED)

NOT_CGM_MESSAGE = (
    "The file is not a recognised CGM export: no Dexcom Clarity, LibreView, Medtronic CareLink, "
    "Nightscout, cgm-format unified or research-table (id,time,gl) header was found in its first "
    f"{HEADER_SEARCH_LINES} lines, with comma, semicolon or tab separators. "
    "Upload the CSV, JSON or .xlsx file exactly as the CGM software exported it."
)


def read_export(
    content: bytes, *, interpolation_limit_minutes: int = DEFAULT_INTERPOLATION_LIMIT_MINUTES
) -> CgmDataset:
    """Read an uploaded CGM export into gridded glucose series.

    Parameters
    ----------
    content : bytes
        The file as uploaded: CSV, TSV or JSON text in UTF-8, UTF-16 or
        Windows-1252/Latin-1, or an .xlsx workbook. At most ``MAX_INPUT_BYTES``.
    interpolation_limit_minutes : int
        Maximum gap between readings, in minutes, bridged by interpolation;
        longer gaps split the series into segments. At least ``GRID_MINUTES``.

    Returns
    -------
    CgmDataset
        One ``GlucoseSeries`` per subject, in mg/dL on the 5-minute grid.

    Raises
    ------
    IngestError
        When the file is empty, too large, binary, not a CGM export, or contains
        fewer than two valid readings.
    """
    if interpolation_limit_minutes < GRID_MINUTES:
        raise IngestError(
            f"interpolation_limit_minutes is {interpolation_limit_minutes}; it must be at least "
            f"{GRID_MINUTES} (the grid step) so that consecutive readings stay in one segment."
        )
    check_size(len(content))
    from_excel = is_xlsx(content)
    text = xlsx_to_csv_text(content) if from_excel else bytes_to_text(content)
    if not text.strip():
        raise IngestError(
            "The file contains only whitespace. Export the data again and upload the downloaded file."
        )
    source_format, readings = _read_text(text, from_excel=from_excel)
    if not from_excel and _looks_truncated(text):
        for raw in readings:
            raw.quality_issues.append(
                "The last line is shorter than the line before it and has no line break: the file "
                "looks truncated. Download the export again to get every reading."
            )

    limit_seconds = interpolation_limit_minutes * 60
    for raw in readings:
        check_units(raw)
        repair_dst(raw)
        resolve_overlaps(raw, limit_seconds=limit_seconds)
    valid_counts = [int((~np.isnat(r.time) & np.isfinite(r.glucose)).sum()) for r in readings]
    if max(valid_counts) < MIN_READINGS:
        raise IngestError(
            f"The file contains {max(valid_counts)} valid glucose reading(s); at least {MIN_READINGS} "
            "are needed, and a forecast needs 8 hours of 5-minute readings. Export a longer date range."
        )
    series = tuple(
        grid_readings(raw, interpolation_limit_minutes=interpolation_limit_minutes) for raw in readings
    )
    logger.info(
        "Read a %s file: %d series, %d grid points",
        source_format, len(series), sum(len(s) for s in series),
    )
    return CgmDataset(source_format=source_format, series=series)


def read_path(path: str | os.PathLike) -> CgmDataset:
    """Read a CGM export from a file path with the default settings.

    The size is checked before anything is read, and at most
    ``MAX_INPUT_BYTES + 1`` bytes are ever read, so an oversized file fails
    at once without filling memory.

    Raises
    ------
    IngestError
        When the file cannot be read, or for every reason ``read_export`` raises.
    """
    try:
        check_size(os.stat(path).st_size)
        with open(path, "rb") as handle:
            content = handle.read(MAX_INPUT_BYTES + 1)
    except FileNotFoundError:
        raise IngestError("The file was not found. Check the path and try again.") from None
    except IsADirectoryError:
        raise IngestError("The path is a folder, not a file. Pass the path of the exported file.") from None
    except PermissionError:
        raise IngestError("The file cannot be read: permission denied. Check its permissions.") from None
    return read_export(content)


def _read_text(text: str, *, from_excel: bool = False) -> tuple[str, list[RawReadings]]:
    """Detect the format and separator of decoded text and run its reader."""
    if text.lstrip().startswith(("[", "{")):
        return "nightscout", [nightscout.read_entries_json(text)]

    # The separator is the one under which a known header appears; the
    # header may sit below a preamble of any length.
    readers = (
        ("libre", libre.is_libre_header),
        ("dexcom", dexcom.is_clarity_header),
        ("carelink", carelink.is_carelink_header),
    )
    for delimiter in DELIMITERS:
        head = head_rows(text, delimiter)
        for name, is_header in readers:
            if find_header(head, is_header) is not None:
                return name, [_run_reader(name, csv_rows(text, delimiter), from_excel)]
        first_row = next((row for row in head if any(c.strip() for c in row)), [])
        if research.is_research_header([clean_cell(c) for c in first_row]):
            rows = [row for row in csv_rows(text, delimiter)]
            start = next(i for i, row in enumerate(rows) if any(c.strip() for c in row))
            return "research-table", research.read_research_table(rows[start:])

    first_line = next((line for line in text.splitlines() if line.strip()), "")
    if nightscout.is_api_csv(first_line):
        return "nightscout", [nightscout.read_api_csv(text)]

    delimiter = sniff_delimiter(text)
    if carelink.looks_like_carelink(head_rows(text, delimiter)):
        raise IngestError(
            "The file looks like a Medtronic CareLink export, but no 'Sensor Glucose' column was "
            "found: its column headers are probably in another language, which is not supported. "
            "Set the CareLink language to English, export again and upload that file."
        )
    if delimiter != ",":
        # cgm-format reads comma-separated text only.
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(csv_rows(text, delimiter))
        text = buffer.getvalue()
    try:
        detected = FormatParser.detect_format(text)
    except UnknownFormatError:
        # cgm-format's message quotes the first lines of the file, so it is not passed on.
        raise IngestError(NOT_CGM_MESSAGE) from None
    name = "unified" if detected in _UNIFIED_FORMATS else detected.value
    return name, [unified.read_with_cgm_format(text, detected)]


def _looks_truncated(text: str) -> bool:
    """Return True when text ends without a line break in a line with fewer separators than the previous one."""
    if text.endswith(("\n", "\r")) or text.rstrip().endswith(("]", "}")):
        return False
    lines = text.splitlines()
    if len(lines) < 2:
        return False
    last, previous = lines[-1], lines[-2]
    return any(last.count(d) < previous.count(d) for d in DELIMITERS if previous.count(d) >= 2)


def _run_reader(name: str, rows: list[list[str]], from_excel: bool) -> RawReadings:
    """Run the reader of a format found by its header."""
    if name == "libre":
        return libre.read_libre(rows)
    if name == "dexcom":
        return dexcom.read_dexcom(rows, from_excel=from_excel)
    return carelink.read_carelink(rows)
