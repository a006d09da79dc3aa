"""Quantiles of the MC-dropout predictive distribution (an equal-weight Gaussian mixture)."""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr


def mixture_cdf(x: np.ndarray, means: np.ndarray, stds: np.ndarray) -> np.ndarray:
    """Return the CDF at ``x`` of the equal-weight mixture of Normal(means, stds) over the last axis.

    ``x`` broadcasts against ``means[..., 0]``; ``means`` and ``stds`` broadcast to each other.
    """
    return ndtr((np.asarray(x)[..., None] - means) / stds).mean(axis=-1)


def mixture_quantiles(
    means: np.ndarray,
    stds: np.ndarray,
    levels: np.ndarray,
    *,
    iterations: int = 48,
    chunk: int = 256,
) -> np.ndarray:
    """Return quantiles of the per-window, per-step Gaussian mixture by bisection on its CDF.

    Parameters
    ----------
    means : numpy.ndarray
        Component means, ``(W, H, S)`` (mg/dL).
    stds : numpy.ndarray
        Component standard deviations, ``(W, S)`` (shared by all steps) or ``(W, H, S)``, > 0.
    levels : numpy.ndarray
        Probability levels in (0, 1), ``(Q,)``.
    iterations : int
        Bisection steps; each halves the bracket, which starts at about 24 standard deviations wide.
    chunk : int
        Windows processed at once, to bound memory at ``chunk * H * Q * S`` floats.

    Returns
    -------
    numpy.ndarray
        ``float64`` quantiles, ``(W, H, Q)``.
    """
    means = np.asarray(means, dtype=np.float64)
    stds = np.asarray(stds, dtype=np.float64)
    if stds.ndim == 2:
        stds = stds[:, None, :]
    stds = np.broadcast_to(np.maximum(stds, 1e-9), means.shape)
    levels = np.asarray(levels, dtype=np.float64)
    if np.any((levels <= 0) | (levels >= 1)):
        raise ValueError(f"quantile levels must lie strictly between 0 and 1, got {levels.tolist()}")

    result = np.empty(means.shape[:2] + levels.shape, dtype=np.float64)
    for first in range(0, means.shape[0], chunk):
        mu = means[first : first + chunk, :, None, :]
        sd = stds[first : first + chunk, :, None, :]

        # Every component has CDF ~0 at lo and ~1 at hi, so the mixture quantile lies between.
        lo = np.broadcast_to((mu - 12 * sd).min(axis=-1), mu.shape[:2] + levels.shape).copy()
        hi = np.broadcast_to((mu + 12 * sd).max(axis=-1), mu.shape[:2] + levels.shape).copy()
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            below = ndtr((mid[..., None] - mu) / sd).mean(axis=-1) < levels
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        result[first : first + chunk] = 0.5 * (lo + hi)
    return result
