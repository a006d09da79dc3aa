"""Forecast every window of a ``GlucoseSeries`` with a loaded Gluformer."""

from __future__ import annotations

import logging

import numpy as np

from glurpc_lab.forecast.covariates import calendar_covariates, future_times
from glurpc_lab.forecast.predictive import mixture_quantiles
from glurpc_lab.forecast.result import DEFAULT_LEVELS, Forecast
from glurpc_lab.forecast.sampling import DROPOUT_MASK_SCHEME, mc_dropout_samples
from glurpc_lab.forecast.calibration import component_stds
from glurpc_lab.forecast.scaling import fit_scaler
from glurpc_lab.forecast.windows import model_inputs, window_ends, window_truth
from glurpc_lab.ingest.series import GRID_MINUTES, GlucoseSeries
from glurpc_lab.model.weights import LoadedModel

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 16
"""Windows per forward pass (each window runs as ``n_samples`` rows).

Measured on an idle 2-core AMD EPYC with torch 2.13 (CPU), fastest of 2 runs, in window-samples
per second. The bundled model on 512 windows x 10 samples reached 1,650 at 8 windows per pass,
1,388 at 16 and 1,245 at 64. Random published-architecture weights on 32 windows reached 126 at 8,
117 at 16 and 103 at 32. With other jobs on the CPU, 16 was as fast as 8, so the two are within
noise and larger passes are slower. On a GPU a larger batch may be faster, so pass ``batch_size`` there.
"""


def select_windows(ends: np.ndarray, windows: str | slice) -> np.ndarray:
    """Pick window ends by ``"all"``, ``"latest"`` or a slice over the time-ordered windows."""
    if isinstance(windows, slice):
        return ends[windows]
    if windows == "all":
        return ends
    if windows == "latest":
        return ends[-1:]
    raise ValueError(f"windows={windows!r} is invalid; use 'all', 'latest' or a slice")


def forecast_series(
    model: LoadedModel,
    series: GlucoseSeries,
    *,
    n_samples: int = 10,
    seed: int = 0,
    levels=DEFAULT_LEVELS,
    windows: str | slice = "all",
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Forecast:
    """Forecast the hour after each window of ``series`` with MC dropout.

    Each window's predictive distribution is the equal-weight mixture over the
    ``n_samples`` dropout passes of Normal(mean_s, exp(logvar_s)), converted to mg/dL.
    Window ``w``'s samples are seeded by ``(seed, input_end[w], sample)``, so a window
    gets the same samples whether it is computed alone (``windows="latest"``) or with
    the others. Under the per-series scaling policy the glucose range is fitted on the
    observed (non-imputed) points of the whole series, and the calendar ranges on all
    of its grid times.

    Parameters
    ----------
    model : LoadedModel
        Model from ``glurpc_lab.model.load_model``.
    series : GlucoseSeries
        One subject's gridded glucose.
    n_samples : int
        MC-dropout samples per window.
    seed : int
        Non-negative base seed.
    levels : sequence of float
        Quantile levels in (0, 1).
    windows : str or slice
        ``"all"``, ``"latest"`` (only the window ending at the last point of the last
        long-enough segment) or a slice over the time-ordered windows.
    batch_size : int
        Windows per forward pass.

    Returns
    -------
    Forecast

    Raises
    ------
    ValueError
        No segment of the series has ``len_seq`` consecutive points.
    """
    config = model.config
    horizon = config.len_pred
    all_ends = window_ends(series, config.len_seq)
    if all_ends.size == 0:
        longest = max((stop - start for start, stop in series.segment_bounds()), default=0)
        raise ValueError(
            f"series has no forecasting window: its longest gap-free segment has {longest} points, "
            f"and a window needs {config.len_seq} consecutive {GRID_MINUTES}-minute points "
            f"({config.len_seq * GRID_MINUTES // 60} h); upload a longer recording"
        )
    ends = select_windows(all_ends, windows)

    past_index = ends[:, None] + np.arange(-config.len_seq + 1, 1)
    if config.scaling.kind == "fixed":
        # Fixed ranges ignore the data, so only the windows' own points need covariates.
        input_covariates = calendar_covariates(series.time[past_index])
        scaler = fit_scaler(config.scaling, series.glucose, ~np.asarray(series.imputed, dtype=bool), input_covariates)
    else:
        covariates = calendar_covariates(series.time)
        scaler = fit_scaler(config.scaling, series.glucose, ~np.asarray(series.imputed, dtype=bool), covariates)
        input_covariates = covariates[past_index]

    past_glucose = scaler.scale_glucose(series.glucose[past_index])
    past_covariates = scaler.scale_covariates(input_covariates)
    time_end = series.time[ends].astype("datetime64[s]")
    future_covariates = scaler.scale_covariates(calendar_covariates(future_times(time_end, horizon)))

    inputs = model_inputs(past_glucose, past_covariates, future_covariates, config)
    pred, logvar = mc_dropout_samples(model.module, inputs, ends, n_samples=n_samples, seed=seed, batch_size=batch_size)

    sample_mean = scaler.unscale_glucose(pred)
    sample_std = component_stds(logvar, scaler.glucose_span, config, series.glucose[past_index])
    level_array = np.asarray(levels, dtype=np.float64)
    quantiles = mixture_quantiles(sample_mean, sample_std, level_array)

    logger.info("forecast %d windows x %d samples with model %s", len(ends), n_samples, model.model_id)
    return Forecast(
        subject=series.subject,
        input_end=ends.astype(np.int64),
        time_end=time_end,
        horizon_minutes=np.arange(1, horizon + 1, dtype=np.int64) * GRID_MINUTES,
        levels=level_array,
        quantiles=quantiles.astype(np.float32),
        sample_mean=sample_mean.astype(np.float32),
        sample_std=sample_std.astype(np.float32),
        truth=window_truth(series, ends, horizon),
        seed=int(seed),
        model_id=model.model_id,
        metadata={
            "scaling_policy": config.scaling.kind,
            "scaling_version": config.scaling.version,
            "scaler": scaler.to_dict(),
            "n_samples": int(n_samples),
            "input_len": config.len_seq,
            "sampling": "MC dropout with BatchNorm in inference mode, seeded per (seed, input_end, sample)",
            "dropout_masks": DROPOUT_MASK_SCHEME,
        },
    )
