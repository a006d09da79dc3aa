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
