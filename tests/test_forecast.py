"""Windows, covariates, scaling, seeded MC dropout and predictive quantiles on real CGM data."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import norm

from glurpc_lab.forecast import forecast_series, window_ends
from glurpc_lab.forecast.covariates import calendar_covariates, future_times
from glurpc_lab.forecast.predictive import mixture_quantiles
from glurpc_lab.forecast.sampling import mc_dropout_samples
from glurpc_lab.forecast.scaling import fit_scaler
from glurpc_lab.forecast.windows import model_inputs
from glurpc_lab.ingest import read_path
from glurpc_lab.ingest.quality import QualityReport
from glurpc_lab.ingest.series import GlucoseSeries
from glurpc_lab.model import GluformerConfig, ScalingPolicy, load_model
from glurpc_lab.model.gluformer import Gluformer
from glurpc_lab.training.glucobench import PROTOCOLS, load_protocol_segments

DATASETS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
CORPORA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
START = np.datetime64("2024-03-01T22:00:00", "s")


def make_series(segment_lengths: list[int], imputed_at: tuple[int, ...] = ()) -> GlucoseSeries:
    """Build a series of sine-shaped glucose with a 3-hour gap between consecutive segments."""
    times, segments = [], []
    offset = np.timedelta64(0, "m")
    for number, length in enumerate(segment_lengths):
        times.append(START + offset + np.arange(length) * np.timedelta64(5, "m"))
        segments.append(np.full(length, number, dtype=np.int32))
        offset += length * np.timedelta64(5, "m") + np.timedelta64(180, "m")
    n = sum(segment_lengths)
    glucose = (130 + 50 * np.sin(np.arange(n) / 20)).astype(np.float32)
    imputed = np.zeros(n, dtype=bool)
    imputed[list(imputed_at)] = True
    return GlucoseSeries(
        "synthetic", np.concatenate(times).astype("datetime64[s]"), glucose, np.concatenate(segments),
        imputed, np.zeros(n, np.int8), QualityReport(),
    )


@pytest.fixture(scope="module")
def iglu_series() -> GlucoseSeries:
    """Subject 4 of the iglu research set (Broll, GPL-2), first two segments, on the 5-minute grid."""
    spec = PROTOCOLS["iglu"]
    if not (DATASETS_DIR / spec.filename).is_file():
        pytest.skip(f"shared research data set {spec.filename} not found under {DATASETS_DIR}")
    # Label codes follow the sorted ids, so "Subject 4" has code 3.
    parts = load_protocol_segments(DATASETS_DIR, spec)[3][:2]
    n = sum(len(part) for part in parts)
    return GlucoseSeries(
        "Subject 4",
        np.concatenate([part.times for part in parts]),
        np.concatenate([part.glucose for part in parts]),
        np.concatenate([np.full(len(part), i, np.int32) for i, part in enumerate(parts)]),
        np.zeros(n, bool), np.zeros(n, np.int8), QualityReport(),
    )


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A randomly initialised tiny model (BatchNorm statistics made non-trivial) loaded through load_model."""
    folder = tmp_path_factory.mktemp("tiny-model")
    config = GluformerConfig.tiny()
    torch.manual_seed(5)
    module = Gluformer(config)
    norm_layer = module.encoder.conv_layers[0].norm
    norm_layer.running_mean.uniform_(-0.5, 0.5)
    norm_layer.running_var.uniform_(0.5, 2.0)
    torch.save(module.state_dict(), folder / "tiny.pth")
    config.to_json(folder / "tiny.json")
    return load_model(folder / "tiny.pth")


def test_window_ends_per_segment():
    series = make_series([100, 50, 120])

    ends = window_ends(series)

    expected = np.concatenate([np.arange(95, 100), np.arange(150 + 95, 270)])
    np.testing.assert_array_equal(ends, expected)
    assert ends[-1] == len(series) - 1


def test_window_ends_none_when_short():
    assert window_ends(make_series([95, 40])).size == 0


def test_calendar_covariates_order():
    stamp = np.array(["2015-03-26T10:02:07"], dtype="datetime64[s]")

    np.testing.assert_array_equal(calendar_covariates(stamp)[0], [26, 3, 2015, 10, 2, 7])


