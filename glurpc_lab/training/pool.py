"""Training and evaluation windows cut from many segments, held as flat arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glurpc_lab.forecast.covariates import calendar_covariates
from glurpc_lab.forecast.scaling import Scaler
from glurpc_lab.training.glucobench import Series


@dataclass(frozen=True)
class WindowPool:
    """All windows of ``input_len + horizon`` points of a list of segments.

    The segments are concatenated; ``starts`` indexes the first input point of
    each window in the concatenation, and no window crosses a segment boundary.

    Attributes
    ----------
    glucose : numpy.ndarray
        Glucose in mg/dL, ``float32``, ``(N,)``.
    scaled_glucose : numpy.ndarray
        Scaled glucose, ``float32``, ``(N,)``.
    scaled_covariates : numpy.ndarray
        Scaled calendar covariates, ``float32``, ``(N, 6)``.
    starts : numpy.ndarray
        ``int64`` first index of each window, ``(W,)``.
    dataset : numpy.ndarray
        Data set name of each window, ``(W,)``.
    input_len, horizon : int
        Window layout in points.
    """

    glucose: np.ndarray
    scaled_glucose: np.ndarray
    scaled_covariates: np.ndarray
    starts: np.ndarray
    dataset: np.ndarray
    input_len: int
    horizon: int

    def __len__(self) -> int:
        return int(self.starts.shape[0])

    def batch(self, window_indices: np.ndarray) -> dict[str, np.ndarray]:
        """Return the arrays of the windows ``window_indices``.

        Keys: ``past`` (scaled, ``(B, input_len)``), ``past_covariates`` (``(B, input_len, 6)``),
        ``future_covariates`` (``(B, horizon, 6)``), ``target`` (scaled, ``(B, horizon)``),
        ``target_mgdl`` and ``last_mgdl`` (last input value, ``(B,)``).
        """
        start = self.starts[np.asarray(window_indices)]
        index = start[:, None] + np.arange(self.input_len + self.horizon)
        past, future = index[:, : self.input_len], index[:, self.input_len :]
        return {
            "past": self.scaled_glucose[past],
            "past_covariates": self.scaled_covariates[past],
            "future_covariates": self.scaled_covariates[future],
            "target": self.scaled_glucose[future],
            "target_mgdl": self.glucose[future],
            "last_mgdl": self.glucose[past[:, -1]],
        }


def build_pool(segments: list[tuple[str, Series]], scaler: Scaler, input_len: int, horizon: int, stride: int = 1) -> WindowPool:
    """Cut every ``stride``-th window of ``input_len + horizon`` points from each series.

    ``segments`` pairs each series with the name of its data set.
    """
    length = input_len + horizon
    glucose_parts, covariate_parts, start_parts, name_parts = [], [], [], []
    offset = 0
    for dataset, segment in segments:
        n = len(segment)
        glucose_parts.append(segment.glucose.astype(np.float32))
        covariate_parts.append(calendar_covariates(segment.times))
        if n >= length:
            local = np.arange(0, n - length + 1, stride, dtype=np.int64)
            start_parts.append(local + offset)
            name_parts.append(np.full(local.size, dataset, dtype=object))
        offset += n

    if not glucose_parts:
        empty = np.zeros(0, dtype=np.float32)
        return WindowPool(empty, empty, np.zeros((0, 6), np.float32), np.zeros(0, np.int64), np.zeros(0, object), input_len, horizon)

    glucose = np.concatenate(glucose_parts)
    covariates = np.concatenate(covariate_parts)
    return WindowPool(
        glucose=glucose,
        scaled_glucose=scaler.scale_glucose(glucose),
        scaled_covariates=scaler.scale_covariates(covariates),
        starts=np.concatenate(start_parts) if start_parts else np.zeros(0, np.int64),
        dataset=np.concatenate(name_parts) if name_parts else np.zeros(0, object),
        input_len=input_len,
        horizon=horizon,
    )
