"""MC-dropout inference throughput, its FLOP rate, and the ratio to the predecessor's ``predict``."""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from glurpc_lab.forecast import forecast_series, window_ends
from glurpc_lab.forecast.covariates import calendar_covariates, future_times
from glurpc_lab.forecast.pipeline import DEFAULT_BATCH_SIZE
from glurpc_lab.forecast.sampling import mc_dropout_samples
from glurpc_lab.forecast.scaling import fit_scaler
from glurpc_lab.forecast.windows import model_inputs
from glurpc_lab.ingest import GlucoseSeries
from glurpc_lab.model import LoadedModel

from bench.predecessor import run_predecessor
from bench.timing import time_calls

logger = logging.getLogger(__name__)

FORECAST_BATCH_SIZE = DEFAULT_BATCH_SIZE
"""Windows per forward pass, the default of ``forecast_series`` and the engine."""


def last_windows_inputs(model: LoadedModel, series: GlucoseSeries, n_windows: int) -> tuple[tuple[torch.Tensor, ...], np.ndarray]:
    """Build the forward() inputs of the last ``n_windows`` windows the way ``forecast_series`` does.

    Returns
    -------
    inputs : tuple of torch.Tensor
        The five forward() inputs, ``n_windows`` rows each.
    ends : numpy.ndarray
        Index of each window's last input point, ``(n_windows,)``.
    """
    config = model.config
    ends = window_ends(series, config.len_seq)[-n_windows:]
    if ends.size < n_windows:
        raise ValueError(f"the benchmark series has {ends.size} windows, fewer than the {n_windows} requested")

    covariates = calendar_covariates(series.time)
    scaler = fit_scaler(config.scaling, series.glucose, ~np.asarray(series.imputed, dtype=bool), covariates)
    past_index = ends[:, None] + np.arange(-config.len_seq + 1, 1)
    past_glucose = scaler.scale_glucose(series.glucose[past_index])
    past_covariates = scaler.scale_covariates(covariates[past_index])
    time_end = series.time[ends].astype("datetime64[s]")
    future_covariates = scaler.scale_covariates(calendar_covariates(future_times(time_end, config.len_pred)))
    return model_inputs(past_glucose, past_covariates, future_covariates, config), ends


def forward_flops_per_row(model: LoadedModel, inputs: tuple[torch.Tensor, ...], rows: int = 8) -> float:
    """Count the matmul, convolution and attention FLOPs of one forward pass per input row.

    ``FlopCounterMode`` counts ``2 m n k`` per matrix product, the part of the
    work that a matrix-multiply rate can be compared with. It skips element-wise
    work (softmax, GELU, dropout masks, normalisation).
    """
    batch = tuple(tensor[:1].repeat_interleave(rows, dim=0) for tensor in inputs)
    module = model.module
    module.eval()
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        module(*batch)
    return counter.get_total_flops() / rows


def throughput(
    model: LoadedModel, series: GlucoseSeries, *, n_windows: int, n_samples: int, repeats: int, seed: int = 0
) -> tuple[dict, tuple[torch.Tensor, ...]]:
    """Time ``forecast_series`` and the model-only ``mc_dropout_samples`` on the last ``n_windows`` windows.

    Both get one untimed call on two windows first, then ``repeats`` timed
    calls. Rates use the fastest call, because other processes on a shared
    machine disturb it least. Rates are window-samples per second: windows
    times MC samples, divided by the wall time.

    Returns
    -------
    result : dict
        Seconds and rates of both paths.
    inputs : tuple of torch.Tensor
        The forward() inputs of the timed windows.
    """
    inputs, ends = last_windows_inputs(model, series, n_windows)
    selection = slice(-n_windows, None)
    warmup = tuple(tensor[:2] for tensor in inputs)

    def run_pipeline() -> None:
        forecast_series(model, series, n_samples=n_samples, seed=seed, windows=selection, batch_size=FORECAST_BATCH_SIZE)

    def run_model() -> None:
        mc_dropout_samples(model.module, inputs, ends, n_samples=n_samples, seed=seed, batch_size=FORECAST_BATCH_SIZE)

    forecast_series(model, series, n_samples=n_samples, seed=seed, windows=slice(-2, None), batch_size=FORECAST_BATCH_SIZE)
    mc_dropout_samples(model.module, warmup, ends[:2], n_samples=n_samples, seed=seed, batch_size=FORECAST_BATCH_SIZE)
    pipeline = time_calls(run_pipeline, repeats=repeats, warmup=0)
    model_only = time_calls(run_model, repeats=repeats, warmup=0)

    work = n_windows * n_samples
    return {
        "windows": n_windows,
        "n_samples": n_samples,
        "repeats": repeats,
        "batch_size_windows": FORECAST_BATCH_SIZE,
        "forecast_series_s": pipeline,
        "forecast_series_window_samples_per_s": work / pipeline["min_s"],
        "model_only_s": model_only,
        "model_only_window_samples_per_s": work / model_only["min_s"],
    }, inputs


def inference_benchmark(
    model: LoadedModel,
    series: GlucoseSeries,
    *,
    n_windows: int,
    n_samples: int,
    repeats: int,
    predecessor_python: str | None,
) -> dict:
    """Measure one model's inference, its FLOP rate and its speed against the predecessor.

    Parameters
    ----------
    model : LoadedModel
        The model to time; its architecture is rebuilt with random weights for the predecessor.
    series : GlucoseSeries
        Series whose last ``n_windows`` windows are forecast by both implementations.
    n_windows, n_samples : int
        Windows and MC-dropout samples per window.
    repeats : int
        Timed calls of each path, here and in the predecessor; the fastest counts.
    predecessor_python : str or None
        Interpreter of the predecessor's environment; None skips the comparison.

    Returns
    -------
    dict
        Throughput of both paths, FLOPs per forward row and the FLOP rate of
        the model-only path, the predecessor's result and the speed ratios.
    """
    measured, inputs = throughput(model, series, n_windows=n_windows, n_samples=n_samples, repeats=repeats)
    flops_per_row = forward_flops_per_row(model, inputs)
    achieved = flops_per_row * measured["model_only_window_samples_per_s"]
    result = {
        "model_id": model.model_id,
        "config": model.config.name,
        "parameters": sum(p.numel() for p in model.module.parameters()),
        **measured,
        "forward_flops_per_row": flops_per_row,
        "model_only_flops_per_s": achieved,
    }

    if predecessor_python is None:
        result["predecessor"] = {"skipped": "predecessor comparison turned off with --no-predecessor"}
        return result
    logger.info("timing the predecessor's predict on %d windows x %d samples", n_windows, n_samples)
    predecessor = run_predecessor(inputs, model.config, n_samples=n_samples, repeats=repeats, python=predecessor_python)
    result["predecessor"] = predecessor
    if "window_samples_per_s" in predecessor:
        theirs = predecessor["window_samples_per_s"]
        result["speedup_forecast_series"] = measured["forecast_series_window_samples_per_s"] / theirs
        result["speedup_model_only"] = measured["model_only_window_samples_per_s"] / theirs
    return result


def add_matmul_fraction(entries: dict, matmul_flops_per_s: float) -> None:
    """Add ``fraction_of_matmul_rate`` to each inference entry: its model-only FLOP rate over the matmul rate."""
    for entry in entries.values():
        entry["fraction_of_matmul_rate"] = entry["model_only_flops_per_s"] / matmul_flops_per_s
