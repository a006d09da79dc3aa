"""Forecast cache latency by tier, bytes on disk per dataset, and memory per loaded model copy."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.machine import REPO_ROOT
from bench.models import random_weights
from bench.synthetic import research_export
from bench.timing import time_calls


def folder_bytes(folder: Path) -> int:
    """Return the summed size of the regular files under ``folder``, in bytes."""
    return sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file())


def array_bytes(value: object) -> int:
    """Return the bytes of the numpy arrays among an object's attributes (a series or a forecast)."""
    return sum(int(item.nbytes) for item in vars(value).values() if isinstance(item, np.ndarray))


def cache_benchmark(days: float, *, repeats: int, n_samples: int = 10) -> dict:
    """Measure the memory and zarr tiers on the forecasts of every window of a ``days``-long export.

    The forecasts come from a tiny random-weights model, because the cached
    arrays have the same shapes whatever the model and a tiny one computes every
    window of two weeks in seconds.

    Returns
    -------
    dict
        Latency summaries of each tier, read directly and through
        ``Engine.forecast``, and the bytes on disk against the raw array bytes.
    """
    from glurpc_lab.engine import Engine, MemoryCache, Store

    with tempfile.TemporaryDirectory(prefix="glurpc-bench-cache-") as folder:
        source = random_weights(Path(folder), "tiny")
        store_dir = Path(folder) / "store"
        with Engine(source, cache_dir=store_dir, n_samples=n_samples) as engine:
            info = engine.process(research_export(days, seed=7))
            series = engine.series(info.handle, 0)
            started = time.perf_counter()
            forecast = engine.forecast(info.handle, 0, windows="all")
            compute_s = time.perf_counter() - started

            # Every later call is a memory-tier hit; the engine also reads the series from the store first.
            engine_memory = time_calls(lambda: engine.forecast(info.handle, 0, windows="all"), repeats=repeats)
            dataset_disk = folder_bytes(engine.store.datasets_dir)
            forecast_disk = folder_bytes(engine.store.forecasts_dir)

        # With the memory tier off, every call reads the forecasts back from zarr.
        with Engine(source, cache_dir=store_dir, n_samples=n_samples, memory_cache_bytes=0) as engine:
            engine_zarr = time_calls(lambda: engine.forecast(info.handle, 0, windows="all"), repeats=repeats)

        memory = MemoryCache(256 * 1024 * 1024)
        key = hashlib.sha256(b"glurpc-lab benchmark").hexdigest()
        memory.put(key, forecast)
        memory_direct = time_calls(lambda: memory.get(key), repeats=max(repeats, 1000))

        direct_store = Store(Path(folder) / "direct")
        direct_store.write_forecast(key, forecast, {})
        zarr_direct = time_calls(lambda: direct_store.read_forecast(key), repeats=repeats)
        gc.collect()

    return {
        "days": days,
        "windows": int(forecast.n_windows),
        "n_samples": n_samples,
        "compute_all_windows_s": compute_s,
        "memory_tier_get_s": memory_direct,
        "engine_memory_hit_s": engine_memory,
        "zarr_tier_read_s": zarr_direct,
        "engine_zarr_hit_s": engine_zarr,
        "dataset_disk_bytes": dataset_disk,
        "dataset_raw_bytes": array_bytes(series),
        "forecast_disk_bytes": forecast_disk,
        "forecast_raw_bytes": array_bytes(forecast),
        "disk_to_raw_ratio": (dataset_disk + forecast_disk) / (array_bytes(series) + array_bytes(forecast)),
    }


def model_memory(model_source: str, *, copies: int = 2, timeout_s: float = 600.0) -> dict:
    """Measure the resident memory that each loaded model copy adds, in a fresh interpreter.

    The first copy also pays for one-time allocations, so the last copy's increase
    is the figure per extra copy.
    """
    command = [sys.executable, "-m", "bench.cache", model_source, str(copies)]
    completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout_s, check=False)
    if completed.returncode != 0:
        last_line = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"model memory child failed with exit code {completed.returncode}: {last_line}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _resident_bytes() -> int:
    import psutil

    return int(psutil.Process(os.getpid()).memory_info().rss)


def _model_memory_child(model_source: str, copies: int) -> dict:
    from glurpc_lab.model import load_model

    gc.collect()
    before = _resident_bytes()
    models, increases = [], []
    for _ in range(copies):
        previous = _resident_bytes()
        models.append(load_model(model_source))
        gc.collect()
        increases.append(_resident_bytes() - previous)
    module = models[0].module
    parameter_bytes = sum(p.numel() * p.element_size() for p in module.parameters())
    buffer_bytes = sum(b.numel() * b.element_size() for b in module.buffers())
    return {
        "model_id": models[0].model_id,
        "copies": copies,
        "rss_increase_per_copy_bytes": increases,
        "rss_total_increase_bytes": _resident_bytes() - before,
        "parameter_bytes": parameter_bytes,
        "buffer_bytes": buffer_bytes,
    }


if __name__ == "__main__":
    print(json.dumps(_model_memory_child(sys.argv[1], int(sys.argv[2]))))
