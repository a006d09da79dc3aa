"""cgm-format's unified CSV, and other formats only cgm-format reads (CareLink).

cgm-format returns every row it parsed. For these formats no independent
row count is made, so ``readings_in`` is the number of glucose rows
cgm-format returned.
"""

from __future__ import annotations

import logging

import numpy as np
import polars as pl
from cgm_format import FormatParser, SupportedCGMFormat
from cgm_format.formats.dexcom import DEXCOM_HIGH_GLUCOSE_DEFAULT, DEXCOM_LOW_GLUCOSE_DEFAULT
from cgm_format.formats.unified import Quality, UnifiedEventType

from glurpc_lab.ingest.errors import IngestError
from glurpc_lab.ingest.readings import RawReadings, to_seconds
from glurpc_lab.ingest.units import DEXCOM_LIMITS_MGDL

logger = logging.getLogger(__name__)

IMPUTED_REASON = "imputed by an earlier processing step, not a reading"


def read_with_cgm_format(text: str, detected: SupportedCGMFormat) -> RawReadings:
    """Parse ``text`` with cgm-format as ``detected`` and collect its glucose rows.

    Rows flagged IMPUTATION in the source are points an earlier run
    interpolated, so they are dropped rather than gridded a second time.
    Out-of-range rows at cgm-format's 39/401 placeholders become censored
    readings at 40/400 mg/dL.

    Raises
    ------
    IngestError
        When cgm-format cannot parse the file or it has no glucose rows.
    """
    try:
        frame = FormatParser.parse_to_unified(text, detected)
    except (ValueError, pl.exceptions.PolarsError) as error:
        # cgm-format messages can quote lines of the file, so only the type is kept.
        logger.info("cgm-format rejected a %s file: %s", detected.value, type(error).__name__)
        raise IngestError(
            f"The file has the column names of a {detected.value} export but could not be parsed "
            "as one: a required column is missing or a timestamp or glucose value has an "
            "unexpected layout. If it is such an export, export it again and use it unchanged; "
            "otherwise use a CGM export (Dexcom Clarity, LibreView, Medtronic CareLink, "
            "Nightscout, cgm-format unified CSV, or an id,time,gl table)."
        ) from None

    kinds = frame["event_type"].to_list()
    glucose_rows = frame.filter(pl.col("event_type") == UnifiedEventType.GLUCOSE.value)
    if glucose_rows.height == 0:
        raise IngestError(
            f"The {detected.value} file contains no glucose readings. Export a date range "
            "in which the sensor was worn."
        )
    other: dict[str, int] = {}
    calibration = 0
    for kind in kinds:
        if kind == UnifiedEventType.CALIBRATION.value:
            calibration += 1
        elif kind != UnifiedEventType.GLUCOSE.value:
            other[kind] = other.get(kind, 0) + 1

    quality = glucose_rows["quality"].to_numpy()
    imputed = (quality & Quality.IMPUTATION.value) != 0
    kept = glucose_rows.filter(pl.Series(~imputed))

    # original_* are the values before any grid re-timing, when the file has them.
    time = to_seconds(
        kept.select(pl.coalesce("original_datetime", "datetime")).to_series().to_numpy()
    )
    glucose = kept.select(pl.coalesce("original_glucose", "glucose")).to_series().to_numpy().astype(np.float64)
    out_of_range = (kept["quality"].to_numpy() & Quality.OUT_OF_RANGE.value) != 0
    low = out_of_range & (glucose <= DEXCOM_LOW_GLUCOSE_DEFAULT)
    high = out_of_range & (glucose >= DEXCOM_HIGH_GLUCOSE_DEFAULT)
    glucose[low] = DEXCOM_LIMITS_MGDL[0]
    glucose[high] = DEXCOM_LIMITS_MGDL[1]

    raw = RawReadings(
        subject="series-1",
        time=time,
        glucose=glucose,
        censored=np.where(high, 1, np.where(low, -1, 0)).astype(np.int8),
        calibration_records=calibration,
        other_records=other,
    )
    raw.drop(IMPUTED_REASON, int(imputed.sum()))
    raw.messages.append(
        f"Read {glucose_rows.height} glucose rows from a {detected.value} file with cgm-format (mg/dL)."
    )
    return raw
