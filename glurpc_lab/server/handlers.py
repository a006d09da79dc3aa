"""REST handlers under ``<base_url>/glurpc-lab/``.

Every verb requires jupyter_server authentication except the liveness and
readiness probes. Blocking work (parsing, zarr I/O, inference, JSON encoding
of large arrays) runs on the extension's thread pool, never on the event
loop. Errors are JSON objects ``{"message": ...}`` with a 4xx status for
bad input, 404 for unknown handles and 503 with ``Retry-After`` when the
model is busy or unavailable or a forecast queue is full. Health checks run
on a thread of their own, so they respond while every work thread is busy.
When the extension's ``per_user_namespaces`` is on, every route reads and
writes the requesting user's namespace only.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import json
import logging
import time
import traceback
from concurrent.futures import CancelledError

import tornado.httputil
import tornado.web
from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin

from glurpc_lab.engine.errors import (
    HandleNotFoundError,
    InvalidHandleError,
    ModelBusyError,
    ModelUnavailableError,
    QueueFullError,
    SeriesIndexError,
)
from glurpc_lab.engine.keys import DEFAULT_NAMESPACE, namespace_for_user
from glurpc_lab.ingest import read_export
from glurpc_lab.ingest.unified_export import to_unified_csv
from glurpc_lab.server import wire

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
"""``Retry-After`` value sent with 503 responses, in seconds."""


class RequestError(Exception):
    """A request the handler rejects with ``status`` and a message safe to show."""

    def __init__(self, status: int, message: str, **extra) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def _error_status(error: Exception) -> int | None:
    # Imported here so the server module loads even while ingestion is unavailable.
    from glurpc_lab.ingest import IngestError

    if isinstance(error, RequestError):
        return error.status
    if isinstance(error, (IngestError, InvalidHandleError)):
        return 400
    if isinstance(error, HandleNotFoundError):
        return 404
    if isinstance(error, SeriesIndexError):
        return 422
    if isinstance(error, (ModelBusyError, ModelUnavailableError, QueueFullError)):
        return 503
    return None


def json_errors(method):
    """Turn engine and validation errors raised by a handler verb into JSON error responses.

    Apply it below ``@tornado.web.authenticated`` so authentication runs first.
    """

    @functools.wraps(method)
    async def wrapper(self, *args, **kwargs):
        try:
            return await method(self, *args, **kwargs)
        except tornado.web.HTTPError:
            raise
        except CancelledError:
            # The client disconnected, so its queued job was dropped and no reply is sent.
            logger.info("%s %s cancelled after the client disconnected", self.request.method, type(self).__name__)
            return
        except Exception as error:
            status = _error_status(error)
            if status is None:
                # Only the exception type and stack go to the log: messages from
                # parsing libraries can quote file content.
                logger.error(
                    "%s %s failed with %s:\n%s",
                    self.request.method,
                    type(self).__name__,
                    type(error).__name__,
                    "".join(traceback.format_tb(error.__traceback__)),
                )
                self.send_error_json(500, "internal error; the server log has the details")
                return
            logger.info(
                "%s %s rejected with %d (%s)",
                self.request.method,
                type(self).__name__,
                status,
                type(error).__name__,
            )
            if status == 503:
                retry_after = error.retry_after if isinstance(error, QueueFullError) else RETRY_AFTER_SECONDS
                self.set_header("Retry-After", str(retry_after))
            if isinstance(error, RequestError):
                self.send_error_json(status, error.message, **error.extra)
            else:
                self.send_error_json(status, str(error))

    return wrapper


class GlurpcHandler(ExtensionHandlerMixin, APIHandler):
    """Common plumbing: the engine, the thread pool and JSON replies."""

    @property
    def engine(self):
        """The extension's :class:`glurpc_lab.engine.Engine`."""
        return self.extensionapp.engine

    @property
    def namespace(self) -> str:
        """Store namespace of the requesting user, or the shared one when namespaces are off."""
        if not self.extensionapp.per_user_namespaces:
            return DEFAULT_NAMESPACE
        return namespace_for_user(self.current_user.username)

    async def run_blocking(self, function, *args, **kwargs):
        """Run ``function(*args, **kwargs)`` on the extension's thread pool and await its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.extensionapp.executor, functools.partial(function, *args, **kwargs)
        )

    def send_json(self, payload, status: int = 200) -> None:
        """Finish with ``payload``: a dict, or a string that already contains JSON."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(payload if isinstance(payload, str) else json.dumps(payload))

    def send_error_json(self, status: int, message: str, **extra) -> None:
        """Finish with ``{"message": message, **extra}`` and ``status``."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({**extra, "message": message}))

    def parse_series_index(self, text: str) -> int:
        """Parse a series index from the URL path."""
        if not text.isdigit():
            raise RequestError(400, f"series index {text[:20]!r} is not a non-negative integer")
        return int(text)

    def query_int(self, name: str, default: int) -> int:
        """Return the integer query argument ``name``, or ``default`` when absent."""
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        try:
            return int(raw)
        except ValueError:
            raise RequestError(400, f"query argument {name} must be an integer, got {raw[:20]!r}") from None


class UploadHandler(GlurpcHandler):
    """Base for handlers whose POST body is an upload: streams the body and enforces the size limit.

    Bodies over the limit are read to the end but not kept, so the client
    receives a clean 413 and the server never keeps more than the limit in memory.
    """

    def body_limit(self) -> int:
        """Maximum accepted body size in bytes."""
        return int(self.extensionapp.max_upload_bytes)

    async def prepare(self):
        await super().prepare()
        self._chunks: list[bytes] = []
        self._received = 0
        self._too_large = False

        declared = self.request.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > self.body_limit():
            self._too_large = True

    def data_received(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received > self.body_limit():
            self._too_large = True
        if not self._too_large:
            self._chunks.append(chunk)

    def upload_body(self) -> bytes:
        """Return the whole request body, or raise a 413 :class:`RequestError` when it is over the limit."""
        if self._too_large:
            limit_mib = self.body_limit() / (1024 * 1024)
            raise RequestError(
                413,
                f"upload is larger than the {limit_mib:.1f} MiB limit "
                "(GlurpcLabApp.max_upload_bytes); upload a shorter export",
            )
        body = b"".join(self._chunks)
        content_type = self.request.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            return self._multipart_file(content_type, body)
        return body

    def _multipart_file(self, content_type: str, body: bytes) -> bytes:
        """Return the uploaded file of a multipart form: field ``file``, or the only file sent."""
        arguments: dict = {}
        files: dict = {}
        tornado.httputil.parse_body_arguments(content_type, body, arguments, files)
        uploads = files.get("file") or [upload for field in files.values() for upload in field]
        if len(uploads) != 1:
            raise RequestError(
                400,
                f"the multipart form contains {len(uploads)} files; send exactly one, as the field "
                "'file' (curl -F file=@EXPORT.csv), or send the file's bytes as the body",
            )
        return uploads[0]["body"]

    def json_body(self) -> dict:
        """Parse the request body as a JSON object."""
        body = self.upload_body()
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RequestError(400, f"request body is not valid JSON ({error.__class__.__name__})") from None
        if not isinstance(data, dict):
            raise RequestError(422, "request body must be a JSON object")
        return data


@tornado.web.stream_request_body
class ConvertToUnifiedHandler(UploadHandler):
    """``POST convert_to_unified``: gluRPC's conversion call; the export as form field ``file`` or as the body.

    Replies ``{"csv_content": ..., "error": null}`` with the gridded series as
    cgm-format's unified CSV; unlike gluRPC, a file that cannot be read gets a
    400 with the error instead of a 200.
    """

    @tornado.web.authenticated
    @json_errors
    async def post(self):
        content = self.upload_body()
        if not content:
            raise RequestError(400, "the request body is empty; send the export as form field 'file' or as the body")
        dataset = await self.run_blocking(read_export, content)
        csv_content = await self.run_blocking(to_unified_csv, dataset)
        self.send_json({"csv_content": csv_content, "error": None})


# ---------------------------------------------------------------- health


class LiveHandler(GlurpcHandler):
    """``GET health/live``: 200 while the server process responds."""

    @allow_unauthenticated
    def get(self):
        self.send_json({"status": "ok"})


class ReadyHandler(GlurpcHandler):
    """``GET health/ready``: 200 once the model copies are loaded, else 503."""

    @allow_unauthenticated
    def get(self):
        ready = self.engine.pool is not None
        if not ready:
            self.set_header("Retry-After", str(RETRY_AFTER_SECONDS))
        self.send_json({"ready": ready}, status=200 if ready else 503)


class HealthHandler(GlurpcHandler):
    """``GET health``: the engine's status, pool and cache counters."""

    @tornado.web.authenticated
    @json_errors
    async def get(self):
        loop = asyncio.get_running_loop()
        health = await loop.run_in_executor(self.extensionapp.status_executor, self.engine.health)
        self.send_json(health)


