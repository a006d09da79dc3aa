"""Entry points: detect the format of an upload, read it and grid every series."""

from __future__ import annotations

import logging
import os

import numpy as np
from cgm_format import FormatParser, SupportedCGMFormat, UnknownFormatError

from glurpc_lab.ingest import dexcom, libre, nightscout, research, unified
from glurpc_lab.ingest.decode import bytes_to_text, check_size, is_xlsx, xlsx_to_csv_text
from glurpc_lab.ingest.errors import IngestError
from glurpc_lab.ingest.grid import grid_readings
from glurpc_lab.ingest.readings import RawReadings
from glurpc_lab.ingest.series import GRID_MINUTES, CgmDataset
from glurpc_lab.ingest.tables import csv_rows, find_header
from glurpc_lab.ingest.units import looks_like_mmol

logger = logging.getLogger(__name__)

DEFAULT_INTERPOLATION_LIMIT_MINUTES = 45
"""Maximum gap bridged by interpolation, in minutes; GlucoBench uses 45 min (30 for the Hall data set)."""

MIN_READINGS = 2
"""Minimum number of valid readings a file must contain: one reading is no time series."""

_UNIFIED_FORMATS = (SupportedCGMFormat.UNIFIED_CGM, SupportedCGMFormat.UNIFIED_EXTENDED)

NOT_CGM_MESSAGE = (
    "The file is not a recognised CGM export: no Dexcom Clarity, LibreView, Nightscout, "
    "cgm-format unified or research-table (id,time,gl) header was found in its first lines. "
    "Upload the CSV, JSON or .xlsx file exactly as the CGM software exported it."
)


def read_export(
    content: bytes, *, interpolation_limit_minutes: int = DEFAULT_INTERPOLATION_LIMIT_MINUTES
) -> CgmDataset:
    """Read an uploaded CGM export into gridded glucose series.

    Parameters
    ----------
    content : bytes
        The file as uploaded: CSV or JSON text, or an .xlsx workbook. At most
        ``MAX_INPUT_BYTES``.
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
    if is_xlsx(content):
        source_format, readings = "dexcom", [dexcom.read_dexcom(xlsx_to_csv_text(content), from_excel=True)]
    else:
        text = bytes_to_text(content)
        if not text.strip():
            raise IngestError(
                "The file contains only whitespace. Export the data again and upload the downloaded file."
            )
        source_format, readings = _read_text(text)

    for raw in readings:
        _check_declared_units(raw)
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

    Raises
    ------
    IngestError
        When the file cannot be read, or for every reason ``read_export`` raises.
    """
    try:
        size = os.stat(path).st_size
        check_size(size)
        with open(path, "rb") as handle:
            content = handle.read()
    except FileNotFoundError:
        raise IngestError("The file was not found. Check the path and try again.") from None
    except IsADirectoryError:
        raise IngestError("The path is a folder, not a file. Pass the path of the exported file.") from None
    except PermissionError:
        raise IngestError("The file cannot be read: permission denied. Check its permissions.") from None
    return read_export(content)


def _read_text(text: str) -> tuple[str, list[RawReadings]]:
    """Detect the format of decoded text and run its reader."""
    if text.lstrip().startswith(("[", "{")):
        return "nightscout", [nightscout.read_entries_json(text)]

    head = csv_rows("\n".join(text.splitlines()[:60]))
    if find_header(head, libre.is_libre_header) is not None:
        return "libre", [libre.read_libre(text)]
    if find_header(head, dexcom.is_clarity_header) is not None:
        return "dexcom", [dexcom.read_dexcom(text)]
    if find_header(head[:1], research.is_research_header) is not None:
        return "research-table", research.read_research_table(text)
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    if nightscout.is_api_csv(first_line):
        return "nightscout", [nightscout.read_api_csv(text)]

    try:
        detected = FormatParser.detect_format(text)
    except UnknownFormatError:
        # cgm-format's message quotes the first lines of the file, so it is not passed on.
        raise IngestError(NOT_CGM_MESSAGE) from None
    name = "unified" if detected in _UNIFIED_FORMATS else detected.value
    return name, [unified.read_with_cgm_format(text, detected)]


def _check_declared_units(raw: RawReadings) -> None:
    """Note, without rescaling, values that contradict the unit the file declared."""
    if raw.source_units == "mg/dL" and looks_like_mmol(raw.glucose):
        raw.quality_issues.append(
            "Every value is below 35 although the file declares mg/dL; the data may be mmol/L. "
            "Values were not rescaled: check the export's unit setting."
        )
