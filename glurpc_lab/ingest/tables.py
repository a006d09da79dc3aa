"""CSV helpers shared by the format readers: rows, header search and cell cleanup."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

HEADER_SEARCH_LINES = 40
"""Lines searched for a header row. Clarity preambles carry one row per
configured alert, about 15 rows at most, and LibreView puts one or two lines
above its header."""


def csv_rows(text: str) -> list[list[str]]:
    """Split CSV text into rows of cells, tolerating ragged rows and stray quotes."""
    return list(csv.reader(io.StringIO(text), skipinitialspace=False, strict=False))


def clean_cell(cell: str) -> str:
    """Strip whitespace, quotes and BOM characters (also double-encoded ones) from a header cell."""
    return cell.replace("\ufeff", "").replace("ï»¿", "").strip().strip('"').strip()


def find_header(rows: list[list[str]], matches: Callable[[list[str]], bool]) -> int | None:
    """Return the index of the first row within ``HEADER_SEARCH_LINES`` whose cleaned cells match."""
    for index, row in enumerate(rows[:HEADER_SEARCH_LINES]):
        if matches([clean_cell(cell) for cell in row]):
            return index
    return None


def column_index(header: list[str], predicate: Callable[[str], bool]) -> int | None:
    """Return the index of the first cleaned header cell that satisfies ``predicate``."""
    for index, cell in enumerate(header):
        if predicate(cell):
            return index
    return None


def cell(row: list[str], index: int) -> str:
    """Return ``row[index]`` stripped, or an empty string for a short row."""
    return row[index].strip() if index < len(row) else ""
