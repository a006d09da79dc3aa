"""Evaluation windows over many series, and the persistence and darts linear-regression baselines."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glurpc_lab.training.glucobench import GRID_STEP_MINUTES, HORIZON, Series

LINREG_DTYPE = np.float64
"""Floating-point type of the linear-regression features. GlucoBench's series are float32,
but a float32 least-squares fit on Weinstock's 380,000 windows moves the median MSE by
about 0.01 mg/dL^2 (measured), and float64 matches the reproduced GlucoBench figures."""


@dataclass(frozen=True)
class WindowSet:
    """Scored windows of a list of series, held as one concatenated array.

    A window is identified by ``target_start``, the index of its first forecast step
    in the concatenation. Its 12 targets follow that index, and all its inputs
    precede it inside the same series.

    Attributes
    ----------
    glucose : numpy.ndarray
        ``float32`` mg/dL of all series, concatenated, ``(N,)``.
    minutes : numpy.ndarray
        ``int64`` grid times in minutes since the epoch, ``(N,)``.
    code : numpy.ndarray
        ``int64`` subject label code of every point, ``(N,)``.
    target_start : numpy.ndarray
        ``int64`` index of each window's first target point, ``(W,)``.
    position : numpy.ndarray
        ``int64`` offset of ``target_start`` inside its series, ``(W,)``; a window has
        ``position`` points of history.
    series_index : numpy.ndarray
        ``int64`` index into the list of series of every point, ``(N,)``.
    observed : numpy.ndarray
        ``bool``, True where a point is a reading rather than interpolated, ``(N,)``.
    """

    glucose: np.ndarray
    minutes: np.ndarray
    code: np.ndarray
    target_start: np.ndarray
    position: np.ndarray
    series_index: np.ndarray
    observed: np.ndarray

    def __len__(self) -> int:
        return int(self.target_start.shape[0])

    def subset(self, index: np.ndarray) -> WindowSet:
        """Return the windows ``index`` (same concatenated arrays)."""
        return WindowSet(
            self.glucose, self.minutes, self.code, self.target_start[index], self.position[index], self.series_index, self.observed
        )

    def truth(self) -> np.ndarray:
        """Return the observed targets in mg/dL, ``float64``, ``(W, 12)``."""
        return self.glucose[self.target_start[:, None] + np.arange(HORIZON)].astype(np.float64)

    def history(self, length: int) -> np.ndarray:
        """Return the last ``length`` points before each target, ``float32``, ``(W, length)``.

        Raises ``ValueError`` when a window has fewer than ``length`` points of history.
        """
        if len(self) and int(self.position.min()) < length:
            raise ValueError(f"a window has {int(self.position.min())} points of history, fewer than the {length} requested")
        return self.glucose[self.target_start[:, None] + np.arange(-length, 0)]


def build_windows(series_list: list[Series], context: int) -> WindowSet:
    """List every stride-1 window of each series whose targets start at or after ``context``.

    This is GlucoBench's deep-model rule: a series of ``n`` points gives the windows with
    targets starting at ``context, context + 1, ..., n - 12``.
    """
    glucose, minutes, codes, starts, positions, indices, observed = [], [], [], [], [], [], []
    offset = 0
    for index, series in enumerate(series_list):
        n = len(series)
        glucose.append(series.glucose)
        minutes.append(series.minutes)
        codes.append(np.full(n, series.code, dtype=np.int64))
        indices.append(np.full(n, index, dtype=np.int64))
        observed.append(np.ones(n, dtype=bool) if series.observed is None else series.observed)
        local = np.arange(context, n - HORIZON + 1, dtype=np.int64)
        starts.append(local + offset)
        positions.append(local)
        offset += n

    def joined(parts, dtype):
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)

    return WindowSet(
        glucose=joined(glucose, np.float32),
        minutes=joined(minutes, np.int64),
        code=joined(codes, np.int64),
        target_start=joined(starts, np.int64),
        position=joined(positions, np.int64),
        series_index=joined(indices, np.int64),
        observed=joined(observed, bool),
    )


def persistence_forecast(windows: WindowSet) -> np.ndarray:
    """Repeat each window's last input value over the horizon, mg/dL, ``(W, 12)``."""
    last = windows.glucose[windows.target_start - 1].astype(np.float64)
    return np.repeat(last[:, None], HORIZON, axis=1)


