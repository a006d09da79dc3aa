"""Quantiles of the MC-dropout predictive distribution (an equal-weight Gaussian mixture)."""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri

_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)

DEFAULT_TOLERANCE = 1e-4
"""Stopping step of the quantile search, in mg/dL."""


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
    tolerance: float = DEFAULT_TOLERANCE,
    max_iterations: int = 100,
    chunk: int = 256,
) -> np.ndarray:
    """Return quantiles of the per-window, per-step Gaussian mixture by safeguarded Newton steps on its CDF.

    The quantile at level ``q`` lies between the smallest and the largest of the
    components' own ``q``-quantiles, because every component CDF is at most ``q``
    at the first and at least ``q`` at the second. The search starts from the
    quantile of the Normal with the mixture's mean and variance, clipped into that
    bracket, and takes Newton steps with the mixture density. A step that leaves
    the bracket, which shrinks after every evaluation, is replaced by bisection.
    Each quantile stops on its own once its step is under ``tolerance``, so a
    window's quantiles do not depend on the other windows passed with it.

    Parameters
    ----------
    means : numpy.ndarray
        Component means, ``(W, H, S)`` (mg/dL).
    stds : numpy.ndarray
        Component standard deviations, ``(W, S)`` (shared by all steps) or ``(W, H, S)``, > 0.
    levels : numpy.ndarray
        Probability levels in (0, 1), ``(Q,)``.
    tolerance : float
        Stop a quantile when its last step or its bracket is smaller than this, in
        mg/dL. Newton converges quadratically near the root, so the error left
        after that step is far smaller than ``tolerance``.
    max_iterations : int
        Limit on CDF evaluations per quantile. A quantile still unconverged at
        the limit keeps its last estimate, which lies inside its bracket.
    chunk : int
        Windows processed at once, to bound memory at about ``chunk * H * Q * S`` floats.

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
    if tolerance <= 0:
        raise ValueError(f"tolerance must be positive (mg/dL), got {tolerance}")

    result = np.empty(means.shape[:2] + levels.shape, dtype=np.float64)
    for first in range(0, means.shape[0], chunk):
        mu = means[first : first + chunk]
        sd = stds[first : first + chunk]
        result[first : first + chunk] = _chunk_quantiles(mu, sd, levels, tolerance, max_iterations)
    return result


def _chunk_quantiles(mu: np.ndarray, sd: np.ndarray, levels: np.ndarray, tolerance: float, max_iterations: int) -> np.ndarray:
    """Solve ``mixture_cdf(x) = level`` for ``mu`` and ``sd`` of shape ``(C, H, S)``, returning ``(C, H, Q)``."""
    n_components = mu.shape[-1]
    shape = mu.shape[:2] + levels.shape
    z = ndtri(levels)

    # One row per (window, step, level), each with its S components.
    rows_mu = np.broadcast_to(mu[:, :, None, :], shape + (n_components,)).reshape(-1, n_components)
    rows_sd = np.broadcast_to(sd[:, :, None, :], shape + (n_components,)).reshape(-1, n_components)
    rows_level = np.broadcast_to(levels, shape).reshape(-1)
    rows_z = np.broadcast_to(z, shape).reshape(-1)

    component_quantiles = rows_mu + rows_sd * rows_z[:, None]
    lo = component_quantiles.min(axis=1)
    hi = component_quantiles.max(axis=1)

    # Start from the Normal with the mixture's mean and variance.
    mean = rows_mu.mean(axis=1)
    spread = np.sqrt((rows_sd**2).mean(axis=1) + rows_mu.var(axis=1))
    x = np.clip(mean + spread * rows_z, lo, hi)

    active = np.flatnonzero(hi - lo >= tolerance)
    for _ in range(max_iterations):
        if active.size == 0:
            break
        x_active = x[active]
        standard = (x_active[:, None] - rows_mu[active]) / rows_sd[active]
        cdf = ndtr(standard).mean(axis=1)
        density = (np.exp(-0.5 * standard * standard) / rows_sd[active]).mean(axis=1) * _INV_SQRT_2PI

        below = cdf < rows_level[active]
        lo_active = np.where(below, x_active, lo[active])
        hi_active = np.where(below, hi[active], x_active)
        lo[active] = lo_active
        hi[active] = hi_active

        # A density of zero or one that underflows gives an infinite step, which bisection replaces.
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            newton = x_active - (cdf - rows_level[active]) / density
        inside = (newton > lo_active) & (newton < hi_active)
        candidate = np.where(inside, newton, 0.5 * (lo_active + hi_active))

        done = (np.abs(candidate - x_active) < tolerance) | (hi_active - lo_active < tolerance)
        x[active] = candidate
        active = active[~done]
    return x.reshape(shape)
