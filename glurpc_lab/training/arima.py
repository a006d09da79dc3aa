"""ARIMA baseline through darts, with an automatic order search per series.

GlucoBench (``lib/arima.py``) fits statsforecast's ``AutoARIMA`` (no seasonality, drift
and mean allowed) once per test series, on the series' first ``max_length_input``
points after min-max scaling by the train split. It then forecasts every window by
applying that fitted model to the window's last ``max_length_input`` points, with no
refit. This module keeps that structure with darts' statsmodels-based ``ARIMA``:

1. ``d`` is the number of differences after which a KPSS test (5% level) no longer
   rejects stationarity, at most 2;
2. ``p`` and ``q`` come from a stepwise search that starts at (0, 0), (1, 0) and
   (0, 1), moves ``p`` and ``q`` by one and toggles the constant (or drift when
   ``d = 1``), and keeps the fit with the lowest AICc;
3. each window's forecast applies the selected model's parameters to the window's
   input (darts ``predict(n, series=...)``).

statsforecast itself is not used because its 2.1 release requires pandas < 3.

NOTE: the search follows the outline of statsforecast's AutoARIMA but is not a port of it,
so it may select other orders on the same input.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass

import numpy as np

from glurpc_lab.training.baselines import WindowSet
from glurpc_lab.training.glucobench import HORIZON, Series

logger = logging.getLogger(__name__)

MAX_ORDER = 5
"""Largest ``p`` and ``q`` the search visits.

