"""Glucose units and the sensor limits used for censored "High"/"Low" readings."""

from __future__ import annotations

import numpy as np

MMOL_TO_MGDL = 18.0
"""Factor from mmol/L to mg/dL. iglu uses 18; cgm-format 0.13.0 uses 18.0182
and Nightscout 18.01559. The differences are below the 0.1 mmol/L resolution
of the exports, and 18 makes the round trip exact at that resolution."""

MMOL_PLAUSIBLE_MAX = 35.0
"""No mg/dL sensor reports values this low for a whole file, and no mmol/L
sensor reports values above it, so a column whose values all lie below it is
mmol/L."""

DEXCOM_LIMITS_MGDL = (40.0, 400.0)
"""Dexcom G6/G7 reporting range in mg/dL: "Low" is below 40, "High" above 400."""

LIBRE_LIMITS_MGDL = (40.0, 500.0)
"""FreeStyle Libre 2/3 reporting range in mg/dL: "LO" is below 40, "HI" above 500."""

REPORTING_RANGE_MGDL = (40.0, 400.0)
"""Range outside which a used reading sets the report's ``out_of_range`` flag."""


def mmol_to_mgdl(values: np.ndarray) -> np.ndarray:
    """Convert mmol/L to mg/dL, rounded to 0.1 mg/dL.

    Parameters
    ----------
    values : numpy.ndarray
        Glucose in mmol/L, any shape; NaN stays NaN.

    Returns
    -------
    numpy.ndarray
        ``float64`` glucose in mg/dL, same shape.
    """
    return np.round(np.asarray(values, dtype=np.float64) * MMOL_TO_MGDL, 1)


def looks_like_mmol(values: np.ndarray) -> bool:
    """Return True when every finite value is below ``MMOL_PLAUSIBLE_MAX``."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return finite.size > 0 and bool(np.all(finite < MMOL_PLAUSIBLE_MAX))


DISPLAY_UNITS = ("mg/dL", "mmol/L")
"""Units that ``to_display_units`` converts to."""


def mgdl_to_mmol(values) -> np.ndarray:
    """Convert mg/dL to mmol/L with ``MMOL_TO_MGDL``, unrounded.

    Parameters
    ----------
    values : array_like
        Glucose in mg/dL, any shape; NaN stays NaN.

    Returns
    -------
    numpy.ndarray
        ``float64`` glucose in mmol/L, same shape. ``mmol_to_mgdl`` of the
        result returns every value given to 0.1 mg/dL unchanged.
    """
    return np.asarray(values, dtype=np.float64) / MMOL_TO_MGDL


def to_display_units(values_mgdl, units: str = "mg/dL", *, decimals: int | None = None) -> np.ndarray:
    """Convert glucose stored in mg/dL to the unit a user reads, for tables and plots.

    Parameters
    ----------
    values_mgdl : array_like
        Glucose in mg/dL (a ``GlucoseSeries.glucose`` or forecast quantiles), any shape.
    units : {"mg/dL", "mmol/L"}
        Display unit; matched case-insensitively.
    decimals : int, optional
        Round to this many decimals (1 matches the 0.1 mmol/L resolution of
        the exports); None leaves the values unrounded.

    Returns
    -------
    numpy.ndarray
        ``float64`` values in ``units``, same shape.

    Raises
    ------
    ValueError
        When ``units`` is not one of ``DISPLAY_UNITS``.
    """
    requested = units.strip().lower()
    if requested == "mg/dl":
        values = np.asarray(values_mgdl, dtype=np.float64).copy()
    elif requested == "mmol/l":
        values = mgdl_to_mmol(values_mgdl)
    else:
        raise ValueError(f"Unknown display unit {units!r}; use one of {', '.join(DISPLAY_UNITS)}.")
    return values if decimals is None else np.round(values, decimals)


def check_units(raw) -> None:
    """Correct, loudly, a unit the file declares but its values contradict.

    A reader converts by the declared unit, so on entry ``raw.glucose`` is
    mg/dL if the declaration was right. Values that are all below
    ``MMOL_PLAUSIBLE_MAX`` are mmol/L whatever the header declares, and converted
    mmol/L values whose median lies above ``MMOL_PLAUSIBLE_MAX`` mmol/L were
    mg/dL. Either way the values are rescaled, ``raw.declared_units`` keeps
    the declaration, and a quality issue names both units. Censored readings
    sit at sensor limits in mg/dL and are left out of the check.

    Parameters
    ----------
    raw : RawReadings
        Readings of one subject; changed in place.
    """
    plain = (raw.censored == 0) & np.isfinite(raw.glucose)
    values = raw.glucose[plain]
    if values.size == 0:
        return
    if raw.source_units == "mg/dL" and raw.declared_units is None and looks_like_mmol(values):
        raw.glucose[plain] = mmol_to_mgdl(values)
        detected = "mmol/L"
    elif raw.source_units == "mmol/L" and np.median(values) > MMOL_PLAUSIBLE_MAX * MMOL_TO_MGDL:
        raw.glucose[plain] = np.round(values / MMOL_TO_MGDL, 1)
        detected = "mg/dL"
    else:
        return
    raw.declared_units, raw.source_units = raw.source_units, detected
    raw.quality_issues.append(
        f"The file declares {raw.declared_units}, but the values can only be {detected} (every "
        f"mmol/L value lies below {MMOL_PLAUSIBLE_MAX:g}); they were read as {detected} "
        "and converted to mg/dL where needed. Check the export's unit setting."
    )
