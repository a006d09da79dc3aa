"""Seeded MC-dropout sampling: dropout on, BatchNorm in inference mode, one seed per window and sample."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from glurpc_lab.model.dropout import RowSeededDropout


def enable_mc_dropout(module: nn.Module) -> None:
    """Put ``module`` in eval mode except its Dropout layers.

    BatchNorm then uses its running statistics, so a window's forecast does not
    depend on the other windows in its batch, while dropout stays random.
    """
    module.eval()
    for layer in module.modules():
        if isinstance(layer, nn.Dropout):
            layer.train()


def row_seeds(seed: int, window_keys: np.ndarray, n_samples: int) -> np.ndarray:
    """Derive one 64-bit seed per (window, sample) from ``seed`` and each window's key.

    Returns an ``object`` array of Python ints, shape ``(W, n_samples)``.
    """
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    seeds = np.empty((len(window_keys), n_samples), dtype=object)
    for row, key in enumerate(np.asarray(window_keys, dtype=np.int64)):
        for sample in range(n_samples):
            words = np.random.SeedSequence(seed, spawn_key=(int(key), sample)).generate_state(2, np.uint32)
            seeds[row, sample] = (int(words[0]) << 32) | int(words[1])
    return seeds


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
    draws its dropout masks from a generator seeded by ``(seed, window key, sample)``.
    The same inputs, weights, key and seed therefore give the same samples whichever
    windows share the batch (up to float rounding of batched kernels), and the global
    torch RNG is left untouched.

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
    seeds = row_seeds(seed, window_keys, n_samples)
    n_windows = inputs[0].shape[0]
    preds, logvars = [], []

    enable_mc_dropout(module)
    try:
        with torch.inference_mode():
            for first in range(0, n_windows, batch_size):
                last = min(first + batch_size, n_windows)
                rows = [tensor[first:last].repeat_interleave(n_samples, dim=0).to(device) for tensor in inputs]
                generators = [torch.Generator(device=device).manual_seed(s) for s in seeds[first:last].reshape(-1)]
                for layer in dropouts:
                    layer.row_generators = generators

                pred, logvar = module(*rows)
                preds.append(pred.reshape(last - first, n_samples, -1).transpose(1, 2).float().cpu().numpy())
                logvars.append(logvar.reshape(last - first, n_samples).float().cpu().numpy())
    finally:
        for layer in dropouts:
            layer.row_generators = None
        module.eval()

    horizon = getattr(getattr(module, "config", None), "len_pred", 0)
    if not preds:
        return np.zeros((0, horizon, n_samples), np.float32), np.zeros((0, n_samples), np.float32)
    return np.concatenate(preds), np.concatenate(logvars)
