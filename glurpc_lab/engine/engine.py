"""The engine: parse uploads, store them, and compute or serve cached forecasts."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from glurpc_lab.client.base import DatasetInfo, SeriesSummary
from glurpc_lab.engine.errors import (
    HandleNotFoundError,
    InvalidHandleError,
    ModelUnavailableError,
    SeriesIndexError,
)
from glurpc_lab.engine.keys import dataset_handle, forecast_key, is_key
from glurpc_lab.engine.pool import ModelPool, default_devices
from glurpc_lab.engine.store import Store, default_cache_dir
from glurpc_lab.forecast.result import DEFAULT_LEVELS, Forecast
from glurpc_lab.ingest.series import GlucoseSeries

logger = logging.getLogger(__name__)

WINDOW_CHOICES = ("all", "latest")


class Engine:
    """Parse uploads, keep them in a zarr store and serve their forecasts.

    Forecasts are cached under a key built from the dataset handle, series
    index, model id, sample count, seed, quantile levels and a version
    constant, so a second request for the same data never runs the model.
    Every method is thread-safe.

    Parameters
    ----------
    model_source : str or os.PathLike, optional
        Passed to :func:`glurpc_lab.model.load_model`: None or ``"bundled"``,
        a weights path, or ``"hf:REPO/FILENAME[@REVISION]"``.
    devices : sequence of str, optional
        Torch devices for the model copies; every ``cuda:i`` when CUDA is
        available, else ``["cpu"]``.
    copies_per_device : int
        Model copies per entry of ``devices``.
    cache_dir : str or os.PathLike, optional
        Store directory; ``~/.cache/glurpc-lab/store`` by default.
    n_samples : int
        MC-dropout samples per window.
    seed : int
        Sampling seed.
    model_wait_seconds : float
        Maximum wait for a free model copy before :class:`ModelBusyError`.
    interpolation_limit_minutes : int
        Maximum gap, in minutes, that ingestion fills by interpolation.
    """

    def __init__(
        self,
        model_source: str | os.PathLike | None = None,
        *,
        devices: Sequence[str] | None = None,
        copies_per_device: int = 1,
        cache_dir: str | os.PathLike | None = None,
        n_samples: int = 10,
        seed: int = 0,
        model_wait_seconds: float = 600.0,
        interpolation_limit_minutes: int = 45,
    ) -> None:
        if n_samples < 1:
            raise ValueError(f"n_samples must be at least 1, got {n_samples}")
        if copies_per_device < 1:
            raise ValueError(f"copies_per_device must be at least 1, got {copies_per_device}")

        self.model_source = model_source
        self.devices = list(devices) if devices else default_devices()
        self.copies_per_device = int(copies_per_device)
        self.n_samples = int(n_samples)
        self.seed = int(seed)
        self.levels = tuple(DEFAULT_LEVELS)
        self.model_wait_seconds = float(model_wait_seconds)
        self.ingest_settings = {"interpolation_limit_minutes": int(interpolation_limit_minutes)}
        self.store = Store(cache_dir if cache_dir is not None else default_cache_dir())

        self._pool: ModelPool | None = None
        self._pool_lock = threading.Lock()
        self._load_error: str | None = None
        self._closed = False

        self._key_locks: dict[str, list] = {}
        self._key_locks_guard = threading.Lock()
        self._counter_lock = threading.Lock()
        self._counters = {
            "datasets_processed": 0,
            "forecasts_computed": 0,
            "forecast_cache_hits": 0,
            "forecast_errors": 0,
        }

    # ------------------------------------------------------------ model pool

    def load_models(self) -> ModelPool:
        """Load every model copy now instead of on the first forecast, and return the pool.

        Raises
        ------
        ModelUnavailableError
            When loading fails; the next call tries again.
        """
        with self._pool_lock:
            if self._closed:
                raise ModelUnavailableError("the engine is closed")
            if self._pool is not None:
                return self._pool

            from glurpc_lab.model import load_model

            def load(device: str):
                return load_model(self.model_source, device=device)

            try:
                self._pool = ModelPool(
                    load,
                    self.devices,
                    self.copies_per_device,
                    wait_seconds=self.model_wait_seconds,
                )
            except Exception as error:
                self._load_error = f"{type(error).__name__}: {error}"
                logger.error("model loading failed: %s", self._load_error)
                raise ModelUnavailableError(f"the model failed to load ({self._load_error})") from error
            self._load_error = None
            return self._pool

    @property
    def pool(self) -> ModelPool | None:
        """The model pool, or None before the models are loaded."""
        return self._pool

    # ------------------------------------------------------------ datasets

    def process(self, content: bytes) -> DatasetInfo:
        """Parse an export, store its gridded series and return its handle and summaries.

        Parameters
        ----------
        content : bytes
            The uploaded file, any format :func:`glurpc_lab.ingest.read_export` reads.

        Raises
        ------
        glurpc_lab.ingest.IngestError
            When the file cannot be read; the message is safe to show.
        """
        if not isinstance(content, (bytes, bytearray, memoryview)):
            raise TypeError(f"content must be bytes, got {type(content).__name__}")
        from glurpc_lab.ingest import read_export

        started = time.perf_counter()
        dataset = read_export(bytes(content), **self.ingest_settings)
        handle = dataset_handle(dataset, self.ingest_settings)
        written = self.store.write_dataset(handle, dataset, self.ingest_settings)

        summaries = tuple(self._summarize(series) for series in dataset.series)
        self._count("datasets_processed")
        logger.info(
            "processed dataset %s: %d series, %d points, %s, %.2f s",
            handle[:12],
            len(summaries),
            sum(summary.points for summary in summaries),
            "stored" if written else "already stored",
            time.perf_counter() - started,
        )
        return DatasetInfo(handle=handle, source_format=dataset.source_format, series=summaries)

    def info(self, handle: str) -> DatasetInfo:
        """Return the summary of a stored dataset.

        Raises
        ------
        InvalidHandleError, HandleNotFoundError
        """
        size = self._dataset_size(handle)
        summaries = tuple(self._summarize(self.store.read_series(handle, i)) for i in range(size))
        return DatasetInfo(
            handle=handle,
            source_format=self.store.dataset_source_format(handle) or "",
            series=summaries,
        )

    def series(self, handle: str, index: int = 0) -> GlucoseSeries:
        """Return the gridded series ``index`` of a stored dataset.

        Raises
        ------
        InvalidHandleError
            When ``handle`` is not 64 lowercase hex digits.
        HandleNotFoundError
            When no dataset is stored under ``handle``.
        SeriesIndexError
            When ``index`` is outside ``0 .. n_series - 1``.
        """
        size = self._dataset_size(handle)
        index = self._check_index(index, size)
        series = self.store.read_series(handle, index)
        if series is None:
            raise HandleNotFoundError(f"dataset {handle[:12]}... is no longer stored; upload the file again")
        return series

    def _dataset_size(self, handle: str) -> int:
        if not is_key(handle):
            raise InvalidHandleError(
                "invalid dataset handle: expected the 64 lowercase hex digits returned by process"
            )
        size = self.store.dataset_size(handle)
        if size is None:
            raise HandleNotFoundError(
                f"no dataset with handle {handle[:12]}... is stored; upload the file again"
            )
        return size

    @staticmethod
    def _check_index(index: int, size: int) -> int:
        if isinstance(index, bool) or not isinstance(index, int):
            raise SeriesIndexError(f"series index must be an integer, got {type(index).__name__}")
        if not 0 <= index < size:
            raise SeriesIndexError(
                f"series index {index} is out of range: this dataset has {size} series (0 to {size - 1})"
            )
        return index

    @staticmethod
    def _summarize(series: GlucoseSeries) -> SeriesSummary:
        from glurpc_lab.forecast import window_ends

        return SeriesSummary(
            subject=series.subject,
            points=len(series),
            windows=int(len(window_ends(series))),
            quality=series.quality.to_dict(),
        )

    # ------------------------------------------------------------ forecasts

    def forecast(self, handle: str, index: int = 0, *, windows: str = "all", force: bool = False) -> Forecast:
        """Return the forecasts of series ``index``, from the store or computed now.

        Parameters
        ----------
        handle : str
            Dataset handle from :meth:`process`.
        index : int
            Series index within the dataset.
        windows : {"all", "latest"}
            ``"latest"`` returns only the last window; it is sliced from
            stored ``"all"`` forecasts when those exist, else computed alone.
        force : bool
            Recompute and overwrite the stored forecasts.

        Raises
        ------
        InvalidHandleError, HandleNotFoundError, SeriesIndexError
            For a bad handle or index.
        ModelBusyError
            When no model copy became free within ``model_wait_seconds``.
        ModelUnavailableError
            When the model failed to load.
        """
        if windows not in WINDOW_CHOICES:
            raise ValueError(f"windows must be one of {WINDOW_CHOICES}, got {windows!r}")
        series = self.series(handle, index)
        pool = self.load_models()

        if windows == "latest" and not force:
            stored_all = self.store.read_forecast(self._key(handle, index, pool.model_id, "all"))
            if stored_all is not None:
                self._count("forecast_cache_hits")
                return _last_window(stored_all)

        key = self._key(handle, index, pool.model_id, windows)
        with self._locked(key):
            # Checked under the key lock, so concurrent requests for one key run the model once.
            if not force:
                stored = self.store.read_forecast(key)
                if stored is not None:
                    self._count("forecast_cache_hits")
                    return stored

            computed = self._compute(pool, series, windows)
            self.store.write_forecast(
                key,
                computed,
                {
                    "handle": handle,
                    "series_index": index,
                    "n_samples": self.n_samples,
                    "windows": windows,
                },
                replace=force,
            )

        # Returning the stored copy keeps dtypes identical between the first and later calls.
        stored = self.store.read_forecast(key)
        return stored if stored is not None else computed

    def _key(self, handle: str, index: int, model_id: str, windows: str) -> str:
        return forecast_key(
            handle,
            index,
            model_id=model_id,
            n_samples=self.n_samples,
            seed=self.seed,
            levels=self.levels,
            windows=windows,
        )

    def _compute(self, pool: ModelPool, series: GlucoseSeries, windows: str) -> Forecast:
        from glurpc_lab.forecast import forecast_series

        started = time.perf_counter()
        with pool.borrow() as model:
            try:
                result = forecast_series(
                    model,
                    series,
                    n_samples=self.n_samples,
                    seed=self.seed,
                    levels=self.levels,
                    windows=windows,
                )
            except Exception:
                self._count("forecast_errors")
                raise
        self._count("forecasts_computed")
        logger.info(
            "computed %d forecast windows with %d samples in %.2f s",
            result.n_windows,
            self.n_samples,
            time.perf_counter() - started,
        )
        return result

    @contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        # One lock per key, dropped when its last user leaves, so the dict stays small.
        with self._key_locks_guard:
            entry = self._key_locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._key_locks_guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._key_locks[key]

    # ------------------------------------------------------------ status

    def _count(self, name: str) -> None:
        with self._counter_lock:
            self._counters[name] += 1

    def health(self) -> dict:
        """Return model, device, pool, store and counter status as a JSON-ready dict.

        ``status`` is ``"ok"`` when the models are loaded, ``"not_loaded"``
        before the first forecast or :meth:`load_models`, ``"error"`` when
        loading failed, and ``"closed"`` after :meth:`close`.
        """
        pool = self._pool
        if self._closed:
            status = "closed"
        elif pool is not None:
            status = "ok"
        elif self._load_error is not None:
            status = "error"
        else:
            status = "not_loaded"

        with self._counter_lock:
            counters = dict(self._counters)
        report = {
            "status": status,
            "ready": status == "ok",
            "model_id": pool.model_id if pool is not None else None,
            "devices": list(self.devices),
            "copies_per_device": self.copies_per_device,
            "n_samples": self.n_samples,
            "seed": self.seed,
            "levels": list(self.levels),
            "pool": pool.stats() if pool is not None else None,
            "store": self.store.counts(),
            "counters": counters,
        }
        if self._load_error is not None:
            report["load_error"] = self._load_error
        return report

    def close(self) -> None:
        """Release the model copies. Stored data stays on disk."""
        with self._pool_lock:
            self._closed = True
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def cache_dir(self) -> Path:
        """Root directory of the store."""
        return self.store.root


def _last_window(forecast: Forecast) -> Forecast:
    last = slice(forecast.n_windows - 1, forecast.n_windows) if forecast.n_windows else slice(0, 0)
    return Forecast(
        subject=forecast.subject,
        input_end=forecast.input_end[last],
        time_end=forecast.time_end[last],
        horizon_minutes=forecast.horizon_minutes,
        levels=forecast.levels,
        quantiles=forecast.quantiles[last],
        sample_mean=forecast.sample_mean[last],
        sample_std=forecast.sample_std[last],
        truth=forecast.truth[last],
        seed=forecast.seed,
        model_id=forecast.model_id,
        metadata=dict(forecast.metadata),
    )
