"""Workload sizes of the full suite and of the quick mode that CI runs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    """How much work each benchmark does.

    Attributes
    ----------
    inference_models : tuple of (str, int)
        Model presets to time (``"bundled"`` or a preset given random weights)
        with the number of windows for each.
    n_samples : int
        MC-dropout samples per window everywhere.
    repeats : int
        Timed calls per inference path; the fastest counts.
    matmul_sizes : tuple of int
        Square matrix sizes for the fp32 matmul rate.
    matmul_repeats : int
        Timed products per matrix size; the fastest counts.
    days : float
        Length of the export used for first forecasts, the cache and REST.
    first_forecast_models : tuple of str
        Models timed from upload to first forecast.
    warm_repeats : int
        Warm uploads timed per model.
    cache_repeats : int
        Reads timed per cache tier.
    memory_models : tuple of str
        Models whose resident memory per copy is measured.
    rest_clients : tuple of int
        Concurrent client counts against the forecast endpoint.
    rest_requests_per_client : int
        Requests each client sends per client count.
    rest_burst_datasets : int
        Uncached requests sent at once to fill the queue.
    rest_max_queued : int
        The server's interactive queue bound during the burst.
    ingestion_readings, ingestion_subjects, ingestion_repeats : int
        Size of the ingestion table and timed reads.
    """

    inference_models: tuple[tuple[str, int], ...]
    n_samples: int
    repeats: int
    matmul_sizes: tuple[int, ...]
    matmul_repeats: int
    days: float
    first_forecast_models: tuple[str, ...]
    warm_repeats: int
    cache_repeats: int
    memory_models: tuple[str, ...]
    rest_clients: tuple[int, ...]
    rest_requests_per_client: int
    rest_burst_datasets: int
    rest_max_queued: int
    ingestion_readings: int
    ingestion_subjects: int
    ingestion_repeats: int


FULL = Sizes(
    inference_models=(("published", 32), ("bundled", 64)),
    n_samples=10,
    repeats=3,
    matmul_sizes=(512, 1024, 2048),
    matmul_repeats=10,
    days=14.0,
    first_forecast_models=("published", "bundled"),
    warm_repeats=5,
    cache_repeats=20,
    memory_models=("published", "bundled"),
    rest_clients=(1, 8, 32),
    rest_requests_per_client=20,
    rest_burst_datasets=24,
    rest_max_queued=4,
    ingestion_readings=1_000_000,
    ingestion_subjects=10,
    ingestion_repeats=2,
)

QUICK = Sizes(
    inference_models=(("tiny", 2), ("bundled", 2)),
    n_samples=2,
    repeats=1,
    matmul_sizes=(256,),
    matmul_repeats=3,
    days=0.5,
    first_forecast_models=("bundled",),
    warm_repeats=1,
    cache_repeats=3,
    memory_models=("bundled",),
    rest_clients=(1, 8, 32),
    rest_requests_per_client=1,
    rest_burst_datasets=3,
    rest_max_queued=1,
    ingestion_readings=5_000,
    ingestion_subjects=2,
    ingestion_repeats=1,
)
