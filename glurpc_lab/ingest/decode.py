"""Bytes in, text out: size cap, binary detection, Excel workbooks and encodings."""

from __future__ import annotations

import io
import logging
import zipfile

from cgm_format import FormatParser

from glurpc_lab.ingest.errors import MAX_INPUT_BYTES, IngestError

logger = logging.getLogger(__name__)

_ZIP_MAGIC = b"PK\x03\x04"
_SNIFF_BYTES = 8192


def check_size(size: int) -> None:
    """Raise IngestError when ``size`` bytes is empty or over ``MAX_INPUT_BYTES``."""
    if size == 0:
        raise IngestError(
            "The file is empty (0 bytes). Export the data again from Dexcom Clarity, "
            "LibreView or Nightscout and upload the downloaded file."
        )
    if size > MAX_INPUT_BYTES:
        raise IngestError(
            f"The file is {size / 2**20:.1f} MiB, over the {MAX_INPUT_BYTES / 2**20:.0f} MiB "
            "limit. Export a shorter date range and upload it in parts."
        )


def is_xlsx(content: bytes) -> bool:
    """Return True when ``content`` starts like a ZIP container, as .xlsx files do."""
    return content[:4] == _ZIP_MAGIC


def xlsx_to_csv_text(content: bytes) -> str:
    """Convert the first sheet of an .xlsx workbook to CSV text.

    Every cell is read as a string so that timestamps and the "High"/"Low"
    markers reach the CSV readers as Clarity writes them.

    Raises
    ------
    IngestError
        When the workbook cannot be opened or has no rows.
    """
    import pandas as pd  # pandas imports openpyxl lazily for .xlsx

    try:
        sheet = pd.read_excel(io.BytesIO(content), header=None, dtype=str, sheet_name=0)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as error:
        # The openpyxl message can quote sheet or cell content, so only the type is logged.
        logger.info("Excel workbook unreadable: %s", type(error).__name__)
        raise IngestError(
            "The Excel workbook could not be read: it is damaged or not an .xlsx file. "
            "Open it in Excel or LibreOffice and save it again as .xlsx or CSV, "
            "or download the export again."
        ) from None
    if sheet.empty:
        raise IngestError(
            "The first sheet of the Excel workbook is empty. Upload the workbook that "
            "Dexcom Clarity exported, with the readings on its first sheet."
        )
    return sheet.to_csv(index=False, header=False)


def bytes_to_text(content: bytes) -> str:
    """Decode an uploaded text file, removing BOM and double-encoded BOM artefacts.

    UTF-8 is tried first and Windows-1252 second; cgm-format's
    ``decode_raw_data`` then repairs the BOM artefacts that Clarity exports
    can carry.

    Raises
    ------
    IngestError
        When the bytes are binary data rather than text.
    """
    head = content[:_SNIFF_BYTES]
    if b"\x00" in head:
        raise IngestError(
            "The file contains binary data, not text: it is neither a CSV or JSON export "
            "nor an Excel workbook. Upload the CSV, JSON or .xlsx file that the CGM "
            "software exported."
        )
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        try:
            # Windows-1252 leaves five byte values undefined, so random binary
            # data almost always fails here too.
            text = content.decode("cp1252")
        except UnicodeDecodeError:
            raise IngestError(
                "The file is not readable text in UTF-8 or Windows-1252 encoding. "
                "Upload the CSV, JSON or .xlsx file exactly as the CGM software exported it."
            ) from None
        return text.lstrip("\ufeff")
    return FormatParser.decode_raw_data(content)