class LinearRegressionBaseline:
    """GlucoBench's linear-regression baseline: a darts ``LinearRegressionModel`` on lags and subject code.

    GlucoBench (``lib/linreg.py``) fits ``LinearRegressionModel(lags=L, output_chunk_length=12)``
    on every stride-1 window of the train series. The target is min-max scaled over all
    train points pooled, and each series carries its subject's label code, min-max
    scaled over the train subjects, as a static covariate, which darts appends to the
    lag features. The result is one least-squares regression with an intercept per
    horizon step. ``fit`` does the same through darts.

    ``predict`` applies the fitted scikit-learn estimator to a lag matrix built here,
    because calling darts' ``predict`` once per window is slow for tens of thousands of
    windows. ``predict_with_darts`` is the reference path that tests compare it with.

    Attributes
    ----------
    lags : int
        Input points per window.
    model : darts.models.LinearRegressionModel or None
        The fitted darts model; None before ``fit``.
    training_windows : int
        Training windows (one per target start) the fit used.
    glucose_min, glucose_max : float
        Train-split range of the target scaler, mg/dL.
    code_min, code_max : float
        Train-split range of the subject-code scaler.
    """

    def __init__(self, lags: int):
        self.lags = int(lags)
        self.model = None
        self.training_windows = 0
        self.glucose_min = self.glucose_max = 0.0
        self.code_min = self.code_max = 0.0

    def fit(self, series_list: list[Series]) -> LinearRegressionBaseline:
        """Fit on all windows of ``series_list``; raises ``ValueError`` when there is none.

        Series shorter than ``lags + 12`` points contain no window and are left out.
        """
        from darts.models import LinearRegressionModel

        usable = [series for series in series_list if len(series) >= self.lags + HORIZON]
        if not usable:
            raise ValueError(f"no training series has the {self.lags + HORIZON} points that one linear-regression window needs")

        # Both scalers are fitted on the whole train split, as GlucoBench's pooled min-max scaler is.
        pooled = np.concatenate([series.glucose for series in series_list]).astype(np.float64)
        self.glucose_min, self.glucose_max = float(pooled.min()), float(pooled.max())
        codes = np.array([series.code for series in series_list], dtype=np.float64)
        self.code_min, self.code_max = float(codes.min()), float(codes.max())

        self.model = LinearRegressionModel(lags=self.lags, output_chunk_length=HORIZON)
        self.model.fit([self._darts_series(series) for series in usable])
        self.training_windows = sum(len(series) - self.lags - HORIZON + 1 for series in usable)
        return self

    def predict(self, windows: WindowSet) -> np.ndarray:
        """Forecast each window, mg/dL, ``(W, 12)``; windows need ``lags`` points of history."""
        if self.model is None:
            raise RuntimeError("call fit() before predict()")
        codes = windows.code[windows.target_start]
        features = np.concatenate(
            [self._scale_glucose(windows.history(self.lags)), self._scale_code(codes)[:, None]], axis=1
        )
        # darts 0.48 stores one multi-output scikit-learn LinearRegression, whose input columns are
        # the target lags from oldest to newest followed by the static covariate.
        scaled = self.model.model.predict(features.astype(LINREG_DTYPE, copy=False))
        return self._unscale_glucose(np.asarray(scaled, dtype=np.float64).reshape(len(windows), HORIZON))

    def predict_with_darts(self, windows: WindowSet) -> np.ndarray:
        """Forecast each window with darts' own ``predict``, mg/dL, ``(W, 12)``; slow, for checks."""
        if self.model is None:
            raise RuntimeError("call fit() before predict_with_darts()")
        history = windows.history(self.lags)
        inputs = []
        for row, start in enumerate(windows.target_start):
            series = Series(
                int(windows.code[start]),
                0,
                windows.minutes[start - self.lags : start],
                history[row],
            )
            inputs.append(self._darts_series(series))
        forecasts = self.model.predict(HORIZON, series=inputs, show_warnings=False)
        scaled = np.stack([forecast.values()[:, 0] for forecast in forecasts]).astype(np.float64)
        return self._unscale_glucose(scaled)

    def _scale_glucose(self, values: np.ndarray) -> np.ndarray:
        span = self.glucose_max - self.glucose_min or 1.0
        return (values.astype(np.float64) - self.glucose_min) / span

    def _unscale_glucose(self, values: np.ndarray) -> np.ndarray:
        span = self.glucose_max - self.glucose_min or 1.0
        return values * span + self.glucose_min

    def _scale_code(self, codes: np.ndarray) -> np.ndarray:
        span = self.code_max - self.code_min or 1.0
        return (np.asarray(codes, dtype=np.float64) - self.code_min) / span

    def _darts_series(self, series: Series):
        """Build the scaled darts ``TimeSeries`` of one series with its scaled code as static covariate."""
        import pandas as pd
        from darts import TimeSeries

        times = pd.DatetimeIndex((np.asarray(series.minutes, dtype=np.int64) * 60).astype("datetime64[s]"))
        static = pd.DataFrame({"code": [float(self._scale_code(np.array([series.code]))[0])]})
        values = self._scale_glucose(series.glucose).astype(LINREG_DTYPE)
        return TimeSeries.from_times_and_values(times, values, freq=f"{GRID_STEP_MINUTES}min", static_covariates=static)
