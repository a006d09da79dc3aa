"""Accuracy and batch independence of the Gaussian-mixture quantile search."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

from glurpc_lab.forecast.predictive import mixture_cdf, mixture_quantiles

LEVELS = np.array([0.001, 0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975, 0.999])
TOLERANCE_MG_DL = 1e-3


def _reference_quantiles(means: np.ndarray, stds: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Solve each quantile separately with Brent's method to 1e-10 mg/dL."""
    result = np.empty(means.shape[:2] + levels.shape)
    for w in range(means.shape[0]):
        for h in range(means.shape[1]):
            mu, sd = means[w, h], stds[w]
            lo, hi = (mu - 40 * sd).min(), (mu + 40 * sd).max()
            for q, level in enumerate(levels):
                result[w, h, q] = brentq(lambda x: mixture_cdf(x, mu, sd) - level, lo, hi, xtol=1e-10, rtol=1e-15)
    return result


def _hard_mixtures() -> tuple[np.ndarray, np.ndarray]:
    """Windows that stress the search: far-apart modes, tiny and mixed spreads, identical components."""
    rng = np.random.default_rng(11)
    n_samples = 10
    typical = rng.uniform(60, 250, size=(3, 2, n_samples)), rng.uniform(2, 30, size=(3, n_samples))
    # A 4:6 split keeps the flat stretch of the CDF at 0.4, where the quantile is not unique, off LEVELS.
    two_modes = np.concatenate([np.full(4, 70.0), np.full(6, 300.0)])
    cases_means = [
        *typical[0],
        np.stack([two_modes, two_modes + 0.5]),
        np.stack([np.full(n_samples, 120.0), np.full(n_samples, 121.0)]),
        np.stack([np.linspace(100, 101, n_samples), np.linspace(40, 400, n_samples)]),
    ]
    cases_stds = [
        *typical[1],
        np.full(n_samples, 0.05),
        np.full(n_samples, 8.0),
        np.concatenate([np.full(5, 0.01), np.full(5, 60.0)]),
    ]
    return np.stack(cases_means), np.stack(cases_stds)


def test_quantiles_within_tolerance_of_reference():
    means, stds = _hard_mixtures()

    found = mixture_quantiles(means, stds, LEVELS)
    expected = _reference_quantiles(means, stds, LEVELS)

    assert np.abs(found - expected).max() < TOLERANCE_MG_DL


def test_quantiles_hit_their_levels():
    means, stds = _hard_mixtures()

    found = mixture_quantiles(means, stds, LEVELS)
    reached = mixture_cdf(found, means[:, :, None, :], stds[:, None, None, :])

    np.testing.assert_allclose(reached, np.broadcast_to(LEVELS, reached.shape), atol=1e-6)


def test_quantiles_increase_with_level():
    means, stds = _hard_mixtures()

    found = mixture_quantiles(means, stds, LEVELS)

    assert np.all(np.diff(found, axis=-1) > 0)


def test_window_quantiles_independent_of_batch():
    means, stds = _hard_mixtures()

    together = mixture_quantiles(means, stds, LEVELS)
    alone = [mixture_quantiles(means[w : w + 1], stds[w : w + 1], LEVELS)[0] for w in range(len(means))]

    np.testing.assert_array_equal(together, np.stack(alone))


def test_chunking_changes_nothing():
    means, stds = _hard_mixtures()

    np.testing.assert_array_equal(mixture_quantiles(means, stds, LEVELS, chunk=2), mixture_quantiles(means, stds, LEVELS))


def test_coarser_tolerance_stays_within_it():
    means, stds = _hard_mixtures()

    coarse = mixture_quantiles(means, stds, LEVELS, tolerance=0.5)
    expected = _reference_quantiles(means, stds, LEVELS)

    assert np.abs(coarse - expected).max() < 0.5


def test_invalid_tolerance_rejected():
    means, stds = _hard_mixtures()

    with pytest.raises(ValueError, match="tolerance"):
        mixture_quantiles(means, stds, LEVELS, tolerance=0.0)
