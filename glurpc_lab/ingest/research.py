"""Research tables with one row per reading: ``id,time,gl`` (iglu, GlucoBench).

cgm-format 0.13.0 rejects this shape. Each distinct ``id`` becomes one
series, in order of first appearance. ``gl`` has no declared unit: it is
mg/dL unless every value is below 35, which only mmol/L data can be.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from glurpc_lab.ingest.errors import IngestError
from glurpc_lab.ingest.readings import RawReadings, to_seconds
from glurpc_lab.ingest.tables import clean_cell
from glurpc_lab.ingest.units import looks_like_mmol, mmol_to_mgdl

REQUIRED_COLUMNS = ("id", "time", "gl")


def is_research_header(cells: list[str]) -> bool:
    """Return True when the cleaned header row contains ``id``, ``time`` and ``gl``."""
    lowered = {c.lower() for c in cells}
    return all(name in lowered for name in REQUIRED_COLUMNS)


def read_research_table(text: str) -> list[RawReadings]:
    """Read an ``id,time,gl`` table into one ``RawReadings`` per subject.

    Raises
    ------
    IngestError
        When no row has both a valid time and a numeric ``gl``.
    """
    table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    table.columns = [clean_cell(str(c)).lower() for c in table.columns]
    stamps = pd.to_datetime(table["time"].str.strip(), format="ISO8601", errors="coerce")
    values = pd.to_numeric(table["gl"].str.strip(), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    usable = stamps.notna().to_numpy() & np.isfinite(values)
    if not usable.any():
        first_bad = 2 + int(np.flatnonzero(~usable)[0]) if len(usable) else 2
        column = "time" if len(usable) and pd.isna(stamps.iloc[first_bad - 2]) else "gl"
        raise IngestError(
            f"Line {first_bad}, column '{column}': no row has both a valid time "
            "(YYYY-MM-DD hh:mm:ss) and a numeric gl value. Fix the table and upload it again."
        )

    source_units = "mg/dL"
    if looks_like_mmol(values):
        source_units = "mmol/L"
        values = mmol_to_mgdl(values)

    subjects = table["id"].str.strip()
    series = []
    for subject in pd.unique(subjects):
        mask = (subjects == subject).to_numpy()
        raw = RawReadings(
            subject=str(subject),
            time=to_seconds(stamps[mask].to_numpy()),
            glucose=values[mask],
            censored=np.zeros(int(mask.sum()), dtype=np.int8),
            source_units=source_units,
        )
        raw.messages.append(f"Read {int(mask.sum())} readings from a research table (id,time,gl).")
        if source_units == "mmol/L":
            raw.messages.append("gl has no unit; every value is below 35, so it was read as mmol/L.")
        series.append(raw)
    return series
