"""Training data preparation, loss and a few-step training run on a slice of real data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from glurpc_lab.model import load_model
from glurpc_lab.forecast.calibration import component_stds, interval_features
from glurpc_lab.forecast.windows import model_inputs
from glurpc_lab.model.config import GluformerConfig
from glurpc_lab.model.gluformer import Gluformer
from glurpc_lab.training.calibrate import dataset_weights, fit_interval_coefficients, fit_step_factors
from glurpc_lab.training.corpus import build_corpus, first_scored_index
from glurpc_lab.training.glucobench import PROTOCOLS, ProtocolSpec, Series, load_protocol_segments, split_protocol
from glurpc_lab.training.train import dataset_blocks, draw_windows, gaussian_nll, main

DATASETS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


SPEC = ProtocolSpec("test", "Test", "unused.csv", gap_minutes=45, min_readings=5, length_segment=10,
                    max_length_input=20, linreg_input_len=4, gluformer_input_len=8)


def series(code: int, segment: int, n: int) -> Series:
    minutes = np.arange(n, dtype=np.int64) * 5 + 1_000_000 * (segment + 1)
    return Series(code, segment, minutes, np.full(n, 100.0, np.float32))


def test_corpus_leaves_out_every_seeds_ood_subjects():
    by_subject = {code: [series(code, code, 200)] for code in range(30)}

    corpus = build_corpus(by_subject, SPEC, input_len=12, seeds=(1, 2))

    ood = set()
    for seed in (1, 2):
        ood |= set(split_protocol(by_subject, SPEC, seed).ood_codes)
    assert set(corpus.excluded_subjects) == ood
    assert len(ood) > math.ceil(30 * 0.1)  # the two seeds hold out different subjects
    assert not ood & {item.code for item in corpus.train + corpus.val}
    assert {item.code for item in corpus.train} == set(range(30)) - ood


def test_corpus_stops_before_the_first_scored_target():
    # 200 >= 20 + 3 * 10: train [:180], validation [160:190], test [170:] of the segment.
    by_subject = {code: [series(code, code, 200)] for code in range(10)}
    split = split_protocol(by_subject, SPEC, 1)

    corpus = build_corpus(by_subject, SPEC, input_len=12, seeds=(1,))

    first_scored = {test.code: test.minutes[first_scored_index(SPEC, 12)] for test in split.test}
    assert first_scored_index(SPEC, 12) == 12
    for item in corpus.train + corpus.val:
        assert item.minutes[-1] < first_scored[item.code]
    # Test starts at 170 and is scored from 182, so train [:180] stays whole
    # and validation is cut to [160:182].
    assert {len(item) for item in corpus.train} == {180}
    assert {len(item) for item in corpus.val} == {22}


def test_real_corpus_has_no_scored_target():
    if not (DATASETS_DIR / "Hall2018_processed_akhil.csv").is_file():
        pytest.skip(f"shared research data sets not found under {DATASETS_DIR}")
    spec = PROTOCOLS["hall"]
    by_subject = load_protocol_segments(DATASETS_DIR, spec)

    corpus = build_corpus(by_subject, spec, input_len=96)

    seen = {(item.code, int(minute)) for item in corpus.train + corpus.val for minute in item.minutes}
    for seed in (1, 2):
        split = split_protocol(by_subject, spec, seed)
        offset = first_scored_index(spec, 96)
        scored = {(test.code, int(minute)) for test in split.test for minute in test.minutes[offset:]}
        scored |= {(item.code, int(minute)) for item in split.ood for minute in item.minutes}
        assert not seen & scored
    assert len(corpus.train) > 50


def test_anchored_model_outputs_persistence_when_network_is_zero():
    config = GluformerConfig.tiny()
    config = GluformerConfig(**{**config.to_dict(), "scaling": config.scaling, "anchor": "last", "anchor_gain": 10.0})
    torch.manual_seed(0)
    model = Gluformer(config).eval()
    torch.nn.init.zeros_(model.projection.weight)
    torch.nn.init.zeros_(model.projection.bias)
    past = torch.rand(3, config.len_seq)
    inputs = model_inputs(past.numpy(), np.zeros((3, config.len_seq, 6)), np.zeros((3, config.len_pred, 6)), config)

    pred, _ = model(*inputs)

    torch.testing.assert_close(pred[:, :, 0], past[:, -1:].expand(3, config.len_pred))


def test_anchored_model_is_shift_equivariant():
    base = GluformerConfig.tiny()
    config = GluformerConfig(**{**base.to_dict(), "scaling": base.scaling, "anchor": "last", "anchor_gain": 10.0})
    torch.manual_seed(0)
    model = Gluformer(config).eval()
    past = np.random.default_rng(0).random((2, config.len_seq)).astype(np.float32)
    marks, future = np.zeros((2, config.len_seq, 6)), np.zeros((2, config.len_pred, 6))

    pred, logvar = model(*model_inputs(past, marks, future, config))
    shifted, shifted_logvar = model(*model_inputs(past + 0.25, marks, future, config))

    torch.testing.assert_close(shifted, pred + 0.25)
    torch.testing.assert_close(shifted_logvar, logvar)


def test_fit_step_factors_reaches_the_level():
    rng = np.random.default_rng(0)
    # Truth spreads 1, 2, 4 times the model's unit standard deviation at the three steps.
    spread = np.array([1.0, 2.0, 4.0])
    truth = rng.standard_normal((4000, 3)) * spread
    means = np.zeros((4000, 3, 5))
    stds = np.ones((4000, 3, 5))

    factors = fit_step_factors(truth, means, stds)

    np.testing.assert_allclose(factors, spread, rtol=0.06)
    for step in range(3):
        inside = np.abs(truth[:, step]) <= 1.2816 * factors[step]
        assert inside.mean() == pytest.approx(0.8, abs=0.005)


def test_dataset_weights_balance_sets():
    weights = dataset_weights(np.array(["a", "a", "a", "b"], dtype=object))

    np.testing.assert_allclose(weights, [1 / 6, 1 / 6, 1 / 6, 1 / 2])


def test_component_stds_apply_step_factors():
    base = GluformerConfig.tiny()
    factors = tuple(float(h) for h in range(1, base.len_pred + 1))
    config = GluformerConfig(**{**base.to_dict(), "scaling": base.scaling, "step_std_scale": factors})
    logvar = np.log(np.array([[0.01, 0.04]]))

    stds = component_stds(logvar, 360.0, config)

    assert stds.shape == (1, base.len_pred, 2)
    np.testing.assert_allclose(stds[0, :, 0], 0.1 * 360.0 * np.array(factors))
    np.testing.assert_allclose(component_stds(logvar, 360.0, base)[0, :, 1], np.full(base.len_pred, 0.2 * 360.0))


def test_interval_features_of_a_ramp():
    # A ramp rising 2 mg/dL per 5 minutes: no spread of changes, mean change 2.
    past = (100.0 + 2.0 * np.arange(96))[None, :]

    features = interval_features(past, np.array([4.0]))

    np.testing.assert_allclose(features[0, :3], [1.0, np.log(4.0), np.log(0.5 + 2.0)])
    assert features[0, 3] == pytest.approx(np.log(1.0 + past.std()))


def test_component_stds_follow_interval_coefficients():
    base = GluformerConfig.tiny()
    rows = tuple((0.5 + 0.1 * h, 0.0, 1.0, 0.0) for h in range(base.len_pred))
    config = GluformerConfig(**{**base.to_dict(), "scaling": base.scaling, "interval_coefficients": rows})
    past = np.stack([100.0 + slope * np.arange(96) for slope in (0.0, 3.0)])
    logvar = np.log(np.array([[0.01, 0.04], [0.01, 0.04]]))

    stds = component_stds(logvar, 360.0, config, past)

    recent = np.array([0.0, 3.0])
    expected_mean = np.exp(np.array([row[0] for row in rows])[None, :]) * (0.5 + recent[:, None])
    np.testing.assert_allclose(stds.mean(axis=2), expected_mean)
    # The samples keep their 1:2 ratio.
    np.testing.assert_allclose(stds[:, :, 1] / stds[:, :, 0], 2.0)
    with pytest.raises(ValueError, match="past_glucose"):
        component_stds(logvar, 360.0, config)


def test_interval_coefficients_adapt_to_rate_of_change():
    rng = np.random.default_rng(1)
    slopes = rng.choice([0.0, 4.0], size=6000)
    past = 120.0 + slopes[:, None] * np.arange(96)[None, :]
    # The error scale grows with the rate of change: 2 mg/dL when flat, 9 when rising.
    scale = 2.0 + 1.75 * slopes
    truth = scale[:, None] * rng.standard_normal((6000, 2))
    means = np.zeros((6000, 2, 3))
    sample_std = np.full((6000, 3), 5.0)

    coefficients = fit_interval_coefficients(truth, means, sample_std, past)

    width = np.exp(interval_features(past, sample_std.mean(axis=1)) @ coefficients.T)
    for slope in (0.0, 4.0):
        chosen = slopes == slope
        inside = np.abs(truth[chosen]) <= width[chosen]
        assert inside.mean() == pytest.approx(0.8, abs=0.03)


def test_interval_coefficients_need_one_row_per_step():
    with pytest.raises(ValueError, match="interval_coefficients"):
        GluformerConfig(interval_coefficients=((0.0, 1.0, 0.0, 0.0),))


def test_step_factors_must_match_horizon():
    with pytest.raises(ValueError, match="step_std_scale"):
        GluformerConfig(step_std_scale=(1.0, 2.0))


def test_gaussian_nll_value():
    pred = torch.tensor([[1.0, 2.0]])
    target = torch.tensor([[2.0, 2.0]])
    logvar = torch.tensor([[[math.log(4.0)]]])

    # (L/2) log 4 + 1 / (2 * 4), divided by L = 2.
    expected = (math.log(4.0) + 1.0 / 8.0) / 2.0
    assert gaussian_nll(pred, logvar, target).item() == pytest.approx(expected)


def test_train_and_resume_tiny(tmp_path):
    if not (DATASETS_DIR / "iglu_example_data_5_subject.csv").is_file():
        pytest.skip(f"shared research data sets not found under {DATASETS_DIR}")
    args = ["--out", str(tmp_path), "--config", "tiny", "--datasets", "iglu", "--max-minutes", "2", "--val-stride", "24", "--threads", "1"]

    assert main(args + ["--max-steps", "3"]) == 0
    first = json.loads((tmp_path / "metrics.json").read_text())
    assert main(args + ["--max-steps", "5"]) == 0
    resumed = json.loads((tmp_path / "metrics.json").read_text())

    assert first["steps"] == 3
    assert resumed["steps"] == 5
    assert [entry["step"] for entry in resumed["history"]] == [3, 5]
    scores = resumed["val"]["all"]
    assert scores["windows"] > 0
    assert scores["model_median_mse"] > 0
    assert scores["persistence_median_mae"] > 0
    loaded = load_model(tmp_path / "gluformer_tiny.pth")
    assert loaded.config.name == "tiny"
    # Training ends by fitting the interval calibration on validation windows.
    assert len(loaded.config.step_std_scale) == loaded.config.len_pred
    assert len(loaded.config.interval_coefficients) == loaded.config.len_pred
    summary = json.loads((tmp_path / "calibration.json").read_text())
    assert all(abs(value - 0.8) < 0.05 for value in summary["coverage_after"])


def test_draw_windows_weighs_sets_by_root():
    # 400 windows of set a, then 100 of set b: square-root weights 20 and 10.
    names = np.array(["a"] * 400 + ["b"] * 100, dtype=object)
    blocks = dataset_blocks(names)

    drawn = draw_windows(blocks, 6000, torch.Generator().manual_seed(0))

    np.testing.assert_array_equal(blocks[0], [0, 400])
    np.testing.assert_array_equal(blocks[1], [400, 100])
    assert drawn.min() >= 0
    assert drawn.max() < 500
    assert np.mean(drawn < 400) == pytest.approx(2 / 3, abs=0.02)
    assert len(np.unique(drawn[drawn >= 400])) == 100
