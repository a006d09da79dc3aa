"""CSV helpers shared by the format readers: delimiters, rows, header search and cells."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import numpy as np
import pandas as pd

HEADER_SEARCH_LINES = 1000
"""Lines searched for a header row. Clarity preambles carry one row per
configured alert, LibreView puts one to three lines above its header and
CareLink five or more. No export seen puts its header this far down."""

DELIMITERS = (",", ";", "\t")
"""Field separators tried, in order: comma, semicolon (European locales, CareLink) and tab
(Excel's "Unicode text")."""


def csv_rows(text: str, delimiter: str = ",") -> list[list[str]]:
    """Split CSV text into rows of cells, tolerating ragged rows and stray quotes."""
    return list(csv.reader(io.StringIO(text), delimiter=delimiter, skipinitialspace=False, strict=False))


def head_rows(text: str, delimiter: str) -> list[list[str]]:
    """Split the first ``HEADER_SEARCH_LINES`` lines of ``text`` into rows."""
    return csv_rows("\n".join(text.splitlines()[:HEADER_SEARCH_LINES]), delimiter)


def sniff_delimiter(text: str) -> str:
    """Return the separator that splits the first lines into the most consistent columns.

    For each separator and each field count of at least two, the score is
    the number of lines with that count times the count. The separator with
    the highest score wins. A semicolon file with decimal commas thus still
    scores higher for ``;`` than for ``,``.
    """
    best, best_score = ",", 0
    for delimiter in DELIMITERS:
        widths = [len(row) for row in head_rows(text, delimiter)[:200] if any(c.strip() for c in row)]
        widths = [w for w in widths if w >= 2]
        if not widths:
            continue
        score = max(widths.count(width) * width for width in set(widths))
        if score > best_score:
            best, best_score = delimiter, score
    return best


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


def cell(row: list[str], index: int | None) -> str:
    """Return ``row[index]`` stripped, or an empty string for a short row or no column."""
    if index is None or index >= len(row):
        return ""
    return row[index].strip()


def parse_numbers(cells: list[str]) -> np.ndarray:
    """Parse numeric cells to ``float64``, NaN where a cell is not a number.

    A comma is read as the decimal mark (``123,00``, ``5,4``), as European
    exports write it. No CGM export uses thousands separators, so a comma
    never separates thousands here.
    """
    series = pd.Series(cells, dtype="string").str.strip().str.replace(",", ".", regex=False)
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