def test_future_times_cross_midnight():
    end = np.array(["2023-12-31T23:50:00"], dtype="datetime64[s]")

    covariates = calendar_covariates(future_times(end, 3))[0]

    np.testing.assert_array_equal(covariates[:, [0, 1, 2, 3, 4]], [[31, 12, 2023, 23, 55], [1, 1, 2024, 0, 0], [1, 1, 2024, 0, 5]])


def test_fixed_scaling_ignores_data():
    scaler = fit_scaler(ScalingPolicy(), np.array([500.0, 600.0]), np.ones(2, bool), np.zeros((2, 6)))

    np.testing.assert_allclose(scaler.scale_glucose([40.0, 220.0, 400.0]), [0.0, 0.5, 1.0])
    scaled = scaler.scale_covariates(np.array([[31, 12, 2015, 23, 59, 59]], dtype=float))
    np.testing.assert_allclose(scaled, [[1, 1, 0, 1, 1, 1]])


def test_per_series_scaling_uses_observed_points():
    glucose = np.array([100.0, 300.0, 150.0, 200.0])
    observed = np.array([True, False, True, True])
    covariates = calendar_covariates(np.array(["2024-01-01T10:00", "2024-01-01T11:00"], dtype="datetime64[s]"))

    scaler = fit_scaler(ScalingPolicy(kind="per-series"), glucose, observed, covariates)

    assert (scaler.glucose_min, scaler.glucose_max) == (100.0, 200.0)
    # Day, month, year and minute are constant in the fitted rows, so they map to 0.
    np.testing.assert_allclose(scaler.scale_covariates(covariates), [[0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0]])


def test_per_series_constant_glucose_keeps_unit_span():
    scaler = fit_scaler(ScalingPolicy(kind="per-series"), np.full(3, 120.0), np.ones(3, bool), np.zeros((3, 6)))

    assert scaler.glucose_span == 1.0
    np.testing.assert_allclose(scaler.scale_glucose([120.0, 121.0]), [0.0, 1.0])


def test_mixture_quantiles_single_component_is_normal():
    means = np.array([[[100.0], [150.0]]])
    stds = np.array([[10.0]])
    levels = np.array([0.025, 0.5, 0.9])

    quantiles = mixture_quantiles(means, stds, levels)

    np.testing.assert_allclose(quantiles[0, 0], norm.ppf(levels, 100, 10), atol=1e-6)
    np.testing.assert_allclose(quantiles[0, 1], norm.ppf(levels, 150, 10), atol=1e-6)


def test_mixture_quantiles_match_monte_carlo():
    rng = np.random.default_rng(7)
    means = rng.uniform(60, 250, size=(3, 2, 10))
    stds = rng.uniform(2, 30, size=(3, 10))
    levels = np.array([0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975])

    quantiles = mixture_quantiles(means, stds, levels)

    draws = 200_000
    for w in range(3):
        for h in range(2):
            component = rng.integers(0, 10, size=draws)
            values = rng.normal(means[w, h, component], stds[w, component])
            np.testing.assert_allclose(quantiles[w, h], np.quantile(values, levels), atol=1.0)


def test_forecast_shapes_and_truth(tiny_model, iglu_series):
    forecast = forecast_series(tiny_model, iglu_series, n_samples=3, windows=slice(0, 20))

    assert forecast.quantiles.shape == (20, 12, 7)
    assert forecast.sample_mean.shape == (20, 12, 3)
    assert forecast.sample_std.shape == (20, 12, 3)
    assert forecast.truth.shape == (20, 12)
    np.testing.assert_array_equal(forecast.input_end, np.arange(95, 115))
    np.testing.assert_array_equal(forecast.truth, iglu_series.glucose[np.arange(96, 116)[:, None] + np.arange(12)])
    np.testing.assert_array_equal(forecast.horizon_minutes, np.arange(5, 65, 5))
    assert np.all(np.diff(forecast.quantiles, axis=-1) > 0)
    assert forecast.model_id == tiny_model.model_id
    assert forecast.metadata["scaling_policy"] == "fixed"


