"""Evaluation windows over many series, and the persistence and linear-regression baselines."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glurpc_lab.training.glucobench import HORIZON, Series

LINREG_CHUNK_WINDOWS = 50_000
"""Training windows per block when accumulating the normal equations (bounds memory)."""


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
    """Direct multi-output least squares on the last ``lags`` values and the subject code.

    One regression with an intercept per horizon step, fitted on every stride-1
    window of the training series, as GlucoBench's darts ``LinearRegressionModel``
    with its default static covariate (the subject code) does. GlucoBench min-max
    scales the target and the code, which does not change an OLS fit with an
    intercept, so the fit here uses mg/dL and raw codes.
    """

    def __init__(self, lags: int, use_code: bool = True):
        self.lags = int(lags)
        self.use_code = use_code
        self.coefficients: np.ndarray | None = None
        self.training_windows = 0

    def _features(self, history: np.ndarray, codes: np.ndarray) -> np.ndarray:
        # Centring on a typical glucose value keeps the normal equations well conditioned.
        columns = [history.astype(np.float64) - 150.0]
        if self.use_code:
            columns.append(codes[:, None].astype(np.float64))
        columns.append(np.ones((history.shape[0], 1)))
        return np.concatenate(columns, axis=1)

    def fit(self, series_list: list[Series]) -> LinearRegressionBaseline:
        """Fit on all windows of ``series_list``; raises ``ValueError`` when there is none."""
        windows = build_windows(series_list, self.lags)
        if len(windows) == 0:
            raise ValueError(f"no training series has the {self.lags + HORIZON} points that one linear-regression window needs")

        n_features = self.lags + (2 if self.use_code else 1)
        gram = np.zeros((n_features, n_features))
        cross = np.zeros((n_features, HORIZON))
        for first in range(0, len(windows), LINREG_CHUNK_WINDOWS):
            block = windows.subset(np.arange(first, min(first + LINREG_CHUNK_WINDOWS, len(windows))))
            features = self._features(block.history(self.lags), block.code[block.target_start])
            gram += features.T @ features
            cross += features.T @ (block.truth() - 150.0)

        self.coefficients = np.linalg.lstsq(gram, cross, rcond=None)[0]
        self.training_windows = len(windows)
        return self

    def predict(self, windows: WindowSet) -> np.ndarray:
        """Forecast each window, mg/dL, ``(W, 12)``; windows need ``lags`` points of history."""
        if self.coefficients is None:
            raise RuntimeError("call fit() before predict()")
        features = self._features(windows.history(self.lags), windows.code[windows.target_start])
        return features @ self.coefficients + 150.0
