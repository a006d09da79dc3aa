"""Fan-chart figures built from series and forecasts made of known arrays."""

from __future__ import annotations

import numpy as np
import pytest

from glurpc_lab.forecast.result import DEFAULT_LEVELS, Forecast
from glurpc_lab.ingest.quality import QualityReport
from glurpc_lab.ingest.series import GlucoseSeries
from glurpc_lab.report.figures import BACKTEST_TITLE, FUTURE_TITLE, window_figure

START = np.datetime64("2024-03-01T00:00:00", "s")
STEP = np.timedelta64(5, "m")
HORIZON = 12


def make_series(points: int = 160, subject: str = "series-1", gap_at: int | None = None) -> GlucoseSeries:
    """Build a gridded sine-shaped series, with an optional 2-hour gap before index ``gap_at``."""
    offsets = np.arange(points) * STEP
    if gap_at is not None:
        offsets[gap_at:] += np.timedelta64(120, "m")
    segment = np.zeros(points, dtype=np.int32)
    if gap_at is not None:
        segment[gap_at:] = 1
    glucose = (120 + 40 * np.sin(np.arange(points) / 15)).astype(np.float32)
    imputed = np.zeros(points, dtype=bool)
    imputed[points - 20] = True
    quality = QualityReport(
        readings_in=points + 3,
        readings_used=points - 1,
        readings_repaired=2,
        points_imputed=1,
        dropped={"non-glucose event": 3, "duplicate time": 1},
        repaired={"snapped to grid": 2},
        imputation=True,
        segments=int(segment.max()) + 1,
        span_start=str(START),
        span_end=str(START + offsets[-1]),
        sampling_interval_minutes=5.0,
        messages=["Interpolated 1 point across a gap of 10 minutes."],
    )
    return GlucoseSeries(
        subject=subject,
        time=START + offsets,
        glucose=glucose,
        segment=segment,
        imputed=imputed,
        censored=np.zeros(points, dtype=np.int8),
        quality=quality,
    )


def make_forecast(series: GlucoseSeries, input_end: list[int], seed: int = 0) -> Forecast:
    """Build a forecast whose quantiles spread evenly around a ramp, with truth from the series."""
    windows = len(input_end)
    levels = np.asarray(DEFAULT_LEVELS)
    rng = np.random.default_rng(seed)
    centre = rng.uniform(90, 200, size=(windows, 1)) + np.arange(HORIZON)[None, :]
    spread = (levels - 0.5)[None, None, :] * 80
    quantiles = (centre[:, :, None] + spread).astype(np.float32)

    truth = np.full((windows, HORIZON), np.nan, dtype=np.float32)
    for w, end in enumerate(input_end):
        after = series.glucose[end + 1 : end + 1 + HORIZON]
        same_segment = series.segment[end + 1 : end + 1 + HORIZON] == series.segment[end]
        truth[w, : after.size] = np.where(same_segment, after, np.nan)

    samples = 10
    return Forecast(
        subject=series.subject,
        input_end=np.asarray(input_end, dtype=np.int64),
        time_end=series.time[np.asarray(input_end, dtype=np.int64)],
        horizon_minutes=np.arange(5, 65, 5),
        levels=levels,
        quantiles=quantiles,
        sample_mean=np.repeat(quantiles[:, :, 3:4], samples, axis=2),
        sample_std=np.ones((windows, 12, samples), dtype=np.float32),
        truth=truth,
        seed=seed,
        model_id="test-model-0123abcd",
    )


def traces_by_role(fig) -> dict:
    roles: dict = {}
    for trace in fig.data:
        meta = trace.meta or {}
        roles.setdefault(meta.get("role"), []).append(trace)
    return roles


def test_future_window_title_and_bands():
    series = make_series()
    forecast = make_forecast(series, [100, 130, len(series) - 1])

    fig = window_figure(series, forecast)

    assert fig.layout.title.text.startswith(FUTURE_TITLE)
    bands = traces_by_role(fig)["band"]
    assert [b.meta["coverage"] for b in bands] == [0.95, 0.8, 0.5]
    upper_95 = np.array(bands[0].y[1 : 1 + HORIZON], dtype=float)
    lower_95 = np.array(bands[0].y[1 + HORIZON : 1 + 2 * HORIZON][::-1], dtype=float)
    np.testing.assert_allclose(upper_95, forecast.quantile(0.975)[-1], rtol=1e-6)
    np.testing.assert_allclose(lower_95, forecast.quantile(0.025)[-1], rtol=1e-6)
    upper_50 = np.array(bands[2].y[1 : 1 + HORIZON], dtype=float)
    np.testing.assert_allclose(upper_50, forecast.quantile(0.75)[-1], rtol=1e-6)


