"""Seeded MC-dropout sampling: dropout on, BatchNorm in inference mode, one seed per window and sample."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from glurpc_lab.model.dropout import RowSeededDropout, row_keys

DROPOUT_MASK_SCHEME = "splitmix64-int16-v1"
"""Name of the dropout-mask derivation; forecasts made under another name differ for the same seed."""


def enable_mc_dropout(module: nn.Module) -> None:
    """Put ``module`` in eval mode except its Dropout layers.

    BatchNorm then uses its running statistics, so a window's forecast does not
    depend on the other windows in its batch, while dropout stays random.
    """
    module.eval()
    for layer in module.modules():
        if isinstance(layer, nn.Dropout):
            layer.train()


def mc_dropout_samples(
    module: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    window_keys: np.ndarray,
    *,
    n_samples: int,
    seed: int,
    batch_size: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``n_samples`` dropout forward passes of every window.

    Each window is repeated ``n_samples`` times inside one batch, and every repeated row
    gets a 64-bit key derived from ``(seed, window key, sample)``. Each dropout layer
    hashes that key into the row's mask (see ``glurpc_lab.model.dropout``). The same
    inputs, weights, key and seed therefore give the same dropout masks whichever
    windows share the batch, and the same samples up to the float rounding of batched
    kernels. The global torch RNG is left untouched.

    Parameters
    ----------
    module : torch.nn.Module
        A Gluformer whose dropout layers are ``RowSeededDropout``.
    inputs : tuple of torch.Tensor
        The five forward() inputs, each with ``W`` rows.
    window_keys : numpy.ndarray
        An integer key per window, ``(W,)``, e.g. the index of its last input point.
    n_samples : int
        Dropout samples per window.
    seed : int
        Non-negative base seed.
    batch_size : int
        Windows per forward pass (the pass has ``batch_size * n_samples`` rows).

    Returns
    -------
    pred : numpy.ndarray
        Scaled forecasts, ``float32``, ``(W, len_pred, n_samples)``.
    logvar : numpy.ndarray
        Scaled log-variances, ``float32``, ``(W, n_samples)``.
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")

    dropouts = [layer for layer in module.modules() if isinstance(layer, RowSeededDropout)]
    plain = [layer for layer in module.modules() if isinstance(layer, nn.Dropout) and not isinstance(layer, RowSeededDropout)]
    if plain:
        raise TypeError(f"{type(plain[0]).__name__} layers cannot be seeded per row; build the model from glurpc_lab.model")

    device = next(module.parameters()).device
    keys = torch.from_numpy(row_keys(seed, window_keys, n_samples)).to(device)
    n_windows = inputs[0].shape[0]
    preds, logvars = [], []

    enable_mc_dropout(module)
    try:
        with torch.inference_mode():
            for first in range(0, n_windows, batch_size):
                last = min(first + batch_size, n_windows)
                rows = [tensor[first:last].repeat_interleave(n_samples, dim=0).to(device) for tensor in inputs]
                batch_keys = keys[first:last].reshape(-1)
                for index, layer in enumerate(dropouts):
                    layer.set_row_keys(batch_keys, layer_index=index)

                pred, logvar = module(*rows)
                preds.append(pred.reshape(last - first, n_samples, -1).transpose(1, 2).float().cpu().numpy())
                logvars.append(logvar.reshape(last - first, n_samples).float().cpu().numpy())
    finally:
        for layer in dropouts:
            layer.set_row_keys(None)
        module.eval()

    horizon = getattr(getattr(module, "config", None), "len_pred", 0)
    if not preds:
        return np.zeros((0, horizon, n_samples), np.float32), np.zeros((0, n_samples), np.float32)
    return np.concatenate(preds), np.concatenate(logvars)
