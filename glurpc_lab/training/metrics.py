"""Per-window forecast errors and their GlucoBench-style medians."""

from __future__ import annotations

import numpy as np
import torch

from glurpc_lab.forecast.scaling import Scaler
from glurpc_lab.forecast.windows import model_inputs
from glurpc_lab.model.gluformer import Gluformer
from glurpc_lab.training.pool import WindowPool


def point_forecasts(model: Gluformer, pool: WindowPool, scaler: Scaler, batch_size: int = 512) -> np.ndarray:
    """Return the model's forecast in mg/dL with dropout off, ``(W, horizon)``.

    This is a deterministic point forecast (``model.eval()``), not the MC-dropout mean.
    """
    model.eval()
    outputs = []
    with torch.inference_mode():
        for first in range(0, len(pool), batch_size):
            batch = pool.batch(np.arange(first, min(first + batch_size, len(pool))))
            inputs = model_inputs(batch["past"], batch["past_covariates"], batch["future_covariates"], model.config)
            pred, _ = model(*inputs)
            outputs.append(scaler.unscale_glucose(pred[:, :, 0].numpy()))
    return np.concatenate(outputs) if outputs else np.zeros((0, pool.horizon))


def window_errors(forecast: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return per-window MSE (mg/dL^2) and MAE (mg/dL) over the horizon, each ``(W,)``."""
    error = np.asarray(forecast, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    return np.mean(error**2, axis=1), np.mean(np.abs(error), axis=1)


def score_pool(model: Gluformer, pool: WindowPool, scaler: Scaler) -> dict:
    """Score the model and persistence on every window of ``pool``.

    Returns, for ``"all"`` and each data set, the window count and the median over
    windows of per-window MSE and MAE for the model and for persistence (the last
    input value repeated over the horizon).
    """
    truth = pool.batch(np.arange(len(pool)))
    model_mse, model_mae = window_errors(point_forecasts(model, pool, scaler), truth["target_mgdl"])
    persistence = np.repeat(truth["last_mgdl"][:, None], pool.horizon, axis=1)
    base_mse, base_mae = window_errors(persistence, truth["target_mgdl"])

    scores = {}
    groups = [("all", np.ones(len(pool), dtype=bool))] + [(name, pool.dataset == name) for name in sorted(set(pool.dataset))]
    for name, mask in groups:
        if not mask.any():
            continue
        scores[name] = {
            "windows": int(mask.sum()),
            "model_median_mse": float(np.median(model_mse[mask])),
            "model_median_mae": float(np.median(model_mae[mask])),
            "persistence_median_mse": float(np.median(base_mse[mask])),
            "persistence_median_mae": float(np.median(base_mae[mask])),
        }
    return scores
