"""Forecasting on arrays: windows, scaling, MC-dropout sampling and predictive quantiles."""

from glurpc_lab.forecast.result import DEFAULT_LEVELS, Forecast

__all__ = ["DEFAULT_LEVELS", "Forecast"]
