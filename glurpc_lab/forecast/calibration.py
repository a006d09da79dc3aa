"""Per-step standard deviations of the dropout samples, with the model's interval factors applied."""

from __future__ import annotations

import numpy as np

from glurpc_lab.model.config import GluformerConfig


def component_stds(logvar: np.ndarray, glucose_span: float, config: GluformerConfig) -> np.ndarray:
    """Turn the sampled log-variances into standard deviations in mg/dL per forecast step.

    Parameters
    ----------
    logvar : numpy.ndarray
        Log-variance of each window and dropout sample in scaled units, ``(W, S)``.
    glucose_span : float
        Width in mg/dL of the glucose range that scaled units map to.
    config : GluformerConfig
        Supplies ``len_pred`` and the per-step factors ``step_std_scale`` (none: all 1).

    Returns
    -------
    numpy.ndarray
        ``float64`` standard deviations, ``(W, len_pred, S)``.
    """
    # A variance in scaled units becomes mg/dL^2 by multiplying by the squared span.
    std = np.sqrt(np.exp(np.asarray(logvar, dtype=np.float64))) * float(glucose_span)
    factors = np.asarray(config.step_std_scale or (1.0,) * config.len_pred, dtype=np.float64)
    return std[:, None, :] * factors[None, :, None]
