"""Dropout whose masks are a counter-based hash of (row key, layer, call, element).

The masks come from SplitMix64. Every (row, layer, call) gets a 64-bit starting
state, and hash ``j`` of that row is the SplitMix64 finaliser of
``state + j * GOLDEN_GAMMA``. Each hash is split into four signed 16-bit fields, one
per mask element, and an element is dropped when its field falls in the lowest
fraction ``p`` of the 16-bit range. All of it is int64 tensor arithmetic, so one call
draws the masks of every row at once, no ``torch.Generator`` is involved and the
global RNG is left untouched.

torch has no unsigned 64-bit multiply or logical shift on every device, so the hash
runs on int64. Multiplication wraps modulo 2**64 like the unsigned one does, and a
logical right shift is an arithmetic shift followed by a mask of the low bits.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

MASK64 = (1 << 64) - 1

# The SplitMix64 Weyl increment and the two multipliers of its finaliser. The test of
# mix64_numpy checks them against the generator's first output for seed 0.
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
MIX_MULTIPLIER_1 = 0xBF58476D1CE4E5B9
MIX_MULTIPLIER_2 = 0x94D049BB133111EB

# Salts that keep the seed, window and sample inputs of the row key apart.
SEED_SALT = 0x243F6A8885A308D3
WINDOW_SALT = 0x13198A2E03707344
SAMPLE_SALT = 0xA4093822299F31D0
STREAM_SALT = 0x082EFA98EC4E6C89

# Mask elements per 64-bit hash. Four 16-bit fields quarter the hashing work, which
# dominates the cost of sampling, and make the drop rate a multiple of 2**-16.
FIELD_DTYPE = torch.int16
FIELDS_PER_HASH = 64 // 16
FIELD_VALUES = 1 << 16


def as_int64(value: int) -> int:
    """Return the signed 64-bit integer with the same bits as the unsigned ``value``."""
    value &= MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


def mix64_numpy(values: np.ndarray) -> np.ndarray:
    """Apply the SplitMix64 finaliser to a ``uint64`` array (arithmetic wraps modulo 2**64)."""
    z = np.asarray(values, dtype=np.uint64).copy()
    z ^= z >> np.uint64(30)
    z *= np.uint64(MIX_MULTIPLIER_1)
    z ^= z >> np.uint64(27)
    z *= np.uint64(MIX_MULTIPLIER_2)
    z ^= z >> np.uint64(31)
    return z


def logical_shift_right_(z: torch.Tensor, bits: int, scratch: torch.Tensor) -> torch.Tensor:
    """Write the unsigned right shift of int64 ``z`` by ``bits`` into ``scratch`` and return it."""
    torch.bitwise_right_shift(z, bits, out=scratch)
    return scratch.bitwise_and_((1 << (64 - bits)) - 1)


def mix64_(z: torch.Tensor) -> torch.Tensor:
    """Apply the SplitMix64 finaliser to an int64 tensor in place and return it.

    Bit for bit the same as ``mix64_numpy`` on the same 64-bit patterns.
    """
    scratch = torch.empty_like(z)
    z.bitwise_xor_(logical_shift_right_(z, 30, scratch))
    z.mul_(as_int64(MIX_MULTIPLIER_1))
    z.bitwise_xor_(logical_shift_right_(z, 27, scratch))
    z.mul_(as_int64(MIX_MULTIPLIER_2))
    z.bitwise_xor_(logical_shift_right_(z, 31, scratch))
    return z


def row_keys(seed: int, window_keys: np.ndarray, n_samples: int) -> np.ndarray:
    """Derive one 64-bit key per (window, sample) from ``seed`` and each window's key.

    Parameters
    ----------
    seed : int
        Non-negative base seed, below 2**64.
    window_keys : numpy.ndarray
        Integer key per window, ``(W,)``, e.g. the index of its last input point.
    n_samples : int
        Dropout samples per window.

    Returns
    -------
    numpy.ndarray
        ``int64`` keys, ``(W, n_samples)``, row-major in (window, sample) order. Each key
        depends only on its own seed, window key and sample number.
    """
    if not 0 <= seed <= MASK64:
        raise ValueError(f"seed must be in 0..2**64-1, got {seed}")
    windows = np.asarray(window_keys, dtype=np.int64).astype(np.uint64)
    samples = np.arange(n_samples, dtype=np.uint64)

    seed_state = mix64_numpy(np.array([seed ^ SEED_SALT], dtype=np.uint64))
    window_state = mix64_numpy(seed_state ^ (windows + np.uint64(WINDOW_SALT)))
    keys = mix64_numpy(window_state[:, None] ^ mix64_numpy(samples + np.uint64(SAMPLE_SALT))[None, :])
    return keys.view(np.int64)


class RowSeededDropout(nn.Dropout):
    """``nn.Dropout`` whose masks can be a hash of each batch row's key.

    When ``row_keys`` is None it behaves exactly like ``nn.Dropout``. When the
    MC-dropout sampler sets one int64 key per row of dimension 0 (``set_row_keys``),
    row ``r``'s mask at element ``i`` of the ``c``-th call of this layer in a forward
    pass depends only on ``(row_keys[r], layer_index, c, i)``. A window's masks are
    then the same whichever other windows share its batch and on every run, and the
    global torch RNG is not touched.

    The drop probability is ``int(p * 2**16) / 2**16``, within 2**-16 of ``p``, and
    kept elements are scaled by the inverse of the resulting keep rate.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p)
        self.row_keys: torch.Tensor | None = None
        self.layer_index = 0
        self.calls = 0
        self._offsets: torch.Tensor | None = None

    def set_row_keys(self, keys: torch.Tensor | None, layer_index: int = 0) -> None:
        """Use ``keys`` (int64, one per batch row) for the next forward pass, or None for ``nn.Dropout``.

        ``layer_index`` must differ between the layers of one model, so that no two
        layers draw the same masks. The call counter restarts at 0.
        """
        if keys is not None and keys.dtype != torch.int64:
            raise TypeError(f"row keys must be int64, got {keys.dtype}")
        self.row_keys = keys
        self.layer_index = layer_index
        self.calls = 0

    def element_offsets(self, n_elements: int, device: torch.device) -> torch.Tensor:
        """Return ``arange(n_elements) * GOLDEN_GAMMA`` as int64, cached between calls."""
        cached = self._offsets
        if cached is None or cached.numel() < n_elements or cached.device != device:
            cached = torch.arange(n_elements, dtype=torch.int64, device=device).mul_(as_int64(GOLDEN_GAMMA))
            self._offsets = cached
        return cached[:n_elements]

    def dropped_values(self) -> int:
        """Return how many of the ``FIELD_VALUES`` field values mean "drop": ``int(p * FIELD_VALUES)``."""
        return int(self.p * FIELD_VALUES)

    def drop_mask(self, shape: torch.Size, device: torch.device) -> torch.Tensor:
        """Return the boolean drop mask of one call for a batch of ``shape``, counting the call."""
        keys = self.row_keys.to(device)
        stream = (self.layer_index << 16) + self.calls
        self.calls += 1

        # The row's starting state for this layer and call. Both the stream number and the
        # combined state are mixed, so keys or streams that differ in few bits still
        # start far apart.
        stream_key = as_int64(int(mix64_numpy(np.array([stream ^ STREAM_SALT], dtype=np.uint64))[0]))
        states = mix64_(keys.bitwise_xor(stream_key))

        # Reinterpreting the int64 hashes as int16 gives FIELDS_PER_HASH fields per hash
        # without a copy. The field order follows the byte order, which is little-endian
        # on the CPUs and GPUs that torch supports.
        n_elements = int(np.prod(shape[1:], dtype=np.int64))
        n_hashes = -(-n_elements // FIELDS_PER_HASH)
        hashes = states[:, None] + self.element_offsets(n_hashes, device)[None, :]
        fields = mix64_(hashes).view(FIELD_DTYPE)[:, :n_elements]

        # A field is uniform on its signed range, so dropping its lowest dropped_values()
        # values drops with probability dropped_values() / FIELD_VALUES.
        threshold = self.dropped_values() - FIELD_VALUES // 2
        return fields.lt(threshold).reshape(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keys = self.row_keys
        if keys is None or not self.training or self.p == 0.0:
            return F.dropout(x, self.p, self.training)
        if self.p == 1.0:
            return torch.zeros_like(x)

        if keys.shape != (x.shape[0],):
            raise ValueError(f"{tuple(keys.shape)} row keys for a batch of {x.shape[0]} rows; set one key per row")
        # Kept values are scaled by the inverse of the exact keep rate, so the
        # expectation of every element is unchanged.
        drop = self.drop_mask(x.shape, x.device)
        keep_rate = 1.0 - self.dropped_values() / FIELD_VALUES
        return x.masked_fill(drop, 0.0).mul_(1.0 / keep_rate)
