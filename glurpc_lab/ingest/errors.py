"""The one error type ingestion raises, and the input size cap."""

from __future__ import annotations

MAX_INPUT_BYTES = 100 * 1024 * 1024
"""Largest accepted upload, in bytes (100 MiB). A multi-year 5-minute
Clarity export is about 10-20 MB, so the cap leaves room for long histories
while bounding the memory one request can take."""


class IngestError(ValueError):
    """An uploaded file could not be turned into glucose series.

    The message is safe to show a user: it names the problem, the line or
    column where one applies and what to do, and it never contains values
    from the file.
    """
