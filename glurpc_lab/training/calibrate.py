"""Fit the interval calibration of a trained Gluformer on its validation windows.

Usage: ``python -m glurpc_lab.training.calibrate --weights DIR/gluformer_small.pth``.
The result is written into the config JSON beside the weights
(``interval_coefficients`` and ``step_std_scale``, see ``glurpc_lab.forecast.calibration``).

The network gives one variance per window, shared by all 12 steps, while forecast
errors grow with the horizon and with how fast glucose moves. Two fits correct that,
each data set weighing the same:

1. For each step, a log-linear model of the 80% quantile of the absolute error of the
   mixture mean, on the window's own sampled spread, recent rate of change and input
   spread, fitted by minimising the pinball loss.
2. For each step, one factor on every standard deviation, found by bisection, so that the
   central 80% interval of the mixture covers 80% of the targets. A target lies in
   that interval exactly when the mixture CDF at the target is between 0.1 and 0.9, so
   no quantile needs to be solved for.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import minimize

from glurpc_lab.forecast.calibration import component_stds, interval_features
from glurpc_lab.forecast.predictive import mixture_cdf
from glurpc_lab.model.config import GluformerConfig
from glurpc_lab.training.baselines import build_windows
from glurpc_lab.training.corpus import load_corpus
from glurpc_lab.training.options import add_data_options

logger = logging.getLogger(__name__)

TARGET_LEVEL = 0.8
"""Central interval whose validation coverage the factors are fitted to."""

FACTOR_RANGE = (0.02, 50.0)
"""Smallest and largest factor the search considers."""


def weighted_coverage(truth: np.ndarray, means: np.ndarray, stds: np.ndarray, weights: np.ndarray, level: float) -> float:
    """Return the weighted fraction of targets inside the central ``level`` interval of their mixture.

    ``truth`` is ``(W,)``, ``means`` and ``stds`` ``(W, S)``, ``weights`` ``(W,)`` summing to 1.
    """
    tail = (1.0 - level) / 2.0
    cdf = mixture_cdf(truth, means, stds)
    inside = (cdf >= tail) & (cdf <= 1.0 - tail)
    return float(np.sum(weights * inside))


def fit_step_factors(
    truth: np.ndarray,
    means: np.ndarray,
    stds: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    level: float = TARGET_LEVEL,
    iterations: int = 40,
) -> np.ndarray:
    """Find per-step factors on the standard deviations that give ``level`` coverage.

    Parameters
    ----------
    truth : numpy.ndarray
        Targets in mg/dL, ``(W, H)``.
    means, stds : numpy.ndarray
        Mixture components in mg/dL, ``(W, H, S)``; ``stds`` without any factor.
    weights : numpy.ndarray or None
        Weight of each window, ``(W,)``; None weighs all equally.
    level : float
        Central interval probability to match.
    iterations : int
        Bisection steps on the log of the factor.

    Returns
    -------
    numpy.ndarray
        One factor per step, ``(H,)``.
    """
    truth = np.asarray(truth, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    stds = np.asarray(stds, dtype=np.float64)
    weights = np.full(truth.shape[0], 1.0 / truth.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    weights = weights / weights.sum()

    factors = np.zeros(truth.shape[1])
    for step in range(truth.shape[1]):
        # Coverage grows with the factor, so bisect on its logarithm.
        low, high = np.log(FACTOR_RANGE[0]), np.log(FACTOR_RANGE[1])
        for _ in range(iterations):
            middle = 0.5 * (low + high)
            covered = weighted_coverage(truth[:, step], means[:, step], stds[:, step] * np.exp(middle), weights, level)
            if covered < level:
                low = middle
            else:
                high = middle
        factors[step] = float(np.exp(0.5 * (low + high)))
    return factors


def fit_interval_coefficients(
    truth: np.ndarray,
    means: np.ndarray,
    sample_std: np.ndarray,
    past_glucose: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    level: float = TARGET_LEVEL,
) -> np.ndarray:
    """Fit, per step, the log-linear model of the ``level`` quantile of the absolute error.

    Parameters
    ----------
    truth : numpy.ndarray
        Targets in mg/dL, ``(W, H)``.
    means : numpy.ndarray
        Component means in mg/dL, ``(W, H, S)``.
    sample_std : numpy.ndarray
        Sampled standard deviation of each window and sample in mg/dL, ``(W, S)``.
    past_glucose : numpy.ndarray
        Input glucose of each window in mg/dL, ``(W, L)``.
    weights : numpy.ndarray or None
        Weight of each window, ``(W,)``; None weighs all equally.
    level : float
        Quantile of the absolute error that the width models.

    Returns
    -------
    numpy.ndarray
        Coefficients, ``(H, 4)``, in the column order of ``interval_features``.
    """
    truth = np.asarray(truth, dtype=np.float64)
    weights = np.full(truth.shape[0], 1.0 / truth.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    weights = weights / weights.sum()
    features = interval_features(past_glucose, np.asarray(sample_std, dtype=np.float64).mean(axis=1))
    errors = np.abs(truth - np.asarray(means, dtype=np.float64).mean(axis=-1))

    coefficients = np.zeros((truth.shape[1], features.shape[1]))
    for step in range(truth.shape[1]):
        error = errors[:, step]

        def pinball(beta: np.ndarray) -> float:
            residual = error - np.exp(np.clip(features @ beta, -20.0, 20.0))
            return float(np.sum(weights * np.maximum(level * residual, (level - 1.0) * residual)))

        start = np.zeros(features.shape[1])
        start[0] = np.log(np.quantile(error, level) + 1e-6)
        result = minimize(pinball, start, method="Powell", options={"maxiter": 20000, "xtol": 1e-5, "ftol": 1e-10})
        coefficients[step] = result.x
    return coefficients


def dataset_weights(names: np.ndarray) -> np.ndarray:
    """Weigh windows so that every data set counts the same in total."""
    names = np.asarray(names).astype(str)
    labels, inverse, counts = np.unique(names, return_inverse=True, return_counts=True)
    return 1.0 / (len(labels) * counts[inverse])


def calibrate(model, data_dir: Path, names: list[str], *, n_samples: int = 10, seed: int = 0,
              batch_size: int = 16, max_windows: int | None = 4000) -> tuple[GluformerConfig, dict]:
    """Fit the interval calibration of ``model`` (a ``LoadedModel``) on the validation windows of ``names``.

    At most ``max_windows`` windows per data set are drawn (seeded) to bound the time.
    Returns the model's config with the fitted calibration, and a summary with the window
    counts and the 80% interval's coverage per step on those same windows (in-sample),
    before and after.
    """
    from glurpc_lab.training.evaluate import model_mixture

    plain_config = dataclasses.replace(model.config, interval_coefficients=(), step_std_scale=())
    plain = dataclasses.replace(model, config=plain_config)
    truths, means, stds, pasts, labels = [], [], [], [], []
    rng = np.random.default_rng(seed)
    for corpus in load_corpus(data_dir, names, model.config.len_seq):
        windows = build_windows(corpus.val, model.config.len_seq)
        if len(windows) == 0:
            continue
        if max_windows is not None and len(windows) > max_windows:
            windows = windows.subset(np.sort(rng.choice(len(windows), max_windows, replace=False)))
        window_means, window_stds = model_mixture(plain, windows, n_samples=n_samples, seed=seed, batch_size=batch_size)
        truths.append(windows.truth())
        means.append(window_means)
        stds.append(window_stds[:, 0, :])
        pasts.append(windows.history(model.config.len_seq))
        labels.append(np.full(len(windows), corpus.name, dtype=object))
        logger.info("data set %s: %d validation windows sampled", corpus.name, len(windows))
    if not truths:
        raise ValueError("no validation windows to calibrate on; check --data-dir and --datasets")

    truth, mean, sample_std = np.concatenate(truths), np.concatenate(means), np.concatenate(stds)
    past = np.concatenate(pasts)
    names_per_window = np.concatenate(labels)
    weights = dataset_weights(names_per_window)

    coefficients = fit_interval_coefficients(truth, mean, sample_std, past, weights)
    shaped_config = dataclasses.replace(plain_config, interval_coefficients=tuple(tuple(float(v) for v in row) for row in coefficients))
    # Sampled standard deviations in mg/dL are log-variances with a span of 1.
    shaped = component_stds(np.log(sample_std**2), 1.0, shaped_config, past)
    factors = fit_step_factors(truth, mean, shaped, weights)
    config = dataclasses.replace(shaped_config, step_std_scale=tuple(float(f) for f in factors))

    def coverage(stds: np.ndarray, mask: np.ndarray | None = None) -> list[float]:
        chosen = np.ones(len(truth), bool) if mask is None else mask
        chosen_weights = weights[chosen] / weights[chosen].sum()
        return [round(weighted_coverage(truth[chosen, h], mean[chosen, h], stds[chosen, h], chosen_weights, TARGET_LEVEL), 4)
                for h in range(truth.shape[1])]

    plain_stds = np.repeat(sample_std[:, None, :], truth.shape[1], axis=1)
    calibrated = shaped * factors[None, :, None]
    summary = {
        "level": TARGET_LEVEL,
        "windows": {str(name): int((names_per_window == name).sum()) for name in np.unique(names_per_window)},
        "samples": n_samples,
        "coverage_before": coverage(plain_stds),
        "coverage_after": coverage(calibrated),
        "coverage_after_per_dataset": {str(name): coverage(calibrated, names_per_window == name) for name in np.unique(names_per_window)},
        "interval_coefficients": [[round(float(v), 6) for v in row] for row in coefficients],
        "step_std_scale": [round(float(f), 6) for f in factors],
    }
    return config, summary


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="glurpc-lab calibrate", description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, type=Path, help="weights file; the config JSON beside it gets the calibration")
    add_data_options(parser)
    parser.add_argument("--samples", type=int, default=10, help="MC-dropout samples per window (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the window draw and dropout masks (default 0)")
    parser.add_argument("--max-windows", type=int, default=4000, help="validation windows per data set at most (default 4000)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Fit the calibration and write it into the weights' config JSON; return the exit code."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    torch.set_num_threads(args.threads)

    from glurpc_lab.model import load_model

    model = load_model(args.weights)
    config, summary = calibrate(model, args.data_dir, args.datasets, n_samples=args.samples, seed=args.seed, max_windows=args.max_windows)

    config_path = args.weights.with_suffix(".json")
    config.to_json(config_path)
    summary_path = args.weights.parent / "calibration.json"
    summary_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    logger.info(
        "80%% coverage per step on the calibration windows (in-sample) before %s, after %s",
        summary["coverage_before"], summary["coverage_after"],
    )
    logger.info("wrote the calibration to %s and a summary to %s", config_path, summary_path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
