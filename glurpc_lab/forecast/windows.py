"""Forecasting windows of a series and the model inputs built from them."""

from __future__ import annotations

import numpy as np
import torch

from glurpc_lab.ingest.series import GlucoseSeries
from glurpc_lab.model.config import GluformerConfig


def window_ends(series: GlucoseSeries, input_len: int = 96) -> np.ndarray:
    """Return the index of the last input point of every window, in time order.

    A window is ``input_len`` consecutive grid points inside one segment. Every
    such window is listed, including those whose forecast steps run past the end
    of their segment, so when the last segment has at least ``input_len`` points
    the last entry is the last reading.

    Returns
    -------
    numpy.ndarray
        ``int64`` indices into the series, shape ``(W,)``.
    """
    if input_len < 1:
        raise ValueError(f"input_len must be positive, got {input_len}")
    ends = [np.arange(start + input_len - 1, stop, dtype=np.int64) for start, stop in series.segment_bounds()]
    return np.concatenate(ends) if ends else np.zeros(0, dtype=np.int64)


def window_truth(series: GlucoseSeries, ends: np.ndarray, horizon: int) -> np.ndarray:
    """Return the observed glucose (mg/dL) at the ``horizon`` steps after each window end.

    Steps past the end of the window's segment are NaN. Shape ``(W, horizon)``, ``float32``.
    """
    steps = np.asarray(ends, dtype=np.int64)[:, None] + np.arange(1, horizon + 1)
    inside = steps < len(series)
    clipped = np.minimum(steps, len(series) - 1)
    same_segment = inside & (series.segment[clipped] == series.segment[np.asarray(ends, dtype=np.int64)][:, None])
    return np.where(same_segment, series.glucose[clipped], np.nan).astype(np.float32)


def model_inputs(
    past_glucose: np.ndarray,
    past_covariates: np.ndarray,
    future_covariates: np.ndarray,
    config: GluformerConfig,
) -> tuple[torch.Tensor, ...]:
    """Assemble the five forward() inputs from scaled window arrays.

    Parameters
    ----------
    past_glucose : numpy.ndarray
        Scaled glucose of each window's input, ``(W, len_seq)``.
    past_covariates : numpy.ndarray
        Scaled covariates of the input points, ``(W, len_seq, 6)``.
    future_covariates : numpy.ndarray
        Scaled covariates of the forecast steps, ``(W, len_pred, 6)``.
    config : GluformerConfig
        Supplies ``label_len`` and ``len_pred``.

    Returns
    -------
    tuple of torch.Tensor
        ``(x_id [W, 1], x_enc [W, len_seq, 1], x_mark_enc, x_dec [W, label_len + len_pred, 1], x_mark_dec)``,
        all ``float32``. The static id is 0.0 for every window.
    """
    past = torch.as_tensor(np.asarray(past_glucose, dtype=np.float32))
    marks = torch.as_tensor(np.asarray(past_covariates, dtype=np.float32))
    future = torch.as_tensor(np.asarray(future_covariates, dtype=np.float32))
    n = past.shape[0]
    label = config.label_len

    x_id = torch.zeros(n, config.num_static_features)
    x_enc = past.unsqueeze(-1)
    x_dec = torch.cat([past[:, -label:], torch.zeros(n, config.len_pred)], dim=1).unsqueeze(-1)
    x_mark_dec = torch.cat([marks[:, -label:], future], dim=1)
    return x_id, x_enc, marks, x_dec, x_mark_dec