NOTE: GlucoBench passes ``max_p = max_q = 10`` to statsforecast; the cap of 5 bounds
the run time, and a stepwise search from order 0 rarely goes past it."""

MAX_DIFFERENCES = 2
MAX_MODELS = 30
"""Fits one order search may try before it keeps its best model so far."""

KPSS_LEVEL = 0.05


@dataclass
class ArimaForecasts:
    """ARIMA forecasts of a set of windows.

    Attributes
    ----------
    forecast : numpy.ndarray
        mg/dL, ``(W, 12)``; rows of failed windows are NaN.
    failed : numpy.ndarray
        ``bool``, True where no forecast was produced, ``(W,)``.
    fits : int
        Order searches run (one per distinct series).
    failed_fits : int
        Order searches in which no candidate model could be fitted.
    seconds : float
        Wall time of all searches and forecasts.
    """

    forecast: np.ndarray
    failed: np.ndarray
    fits: int
    failed_fits: int
    seconds: float


class ArimaBaseline:
    """Per-series automatic ARIMA, fitted on a series' first ``input_len`` points.

    Parameters
    ----------
    input_len : int
        Points of the fit and of each window's input (GlucoBench's ``max_length_input``).
    glucose_min, glucose_max : float
        Range of the min-max scaler in mg/dL, from the train split.
    """

    def __init__(self, input_len: int, glucose_min: float, glucose_max: float):
        if input_len < 2 * HORIZON:
            raise ValueError(f"ARIMA input length must be at least {2 * HORIZON} points, got {input_len}")
        self.input_len = int(input_len)
        self.glucose_min = float(glucose_min)
        self.glucose_max = float(glucose_max)

    @classmethod
    def from_train(cls, train: list[Series], input_len: int) -> ArimaBaseline:
        """Build the baseline with the min-max range of all points of the train series."""
        if not train:
            raise ValueError("the train split has no series, so the ARIMA scaler has no range")
        pooled = np.concatenate([series.glucose for series in train])
        return cls(input_len, float(pooled.min()), float(pooled.max()))

    def forecast(self, windows: WindowSet) -> ArimaForecasts:
        """Forecast each window; every window needs ``input_len`` points of history.

        A series' order search uses its points ``[0, input_len)``, which lie before the
        targets of every window with at least ``input_len`` points of history.
        """
        if len(windows) and int(windows.position.min()) < self.input_len:
            raise ValueError(
                f"a window has {int(windows.position.min())} points of history; ARIMA needs {self.input_len}"
            )

        started = time.monotonic()
        forecast = np.full((len(windows), HORIZON), np.nan)
        failed = np.zeros(len(windows), dtype=bool)
        fitted_by_series: dict[int, object] = {}
        failed_fits = 0
        series_starts = windows.target_start - windows.position
        inputs = self._scale(windows.history(self.input_len))

        for row in range(len(windows)):
            series_start = int(series_starts[row])
            if series_start not in fitted_by_series:
                first_points = self._scale(windows.glucose[series_start : series_start + self.input_len])
                fitted_by_series[series_start] = select_arima(first_points)
                if fitted_by_series[series_start] is None:
                    failed_fits += 1
            model = fitted_by_series[series_start]
            if model is None:
                failed[row] = True
                continue

            scaled = apply_arima(model, inputs[row])
            if scaled is None:
                failed[row] = True
                continue
            forecast[row] = self._unscale(scaled)

        seconds = time.monotonic() - started
        if failed.any():
            logger.warning("ARIMA produced no forecast for %d of %d windows (%d failed order searches)",
                           int(failed.sum()), len(windows), failed_fits)
        return ArimaForecasts(forecast, failed, len(fitted_by_series), failed_fits, seconds)

    def _scale(self, values: np.ndarray) -> np.ndarray:
        span = self.glucose_max - self.glucose_min or 1.0
        return (np.asarray(values, dtype=np.float64) - self.glucose_min) / span

    def _unscale(self, values: np.ndarray) -> np.ndarray:
        span = self.glucose_max - self.glucose_min or 1.0
        return values * span + self.glucose_min


def count_differences(values: np.ndarray) -> int:
    """Return how many differences make ``values`` pass a KPSS level-stationarity test at 5%."""
    from statsmodels.tools.sm_exceptions import InterpolationWarning
    from statsmodels.tsa.stattools import kpss

    current = np.asarray(values, dtype=np.float64)
    for differences in range(MAX_DIFFERENCES):
        if np.ptp(current) == 0.0:
            return differences
        # A short Newey-West lag window: trunc(3 sqrt(n) / 13), which is 3 lags for 192 points.
        lags = max(1, int(3 * math.sqrt(current.size) / 13))
        with warnings.catch_warnings():
            # kpss warns when the statistic lies outside its p-value table; the clipped p-value still decides.
            # statsmodels 0.15 also warns that kpss will return a result object instead of a tuple.
            warnings.simplefilter("ignore", InterpolationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            result = kpss(current, regression="c", nlags=lags)
        p_value = result.pvalue if hasattr(result, "pvalue") else result[1]
        if p_value >= KPSS_LEVEL:
            return differences
        current = np.diff(current)
    return MAX_DIFFERENCES


def fit_candidate(values: np.ndarray, p: int, d: int, q: int, constant: bool):
    """Fit darts ``ARIMA(p, d, q)`` with a constant (d = 0) or drift (d = 1) term when asked.

    Returns ``(AICc, fitted model)``, or None when statsmodels raises or the AICc is not finite.
    """
    from darts import TimeSeries
    from darts.models import ARIMA

    # statsmodels rejects a constant when d = 1; its linear trend term is then the drift.
    trend = "n"
    if constant:
        trend = "c" if d == 0 else "t"
    model = ARIMA(p=p, d=d, q=q, trend=trend)
    try:
        with warnings.catch_warnings():
            # statsmodels warns about non-stationary start values and slow convergence on many
            # glucose inputs. A fit that ends badly shows up as a worse or non-finite AICc.
            warnings.simplefilter("ignore")
            model.fit(TimeSeries.from_values(values))
        aicc = float(model.model.aicc)
    except (ValueError, np.linalg.LinAlgError) as error:
        logger.debug("ARIMA(%d,%d,%d) constant=%s failed: %s", p, d, q, constant, error)
        return None
    if not math.isfinite(aicc):
        return None
    return aicc, model


def select_arima(values: np.ndarray):
    """Select and fit an ARIMA model for ``values`` by a stepwise AICc search.

    Returns the fitted darts model, or None when ``values`` is not finite or no candidate
    could be fitted.
    """
    if not np.all(np.isfinite(values)):
        logger.debug("ARIMA order search skipped: the fit points contain non-finite values")
        return None
    d = count_differences(values)
    constant_allowed = d <= 1
    tried: dict[tuple[int, int, bool], tuple[float, object] | None] = {}

    def attempt(p: int, q: int, constant: bool) -> None:
        key = (p, q, constant and constant_allowed)
        if key in tried or not (0 <= p <= MAX_ORDER and 0 <= q <= MAX_ORDER) or len(tried) >= MAX_MODELS:
            return
        tried[key] = fit_candidate(values, p, d, q, key[2])

    # GlucoBench starts the search at p = q = 0; the single-term models around it are also tried first.
    for p, q, constant in ((0, 0, True), (0, 0, False), (1, 0, True), (0, 1, True)):
        attempt(p, q, constant)

    best = None
    while True:
        fitted = [(result[0], key) for key, result in tried.items() if result is not None]
        if not fitted:
            return None
        current = min(fitted)[1]
        if current == best:
            break
        best = current
        if len(tried) >= MAX_MODELS:
            break
        p, q, constant = best
        for dp, dq in ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (1, 1), (-1, 1), (1, -1)):
            attempt(p + dp, q + dq, constant)
        attempt(p, q, not constant)

    logger.debug("ARIMA order (%d,%d,%d) constant=%s after %d fits", best[0], d, best[1], best[2], len(tried))
    return tried[best][1]


def apply_arima(model, values: np.ndarray) -> np.ndarray | None:
    """Forecast 12 steps after ``values`` with the fitted parameters of ``model``, no refit.

    Returns None when ``values`` or the forecast is not finite, or darts or statsmodels raises.
    """
    from darts import TimeSeries

    if not np.all(np.isfinite(values)):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            forecast = model.predict(HORIZON, series=TimeSeries.from_values(values), show_warnings=False)
    except (ValueError, np.linalg.LinAlgError) as error:
        logger.debug("ARIMA forecast failed: %s", error)
        return None
    result = forecast.values()[:, 0].astype(np.float64)
    return result if np.all(np.isfinite(result)) else None
