"""Plotly fan charts of one forecasting window."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from glurpc_lab.forecast.result import Forecast
from glurpc_lab.ingest.series import GRID_MINUTES, GlucoseSeries
from glurpc_lab.ingest.units import to_display_units

logger = logging.getLogger(__name__)

INPUT_POINTS = 96
"""Grid points in one model input window (8 hours at 5 minutes)."""

CONTEXT_POINTS = 36
"""Grid points shown before the input window (3 hours), for context."""

HYPO_MG_DL = 70.0
"""Lower bound of the usual 70-180 mg/dL target range."""

HYPER_MG_DL = 180.0
"""Upper bound of the usual 70-180 mg/dL target range."""

BANDS = ((0.95, 0.025, 0.975), (0.80, 0.1, 0.9), (0.50, 0.25, 0.75))
"""Central intervals drawn as bands, widest first: (coverage, lower level, upper level)."""

BAND_COLORS = {
    0.95: "rgba(53, 138, 217, 0.15)",
    0.80: "rgba(53, 138, 217, 0.28)",
    0.50: "rgba(53, 138, 217, 0.45)",
}

FUTURE_TITLE = "Forecast past the last reading"
BACKTEST_TITLE = "Backtest"


@dataclass(frozen=True)
class WindowView:
    """The numbers one fan chart shows, independent of the plotting library.

    Attributes
    ----------
    window : int
        Non-negative window index into the forecast.
    is_future : bool
        True when the window ends at the series' last reading.
    time_end : numpy.datetime64
        Time of the last input point.
    last_observed : float
        Glucose at the last input point in mg/dL; the median and the bands start there.
    history_time : numpy.ndarray
        ``datetime64[s]`` times of the observed points shown, shape ``(P,)``.
    history_glucose : numpy.ndarray
        Observed glucose in mg/dL, shape ``(P,)``.
    history_imputed : numpy.ndarray
        ``bool``, True for points interpolated across a short gap, shape ``(P,)``.
    forecast_time : numpy.ndarray
        ``datetime64[s]`` times of the forecast steps, shape ``(H,)``.
    bands : dict
        Coverage (0.95, 0.8, 0.5) to a ``(lower, upper)`` pair of ``(H,)`` arrays in mg/dL.
    median : numpy.ndarray
        Median forecast in mg/dL, shape ``(H,)``.
    truth : numpy.ndarray
        Observed glucose at the forecast steps in mg/dL, NaN where unknown, shape ``(H,)``.
    """

    window: int
    is_future: bool
    time_end: np.datetime64
    last_observed: float
    history_time: np.ndarray
    history_glucose: np.ndarray
    history_imputed: np.ndarray
    forecast_time: np.ndarray
    bands: dict
    median: np.ndarray
    truth: np.ndarray


def in_units(view: WindowView, units: str) -> WindowView:
    """Return ``view`` with every glucose value converted from mg/dL to ``units``.

    ``units`` is "mg/dL" or "mmol/L"; any other value raises ``ValueError``.
    """
    def convert(values):
        return to_display_units(values, units)

    return dataclasses.replace(
        view,
        last_observed=float(convert(view.last_observed)),
        history_glucose=convert(view.history_glucose),
        bands={coverage: (convert(lower), convert(upper)) for coverage, (lower, upper) in view.bands.items()},
        median=convert(view.median),
        truth=convert(view.truth),
    )


def format_glucose(value: float, units: str) -> str:
    """Format one glucose value in ``units`` at the resolution exports use (1 mg/dL, 0.1 mmol/L)."""
    if np.isnan(value):
        return "–"
    return f"{value:.1f}" if units.strip().lower() == "mmol/l" else f"{value:.0f}"


def resolve_window(forecast: Forecast, window: int) -> int:
    """Return the non-negative index of ``window``, which may count from the end like a list index.

    Raises
    ------
    ValueError
        If the forecast has no windows or ``window`` is out of range.
    """
    count = forecast.n_windows
    if count == 0:
        raise ValueError(
            "the forecast has no windows: the series needs at least "
            f"{INPUT_POINTS} gap-free grid points in one segment"
        )

    if not -count <= window < count:
        raise ValueError(f"window {window} is out of range: the forecast has {count} windows (0 to {count - 1})")

    return window % count


def window_view(series: GlucoseSeries, forecast: Forecast, window: int = -1) -> WindowView:
    """Select the observed history, bands, median and truth of one window.

    Parameters
    ----------
    series : GlucoseSeries
        The series the forecast was computed from.
    forecast : Forecast
        Forecasts of every window of ``series``.
    window : int, default -1
        Window index; negative values count from the latest window.

    Returns
    -------
    WindowView
        Arrays in mg/dL with their times.

    Raises
    ------
    ValueError
        If the window is out of range or the forecast does not belong to the series.
    """
    index = resolve_window(forecast, window)
    end = int(forecast.input_end[index])
    if not 0 <= end < len(series):
        raise ValueError(
            f"window {index} ends at grid point {end}, but the series has {len(series)} points: "
            "pass the series the forecast was computed from"
        )
    if series.time[end] != forecast.time_end[index]:
        raise ValueError(
            f"window {index} ends at a different time in the forecast than in the series: "
            "pass the series the forecast was computed from"
        )

    start = max(0, end - (INPUT_POINTS - 1) - CONTEXT_POINTS)
    history_range = slice(start, end + 1)

    bands = {}
    for coverage, lower_level, upper_level in BANDS:
        lower = forecast.quantile(lower_level)[index].astype(np.float64)
        upper = forecast.quantile(upper_level)[index].astype(np.float64)
        bands[coverage] = (lower, upper)

    return WindowView(
        window=index,
        is_future=end == len(series) - 1,
        time_end=forecast.time_end[index],
        last_observed=float(series.glucose[end]),
        history_time=series.time[history_range],
        history_glucose=series.glucose[history_range].astype(np.float64),
        history_imputed=series.imputed[history_range].astype(bool),
        forecast_time=forecast.forecast_times(index),
        bands=bands,
        median=forecast.median[index].astype(np.float64),
        truth=forecast.truth[index].astype(np.float64),
    )


def _iso(times: np.ndarray) -> list[str]:
    return [str(t) for t in np.datetime_as_string(times, unit="s")]


def _with_gap_breaks(times: np.ndarray, values: np.ndarray) -> tuple[list, list]:
    """Insert a None point wherever consecutive times are more than one grid step apart.

    Plotly then breaks the line there instead of drawing across a gap between segments.
    """
    x: list = []
    y: list = []
    step = np.timedelta64(GRID_MINUTES, "m")
    iso = _iso(times)
    for i, value in enumerate(values):
        if i > 0 and times[i] - times[i - 1] > step:
            x.append(None)
            y.append(None)
        x.append(iso[i])
        y.append(None if np.isnan(value) else float(value))
    return x, y


def window_title(view: WindowView, forecast: Forecast, subject: str) -> str:
    """Return the chart title: future forecast or backtest, with the window's end time."""
    ending = np.datetime_as_string(view.time_end, unit="m").replace("T", " ")
    if view.is_future:
        return f"{FUTURE_TITLE}: {subject}, last reading {ending}"
    return f"{BACKTEST_TITLE}: {subject}, window {view.window + 1} of {forecast.n_windows}, input ends {ending}"


