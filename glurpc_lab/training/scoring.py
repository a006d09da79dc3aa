"""Probabilistic forecast scores: mixture log-likelihood, GlucoBench calibration error, interval coverage.

The predictive distribution of one forecast step is the equal-weight mixture over
``k`` dropout samples of Normal(mean_s, std_s), all in mg/dL.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

CALIBRATION_LEVELS = np.linspace(0.0, 1.0, 11)
"""Quantile levels of GlucoBench's calibration error: 0, 0.1, ..., 1."""

CALIBRATION_DRAWS = 30
"""Normal draws per dropout sample that GlucoBench takes to estimate quantiles."""

INTERVAL_LEVELS = (0.5, 0.8, 0.95)
"""Central interval probabilities whose coverage is reported."""


def median_errors(forecast: np.ndarray, truth: np.ndarray) -> dict:
    """Return the median over windows of per-window MSE (mg/dL^2) and MAE (mg/dL).

    ``forecast`` and ``truth`` are ``(W, horizon)`` in mg/dL.
    """
    error = np.asarray(forecast, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    return {
        "windows": int(error.shape[0]),
        "median_mse": float(np.median(np.mean(error**2, axis=1))),
        "median_mae": float(np.median(np.mean(np.abs(error), axis=1))),
    }


def mixture_log_likelihood(truth: np.ndarray, means: np.ndarray, stds: np.ndarray) -> np.ndarray:
    """Return the log density of each target under its Gaussian mixture, ``(W, horizon)``.

    ``log p(y) = logsumexp_s(-(y - m_s)^2 / (2 v_s) - log(2 pi v_s) / 2) - log k``,
    with ``v_s = std_s^2``. GlucoBench's version adds the squared term instead of
    subtracting it and leaves out ``- log k``.

    Parameters
    ----------
    truth : numpy.ndarray
        Targets in mg/dL, ``(W, horizon)``.
    means, stds : numpy.ndarray
        Component means and standard deviations in mg/dL, ``(W, horizon, k)``;
        ``stds`` may also be ``(W, 1, k)``.
    """
    means = np.asarray(means, dtype=np.float64)
    variance = np.asarray(stds, dtype=np.float64) ** 2
    y = np.asarray(truth, dtype=np.float64)[..., None]
    log_density = -((y - means) ** 2) / (2.0 * variance) - 0.5 * np.log(2.0 * np.pi * variance)
    return logsumexp(log_density, axis=-1) - np.log(means.shape[-1])


def calibration_error(
    truth: np.ndarray,
    means: np.ndarray,
    stds: np.ndarray,
    *,
    seed: int = 0,
    draws: int = CALIBRATION_DRAWS,
    levels: np.ndarray = CALIBRATION_LEVELS,
    chunk: int = 1024,
) -> np.ndarray:
    """Return GlucoBench's calibration error per horizon step, ``(horizon,)``.

    For each step, ``sum over p of (fraction of windows with y <= q_p - p)^2``, where
    ``q_p`` is the ``p``-quantile (numpy's linear rule) of ``draws`` Normal draws per
    component. The draws come from ``numpy.random.default_rng(seed)``, so the value is
    repeatable. GlucoBench reports the mean over the steps.
    """
    y = np.asarray(truth, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    stds = np.broadcast_to(np.asarray(stds, dtype=np.float64), means.shape)
    rng = np.random.default_rng(seed)
    below = np.zeros((len(levels), y.shape[1]))

    # Quantiles are taken per window, so processing windows in chunks gives the same counts.
    for first in range(0, y.shape[0], chunk):
        last = min(first + chunk, y.shape[0])
        noise = rng.standard_normal(means[first:last].shape + (draws,))
        samples = (means[first:last, ..., None] + stds[first:last, ..., None] * noise).reshape(last - first, y.shape[1], -1)
        quantiles = np.quantile(samples, levels, axis=-1)
        below += (y[first:last][None] <= quantiles).sum(axis=1)

    fraction = below / max(y.shape[0], 1)
    return ((fraction - np.asarray(levels)[:, None]) ** 2).sum(axis=0)


def interval_coverage(truth: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Return the fraction of windows whose target lies in ``[lower, upper]``, per step, ``(horizon,)``."""
    y = np.asarray(truth, dtype=np.float64)
    inside = (y >= np.asarray(lower)) & (y <= np.asarray(upper))
    return inside.mean(axis=0)
