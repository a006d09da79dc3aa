"""JSON wire format of the REST API, shared by the handlers and the REST client.

Times are naive ISO 8601 strings with second resolution
(``"2024-05-01T08:35:00"``), arrays are (nested) JSON lists, and NaN is
``null``. Decoding restores the dtypes of the shared types exactly, so a
series or forecast survives a round trip bit for bit.
"""

from __future__ import annotations

import numpy as np

from glurpc_lab.client.base import DatasetInfo, SeriesSummary
from glurpc_lab.forecast.result import Forecast
from glurpc_lab.ingest.quality import QualityReport
from glurpc_lab.ingest.series import GlucoseSeries


def iso_times(times: np.ndarray) -> list[str]:
    """Format ``datetime64`` values as ISO 8601 strings with second resolution."""
    return np.datetime_as_string(np.asarray(times).astype("datetime64[s]"), unit="s").tolist()


def parse_times(values: list[str]) -> np.ndarray:
    """Parse ISO 8601 strings into ``datetime64[s]``."""
    return np.asarray(values, dtype="datetime64[s]")


def nullable(values: np.ndarray) -> list:
    """Convert a float array into nested lists with None in place of NaN."""
    array = np.asarray(values, dtype="float64")
    objects = array.astype(object)
    objects[np.isnan(array)] = None
    return objects.tolist()


def _float_array(values: list, dtype: str, shape_tail: tuple[int, ...] = ()) -> np.ndarray:
    if len(values) == 0:
        return np.zeros((0, *shape_tail), dtype=dtype)
    array = np.asarray(values, dtype=object)
    array[np.equal(array, None)] = np.nan
    return array.astype(dtype)


def quality_from_json(data: dict) -> QualityReport:
    """Rebuild a :class:`QualityReport` from its ``to_dict`` output."""
    fields = dict(data)
    fields.pop("has_warnings", None)
    return QualityReport(**fields)


def series_to_json(series: GlucoseSeries) -> dict:
    """Encode a series: ISO times, glucose (mg/dL), segment, imputed, censored and quality."""
    return {
        "subject": series.subject,
        "time": iso_times(series.time),
        "glucose": nullable(series.glucose),
        "segment": np.asarray(series.segment).tolist(),
        "imputed": np.asarray(series.imputed).tolist(),
        "censored": np.asarray(series.censored).tolist(),
        "quality": series.quality.to_dict(),
    }


def series_from_json(data: dict) -> GlucoseSeries:
    """Decode :func:`series_to_json` output."""
    return GlucoseSeries(
        subject=data["subject"],
        time=parse_times(data["time"]),
        glucose=_float_array(data["glucose"], "float32"),
        segment=np.asarray(data["segment"], dtype="int32"),
        imputed=np.asarray(data["imputed"], dtype="bool"),
        censored=np.asarray(data["censored"], dtype="int8"),
        quality=quality_from_json(data["quality"]),
    )


def forecast_to_json(forecast: Forecast) -> dict:
    """Encode a forecast; ``times`` lists the forecast step times of every window."""
    steps = np.asarray(forecast.horizon_minutes).astype("timedelta64[m]").astype("timedelta64[s]")
    step_times = np.asarray(forecast.time_end).astype("datetime64[s]")[:, None] + steps[None, :]
    return {
        "subject": forecast.subject,
        "input_end": np.asarray(forecast.input_end).tolist(),
        "time_end": iso_times(forecast.time_end),
        "times": [iso_times(row) for row in step_times],
        "horizon_minutes": np.asarray(forecast.horizon_minutes).tolist(),
        "levels": np.asarray(forecast.levels).tolist(),
        "quantiles": nullable(forecast.quantiles),
        "sample_mean": nullable(forecast.sample_mean),
        "sample_std": nullable(forecast.sample_std),
        "truth": nullable(forecast.truth),
        "n_samples": int(np.asarray(forecast.sample_std).shape[-1]),
        "seed": int(forecast.seed),
        "model_id": forecast.model_id,
        "metadata": forecast.metadata,
    }


def forecast_from_json(data: dict) -> Forecast:
    """Decode :func:`forecast_to_json` output."""
    horizon = np.asarray(data["horizon_minutes"], dtype="int64")
    levels = np.asarray(data["levels"], dtype="float64")
    samples = int(data["n_samples"])
    return Forecast(
        subject=data["subject"],
        input_end=np.asarray(data["input_end"], dtype="int64"),
        time_end=parse_times(data["time_end"]),
        horizon_minutes=horizon,
        levels=levels,
        quantiles=_float_array(data["quantiles"], "float32", (len(horizon), len(levels))),
        sample_mean=_float_array(data["sample_mean"], "float32", (len(horizon), samples)),
        sample_std=_float_array(data["sample_std"], "float32", (len(horizon), samples)),
        truth=_float_array(data["truth"], "float32", (len(horizon),)),
        seed=int(data["seed"]),
        model_id=data["model_id"],
        metadata=dict(data.get("metadata") or {}),
    )


def dataset_info_to_json(info: DatasetInfo) -> dict:
    """Encode a :class:`DatasetInfo`."""
    return {
        "handle": info.handle,
        "source_format": info.source_format,
        "series": [
            {
                "subject": summary.subject,
                "points": summary.points,
                "windows": summary.windows,
                "quality": summary.quality,
            }
            for summary in info.series
        ],
    }


def dataset_info_from_json(data: dict) -> DatasetInfo:
    """Decode :func:`dataset_info_to_json` output."""
    return DatasetInfo(
        handle=data["handle"],
        source_format=data["source_format"],
        series=tuple(
            SeriesSummary(
                subject=item["subject"],
                points=int(item["points"]),
                windows=int(item["windows"]),
                quality=dict(item["quality"]),
            )
            for item in data["series"]
        ),
    )