def window_figure(
    series: GlucoseSeries, forecast: Forecast, window: int = -1, *, units: str = "mg/dL"
) -> go.Figure:
    """Draw the fan chart of one forecasting window.

    The chart shows the observed glucose of the window's 8-hour input and of
    the 3 hours before it. The 95, 80 and 50% central intervals are shaded
    bands, drawn with the median forecast and, where known, the observed
    glucose at the forecast steps. The bands and the median start at the
    last observed value so the forecast visibly continues the history.

    Parameters
    ----------
    series : GlucoseSeries
        The series the forecast was computed from.
    forecast : Forecast
        Forecasts of every window of ``series``.
    window : int, default -1
        Window index; -1 is the latest window, which forecasts past the
        last reading when the final segment is long enough.
    units : {"mg/dL", "mmol/L"}, default "mg/dL"
        Unit of the y axis.

    Returns
    -------
    plotly.graph_objects.Figure
        Time on x (naive device time), glucose in ``units`` on y.

    Raises
    ------
    ValueError
        If the forecast has no windows, ``window`` is out of range, or the
        forecast does not belong to ``series``.
    """
    view = in_units(window_view(series, forecast, window), units)
    fig = go.Figure()

    # Each band is one closed polygon (upper edge forward, lower edge back) so
    # that "toself" fills exactly the interval and never joins neighbouring bands.
    start_time = _iso(np.array([view.time_end]))
    step_times = _iso(view.forecast_time)
    for coverage, (lower, upper) in view.bands.items():
        x = start_time + step_times + step_times[::-1] + start_time
        y = [view.last_observed, *upper.tolist(), *lower[::-1].tolist(), view.last_observed]
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines",
                fill="toself",
                fillcolor=BAND_COLORS[coverage],
                line={"width": 0},
                name=f"{coverage:.0%} interval",
                hoverinfo="skip",
                meta={"role": "band", "coverage": coverage},
            )
        )

    history_x, history_y = _with_gap_breaks(view.history_time, view.history_glucose)
    fig.add_trace(
        go.Scatter(
            x=history_x,
            y=history_y,
            mode="lines+markers",
            marker={"size": 4, "color": "#1f2d3d"},
            line={"width": 1.5, "color": "#1f2d3d"},
            name="Observed",
            meta={"role": "observed"},
        )
    )

    if view.history_imputed.any():
        fig.add_trace(
            go.Scatter(
                x=_iso(view.history_time[view.history_imputed]),
                y=view.history_glucose[view.history_imputed].tolist(),
                mode="markers",
                marker={"size": 7, "symbol": "circle-open", "color": "#8a6d00"},
                name="Interpolated",
                meta={"role": "imputed"},
            )
        )

    fig.add_trace(
        go.Scatter(
            x=start_time + step_times,
            y=[view.last_observed, *view.median.tolist()],
            mode="lines+markers",
            marker={"size": 5, "color": "#c0392b"},
            line={"width": 2, "color": "#c0392b"},
            name="Median forecast",
            meta={"role": "median"},
        )
    )

    known = ~np.isnan(view.truth)
    if known.any():
        fig.add_trace(
            go.Scatter(
                x=_iso(view.forecast_time[known]),
                y=view.truth[known].tolist(),
                mode="markers",
                marker={"size": 7, "symbol": "diamond", "color": "#1f2d3d"},
                name="Observed after the input",
                meta={"role": "truth"},
            )
        )

    for level in to_display_units(np.array([HYPO_MG_DL, HYPER_MG_DL]), units):
        fig.add_hline(
            y=float(level),
            line={"dash": "dot", "width": 1, "color": "#7f8c8d"},
            annotation_text=f"{format_glucose(level, units)} {units}",
            annotation_position="top left",
        )

    fig.update_layout(
        title=window_title(view, forecast, series.subject),
        template="plotly_white",
        xaxis={"title": "Time (UTC)" if series.quality.time_zone == "UTC" else "Device time", "type": "date", "tickformat": "%H:%M\n%b %d"},
        yaxis={"title": f"Glucose ({units})", "rangemode": "tozero"},
        legend={"orientation": "h", "y": -0.2},
        margin={"t": 60, "r": 20, "b": 40, "l": 60},
        height=480,
    )
    return fig
