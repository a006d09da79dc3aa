"""Calendar covariates of grid timestamps, in the order the model expects."""

from __future__ import annotations

import numpy as np

from glurpc_lab.ingest.series import GRID_MINUTES


def calendar_covariates(times: np.ndarray) -> np.ndarray:
    """Return day, month, year, hour, minute and second of each timestamp.

    Parameters
    ----------
    times : numpy.ndarray
        Naive timestamps, any ``datetime64`` unit, shape ``(n,)`` (or any shape).

    Returns
    -------
    numpy.ndarray
        ``float32`` of shape ``times.shape + (6,)``, columns in the order
        day of month, month, year, hour, minute, second.
    """
    t = np.asarray(times).astype("datetime64[s]")
    month_start = t.astype("datetime64[M]")
    day_start = t.astype("datetime64[D]")

    year = month_start.astype("datetime64[Y]").astype(np.int64) + 1970
    month = month_start.astype(np.int64) % 12 + 1
    day = (day_start - month_start.astype("datetime64[D]")).astype(np.int64) + 1
    seconds_of_day = (t - day_start).astype(np.int64)

    columns = (day, month, year, seconds_of_day // 3600, seconds_of_day % 3600 // 60, seconds_of_day % 60)
    return np.stack(columns, axis=-1).astype(np.float32)


def future_times(time_end: np.ndarray, steps: int) -> np.ndarray:
    """Return the ``steps`` grid times after each window end, shape ``time_end.shape + (steps,)``.

    The times follow the 5-minute grid from the window end, whether or not the
    series has readings there, so the window ending at the last reading gets covariates too.
    """
    offsets = (np.arange(1, steps + 1) * GRID_MINUTES).astype("timedelta64[m]").astype("timedelta64[s]")
    return np.asarray(time_end).astype("datetime64[s]")[..., None] + offsets
