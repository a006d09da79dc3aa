"""Tests of ``glurpc-lab evaluate``: GlucoBench split, windows, baselines and metric formulas."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from glurpc_lab.cli import main as cli_main
from glurpc_lab.training.baselines import LinearRegressionBaseline, build_windows, persistence_forecast
from glurpc_lab.training.glucobench import PROTOCOLS, ProtocolSpec, Series, load_protocol_segments, split_protocol
from glurpc_lab.training.scoring import calibration_error, interval_coverage, median_errors, mixture_log_likelihood

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def iglu_segments():
    if not (DATASETS / PROTOCOLS["iglu"].filename).is_file():
        pytest.skip(f"shared research data set {PROTOCOLS['iglu'].filename} not found under {DATASETS}")
    return load_protocol_segments(DATASETS, PROTOCOLS["iglu"])


def make_series(code: int, n: int, start: int = 0) -> Series:
    minutes = np.arange(n, dtype=np.int64) * 5 + start
    return Series(code, code, minutes, (100 + np.arange(n) % 50).astype(np.float32))


def test_iglu_split_sizes():
    by_subject = iglu_segments()
    assert len(by_subject) == 5
    for seed in (1, 2):
        split = split_protocol(by_subject, PROTOCOLS["iglu"], seed)
        assert len(split.ood_codes) == 1
        test_windows = build_windows(split.test, 96)
        ood_windows = build_windows(split.ood, 96)
        # Window counts of GlucoBench's deep-model protocol on this file, per seed.
        assert len(test_windows) == 1420
        assert len(ood_windows) == 979


def test_iglu_test_series_layout():
    spec = PROTOCOLS["iglu"]
    by_subject = iglu_segments()
    split = split_protocol(by_subject, spec, 1)
    assert len(split.test) == 4
    for series in split.test:
        # Each ID test series ends at its subject's last reading. It is ls + mli points long,
        # or the whole last segment when that is shorter than mli + 2 ls.
        last = by_subject[series.code][-1]
        assert series.minutes[-1] == last.minutes[-1]
        if len(last) >= spec.max_length_input + 2 * spec.length_segment:
            assert len(series) == spec.length_segment + spec.max_length_input
        else:
            assert len(series) == len(last)
    assert {series.code for series in split.ood} == set(split.ood_codes)


def test_split_same_seed_same_draw():
    by_subject = {code: [make_series(code, 600)] for code in range(30)}
    spec = ProtocolSpec("toy", "Toy", "toy.csv", 45, 10, 50, 20, 12, 20)
    first = split_protocol(by_subject, spec, 1)
    second = split_protocol(by_subject, spec, 1)
    other = split_protocol(by_subject, spec, 2)
    assert first.ood_codes == second.ood_codes
    assert len(first.ood_codes) == 3
    assert first.ood_codes != other.ood_codes

    np.random.seed(1)
    assert sorted(np.random.choice(np.arange(30), 3, replace=False).tolist()) == first.ood_codes


def test_split_single_segment_rules():
    spec = ProtocolSpec("toy", "Toy", "toy.csv", 45, 10, 50, 20, 12, 20)
    # mli + 3 ls = 170 points: train / val / test; mli + 2 ls = 120: train / test; shorter: train only.
    by_subject = {0: [make_series(0, 200)], 1: [make_series(1, 130)], 2: [make_series(2, 100)]}
    split = split_protocol(by_subject, spec, 0, ood_fraction=0.0)
    assert [len(s) for s in split.train] == [100, 80, 100]
    assert [len(s) for s in split.val] == [70]
    assert [len(s) for s in split.test] == [70, 70]
    assert split.test[0].minutes[-1] == by_subject[0][0].minutes[-1]


def test_split_short_last_segment():
    spec = ProtocolSpec("toy", "Toy", "toy.csv", 45, 10, 50, 20, 12, 20)
    segments = [make_series(0, 90), make_series(0, 150, 10_000), make_series(0, 60, 20_000)]
    split = split_protocol({0: segments}, spec, 0, ood_fraction=0.0)
    # The short last segment is all ID test; the penultimate one (>= mli + 2 ls) gives train and validation.
    assert [len(s) for s in split.test] == [60]
    assert [len(s) for s in split.val] == [70]
    assert sorted(len(s) for s in split.train) == [90, 100]


def test_windows_and_persistence():
    series = [make_series(0, 30), make_series(1, 20)]
    windows = build_windows(series, 10)
    # Targets start at 10..18 in the first series and 10..8 (none) in the second.
    assert len(windows) == 9
    assert windows.truth().shape == (9, 12)
    np.testing.assert_array_equal(persistence_forecast(windows)[:, 0], series[0].glucose[9:18])
    np.testing.assert_array_equal(windows.truth()[0], series[0].glucose[10:22])


def test_linreg_fits_linear_recursion():
    # A series that follows y_t = 2 y_{t-1} - y_{t-2} (a ramp per subject) is predicted exactly.
    series = [Series(code, code, np.arange(200) * 5, (80 + (code + 1) * np.arange(200) * 0.3).astype(np.float32)) for code in range(3)]
    model = LinearRegressionBaseline(lags=4).fit(series)
    windows = build_windows(series, 4)
    assert model.training_windows == len(windows)
    np.testing.assert_allclose(model.predict(windows), windows.truth(), atol=1e-3)


def test_median_errors_by_hand():
    truth = np.array([[1.0, 2.0], [0.0, 0.0], [3.0, 3.0]])
    forecast = np.array([[2.0, 2.0], [2.0, -2.0], [3.0, 0.0]])
    # Per-window MSE 0.5, 4, 4.5 and MAE 0.5, 2, 1.5.
    scores = median_errors(forecast, truth)
    assert scores["median_mse"] == pytest.approx(4.0)
    assert scores["median_mae"] == pytest.approx(1.5)
    assert scores["windows"] == 3


def test_mixture_log_likelihood_by_hand():
    truth = np.array([[1.0]])
    means = np.array([[[0.0, 3.0]]])
    stds = np.array([[[1.0, 2.0]]])
    density = 0.5 * (np.exp(-0.5) / np.sqrt(2 * np.pi) + np.exp(-4.0 / 8.0) / (2.0 * np.sqrt(2 * np.pi)))
    assert mixture_log_likelihood(truth, means, stds)[0, 0] == pytest.approx(np.log(density), rel=1e-12)


def test_log_likelihood_one_component():
    truth = np.array([[2.0, 5.0]])
    means = np.full((1, 2, 4), 2.0)
    stds = np.full((1, 1, 4), 3.0)
    # Identical components: the mixture is that Gaussian, so -log k cancels the k equal terms.
    expected = -0.5 * np.log(2 * np.pi * 9.0) - np.array([0.0, 9.0 / 18.0])
    np.testing.assert_allclose(mixture_log_likelihood(truth, means, stds)[0], expected, rtol=1e-12)


def test_calibration_error_all_below():
    truth = np.zeros((5, 3))
    means = np.full((5, 3, 2), 10.0)
    stds = np.full((5, 1, 2), 1e-6)
    # Every target is below every quantile, so each level p adds (1 - p)^2: 1 + 0.81 + ... + 0 = 3.85.
    np.testing.assert_allclose(calibration_error(truth, means, stds), 3.85, rtol=1e-9)


def test_calibration_error_calibrated_near_zero():
    rng = np.random.default_rng(3)
    means = np.zeros((4000, 2, 1))
    stds = np.ones((4000, 1, 1))
    truth = rng.standard_normal((4000, 2))
    assert np.all(calibration_error(truth, means, stds) < 0.01)


def test_interval_coverage_by_hand():
    truth = np.array([[1.0, 5.0], [2.0, 0.0], [9.0, 1.0], [0.0, 1.0]])
    lower = np.zeros((4, 2))
    upper = np.full((4, 2), 2.0)
    np.testing.assert_allclose(interval_coverage(truth, lower, upper), [0.75, 0.75])


def test_evaluate_iglu_tiny_model(tiny_model_path, tmp_path):
    iglu_segments()
    out_json, out_md = tmp_path / "eval.json", tmp_path / "eval.md"
    code = cli_main([
        "evaluate", "--model", str(tiny_model_path), "--datasets", "iglu", "--max-windows", "16",
        "--arima-windows", "4", "--samples", "2", "--json", str(out_json), "--markdown", str(out_md),
    ])
    assert code == 0
    result = json.loads(out_json.read_text())
    iglu = result["datasets"]["iglu"]
    assert iglu["context"] == 96
    assert set(iglu["seeds"]) == {"1", "2"}

    seed = iglu["seeds"]["1"]
    assert seed["subjects"] == 5
    assert seed["ood_subjects"] == 1
    assert seed["id"]["windows"] == 1420
    assert seed["ood"]["windows"] == 979

    # Persistence and the darts lags + id linear regression on all windows match an independent
    # reproduction of GlucoBench's protocol (median MSE / MAE, mean of data seeds 1 and 2).
    # Persistence gives 135.41 / 9.96 (ID) and 121.17 / 9.42 (OOD). Linear regression gives
    # 140.44 / 9.93 and 101.91 / 8.49 on the 1036 and 691 windows with 192 points of history.
    mean = iglu["mean"]
    assert mean["id"]["all_windows"]["persistence"]["median_mse"] == pytest.approx(135.41, abs=0.01)
    assert mean["ood"]["all_windows"]["persistence"]["median_mae"] == pytest.approx(9.42, abs=0.01)
    assert mean["id"]["all_windows"]["linear_regression"]["median_mse"] == pytest.approx(140.44, abs=0.02)
    assert mean["id"]["all_windows"]["linear_regression"]["median_mae"] == pytest.approx(9.93, abs=0.01)
    assert mean["ood"]["all_windows"]["linear_regression"]["median_mse"] == pytest.approx(101.91, abs=0.02)
    assert mean["ood"]["all_windows"]["linear_regression"]["median_mae"] == pytest.approx(8.49, abs=0.01)
    assert mean["id"]["all_windows"]["linear_regression"]["windows"] == 1036
    assert seed["linear_regression_training_windows"] == 7026

    model = seed["id"]["model_windows"]["model"]
    assert model["windows"] == 16
    assert len(model["coverage_per_step"]["80"]) == 12
    assert len(model["calibration_error_per_step"]) == 12
    assert np.isfinite(model["mean_log_likelihood"])

    # ARIMA and the others on the same drawn windows: 4 per split and seed, from the 16 model
    # windows that have 192 points of history.
    assert result["arima_windows"] == 4
    assert "darts ARIMA" in result["baselines"]["arima"]
    arima = seed["id"]["arima_windows"]
    assert arima["drawn"] == 4
    assert arima["drawn"] <= arima["eligible"] <= 16
    assert arima["failed"] == 0
    assert 1 <= arima["fits"] <= 4
    for name in ("arima", "model", "persistence", "linear_regression"):
        assert arima[name]["windows"] == 4
        assert np.isfinite(arima[name]["median_mse"])

    text = out_md.read_text()
    assert "| Broll (iglu) | ID | 1,420 |" in text
    assert "Windows were subsampled" in text
    assert "| Broll (iglu) | ID | 4 | 4 | 0 |" in text


def test_segments_gap_rounding_interpolation():
    import pandas as pd

    from glurpc_lab.training.glucobench import segment_subjects

    spec = ProtocolSpec("toy", "Toy", "toy.csv", 45, 3, 10, 10, 12, 10)
    base = pd.Timestamp("2020-01-01 00:00:00")
    offsets = ["0min", "5min20s", "12min", "57min", "103min", "108min", "200min", "205min", "210min", "211min"]
    table = pd.DataFrame({
        "code": 0,
        "time": [base + pd.Timedelta(offset) for offset in offsets],
        "gl": np.array([100, 110, 124, 150, 160, 170, 80, 90, 100, 105], dtype=np.float32),
    })
    segments = segment_subjects(table, spec)[0]

    # A gap of exactly 45 minutes (12 -> 57) stays inside the segment; 46 minutes (57 -> 103) cuts it.
    # The 103/108 pair has only 2 readings and is dropped.
    assert len(segments) == 2
    first, second = segments
    np.testing.assert_array_equal(first.minutes - first.minutes[0], np.arange(0, 60, 5))
    # 5 min 20 s rounds to minute 5; minute 10 interpolates between minutes 5 and 12.
    assert first.glucose[1] == pytest.approx(110.0)
    assert first.glucose[2] == pytest.approx(110 + 14 * 5 / 7)
    assert first.observed.tolist()[:3] == [True, True, False]
    assert second.glucose.tolist() == [80.0, 90.0, 100.0]
    assert second.segment == 1


def test_per_series_scalers():
    import dataclasses

    from glurpc_lab.model import GluformerConfig
    from glurpc_lab.model.config import ScalingPolicy
    from glurpc_lab.training.evaluate import window_scalers

    series = [make_series(0, 40), Series(1, 1, np.arange(40) * 5, np.linspace(60, 300, 40).astype(np.float32))]
    windows = build_windows(series, 20)
    config = dataclasses.replace(GluformerConfig.tiny(), scaling=ScalingPolicy(kind="per-series"))
    groups = window_scalers(config, windows)
    assert len(groups) == 2
    assert groups[1][1].glucose_min == pytest.approx(60.0)
    assert groups[1][1].glucose_max == pytest.approx(300.0)
    assert sum(group.size for group, _ in groups) == len(windows)

    fixed = window_scalers(GluformerConfig.tiny(), windows)
    assert len(fixed) == 1
