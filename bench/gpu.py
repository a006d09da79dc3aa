"""Inference on CUDA devices: one device's throughput and the scaling across devices."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import torch

from bench.models import random_weights
from bench.synthetic import research_export


def gpu_benchmark(days: float, *, n_samples: int = 10, batch_size: int = 512) -> dict:
    """Forecast every window of a ``days``-long export on each CUDA device, alone and all at once.

    Returns ``{"skipped": reason}`` without CUDA. Uses the published
    architecture with random weights.
    """
    if not torch.cuda.is_available():
        return {"skipped": "no CUDA device on this machine (torch.cuda.is_available() is False)"}

    # NOTE: this path has not run yet; the machine it was written on has no GPU.
    from glurpc_lab.forecast import forecast_series, window_ends
    from glurpc_lab.ingest import read_export
    from glurpc_lab.model import load_model

    series = read_export(research_export(days, seed=11)).series[0]
    devices = [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    with tempfile.TemporaryDirectory(prefix="glurpc-bench-gpu-") as folder:
        source = random_weights(Path(folder), "published")
        models = [load_model(source, device=device) for device in devices]

    def run(model) -> None:
        forecast_series(model, series, n_samples=n_samples, windows="all", batch_size=batch_size)
        torch.cuda.synchronize(model.device)

    for model in models:
        forecast_series(model, series, n_samples=n_samples, windows=slice(-batch_size, None), batch_size=batch_size)
    started = time.perf_counter()
    run(models[0])
    one_device_s = time.perf_counter() - started

    threads = [threading.Thread(target=run, args=(model,)) for model in models]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    all_devices_s = time.perf_counter() - started

    windows = int(len(window_ends(series, models[0].config.len_seq)))
    return {
        "devices": [torch.cuda.get_device_name(index) for index in range(len(devices))],
        "days": days,
        "windows": windows,
        "n_samples": n_samples,
        "batch_size_windows": batch_size,
        "one_device_all_windows_s": one_device_s,
        "one_device_window_samples_per_s": windows * n_samples / one_device_s,
        "all_devices_s": all_devices_s,
        "all_devices_window_samples_per_s": len(devices) * windows * n_samples / all_devices_s,
        "scaling_efficiency": (len(devices) * one_device_s / all_devices_s) / len(devices),
    }
