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

    UTF-16 is recognised by its BOM, or without one by the zero bytes that
    ASCII text has in every other position (Excel's "Unicode text" export).
    Otherwise UTF-8 is tried first, then Windows-1252, which is a superset of
    the printable Latin-1 range. A UTF-8 file cut inside a multi-byte
    character at its very end (a truncated download) loses that character
    only. cgm-format's ``decode_raw_data`` then repairs the BOM artefacts
    that Clarity exports can carry.

    Raises
    ------
    IngestError
        When the bytes are binary data rather than text.
    """
    utf16 = _utf16_codec(content)
    if utf16 is not None:
        # An odd length means the last character was cut off; drop its byte.
        usable = content[: len(content) - len(content) % 2]
        text = usable.decode(utf16, errors="replace")
        if "\x00" in text or text.count("\ufffd") > max(2, len(text) // 1000):
            raise IngestError(_NOT_TEXT_MESSAGE)
        logger.info("Decoded a UTF-16 text file")
        return text.lstrip("\ufeff")

    head = content[:_SNIFF_BYTES]
    if b"\x00" in head:
        raise IngestError(_NOT_TEXT_MESSAGE)
    try:
        content.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start >= len(content) - 3 and error.reason == "unexpected end of data":
            return FormatParser.decode_raw_data(content[: error.start])
        try:
            # Windows-1252 leaves five byte values undefined, so random binary
            # data almost always fails here too.
            text = content.decode("cp1252")
        except UnicodeDecodeError:
            raise IngestError(
                "The file is not readable text in UTF-8, UTF-16 or Windows-1252/Latin-1 encoding. "
                "Upload the CSV, JSON or .xlsx file exactly as the CGM software exported it."
            ) from None
        return text.lstrip("\ufeff")
    return FormatParser.decode_raw_data(content)


_NOT_TEXT_MESSAGE = (
    "The file contains binary data, not text: it is neither a CSV or JSON export "
    "nor an Excel workbook. Upload the CSV, JSON or .xlsx file that the CGM "
    "software exported."
)


def _utf16_codec(content: bytes) -> str | None:
    """Return ``"utf-16"``, ``"utf-16-le"`` or ``"utf-16-be"`` when ``content`` looks like UTF-16 text."""
    if content[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    head = content[:_SNIFF_BYTES]
    if len(head) < 8:
        return None
    # ASCII characters in UTF-16 have one zero byte each: on odd positions in
    # little-endian, on even positions in big-endian.
    even_zero = head[0::2].count(0) / len(head[0::2])
    odd_zero = head[1::2].count(0) / len(head[1::2])
    if odd_zero > 0.9 and even_zero < 0.1:
        return "utf-16-le"
    if even_zero > 0.9 and odd_zero < 0.1:
        return "utf-16-be"
    return None