# ---------------------------------------------------------------- datasets


@tornado.web.stream_request_body
class DatasetsHandler(UploadHandler):
    """``POST datasets``: the raw export as the body; replies 201 with the dataset's summary."""

    @tornado.web.authenticated
    @json_errors
    async def post(self):
        content = self.upload_body()
        if not content:
            raise RequestError(400, "the request body is empty; send the export file's bytes as the body")
        info = await self.run_blocking(self.engine.process, content, namespace=self.namespace)
        self.send_json(wire.dataset_info_to_json(info), status=201)


class DatasetHandler(GlurpcHandler):
    """``GET datasets/<handle>``: the summary of a stored dataset."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, handle: str):
        info = await self.run_blocking(self.engine.info, handle, namespace=self.namespace)
        self.send_json(wire.dataset_info_to_json(info))


class SeriesHandler(GlurpcHandler):
    """``GET datasets/<handle>/series/<i>``: the gridded series arrays."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, handle: str, index: str):
        series_index = self.parse_series_index(index)

        def encode() -> str:
            return json.dumps(wire.series_to_json(self.engine.series(handle, series_index, namespace=namespace)))

        namespace = self.namespace

        self.send_json(await self.run_blocking(encode))


class ForecastHandler(GlurpcHandler):
    """``GET datasets/<handle>/series/<i>/forecasts[?windows=all|latest]``: the forecast arrays.

    The wait for the model runs on the event loop, not on a thread, and a
    client that disconnects withdraws its request, which drops the queued
    job unless another request shares it.
    """

    POLL_SECONDS = 0.05

    INLINE_ENCODE_WINDOWS = 4
    """Forecasts of at most this many windows are encoded on the event loop, larger ones on a thread."""

    _request = None

    def on_connection_close(self) -> None:
        if self._request is not None:
            self._request.cancel()
        super().on_connection_close()

    @tornado.web.authenticated
    @json_errors
    async def get(self, handle: str, index: str):
        series_index = self.parse_series_index(index)
        windows = self.get_query_argument("windows", "all")
        if windows not in ("all", "latest"):
            raise RequestError(400, f"query argument windows must be 'all' or 'latest', got {windows[:20]!r}")

        request = await self.run_blocking(
            self.engine.request_forecast, handle, series_index, windows=windows, namespace=self.namespace
        )
        self._request = request
        forecast = await self._wait(request)
        if forecast.n_windows <= self.INLINE_ENCODE_WINDOWS:
            # Encoding one window takes about 0.1 ms, less than a hop to the thread pool and back.
            self.send_json(wire.forecast_to_json(forecast))
        else:
            self.send_json(await self.run_blocking(lambda: json.dumps(wire.forecast_to_json(forecast))))

    async def _wait(self, request):
        pool = self.engine.pool
        wait_seconds = pool.wait_seconds if pool is not None else self.engine.model_wait_seconds
        deadline = time.monotonic() + wait_seconds
        while not request.done():
            job = request.ticket.job
            if not job.started.is_set() and time.monotonic() >= deadline:
                # result(0) withdraws the request and raises ModelBusyError.
                return request.result(0)
            await asyncio.sleep(self.POLL_SECONDS)
        return request.result(0)


