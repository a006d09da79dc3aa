"""Per-step standard deviations of the dropout samples, after the model's interval calibration.

The network gives one variance per window, shared by all 12 steps, while forecast
errors grow with the horizon and with how fast glucose is moving. A model's config
may carry two calibrations fitted on validation windows after training
(``glurpc_lab.training.calibrate``):

- ``interval_coefficients``: for each step ``h``, a log-linear model of the width of the
  error distribution, ``exp(x . beta_h)``, where ``x`` contains 1, the log of the window's
  mean sampled standard deviation, the log of its recent rate of change and the log of
  its input's spread (see ``interval_features``);
- ``step_std_scale``: one factor per step that multiplies every standard deviation.

Without either, every step gets the sampled standard deviation unchanged.
"""

from __future__ import annotations

import numpy as np

from glurpc_lab.model.config import GluformerConfig

RECENT_POINTS = 12
"""Five-minute changes (one hour) that measure how fast glucose is moving."""


def interval_features(past_glucose: np.ndarray, mean_std: np.ndarray) -> np.ndarray:
    """Return the calibration features of each window, ``(W, 4)``.

    Columns: 1, ``log(mean_std)``, ``log(0.5 + recent change)`` and ``log(1 + spread)``.
    The recent change is the standard deviation of the last 12 five-minute changes plus
    the mean absolute change over the last 15 minutes (mg/dL per 5 minutes). The spread
    is the standard deviation of the whole input (mg/dL).

    Parameters
    ----------
    past_glucose : numpy.ndarray
        Input glucose of each window in mg/dL, oldest first, ``(W, L)`` with ``L >= 13``.
    mean_std : numpy.ndarray
        Mean over the dropout samples of each window's standard deviation in mg/dL, ``(W,)``.
    """
    past = np.asarray(past_glucose, dtype=np.float64)
    if past.ndim != 2 or past.shape[1] <= RECENT_POINTS:
        raise ValueError(f"interval features need at least {RECENT_POINTS + 1} input points per window, got shape {past.shape}")

    changes = np.diff(past[:, -(RECENT_POINTS + 1) :], axis=1)
    recent = changes.std(axis=1) + np.abs(past[:, -1] - past[:, -4]) / 3.0
    spread = past.std(axis=1)
    return np.column_stack([
        np.ones(past.shape[0]),
        np.log(np.maximum(np.asarray(mean_std, dtype=np.float64), 1e-9)),
        np.log(0.5 + recent),
        np.log(1.0 + spread),
    ])


def component_stds(
    logvar: np.ndarray,
    glucose_span: float,
    config: GluformerConfig,
    past_glucose: np.ndarray | None = None,
) -> np.ndarray:
    """Turn the sampled log-variances into calibrated standard deviations in mg/dL per step.

    Parameters
    ----------
    logvar : numpy.ndarray
        Log-variance of each window and dropout sample in scaled units, ``(W, S)``.
    glucose_span : float
        Width in mg/dL of the glucose range that scaled units map to.
    config : GluformerConfig
        Supplies ``len_pred``, ``interval_coefficients`` and ``step_std_scale``.
    past_glucose : numpy.ndarray or None
        Input glucose of each window in mg/dL, ``(W, len_seq)``; needed only when the
        config has ``interval_coefficients``.

    Returns
    -------
    numpy.ndarray
        ``float64`` standard deviations, ``(W, len_pred, S)``.
    """
    # A variance in scaled units becomes mg/dL^2 by multiplying by the squared span.
    std = np.sqrt(np.exp(np.asarray(logvar, dtype=np.float64))) * float(glucose_span)
    stds = np.repeat(std[:, None, :], config.len_pred, axis=1)

    if config.interval_coefficients:
        if past_glucose is None:
            raise ValueError("this model's interval calibration needs each window's input glucose (past_glucose)")
        mean_std = std.mean(axis=1)
        features = interval_features(past_glucose, mean_std)
        width = np.exp(features @ np.asarray(config.interval_coefficients, dtype=np.float64).T)
        # Samples keep their relative spread, and the window's mean follows the fitted width.
        stds = stds / mean_std[:, None, None] * width[:, :, None]

    factors = np.asarray(config.step_std_scale or (1.0,) * config.len_pred, dtype=np.float64)
    return stds * factors[None, :, None]
