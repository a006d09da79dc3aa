"""Forecasts of one series: arrays in mg/dL, one row per forecasting window."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DEFAULT_LEVELS = (0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975)
"""Quantile levels stored for every forecast: the 50, 80 and 95% central intervals and the median."""


@dataclass(frozen=True)
class Forecast:
    """MC-dropout forecasts of every window of one series.

    Window ``w`` uses the 96 grid points ending at ``input_end[w]`` (inclusive)
    and forecasts the 12 points after it. Windows are in time order, so the
    last row is the latest window. When the series' last segment is long
    enough, that row ends at the last reading and forecasts the hour after
    it, where ``truth`` is all NaN.

    Attributes
    ----------
    subject : str
        Subject label of the series.
    input_end : numpy.ndarray
        ``int64`` index into the series of each window's last input point, shape ``(W,)``.
    time_end : numpy.ndarray
        ``datetime64[s]`` time of each window's last input point, shape ``(W,)``.
    horizon_minutes : numpy.ndarray
        Minutes after ``time_end`` of each forecast step, ``(H,)`` = 5, 10, ..., 60.
    levels : numpy.ndarray
        Quantile levels, ``(Q,)``.
    quantiles : numpy.ndarray
        Predictive quantiles in mg/dL, ``float32``, shape ``(W, H, Q)``.
    sample_mean : numpy.ndarray
        Mean of each MC-dropout sample in mg/dL, ``float32``, shape ``(W, H, S)``.
    sample_std : numpy.ndarray
        Predictive standard deviation of each MC-dropout sample at each step in
        mg/dL: the model's log-variance times the model's per-step interval
        factors, ``float32``, shape ``(W, H, S)``.
    truth : numpy.ndarray
        Observed glucose at the forecast steps in mg/dL, NaN where unknown
        (after the last reading or across a segment boundary), shape ``(W, H)``.
    seed : int
        Seed the MC-dropout sampling used.
    model_id : str
        Identifier of the model and weights that produced the forecast.
    """

    subject: str
    input_end: np.ndarray
    time_end: np.ndarray
    horizon_minutes: np.ndarray
    levels: np.ndarray
    quantiles: np.ndarray
    sample_mean: np.ndarray
    sample_std: np.ndarray
    truth: np.ndarray
    seed: int
    model_id: str
    metadata: dict = field(default_factory=dict)

    @property
    def n_windows(self) -> int:
        """Number of forecasting windows."""
        return int(self.quantiles.shape[0])

    def quantile(self, level: float) -> np.ndarray:
        """Return the ``(W, H)`` forecast at one stored quantile level."""
        matches = np.flatnonzero(np.isclose(self.levels, level))
        if matches.size == 0:
            stored = ", ".join(f"{x:g}" for x in self.levels)
            raise KeyError(f"quantile level {level:g} is not stored; stored levels: {stored}")
        return self.quantiles[:, :, int(matches[0])]

    @property
    def median(self) -> np.ndarray:
        """Median forecast in mg/dL, shape ``(W, H)``."""
        return self.quantile(0.5)

    def forecast_times(self, window: int) -> np.ndarray:
        """Return the ``datetime64[s]`` times of the forecast steps of one window."""
        offsets = self.horizon_minutes.astype("timedelta64[m]").astype("timedelta64[s]")
        return self.time_end[window] + offsets
