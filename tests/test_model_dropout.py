"""Counter-based MC-dropout masks: the hash, the drop rate and what the masks depend on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glurpc_lab.model.dropout import (
    FIELD_VALUES,
    GOLDEN_GAMMA,
    RowSeededDropout,
    mix64_,
    mix64_numpy,
    row_keys,
)

P = 0.2
SHAPE = (97, 64)
"""Per-row shape of the test activations, the size of an embedding output of the small model."""


def drop_masks(keys: np.ndarray, *, layer_index: int = 0, calls: int = 1, p: float = P) -> list[np.ndarray]:
    """Return the boolean drop masks of ``calls`` consecutive calls of one layer, each ``(rows, *SHAPE)``."""
    layer = RowSeededDropout(p).train()
    layer.set_row_keys(torch.from_numpy(np.ascontiguousarray(keys, dtype=np.int64)), layer_index=layer_index)
    ones = torch.ones(len(keys), *SHAPE)
    return [(layer(ones) == 0).numpy() for _ in range(calls)]


def test_mix64_matches_splitmix64_reference():
    # The first output of SplitMix64 seeded with 0 is the finaliser of GOLDEN_GAMMA.
    first = mix64_numpy(np.array([GOLDEN_GAMMA], dtype=np.uint64))

    assert int(first[0]) == 0xE220A8397B1DCDAF


def test_mix64_torch_equals_numpy_bitwise():
    values = np.random.default_rng(3).integers(0, 2**64, size=10_000, dtype=np.uint64)
    values[:4] = [0, 1, 2**63, 2**64 - 1]

    expected = mix64_numpy(values)
    actual = mix64_(torch.from_numpy(values.view(np.int64).copy())).numpy().view(np.uint64)

    np.testing.assert_array_equal(actual, expected)


def test_mask_rate_is_p():
    masks = drop_masks(row_keys(0, np.arange(64), 1).reshape(-1))[0]

    expected = int(P * FIELD_VALUES) / FIELD_VALUES
    # 64 rows x 6208 elements: the standard error of the rate is about 6e-4.
    assert abs(masks.mean() - expected) < 0.003
    per_row = masks.reshape(64, -1).mean(axis=1)
    assert np.all(np.abs(per_row - expected) < 0.03)


@pytest.mark.parametrize("p", [0.05, 0.5, 0.9])
def test_mask_rate_other_p(p):
    masks = drop_masks(row_keys(1, np.arange(16), 1).reshape(-1), p=p)[0]

    assert abs(masks.mean() - p) < 0.01


def mismatch(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.mean(first != second))


# Two independent masks of rate p disagree on a fraction 2p(1 - p) of the elements.
INDEPENDENT_MISMATCH = 2 * P * (1 - P)


def test_masks_differ_across_rows():
    masks = drop_masks(row_keys(0, np.arange(8), 1).reshape(-1))[0]

    for row in range(1, 8):
        assert mismatch(masks[0], masks[row]) == pytest.approx(INDEPENDENT_MISMATCH, abs=0.03)


def test_masks_differ_across_samples():
    keys = row_keys(0, np.array([500]), 4)[0]

    masks = drop_masks(keys)[0]

    for sample in range(1, 4):
        assert mismatch(masks[0], masks[sample]) == pytest.approx(INDEPENDENT_MISMATCH, abs=0.03)


def test_masks_differ_across_layers():
    keys = row_keys(0, np.array([500]), 1).reshape(-1)

    first = drop_masks(keys, layer_index=0)[0]
    second = drop_masks(keys, layer_index=1)[0]

    assert mismatch(first, second) == pytest.approx(INDEPENDENT_MISMATCH, abs=0.03)


def test_masks_differ_across_calls_of_one_layer():
    # The encoder and decoder layers apply one dropout module at several places in a pass.
    keys = row_keys(0, np.array([500]), 1).reshape(-1)

    first, second = drop_masks(keys, calls=2)

    assert mismatch(first, second) == pytest.approx(INDEPENDENT_MISMATCH, abs=0.03)


def test_masks_differ_across_seeds():
    first = drop_masks(row_keys(0, np.array([500]), 1).reshape(-1))[0]
    second = drop_masks(row_keys(1, np.array([500]), 1).reshape(-1))[0]

    assert mismatch(first, second) == pytest.approx(INDEPENDENT_MISMATCH, abs=0.03)


def test_mask_independent_of_batch_rows():
    keys = row_keys(7, np.arange(95, 135), 3).reshape(-1)

    together = drop_masks(keys)[0]
    alone = drop_masks(keys[-1:])[0]
    reversed_batch = drop_masks(keys[::-1])[0]

    np.testing.assert_array_equal(alone[0], together[-1])
    np.testing.assert_array_equal(reversed_batch[::-1], together)


def test_mask_reproducible_and_rng_untouched():
    keys = row_keys(11, np.arange(20), 2).reshape(-1)
    rng_state = torch.get_rng_state()

    first = drop_masks(keys)[0]
    second = drop_masks(keys)[0]

    np.testing.assert_array_equal(first, second)
    assert torch.equal(torch.get_rng_state(), rng_state)


def test_kept_values_scaled_by_keep_rate():
    layer = RowSeededDropout(P).train()
    layer.set_row_keys(torch.from_numpy(row_keys(0, np.arange(4), 1).reshape(-1)))
    x = torch.rand(4, *SHAPE) + 1.0

    out = layer(x)

    kept = out != 0
    keep_rate = 1 - int(P * FIELD_VALUES) / FIELD_VALUES
    torch.testing.assert_close(out[kept], x[kept] / keep_rate, rtol=1e-6, atol=0)


def test_row_keys_depend_only_on_own_window():
    all_keys = row_keys(5, np.array([95, 96, 97, 300]), 3)
    one_key = row_keys(5, np.array([97]), 3)

    assert all_keys.shape == (4, 3)
    assert all_keys.dtype == np.int64
    np.testing.assert_array_equal(one_key[0], all_keys[2])
    assert len(np.unique(all_keys)) == all_keys.size


def test_row_keys_reject_negative_seed():
    with pytest.raises(ValueError, match="seed must be in"):
        row_keys(-1, np.arange(3), 2)


def test_without_keys_behaves_like_nn_dropout():
    layer = RowSeededDropout(P)
    x = torch.rand(3, *SHAPE)

    torch.manual_seed(4)
    ours = layer.train()(x)
    torch.manual_seed(4)
    reference = torch.nn.Dropout(P).train()(x)

    torch.testing.assert_close(ours, reference, rtol=0, atol=0)
    assert torch.equal(layer.eval()(x), x)


def test_wrong_key_count_rejected():
    layer = RowSeededDropout(P).train()
    layer.set_row_keys(torch.zeros(3, dtype=torch.int64))

    with pytest.raises(ValueError, match="batch of 4 rows"):
        layer(torch.ones(4, *SHAPE))


def test_non_int64_keys_rejected():
    with pytest.raises(TypeError, match="int64"):
        RowSeededDropout(P).set_row_keys(torch.zeros(3, dtype=torch.int32))
