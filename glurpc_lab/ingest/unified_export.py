"""Write gridded series as cgm-format's unified CSV."""

from __future__ import annotations

import csv
import io

import numpy as np

from glurpc_lab.ingest.series import CgmDataset

UNIFIED_COLUMNS = (
    "sequence_id", "original_datetime", "original_glucose", "quality", "event_type", "datetime",
    "glucose", "carbs", "insulin_slow", "insulin_fast", "exercise",
)
"""Columns of cgm-format 0.13.0's unified CSV, in its order."""

QUALITY_OUT_OF_RANGE = 1
QUALITY_IMPUTATION = 4
"""cgm-format quality bits: a censored (High/Low) value, and a point filled by interpolation."""


def to_unified_csv(dataset: CgmDataset) -> str:
    """Return every series of ``dataset`` as one unified CSV of glucose readings (EGV_READ).

    Each gap-free segment of each series becomes one ``sequence_id``, numbered
    from 1 across series in file order. Rows are the 5-minute grid points in
    mg/dL. Interpolated points carry the IMPUTATION bit and censored ones the
    OUT_OF_RANGE bit; ``original_datetime`` equals ``datetime`` because the
    grid values are interpolated at the grid instants.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(UNIFIED_COLUMNS)

    next_sequence = 1
    for series in dataset.series:
        times = np.datetime_as_string(series.time.astype("datetime64[s]"), unit="ms")
        for start, stop in series.segment_bounds():
            for row in range(start, stop):
                quality = 0
                if series.imputed[row]:
                    quality |= QUALITY_IMPUTATION
                if series.censored[row]:
                    quality |= QUALITY_OUT_OF_RANGE
                glucose = f"{float(series.glucose[row]):.1f}"
                writer.writerow((
                    next_sequence, times[row], glucose, quality, "EGV_READ", times[row],
                    glucose, "", "", "", "",
                ))
            next_sequence += 1
    return buffer.getvalue()
