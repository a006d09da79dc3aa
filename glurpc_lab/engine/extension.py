"""Reuse of forecasts when an upload extends a series that was forecast before.

Window ``w``'s MC-dropout samples are seeded by ``(seed, input_end[w],
sample)``, and its inputs are the 96 points before ``input_end[w]`` scaled by
the series' scaler. Take a new series that starts with every point of an old
one (same times, glucose, segments, imputation and censoring flags), with the
same scaler. Every window of the old series is then a window of the new one
with the same inputs and seeds, hence the same forecast, up to float rounding
of batched kernels. Only the truth changes: steps that were past
the old series' last reading may now be observed, so truth is recomputed.

Forecasts of a series are found again through a lineage anchor: a digest of
the forecast settings and the series' first 96 points, which an extension
shares.
"""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np

from glurpc_lab.forecast.covariates import calendar_covariates
from glurpc_lab.forecast.result import Forecast
from glurpc_lab.forecast.scaling import fit_scaler
from glurpc_lab.forecast.windows import window_truth
from glurpc_lab.ingest.series import GlucoseSeries

logger = logging.getLogger(__name__)

SERIES_ARRAYS = ("time", "glucose", "segment", "imputed", "censored")
FORECAST_WINDOW_ARRAYS = ("input_end", "time_end", "quantiles", "sample_mean", "sample_std", "truth")


def lineage_anchor(series: GlucoseSeries, settings: dict, input_len: int) -> str | None:
    """Return the digest that a series and its extensions share, or None when the series is shorter than one window.

    ``settings`` contains everything else that changes forecast values (model id,
    sample count, seed, levels, key version) as JSON types.
    """
    if len(series) < input_len:
        return None
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for name in SERIES_ARRAYS:
        values = np.asarray(getattr(series, name))[:input_len]
        if name == "time":
            values = values.astype("datetime64[s]").view("int64")
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()


def is_prefix(old: GlucoseSeries, new: GlucoseSeries) -> bool:
    """Return True when ``new`` starts with every grid point of ``old``, flags included."""
    size = len(old)
    if size > len(new):
        return False
    for name in SERIES_ARRAYS:
        before = np.asarray(getattr(old, name))
        after = np.asarray(getattr(new, name))[:size]
        if name == "time":
            before, after = before.astype("datetime64[s]"), after.astype("datetime64[s]")
        if not np.array_equal(before, after, equal_nan=name == "glucose"):
            return False
    return True


def series_scaler(config, series: GlucoseSeries) -> dict:
    """Return the scaler a forecast of ``series`` uses, as stored in forecast metadata."""
    observed = ~np.asarray(series.imputed, dtype=bool)
    return fit_scaler(config.scaling, series.glucose, observed, calendar_covariates(series.time)).to_dict()


def find_reusable(store, anchor: str | None, series: GlucoseSeries, scaler: dict, ends: np.ndarray) -> Forecast | None:
    """Return the stored forecasts of the longest earlier series that ``series`` extends, or None.

    A candidate qualifies when its series is still stored and is a prefix of
    ``series``, its scaler equals ``scaler``, and its window ends are the
    first ends of ``ends``.
    """
    if anchor is None:
        return None
    candidates = sorted(store.lineage(anchor), key=lambda item: -int(item[1].get("points", 0)))
    for key, record in candidates:
        if int(record.get("points", 0)) > len(series):
            continue
        old = store.read_series(str(record.get("handle", "")), int(record.get("series_index", 0)))
        if old is None or not is_prefix(old, series):
            continue
        forecast = store.read_forecast(key)
        if forecast is None or forecast.metadata.get("scaler") != scaler:
            continue
        count = forecast.n_windows
        if count > len(ends) or not np.array_equal(forecast.input_end, ends[:count]):
            continue
        return forecast
    return None


def window_slice(forecast: Forecast, start: int, stop: int) -> Forecast:
    """Return windows ``start:stop`` of a forecast."""
    part = slice(start, stop)
    return Forecast(
        **{
            **vars(forecast),
            **{name: getattr(forecast, name)[part] for name in FORECAST_WINDOW_ARRAYS},
            "metadata": dict(forecast.metadata),
        }
    )


def last_window(forecast: Forecast) -> Forecast:
    """Return the latest window of a forecast (no windows when it has none)."""
    count = forecast.n_windows
    return window_slice(forecast, max(0, count - 1), count)


def merge_windows(parts: list[Forecast], series: GlucoseSeries, metadata: dict) -> Forecast:
    """Join consecutive window ranges of one series into one forecast.

    Truth is recomputed from ``series`` because an extension may have observed
    what an earlier, shorter series could not.
    """
    parts = [part for part in parts if part.n_windows]
    first = parts[0]
    joined = {name: np.concatenate([getattr(part, name) for part in parts]) for name in FORECAST_WINDOW_ARRAYS}
    if np.any(np.diff(joined["input_end"]) <= 0):
        raise ValueError("forecast parts overlap or are out of order")
    joined["truth"] = window_truth(series, joined["input_end"], len(first.horizon_minutes))
    return Forecast(
        subject=series.subject,
        horizon_minutes=first.horizon_minutes,
        levels=first.levels,
        seed=first.seed,
        model_id=first.model_id,
        metadata=dict(metadata),
        **joined,
    )