def test_median_starts_at_last_reading():
    series = make_series()
    forecast = make_forecast(series, [len(series) - 1])

    median = traces_by_role(window_figure(series, forecast))["median"][0]

    assert median.y[0] == pytest.approx(float(series.glucose[-1]))
    assert median.x[0] == str(np.datetime_as_string(series.time[-1], unit="s"))
    np.testing.assert_allclose(np.array(median.y[1:], dtype=float), forecast.median[0], rtol=1e-6)
    assert median.x[-1] == str(np.datetime_as_string(series.time[-1] + np.timedelta64(60, "m"), unit="s"))


def test_future_window_has_no_truth_trace():
    series = make_series()
    forecast = make_forecast(series, [len(series) - 1])

    roles = traces_by_role(window_figure(series, forecast))

    assert "truth" not in roles


def test_backtest_truth_and_history():
    series = make_series()
    forecast = make_forecast(series, [140, len(series) - 1])

    fig = window_figure(series, forecast, window=0)
    roles = traces_by_role(fig)

    assert fig.layout.title.text.startswith(BACKTEST_TITLE)
    assert "window 1 of 2" in fig.layout.title.text
    truth = roles["truth"][0]
    np.testing.assert_allclose(np.array(truth.y, dtype=float), series.glucose[141:153], rtol=1e-6)
    observed = roles["observed"][0]
    # 96 input points plus 36 points of context, all in one segment here.
    assert len(observed.x) == 96 + 36
    assert observed.x[0] == str(np.datetime_as_string(series.time[140 - 95 - 36], unit="s"))
    assert observed.y[-1] == pytest.approx(float(series.glucose[140]))


def test_truth_skips_unknown_steps():
    series = make_series(points=160, gap_at=140)
    # Window ending at 134 forecasts 135..146, and 140 onwards is in the next segment.
    forecast = make_forecast(series, [134, len(series) - 1])

    truth = traces_by_role(window_figure(series, forecast, window=0))["truth"][0]

    assert len(truth.y) == 5
    np.testing.assert_allclose(np.array(truth.y, dtype=float), series.glucose[135:140], rtol=1e-6)


def test_history_breaks_at_segment_gap():
    series = make_series(points=250, gap_at=120)
    # The window's context reaches back across the gap at index 120.
    forecast = make_forecast(series, [230])

    observed = traces_by_role(window_figure(series, forecast, window=0))["observed"][0]

    assert None in observed.x
    gap = list(observed.x).index(None)
    assert observed.x[gap - 1] == str(np.datetime_as_string(series.time[119], unit="s"))
    assert observed.x[gap + 1] == str(np.datetime_as_string(series.time[120], unit="s"))


def test_reference_lines_and_axis_titles():
    series = make_series()
    fig = window_figure(series, make_forecast(series, [len(series) - 1]))

    lines = sorted(shape.y0 for shape in fig.layout.shapes)

    assert lines == [70.0, 180.0]
    assert fig.layout.yaxis.title.text == "Glucose (mg/dL)"
    assert fig.layout.xaxis.type == "date"


def test_imputed_points_marked():
    series = make_series()
    fig = window_figure(series, make_forecast(series, [len(series) - 1]))

    imputed = traces_by_role(fig)["imputed"][0]

    assert list(imputed.x) == [str(np.datetime_as_string(series.time[len(series) - 20], unit="s"))]


@pytest.mark.parametrize("window", [3, -4])
def test_window_out_of_range(window):
    series = make_series()
    forecast = make_forecast(series, [100, 120, len(series) - 1])

    with pytest.raises(ValueError, match="out of range: the forecast has 3 windows"):
        window_figure(series, forecast, window=window)


def test_forecast_of_other_series_rejected():
    series = make_series()
    forecast = make_forecast(series, [len(series) - 1])
    shorter = make_series(points=120)

    with pytest.raises(ValueError, match="pass the series the forecast was computed from"):
        window_figure(shorter, forecast)


def test_empty_forecast_rejected():
    series = make_series(points=50)
    forecast = make_forecast(series, [])

    with pytest.raises(ValueError, match="no windows"):
        window_figure(series, forecast)