def test_latest_window_forecasts_after_last_reading(tiny_model, iglu_series):
    forecast = forecast_series(tiny_model, iglu_series, n_samples=3, windows="latest")

    assert forecast.n_windows == 1
    assert forecast.input_end[0] == len(iglu_series) - 1
    assert forecast.time_end[0] == iglu_series.time[-1]
    assert np.isnan(forecast.truth).all()
    assert forecast.forecast_times(0)[0] == iglu_series.time[-1] + np.timedelta64(5, "m")


def test_truth_nan_past_segment_end(tiny_model, iglu_series):
    first_stop = iglu_series.segment_bounds()[0][1]

    forecast = forecast_series(tiny_model, iglu_series, n_samples=2, windows=slice(first_stop - 96 - 3, first_stop - 96 + 1))

    assert forecast.input_end[-1] == first_stop - 1
    assert np.isnan(forecast.truth[-1]).all()
    # The first window ends 4 points before the segment end, so 3 of its steps are observed.
    assert np.isfinite(forecast.truth[0, :3]).all()
    assert np.isnan(forecast.truth[0, 3:]).all()


def test_same_seed_bit_identical(tiny_model, iglu_series):
    first = forecast_series(tiny_model, iglu_series, n_samples=3, seed=11, windows=slice(0, 30))
    second = forecast_series(tiny_model, iglu_series, n_samples=3, seed=11, windows=slice(0, 30))

    np.testing.assert_array_equal(first.sample_mean, second.sample_mean)
    np.testing.assert_array_equal(first.sample_std, second.sample_std)
    np.testing.assert_array_equal(first.quantiles, second.quantiles)


def test_different_seed_differs(tiny_model, iglu_series):
    first = forecast_series(tiny_model, iglu_series, n_samples=3, seed=11, windows=slice(0, 5))
    second = forecast_series(tiny_model, iglu_series, n_samples=3, seed=12, windows=slice(0, 5))

    assert not np.allclose(first.sample_mean, second.sample_mean)


def test_samples_differ_within_window(tiny_model, iglu_series):
    forecast = forecast_series(tiny_model, iglu_series, n_samples=4, windows=slice(0, 2))

    assert np.all(forecast.sample_mean.std(axis=-1) > 0)


def test_window_independent_of_batch(tiny_model, iglu_series):
    alone = forecast_series(tiny_model, iglu_series, n_samples=3, windows="latest")
    together = forecast_series(tiny_model, iglu_series, n_samples=3, windows=slice(-40, None), batch_size=16)
    one_by_one = forecast_series(tiny_model, iglu_series, n_samples=3, windows=slice(-3, None), batch_size=1)

    np.testing.assert_allclose(alone.sample_mean[0], together.sample_mean[-1], rtol=0, atol=1e-3)
    np.testing.assert_allclose(one_by_one.sample_mean, together.sample_mean[-3:], rtol=0, atol=1e-3)


def test_global_rng_and_batchnorm_untouched(tiny_model, iglu_series):
    norm_layer = tiny_model.module.encoder.conv_layers[0].norm
    running_mean = norm_layer.running_mean.clone()
    rng_state = torch.get_rng_state()

    forecast_series(tiny_model, iglu_series, n_samples=2, windows=slice(0, 8))

    assert torch.equal(torch.get_rng_state(), rng_state)
    assert torch.equal(norm_layer.running_mean, running_mean)
    assert not tiny_model.module.training


def test_std_converted_to_mgdl(tiny_model, iglu_series):
    config = tiny_model.config
    forecast = forecast_series(tiny_model, iglu_series, n_samples=2, windows=slice(0, 4))

    scaler = fit_scaler(config.scaling, iglu_series.glucose, np.ones(len(iglu_series), bool), np.zeros((1, 6)))
    ends = forecast.input_end
    past = ends[:, None] + np.arange(-95, 1)
    covariates = calendar_covariates(iglu_series.time)
    future = calendar_covariates(future_times(iglu_series.time[ends], 12))
    inputs = model_inputs(
        scaler.scale_glucose(iglu_series.glucose[past]), scaler.scale_covariates(covariates[past]),
        scaler.scale_covariates(future), config,
    )
    pred, logvar = mc_dropout_samples(tiny_model.module, inputs, ends, n_samples=2, seed=0)

    span = config.scaling.glucose_max - config.scaling.glucose_min
    np.testing.assert_allclose(forecast.sample_std, np.broadcast_to((np.exp(logvar / 2) * span)[:, None, :], forecast.sample_std.shape), rtol=1e-5)
    np.testing.assert_allclose(forecast.sample_mean, pred * span + config.scaling.glucose_min, rtol=1e-5)


