"""Tests of the darts linear-regression and ARIMA baselines of ``glurpc-lab evaluate``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from glurpc_lab.training.arima import ArimaBaseline, apply_arima, count_differences, select_arima
from glurpc_lab.training.baselines import LinearRegressionBaseline, build_windows, persistence_forecast
from glurpc_lab.training.evaluate import parse_args, score_arima_windows
from glurpc_lab.training.glucobench import HORIZON, PROTOCOLS, Series, load_protocol_segments, split_protocol
from glurpc_lab.training.report import render_markdown
from glurpc_lab.training.scoring import median_errors

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def iglu_split(seed: int = 1):
    spec = PROTOCOLS["iglu"]
    if not (DATASETS / spec.filename).is_file():
        pytest.skip(f"shared research data set {spec.filename} not found under {DATASETS}")
    return split_protocol(load_protocol_segments(DATASETS, spec), spec, seed)


def noisy_series(code: int, n: int, seed: int, start: int = 0) -> Series:
    """A smooth glucose-like curve with noise, on the 5-minute grid."""
    rng = np.random.default_rng(seed)
    steps = np.arange(n)
    glucose = 140 + 40 * np.sin(steps / (15 + code)) + 10 * code + rng.normal(0, 3, n)
    return Series(code, 0, steps.astype(np.int64) * 5 + start, glucose.astype(np.float32))


def test_linreg_fast_path_equals_darts_predict():
    train = [noisy_series(code, 150, seed=code) for code in range(4)]
    model = LinearRegressionBaseline(lags=6).fit(train)
    windows = build_windows([noisy_series(1, 40, seed=9), noisy_series(3, 30, seed=10)], 6)
    picked = windows.subset(np.arange(0, len(windows), 5))
    assert len(picked) >= 5

    fast = model.predict(picked)
    reference = model.predict_with_darts(picked)
    assert fast.shape == (len(picked), HORIZON)
    np.testing.assert_allclose(fast, reference, atol=1e-4)


def test_linreg_uses_subject_code():
    # Two subjects with the same dynamics at different levels: the code feature must carry the offset.
    train = [noisy_series(0, 200, seed=1), noisy_series(5, 200, seed=2)]
    model = LinearRegressionBaseline(lags=3).fit(train)
    assert model.code_min == 0.0
    assert model.code_max == 5.0
    coefficients = np.asarray(model.model.model.coef_)
    # Columns are 3 lags then the scaled code; each horizon step weights the code.
    assert coefficients.shape == (HORIZON, 4)
    assert np.all(np.abs(coefficients[:, 3]) > 1e-3)


def test_linreg_matches_darts_historical_forecasts():
    split = iglu_split()
    model = LinearRegressionBaseline(PROTOCOLS["iglu"].linreg_input_len).fit(split.train)
    assert model.training_windows == 7026
    series = split.test[0]

    starts = [200, 260, 320, 380]
    darts_forecasts = model.model.historical_forecasts(
        model._darts_series(series), start=starts[0], forecast_horizon=HORIZON, stride=60,
        retrain=False, last_points_only=False, show_warnings=False,
    )
    assert len(darts_forecasts) == len(starts)
    darts_values = model._unscale_glucose(np.stack([forecast.values()[:, 0] for forecast in darts_forecasts]))

    windows = build_windows([series], model.lags)
    picked = windows.subset(np.searchsorted(windows.position, starts))
    np.testing.assert_array_equal(picked.position, starts)
    np.testing.assert_allclose(model.predict(picked), darts_values, atol=1e-4)


def test_linreg_rejects_short_series():
    with pytest.raises(ValueError, match="points that one linear-regression window needs"):
        LinearRegressionBaseline(lags=20).fit([noisy_series(0, 25, seed=0)])


def test_linreg_predict_needs_fit():
    windows = build_windows([noisy_series(0, 40, seed=0)], 6)
    with pytest.raises(RuntimeError, match="fit"):
        LinearRegressionBaseline(lags=6).predict(windows)


def test_kpss_differences_walk_and_noise():
    rng = np.random.default_rng(4)
    assert count_differences(np.cumsum(rng.normal(size=192))) == 1
    assert count_differences(rng.normal(size=192)) == 0


def test_arima_follows_ramp_with_drift():
    rng = np.random.default_rng(5)
    steps = np.arange(192 + HORIZON)
    values = 100 + 0.8 * steps + rng.normal(0, 0.5, steps.size)
    model = select_arima(values[:192])
    assert model is not None
    forecast = apply_arima(model, values[:192])
    # The continuation of the ramp: 0.8 mg/dL per step for 12 steps.
    expected = 100 + 0.8 * steps[192:]
    assert np.max(np.abs(forecast - expected)) < 3.0


def test_arima_fits_once_per_series():
    series = [noisy_series(0, 300, seed=11), noisy_series(1, 260, seed=12, start=100_000)]
    windows = build_windows(series, 100)
    picked = windows.subset(np.array([5, 60, 150, len(windows) - 1]))
    baseline = ArimaBaseline(100, 80.0, 260.0)
    result = baseline.forecast(picked)
    assert result.fits == 2
    assert result.failed_fits == 0
    assert not result.failed.any()
    assert np.all(np.isfinite(result.forecast))

    # The forecast of a window is the first series' model, fitted on its first 100 points,
    # applied to the window's last 100 points.
    model = select_arima(baseline._scale(series[0].glucose[:100]))
    start = int(picked.position[1])
    expected = baseline._unscale(apply_arima(model, baseline._scale(series[0].glucose[start - 100 : start])))
    np.testing.assert_allclose(result.forecast[1], expected, rtol=1e-9)


def test_arima_counts_failed_windows():
    good = noisy_series(0, 200, seed=13)
    bad_glucose = noisy_series(1, 200, seed=14).glucose.copy()
    bad_glucose[10] = np.inf
    bad = Series(1, 0, np.arange(200, dtype=np.int64) * 5 + 50_000, bad_glucose)
    windows = build_windows([good, bad], 100)
    result = ArimaBaseline(100, 80.0, 260.0).forecast(windows.subset(np.array([0, 20, 90, 110])))
    # Windows 90 and 110 belong to the series whose fit points contain a non-finite value.
    assert result.failed.tolist() == [False, False, True, True]
    assert result.failed_fits == 1
    assert np.isnan(result.forecast[2:]).all()


def test_arima_rejects_short_history():
    windows = build_windows([noisy_series(0, 200, seed=0)], 50)
    with pytest.raises(ValueError, match="ARIMA needs 100"):
        ArimaBaseline(100, 80.0, 260.0).forecast(windows)


def test_arima_windows_share_scored_windows():
    series = [noisy_series(0, 260, seed=15), noisy_series(1, 260, seed=16, start=100_000)]
    bad_glucose = noisy_series(2, 260, seed=17).glucose.copy()
    bad_glucose[0] = np.inf
    series.append(Series(2, 0, np.arange(260, dtype=np.int64) * 5 + 200_000, bad_glucose))
    windows = build_windows(series, 60)
    linreg = LinearRegressionBaseline(lags=12).fit(series[:2])
    model_point = persistence_forecast(windows) + 1.0

    result = score_arima_windows(ArimaBaseline(100, 80.0, 260.0), linreg, windows, model_point, 30, seed=3)
    assert result["eligible"] == int(np.sum(windows.position >= 100))
    assert result["drawn"] == 30
    assert result["failed"] > 0
    scored = result["drawn"] - result["failed"]
    for name in ("arima", "model", "persistence", "linear_regression"):
        assert result[name]["windows"] == scored

    # The same seed draws the same windows. The model's point forecast, persistence + 1 mg/dL,
    # must score apart from persistence.
    again = score_arima_windows(ArimaBaseline(100, 80.0, 260.0), linreg, windows, model_point, 30, seed=3)
    assert again["arima"] == result["arima"]
    assert result["model"] != result["persistence"]


def test_arima_windows_option():
    assert parse_args(["--arima-windows", "0"]).arima_windows == 0
    assert parse_args([]).arima_windows > 0
    with pytest.raises(SystemExit):
        parse_args(["--arima-windows", "-1"])


def test_report_shows_arima_failures():
    scores = {"windows": 9, "median_mse": 10.0, "median_mae": 2.0}
    split = {
        "windows": 100,
        "all_windows": {"persistence": scores, "linear_regression": {**scores, "windows": 80}},
        "model_windows": {"model": None, "persistence": scores},
        "arima_windows": {"drawn": 10, "failed": 0.5, "arima": scores, "model": scores, "persistence": scores,
                          "seconds_per_window": 0.25},
    }
    results = {
        "model_id": "tiny", "input_len": 96, "data_seeds": [1, 2], "samples": 2, "sample_seed": 0,
        "seconds": 1.0, "max_windows": None, "arima_windows": 10,
        "datasets": {"toy": {"title": "Toy", "mean": {"id": split}}},
    }
    text = render_markdown(results)
    assert "| Toy | ID | 9 | 10 | 0.5 | 10.00 / 2.00 | 10.00 / 2.00 | 10.00 / 2.00 | n/a | 0.25 |" in text
    assert "| Toy | ID | 100 | 10.00 / 2.00 | 10.00 / 2.00 | 80 |" in text
    assert "ARIMA follows GlucoBench" in text

    results["arima_windows"] = 0
    assert "## ARIMA" not in render_markdown(results)


def test_iglu_arima_few_windows():
    split = iglu_split()
    spec = PROTOCOLS["iglu"]
    baseline = ArimaBaseline.from_train(split.train, spec.max_length_input)
    windows = build_windows(split.test, spec.max_length_input)
    picked = windows.subset(np.linspace(0, len(windows) - 1, 6).astype(int))
    result = baseline.forecast(picked)
    assert result.failed.sum() == 0
    assert result.fits == len(np.unique(picked.series_index[picked.target_start]))
    scores = median_errors(result.forecast, picked.truth())
    # ARIMA forecasts of real glucose an hour ahead: a median MAE well under 40 mg/dL.
    assert 0.0 < scores["median_mae"] < 40.0
