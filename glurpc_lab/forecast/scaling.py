"""Min-max scaling of glucose and covariates under a ``ScalingPolicy``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glurpc_lab.model.config import ScalingPolicy


@dataclass(frozen=True)
class Scaler:
    """Min-max ranges in force for one series.

    A covariate with an empty range (max == min) maps to 0. A glucose range
    that is empty (a constant series under the per-series policy) keeps a unit
    span, so scaled glucose is ``x - min``, as sklearn's ``MinMaxScaler`` does.

    Attributes
    ----------
    glucose_min, glucose_max : float
        Glucose range in mg/dL.
    covariate_min, covariate_max : numpy.ndarray
        Range of each calendar covariate, ``(6,)``.
    """

    glucose_min: float
    glucose_max: float
    covariate_min: np.ndarray
    covariate_max: np.ndarray

    @property
    def glucose_span(self) -> float:
        """Width of the glucose range in mg/dL (1.0 when the range is empty)."""
        span = self.glucose_max - self.glucose_min
        return float(span) if span > 0 else 1.0

    def scale_glucose(self, glucose: np.ndarray) -> np.ndarray:
        """Map mg/dL to scaled units (``float32``)."""
        return ((np.asarray(glucose, dtype=np.float64) - self.glucose_min) / self.glucose_span).astype(np.float32)

    def unscale_glucose(self, scaled: np.ndarray) -> np.ndarray:
        """Map scaled units back to mg/dL (``float64``)."""
        return np.asarray(scaled, dtype=np.float64) * self.glucose_span + self.glucose_min

    def scale_covariates(self, covariates: np.ndarray) -> np.ndarray:
        """Scale covariates of shape ``(..., 6)``; empty-range columns become 0."""
        span = self.covariate_max - self.covariate_min
        safe = np.where(span > 0, span, 1.0)
        scaled = (np.asarray(covariates, dtype=np.float64) - self.covariate_min) / safe
        return np.where(span > 0, scaled, 0.0).astype(np.float32)

    def to_dict(self) -> dict:
        """Return the ranges as plain JSON types, for forecast metadata."""
        return {
            "glucose_min": float(self.glucose_min),
            "glucose_max": float(self.glucose_max),
            "covariate_min": [float(v) for v in self.covariate_min],
            "covariate_max": [float(v) for v in self.covariate_max],
        }


def fit_scaler(policy: ScalingPolicy, glucose: np.ndarray, observed: np.ndarray, covariates: np.ndarray) -> Scaler:
    """Build the scaler that ``policy`` prescribes for one series.

    Parameters
    ----------
    policy : ScalingPolicy
        The model's scaling policy.
    glucose : numpy.ndarray
        Glucose of the series in mg/dL, ``(n,)``.
    observed : numpy.ndarray
        ``bool``, True for real readings (not interpolated), ``(n,)``. Only these
        points set the glucose range under the per-series policy.
    covariates : numpy.ndarray
        Calendar covariates of every point the model will see, ``(m, 6)``.

    Returns
    -------
    Scaler
    """
    if policy.kind == "fixed":
        return Scaler(
            glucose_min=float(policy.glucose_min),
            glucose_max=float(policy.glucose_max),
            covariate_min=np.asarray(policy.covariate_min, dtype=np.float64),
            covariate_max=np.asarray(policy.covariate_max, dtype=np.float64),
        )

    values = np.asarray(glucose, dtype=np.float64)
    mask = np.asarray(observed, dtype=bool) & np.isfinite(values)
    if not mask.any():
        # A series made only of interpolated points still has a usable range.
        mask = np.isfinite(values)
    if not mask.any():
        raise ValueError("cannot fit per-series scaling: the series has no finite glucose value")

    covariates = np.asarray(covariates, dtype=np.float64).reshape(-1, np.shape(covariates)[-1])
    return Scaler(
        glucose_min=float(values[mask].min()),
        glucose_max=float(values[mask].max()),
        covariate_min=covariates.min(axis=0),
        covariate_max=covariates.max(axis=0),
    )