def _plot_json(
    engine, handle: str, series_index: int, window: int, *, force: bool = False, namespace: str = DEFAULT_NAMESPACE
) -> str:
    """Return the Plotly figure JSON of one window; ``window`` counts from the end when negative."""
    from glurpc_lab.report.figures import window_figure

    series = engine.series(handle, series_index, namespace=namespace)

    # The latest window alone is cheap to compute; any other needs every window.
    if window == -1 and not force:
        forecast = engine.forecast(handle, series_index, windows="latest", namespace=namespace)
    else:
        forecast = engine.forecast(handle, series_index, force=force, namespace=namespace)

    total = forecast.n_windows
    if total == 0:
        raise RequestError(
            422,
            "this series has no forecasting window: it needs 8 hours (96 points) of gap-free readings",
        )
    if not -total <= window < total:
        raise RequestError(422, f"window {window} is out of range: this series has {total} windows")
    return window_figure(series, forecast, window).to_json()


class PlotHandler(GlurpcHandler):
    """``GET datasets/<handle>/series/<i>/plot?window=-1``: a Plotly fan chart of one window."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, handle: str, index: str):
        series_index = self.parse_series_index(index)
        window = self.query_int("window", -1)
        self.send_json(
            await self.run_blocking(_plot_json, self.engine, handle, series_index, window, namespace=self.namespace)
        )


# ---------------------------------------------------------------- gluRPC-compatible


def _warnings(summary) -> dict:
    """Return gluRPC's ``warnings`` object from a series summary's quality report."""
    quality = summary.quality
    return {
        "has_warnings": bool(quality.get("has_warnings", False)),
        "too_short": bool(quality.get("too_short", False)) or summary.windows == 0,
        "calibration": bool(quality.get("calibration", False)),
        "quality": bool(quality.get("quality", False)),
        "imputation": bool(quality.get("imputation", False)),
        "out_of_range": bool(quality.get("out_of_range", False)),
        "time_duplicates": bool(quality.get("time_duplicates", False)),
        "messages": list(quality.get("messages", [])),
    }


class GlurpcCompatHandler(UploadHandler):
    """Shared request parsing for the gluRPC-compatible endpoints."""

    def body_limit(self) -> int:
        # base64 grows the file by 4/3; the margin covers the JSON around it.
        return int(self.extensionapp.max_upload_bytes) * 4 // 3 + 4096

    def csv_bytes(self, data: dict) -> bytes:
        """Decode the ``csv_base64`` field."""
        encoded = data.get("csv_base64")
        if not isinstance(encoded, str) or not encoded:
            raise RequestError(422, "field csv_base64 is missing or empty; send the export encoded as base64")
        try:
            content = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(400, "field csv_base64 is not valid base64") from None
        if len(content) > int(self.extensionapp.max_upload_bytes):
            raise RequestError(413, "the decoded upload is larger than GlurpcLabApp.max_upload_bytes")
        return content

    def upload_request(self) -> tuple[bytes, bool]:
        """Parse a ``{csv_base64, force_calculate}`` body into the export bytes and the force flag."""
        data = self.json_body()
        return self.csv_bytes(data), self.flag(data, "force_calculate")

    @staticmethod
    def flag(data: dict, name: str) -> bool:
        """Return the optional boolean field ``name`` (False when absent)."""
        value = data.get(name, False)
        if not isinstance(value, bool):
            raise RequestError(422, f"field {name} must be true or false")
        return value


def _prefetch_done(handle: str, job) -> None:
    if job.error is not None and not isinstance(job.error, CancelledError):
        logger.warning("background forecast of dataset %s failed with %s", handle[:12], type(job.error).__name__)


@tornado.web.stream_request_body
class ProcessUnifiedHandler(GlurpcCompatHandler):
    """``POST process_unified`` {csv_base64, force_calculate}: gluRPC's upload call.

    Replies ``{handle, total_samples, warnings, error}`` where ``total_samples``
    is the number of windows of the first series. When the extension's
    ``prefetch_forecasts`` is on, the forecasts of the first series start
    computing in the background.
    """

    @tornado.web.authenticated
    @json_errors
    async def post(self):
        content, force = self.upload_request()

        namespace = self.namespace
        info = await self.run_blocking(self.engine.process, content, namespace=namespace)
        summary = info.series[0]
        reply = {
            "handle": info.handle,
            "total_samples": summary.windows,
            "warnings": _warnings(summary),
            "error": None,
        }
        if summary.windows == 0:
            message = "the first series has no forecasting window: it needs 8 hours (96 points) of gap-free readings"
            reply["error"] = message
            self.send_json({**reply, "message": message}, status=422)
            return

        if self.extensionapp.prefetch_forecasts or force:
            # Queued as background work that no client waits for, so a full queue only skips the prefetch.
            try:
                request = await self.run_blocking(
                    self.engine.request_forecast, info.handle, 0, force=force, namespace=namespace, priority="background"
                )
                request.add_done_callback(lambda done: _prefetch_done(info.handle, done.ticket.job) if done.ticket else None)
            except QueueFullError:
                logger.info("background queue full; dataset %s is forecast on request instead", info.handle[:12])
        self.send_json(reply)


@tornado.web.stream_request_body
class DrawPlotHandler(GlurpcCompatHandler):
    """``POST draw_a_plot`` {handle, index, force_calculate}: the fan chart of one window.

    ``index`` is 0 for the latest window, which forecasts past the last
    reading, -1 for the window before it, and so on. Inside a segment
    consecutive windows are 5 minutes apart.
    """

    def body_limit(self) -> int:
        # The body contains a handle and an index only.
        return 64 * 1024

    @tornado.web.authenticated
    @json_errors
    async def post(self):
        data = self.json_body()
        handle = data.get("handle")
        if not isinstance(handle, str):
            raise RequestError(422, "field handle is missing; pass the handle from process_unified")
        index = data.get("index", 0)
        if isinstance(index, bool) or not isinstance(index, int) or index > 0:
            raise RequestError(422, "field index must be an integer <= 0 (0 is the latest window)")
        force = self.flag(data, "force_calculate")
        self.send_json(
            await self.run_blocking(_plot_json, self.engine, handle, 0, index - 1, force=force, namespace=self.namespace)
        )


@tornado.web.stream_request_body
class QuickPlotHandler(GlurpcCompatHandler):
    """``POST quick_plot`` {csv_base64, force_calculate}: upload and plot the latest window in one call."""

    @tornado.web.authenticated
    @json_errors
    async def post(self):
        content, force = self.upload_request()
        namespace = self.namespace

        def plot() -> dict:
            info = self.engine.process(content, namespace=namespace)
            summary = info.series[0]
            figure = json.loads(_plot_json(self.engine, info.handle, 0, -1, force=force, namespace=namespace))
            return {"handle": info.handle, "plot_data": figure, "warnings": _warnings(summary), "error": None}

        started = time.perf_counter()
        reply = await self.run_blocking(plot)
        logger.info("quick_plot for %s in %.2f s", reply["handle"][:12], time.perf_counter() - started)
        self.send_json(reply)


# ---------------------------------------------------------------- administration


@tornado.web.stream_request_body
class FlushHandler(UploadHandler):
    """``POST cache/flush`` {all_namespaces}: delete stored datasets and forecasts; admins only.

    Without ``all_namespaces`` only the admin's own namespace is flushed.
    Admins are the user names in the extension's ``admin_users``.
    """

    def body_limit(self) -> int:
        return 64 * 1024

    @tornado.web.authenticated
    @json_errors
    async def post(self):
        username = getattr(self.current_user, "username", None)
        if username not in self.extensionapp.admin_users:
            raise RequestError(403, "flushing the cache is limited to the users in GlurpcLabApp.admin_users")
        data = self.json_body() if self._received else {}
        every = data.get("all_namespaces", False)
        if not isinstance(every, bool):
            raise RequestError(422, "field all_namespaces must be true or false")
        removed = await self.run_blocking(self.engine.flush, namespace=self.namespace, all_namespaces=every)
        logger.info("cache flushed by an admin: %d entries removed", removed)
        self.send_json({"removed": removed, "all_namespaces": every})


def route_table() -> list[tuple[str, type]]:
    """Return the extension's routes, relative to the server's base URL."""
    handle = r"([^/]+)"
    return [
        (r"glurpc-lab/health/live", LiveHandler),
        (r"glurpc-lab/health/ready", ReadyHandler),
        (r"glurpc-lab/health", HealthHandler),
        (r"glurpc-lab/datasets", DatasetsHandler),
        (rf"glurpc-lab/datasets/{handle}", DatasetHandler),
        (rf"glurpc-lab/datasets/{handle}/series/([^/]+)", SeriesHandler),
        (rf"glurpc-lab/datasets/{handle}/series/([^/]+)/forecasts", ForecastHandler),
        (rf"glurpc-lab/datasets/{handle}/series/([^/]+)/plot", PlotHandler),
        (r"glurpc-lab/convert_to_unified", ConvertToUnifiedHandler),
        (r"glurpc-lab/process_unified", ProcessUnifiedHandler),
        (r"glurpc-lab/draw_a_plot", DrawPlotHandler),
        (r"glurpc-lab/quick_plot", QuickPlotHandler),
        (r"glurpc-lab/cache/flush", FlushHandler),
    ]