def test_short_series_rejected(tiny_model):
    with pytest.raises(ValueError, match="longest gap-free segment has 80 points"):
        forecast_series(tiny_model, make_series([80, 60]))


def test_invalid_window_selection(tiny_model, iglu_series):
    with pytest.raises(ValueError, match="windows='first'"):
        forecast_series(tiny_model, iglu_series, windows="first")


def test_per_series_policy_fits_observed_range(tmp_path, iglu_series):
    config = dataclasses.replace(GluformerConfig.tiny(), name="tiny-per-series", scaling=ScalingPolicy(kind="per-series"))
    torch.manual_seed(2)
    torch.save(Gluformer(config).state_dict(), tmp_path / "per-series.pth")
    config.to_json(tmp_path / "per-series.json")
    model = load_model(tmp_path / "per-series.pth")

    forecast = forecast_series(model, iglu_series, n_samples=2, windows="latest")

    scaler = forecast.metadata["scaler"]
    assert forecast.metadata["scaling_policy"] == "per-series"
    assert scaler["glucose_min"] == float(iglu_series.glucose.min())
    assert scaler["glucose_max"] == float(iglu_series.glucose.max())
    span = scaler["glucose_max"] - scaler["glucose_min"]
    assert np.all(forecast.sample_std > 0)
    assert np.all(forecast.sample_std < span * np.exp(5))


def test_real_export_latest_window():
    path = CORPORA_DIR / "nightscout_entries.csv"
    if not path.is_file():
        pytest.skip(f"shared corpus export {path.name} not found under {CORPORA_DIR}")
    series = max(read_path(path).series, key=len)
    model = load_model()

    forecast = forecast_series(model, series, n_samples=4, windows="latest")

    ends = window_ends(series)
    assert forecast.input_end[0] == ends[-1]
    assert forecast.model_id == model.model_id
    median = forecast.median[0]
    # A trained model forecasts plausible glucose for the next hour.
    assert np.all((median > 30) & (median < 450))
    assert np.all(np.diff(forecast.quantiles[0], axis=-1) > 0)


def test_empty_window_slice(tiny_model, iglu_series):
    forecast = forecast_series(tiny_model, iglu_series, n_samples=2, windows=slice(0, 0))

    assert forecast.n_windows == 0
    assert forecast.quantiles.shape == (0, 12, 7)
    assert forecast.sample_mean.shape == (0, 12, 2)
    assert forecast.sample_std.shape == (0, 12, 2)


def test_calibrated_model_widens_intervals_with_horizon(tiny_model, iglu_series):
    config = tiny_model.config
    rows = tuple((3.0 + 0.2 * h, 0.0, 0.0, 0.0) for h in range(config.len_pred))
    calibrated_config = GluformerConfig(**{**config.to_dict(), "scaling": config.scaling, "interval_coefficients": rows,
                                            "step_std_scale": (0.5,) * config.len_pred})
    calibrated = dataclasses.replace(tiny_model, config=calibrated_config)

    forecast = forecast_series(calibrated, iglu_series, n_samples=3, windows=slice(0, 4))

    # With only an intercept, each window's mean standard deviation is 0.5 exp(3 + 0.2 h) at step h.
    np.testing.assert_allclose(forecast.sample_std.mean(axis=2), np.broadcast_to(0.5 * np.exp(3.0 + 0.2 * np.arange(12)), (4, 12)), rtol=1e-5)
    # The spread of the sample means varies by step too, so only the ends are compared.
    width = forecast.quantiles[..., -1] - forecast.quantiles[..., 0]
    assert np.all(width[:, -1] > width[:, 0])
