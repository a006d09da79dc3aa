"""The engine: parse uploads, store them, and compute or serve cached forecasts."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path


from glurpc_lab.client.base import DatasetInfo, SeriesSummary
from glurpc_lab.engine.errors import (
    HandleNotFoundError,
    InvalidHandleError,
    ModelUnavailableError,
    QueueFullError,
    SeriesIndexError,
)
from glurpc_lab.engine.extension import (
    find_reusable,
    last_window,
    lineage_anchor,
    merge_windows,
    series_scaler,
)
from glurpc_lab.engine.keys import (
    DEFAULT_NAMESPACE,
    FORECAST_KEY_VERSION,
    dataset_handle,
    forecast_key,
    is_key,
)
from glurpc_lab.engine.memory_cache import MemoryCache
from glurpc_lab.engine.out_of_memory import forecast_with_backoff
from glurpc_lab.engine.pool import ModelPool, default_devices
from glurpc_lab.engine.request import ForecastRequest
from glurpc_lab.engine.scheduler import Priority, Scheduler
from glurpc_lab.engine.store import Store, default_cache_dir
from glurpc_lab.forecast.pipeline import DEFAULT_BATCH_SIZE
from glurpc_lab.forecast.result import DEFAULT_LEVELS, Forecast
from glurpc_lab.ingest.series import GlucoseSeries

logger = logging.getLogger(__name__)

WINDOW_CHOICES = ("all", "latest")

DEFAULT_MEMORY_CACHE_BYTES = 256 * 1024 * 1024
"""Default limit of the in-memory forecast tier, in bytes."""


def _memory_key(namespace: str, key: str) -> str:
    # Forecast keys do not contain the namespace, and the memory tier is shared by all namespaces.
    return f"{namespace}/{key}"


def _priority(value: str | Priority | None) -> Priority:
    if value is None:
        return Priority.INTERACTIVE
    if isinstance(value, str):
        try:
            return Priority[value.upper()]
        except KeyError:
            raise ValueError(f"priority must be 'interactive' or 'background', got {value!r}") from None
    return Priority(value)


class Engine:
    """Parse uploads, keep them in a zarr store and serve their forecasts.

    Forecasts are cached under a key built from the dataset handle, series
    index, model id, sample count, seed, quantile levels and a version
    constant, so a changed model never serves stale forecasts. Lookups go
    to an in-memory LRU tier, then to the store on disk, then to the model.
    Model work runs on a :class:`~glurpc_lab.engine.scheduler.Scheduler`:
    interactive requests first, identical requests coalesced, queues bounded.
    Every method is thread-safe.

    Parameters
    ----------
    model_source : str or os.PathLike, optional
        Passed to :func:`glurpc_lab.model.load_model`: None or ``"bundled"``,
        a weights path, or ``"hf:OWNER/REPO/FILE[@REVISION]"``.
    devices : sequence of str, optional
        Torch devices for the model copies; every ``cuda:i`` when CUDA is
        available, else ``["cpu"]``. A device may repeat.
    copies_per_device : int
        Model copies per entry of ``devices``.
    cache_dir : str or os.PathLike, optional
        Store directory; ``~/.cache/glurpc-lab/store`` by default.
    n_samples : int
        MC-dropout samples per window.
    seed : int
        Sampling seed.
    model_wait_seconds : float
        Maximum wait for a request's job to start on a model copy before
        :class:`ModelBusyError`.
    interpolation_limit_minutes : int
        Maximum gap, in minutes, that ingestion fills by interpolation.
    batch_size : int
        Windows per forward pass; halved on a device after it runs out of memory.
    max_queued_interactive, max_queued_background : int
        Queue bounds; a request that needs a new job beyond them raises
        :class:`QueueFullError`.
    memory_cache_bytes : int
        Limit of the in-memory forecast tier in bytes; 0 disables it.
    store_budget_bytes : int, optional
        Limit of the store on disk in bytes, kept by deleting the least
        recently used entries; None keeps everything.
    background_fill : bool
        After computing a latest window, queue every other window of the
        series as background work.
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
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_queued_interactive: int = 64,
        max_queued_background: int = 1024,
        memory_cache_bytes: int = DEFAULT_MEMORY_CACHE_BYTES,
        store_budget_bytes: int | None = None,
        background_fill: bool = False,
    ) -> None:
        if n_samples < 1:
            raise ValueError(f"n_samples must be at least 1, got {n_samples}")
        if copies_per_device < 1:
            raise ValueError(f"copies_per_device must be at least 1, got {copies_per_device}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")

        self.model_source = model_source
        self.devices = list(devices) if devices else default_devices()
        self.copies_per_device = int(copies_per_device)
        self.n_samples = int(n_samples)
        self.seed = int(seed)
        self.levels = tuple(DEFAULT_LEVELS)
        self.model_wait_seconds = float(model_wait_seconds)
        self.batch_size = int(batch_size)
        self.background_fill = bool(background_fill)
        self.max_queued = {
            Priority.INTERACTIVE: int(max_queued_interactive),
            Priority.BACKGROUND: int(max_queued_background),
        }
        self.ingest_settings = {"interpolation_limit_minutes": int(interpolation_limit_minutes)}
        self.store = Store(
            cache_dir if cache_dir is not None else default_cache_dir(),
            budget_bytes=store_budget_bytes,
        )
        self.memory = MemoryCache(memory_cache_bytes)

        self._pool: ModelPool | None = None
        self._scheduler: Scheduler | None = None
        self._pool_lock = threading.Lock()
        self._load_error: str | None = None
        self._closed = False
        self._batch_sizes: dict[str, int] = {}

        self._counter_lock = threading.Lock()
        self._counters = {
            "datasets_processed": 0,
            "forecasts_computed": 0,
            "forecast_cache_hits": 0,
            "forecast_errors": 0,
            "windows_computed": 0,
            "windows_reused": 0,
            "out_of_memory_retries": 0,
            "wait_timeouts": 0,
            "background_fills_queued": 0,
            "background_fills_rejected": 0,
        }

    # ------------------------------------------------------------ model pool

    def load_models(self) -> ModelPool:
        """Load every model copy and start the scheduler now instead of on the first forecast, and return the pool.

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
                pool = ModelPool(
                    load,
                    self.devices,
                    self.copies_per_device,
                    wait_seconds=self.model_wait_seconds,
                )
            except Exception as error:
                self._load_error = f"{type(error).__name__}: {error}"
                logger.error("model loading failed: %s", self._load_error)
                raise ModelUnavailableError(f"the model failed to load ({self._load_error})") from error
            self._scheduler = Scheduler(pool, max_queued=self.max_queued)
            self._pool = pool
            self._load_error = None
            return pool

    @property
    def pool(self) -> ModelPool | None:
        """The model pool, or None before the models are loaded."""
        return self._pool

    @property
    def scheduler(self) -> Scheduler | None:
        """The scheduler of model work, or None before the models are loaded."""
        return self._scheduler

    def _store(self, namespace: str) -> Store:
        return self.store.in_namespace(namespace)

    # ------------------------------------------------------------ datasets

    def process(self, content: bytes, *, namespace: str = DEFAULT_NAMESPACE) -> DatasetInfo:
        """Parse an export, store its gridded series and return its handle and summaries.

        Parameters
        ----------
        content : bytes
            The uploaded file, any format :func:`glurpc_lab.ingest.read_export` reads.
        namespace : str
            Store namespace of the uploading user; see
            :func:`glurpc_lab.engine.keys.namespace_for_user`.

        Raises
        ------
        glurpc_lab.ingest.IngestError
            When the file cannot be read; the message is safe to show.
        """
        if not isinstance(content, (bytes, bytearray, memoryview)):
            raise TypeError(f"content must be bytes, got {type(content).__name__}")
        from glurpc_lab.ingest import read_export

        store = self._store(namespace)
        started = time.perf_counter()
        dataset = read_export(bytes(content), **self.ingest_settings)
        handle = dataset_handle(dataset, self.ingest_settings, namespace)
        written = store.write_dataset(handle, dataset, self.ingest_settings)

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

    def info(self, handle: str, *, namespace: str = DEFAULT_NAMESPACE) -> DatasetInfo:
        """Return the summary of a stored dataset.

        Raises
        ------
        InvalidHandleError, HandleNotFoundError
        """
        store = self._store(namespace)
        size = self._dataset_size(store, handle)
        summaries = []
        for index in range(size):
            series = store.read_series(handle, index)
            if series is None:
                raise HandleNotFoundError(f"dataset {handle[:12]}... is no longer stored; upload the file again")
            summaries.append(self._summarize(series))
        return DatasetInfo(
            handle=handle,
            source_format=store.dataset_source_format(handle) or "",
            series=tuple(summaries),
        )

    def series(self, handle: str, index: int = 0, *, namespace: str = DEFAULT_NAMESPACE) -> GlucoseSeries:
        """Return the gridded series ``index`` of a stored dataset.

        Raises
        ------
        InvalidHandleError
            When ``handle`` is not 64 lowercase hex digits.
        HandleNotFoundError
            When no dataset is stored under ``handle`` in ``namespace``.
        SeriesIndexError
            When ``index`` is outside ``0 .. n_series - 1``.
        """
        store = self._store(namespace)
        size = self._dataset_size(store, handle)
        index = self._check_index(index, size)
        series = store.read_series(handle, index)
        if series is None:
            raise HandleNotFoundError(f"dataset {handle[:12]}... is no longer stored; upload the file again")
        return series

    @staticmethod
    def _dataset_size(store: Store, handle: str) -> int:
        if not is_key(handle):
            raise InvalidHandleError(
                "invalid dataset handle: expected the 64 lowercase hex digits returned when the export was uploaded (POST datasets, or Engine.process)"
            )
        size = store.dataset_size(handle)
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

    def forecast(
        self,
        handle: str,
        index: int = 0,
        *,
        windows: str = "all",
        force: bool = False,
        namespace: str = DEFAULT_NAMESPACE,
        priority: str | Priority | None = None,
    ) -> Forecast:
        """Return the forecasts of series ``index``, from a cache or computed now.

        Parameters
        ----------
        handle : str
            Dataset handle from :meth:`process`.
        index : int
            Series index within the dataset.
        windows : {"all", "latest"}
            ``"latest"`` returns only the last window; it is sliced from
            cached ``"all"`` forecasts when those exist, else computed alone.
        force : bool
            Recompute and overwrite the stored forecasts.
        namespace : str
            Store namespace of the requesting user.
        priority : {"interactive", "background"}, optional
            Scheduling class; interactive by default.

        Raises
        ------
        InvalidHandleError, HandleNotFoundError, SeriesIndexError
            For a bad handle or index.
        ModelBusyError
            When the job did not start on a model copy within ``model_wait_seconds``.
        QueueFullError
            When the queue of the request's priority class is full.
        ModelUnavailableError
            When the model failed to load.
        """
        request = self.request_forecast(
            handle, index, windows=windows, force=force, namespace=namespace, priority=priority
        )
        pool = self._pool
        wait = pool.wait_seconds if pool is not None else self.model_wait_seconds
        return request.result(wait)

    def request_forecast(
        self,
        handle: str,
        index: int = 0,
        *,
        windows: str = "all",
        force: bool = False,
        namespace: str = DEFAULT_NAMESPACE,
        priority: str | Priority | None = None,
    ) -> ForecastRequest:
        """Start a forecast request and return it without waiting for the model.

        The arguments and errors are those of :meth:`forecast`, except that
        waiting happens in :meth:`ForecastRequest.result`. Cancelling the
        request drops its queued job unless another request shares it.
        """
        if windows not in WINDOW_CHOICES:
            raise ValueError(f"windows must be one of {WINDOW_CHOICES}, got {windows!r}")
        job_priority = _priority(priority)
        store = self._store(namespace)

        # A memory hit needs only the key: no store read, so it stays well under a millisecond.
        memory_checked = self._pool is not None
        if not force:
            cached = self._memory_hit(store, handle, index, windows, namespace)
            if cached is not None:
                self._count("forecast_cache_hits")
                return ForecastRequest(value=cached)

        index = self._check_index(index, self._dataset_size(store, handle))
        pool = self.load_models()
        key_all = self._key(handle, index, pool.model_id, "all")
        key = key_all if windows == "all" else self._key(handle, index, pool.model_id, "latest")

        if not force:
            cached = self._cached(store, key_all, key, namespace, check_memory=not memory_checked)
            if cached is not None:
                self._count("forecast_cache_hits")
                return ForecastRequest(value=cached)

        # Only a computation needs the series itself; the handle and index were checked above.
        series = store.read_series(handle, index)
        if series is None:
            raise HandleNotFoundError(f"dataset {handle[:12]}... is no longer stored; upload the file again")
        context = {
            "store": store,
            "series": series,
            "handle": handle,
            "index": index,
            "namespace": namespace,
            "key_all": key_all,
            "force": force,
        }
        job_key = (namespace, key, "force" if force else "cached")
        ticket = self._scheduler.submit(
            job_key,
            lambda model: self._run_job(model, key, windows, context),
            job_priority,
            owner=namespace,
        )
        if windows == "latest" and self.background_fill and not store.has_forecast(key_all):
            self._queue_fill(key_all, {**context, "force": False})
        return ForecastRequest(
            ticket=ticket,
            on_wait_timeout=lambda: self._count("wait_timeouts"),
        )

    def _memory_hit(self, store: Store, handle: str, index: int, windows: str, namespace: str) -> Forecast | None:
        """Return the forecast from the memory tier without reading the store's arrays, or None.

        Only a loaded model has a model id, so before loading nothing can hit.
        The handle must still be stored: an entry whose dataset was evicted
        from the store then raises HandleNotFoundError as before.
        """
        pool = self._pool
        if pool is None or not is_key(handle) or isinstance(index, bool) or not isinstance(index, int):
            return None
        key_all = self._key(handle, index, pool.model_id, "all")
        key = key_all if windows == "all" else self._key(handle, index, pool.model_id, "latest")
        for candidate in dict.fromkeys((key, key_all)):
            found = self.memory.get(_memory_key(namespace, candidate))
            if found is not None and store.has_dataset(handle):
                return found if candidate == key else last_window(found)
        return None

    def _cached(
        self, store: Store, key_all: str, key: str, namespace: str, *, check_memory: bool = True
    ) -> Forecast | None:
        # The memory tier first (unless _memory_hit just missed), then the store;
        # a latest window may be cut from all windows.
        for candidate in dict.fromkeys((key, key_all)):
            found = self.memory.get(_memory_key(namespace, candidate)) if check_memory else None
            if found is None:
                found = store.read_forecast(candidate)
                if found is not None:
                    self.memory.put(_memory_key(namespace, candidate), found)
            if found is not None:
                return found if candidate == key else last_window(found)
        return None

    def _queue_fill(self, key_all: str, context: dict) -> None:
        job_key = (context["namespace"], key_all, "cached")
        try:
            self._scheduler.submit(
                job_key,
                lambda model: self._run_job(model, key_all, "all", context),
                Priority.BACKGROUND,
                owner=context["namespace"],
                detached=True,
            )
        except QueueFullError:
            self._count("background_fills_rejected")
            logger.warning("background queue full; the other windows are computed on request instead")
            return
        self._count("background_fills_queued")

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

    def _lineage_settings(self, model_id: str) -> dict:
        return {
            "model_id": model_id,
            "n_samples": self.n_samples,
            "seed": self.seed,
            "levels": [float(level) for level in self.levels],
            "version": FORECAST_KEY_VERSION,
        }

    # ------------------------------------------------------------ jobs

    def _run_job(self, model, key: str, windows: str, context: dict) -> Forecast:
        """Compute and store one forecast entry on a borrowed model copy (runs on a worker thread)."""
        store: Store = context["store"]
        force = context["force"]

        # Another process sharing the store, or an earlier job, may have written it meanwhile.
        if not force:
            stored = store.read_forecast(key)
            if stored is not None:
                self.memory.put(_memory_key(context["namespace"], key), stored)
                return stored

        started = time.perf_counter()
        try:
            if windows == "latest":
                computed = self._compute(model, context["series"], "latest")
            else:
                computed = self._compute_all(model, context)
        except Exception:
            self._count("forecast_errors")
            raise
        self._count("forecasts_computed")
        logger.info(
            "forecast entry with %d windows ready in %.2f s on %s",
            computed.n_windows,
            time.perf_counter() - started,
            model.device,
        )

        store.write_forecast(
            key,
            computed,
            {
                "handle": context["handle"],
                "series_index": context["index"],
                "n_samples": self.n_samples,
                "windows": windows,
            },
            replace=force,
        )
        if windows == "all":
            self._record_lineage(store, model, key, context)

        # A latest window from forecast_series already has the stored dtypes and JSON-plain
        # metadata, so only merged windows are read back to keep first and later calls identical.
        stored = None if windows == "latest" else store.read_forecast(key)
        result = stored if stored is not None else computed
        self.memory.put(_memory_key(context["namespace"], key), result)
        return result

    def _compute(self, model, series: GlucoseSeries, windows) -> Forecast:
        from glurpc_lab.forecast import forecast_series

        device = str(model.device)

        def run(batch_size: int) -> Forecast:
            return forecast_series(
                model,
                series,
                n_samples=self.n_samples,
                seed=self.seed,
                levels=self.levels,
                windows=windows,
                batch_size=batch_size,
            )

        result, batch = forecast_with_backoff(
            run,
            self._batch_sizes.get(device, self.batch_size),
            device=device,
            on_retry=lambda _batch: self._count("out_of_memory_retries"),
        )
        # Later jobs on this device start from the batch size that fitted.
        self._batch_sizes[device] = batch
        self._count("windows_computed", result.n_windows)
        return result

    def _compute_all(self, model, context: dict) -> Forecast:
        """Compute every window, reusing a cached shorter series' windows and a cached latest window."""
        from glurpc_lab.forecast import window_ends

        series: GlucoseSeries = context["series"]
        store: Store = context["store"]
        ends = window_ends(series, model.config.len_seq)
        if context["force"] or ends.size == 0:
            return self._compute(model, series, "all")

        scaler = series_scaler(model.config, series)
        anchor = lineage_anchor(series, self._lineage_settings(model.model_id), model.config.len_seq)
        reused = find_reusable(store, anchor, series, scaler, ends)
        start = reused.n_windows if reused is not None else 0

        latest_key = self._key(context["handle"], context["index"], model.model_id, "latest")
        latest = self.memory.get(_memory_key(context["namespace"], latest_key)) or store.read_forecast(latest_key)
        stop = len(ends)
        if latest is not None and latest.n_windows == 1 and int(latest.input_end[0]) == int(ends[-1]) and start < stop:
            stop -= 1
        else:
            latest = None

        parts = [reused] if reused is not None else []
        metadata = reused.metadata if reused is not None else None
        if stop > start:
            middle = self._compute(model, series, slice(start, stop))
            parts.append(middle)
            metadata = middle.metadata
        if latest is not None:
            parts.append(latest)
            metadata = metadata or latest.metadata

        reused_windows = 0
        if reused is not None:
            reused_windows += reused.n_windows
        if latest is not None:
            reused_windows += 1
        self._count("windows_reused", reused_windows)
        if reused_windows:
            logger.info("reused %d of %d windows from cached forecasts", reused_windows, len(ends))
        if len(parts) == 1 and reused is None and latest is None:
            return parts[0]
        return merge_windows(parts, series, metadata)

    def _record_lineage(self, store: Store, model, key: str, context: dict) -> None:
        series: GlucoseSeries = context["series"]
        anchor = lineage_anchor(series, self._lineage_settings(model.model_id), model.config.len_seq)
        if anchor is None:
            return
        store.write_lineage(
            anchor,
            key,
            {"handle": context["handle"], "series_index": context["index"], "points": len(series)},
        )

    # ------------------------------------------------------------ cache administration

    def flush(self, *, namespace: str = DEFAULT_NAMESPACE, all_namespaces: bool = False) -> int:
        """Delete the stored datasets and forecasts of one namespace, or of all, and clear the memory tier.

        Returns the number of store entries deleted. The engine does not
        check the caller's rights, so the server allows this to admins only.
        """
        removed = self._store(namespace).flush(all_namespaces=all_namespaces)
        self.memory.clear()
        return removed

    # ------------------------------------------------------------ status

    def _count(self, name: str, amount: int = 1) -> None:
        with self._counter_lock:
            self._counters[name] += amount

    def health(self) -> dict:
        """Return model, device, pool, scheduler, cache and counter status as a JSON-ready dict.

        ``status`` is ``"ok"`` when the models are loaded, ``"not_loaded"``
        before the first forecast or :meth:`load_models`, ``"error"`` when
        loading failed, and ``"closed"`` after :meth:`close`. Nothing here
        waits for model work, so health stays fast under load.
        """
        pool = self._pool
        scheduler = self._scheduler
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
            "batch_size": self.batch_size,
            "batch_sizes_in_use": dict(self._batch_sizes),
            "pool": pool.stats() if pool is not None else None,
            "scheduler": scheduler.stats() if scheduler is not None else None,
            "store": self.store.counts(),
            "store_budget": self.store.budget.stats(),
            "memory_cache": self.memory.stats(),
            "counters": counters,
        }
        if self._load_error is not None:
            report["load_error"] = self._load_error
        return report

    def close(self) -> None:
        """Drop queued jobs, stop the workers and release the model copies. Stored data stays on disk."""
        with self._pool_lock:
            self._closed = True
            if self._scheduler is not None:
                self._scheduler.close()
                self._scheduler = None
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


