"""Forecasting on arrays: windows, scaling, MC-dropout sampling and predictive quantiles."""

from glurpc_lab.forecast.pipeline import forecast_series
from glurpc_lab.forecast.result import DEFAULT_LEVELS, Forecast
from glurpc_lab.forecast.windows import window_ends

__all__ = ["DEFAULT_LEVELS", "Forecast", "forecast_series", "window_ends"]
