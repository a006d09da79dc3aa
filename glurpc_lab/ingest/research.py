"""Research tables with one row per reading: ``id,time,gl`` (iglu, GlucoBench).

cgm-format 0.13.0 rejects this shape. Each distinct ``id`` becomes one
series, in order of first appearance. ``gl`` has no declared unit: it is
mg/dL unless every value is below 35, which only mmol/L data can be.
``time`` is ISO 8601; with UTC offsets the series is in UTC.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from glurpc_lab.ingest.errors import IngestError
from glurpc_lab.ingest.readings import RawReadings
from glurpc_lab.ingest.tables import cell, clean_cell, parse_numbers
from glurpc_lab.ingest.timestamps import apply_time_basis, parse_iso_times
from glurpc_lab.ingest.units import looks_like_mmol, mmol_to_mgdl

REQUIRED_COLUMNS = ("id", "time", "gl")


def is_research_header(cells: list[str]) -> bool:
    """Return True when the cleaned header row contains ``id``, ``time`` and ``gl``."""
    lowered = {c.lower() for c in cells}
    return all(name in lowered for name in REQUIRED_COLUMNS)


def read_research_table(rows: list[list[str]]) -> list[RawReadings]:
    """Read an ``id,time,gl`` table (header on its first row) into one ``RawReadings`` per subject.

    Raises
    ------
    IngestError
        When no row has both a valid time and a numeric ``gl``.
    """
    header = [clean_cell(c).lower() for c in rows[0]]
    id_col, time_col, gl_col = (header.index(name) for name in REQUIRED_COLUMNS)
    body = [(line, row) for line, row in enumerate(rows[1:], start=2) if any(c.strip() for c in row)]
    lines = [line for line, _ in body]
    subjects = pd.Series([cell(row, id_col) for _, row in body], dtype="object")
    times = parse_iso_times([cell(row, time_col) for _, row in body])
    values = parse_numbers([cell(row, gl_col) for _, row in body])

    usable = ~np.isnat(times.time) & np.isfinite(values)
    if not usable.any():
        first_bad = lines[0] if lines else 2
        column = "time" if lines and np.isnat(times.time[0]) else "gl"
        raise IngestError(
            f"Line {first_bad}, column '{column}': no row has both a valid time "
            "(YYYY-MM-DD hh:mm:ss) and a numeric gl value. Fix the table and upload it again."
        )

    source_units = "mg/dL"
    if looks_like_mmol(values):
        source_units = "mmol/L"
        values = mmol_to_mgdl(values)

    series = []
    for subject in pd.unique(subjects):
        mask = (subjects == subject).to_numpy()
        raw = RawReadings(
            subject=str(subject),
            time=times.time[mask],
            glucose=values[mask],
            censored=np.zeros(int(mask.sum()), dtype=np.int8),
            source_units=source_units,
        )
        raw.messages.append(f"Read {int(mask.sum())} readings from a research table (id,time,gl).")
        if source_units == "mmol/L":
            raw.messages.append("gl has no unit; every value is below 35, so it was read as mmol/L.")
        apply_time_basis(raw, times.subset(mask))
        series.append(raw)
    return series
