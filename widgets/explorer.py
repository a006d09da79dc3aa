"""ForecastExplorer: upload an export in the browser, check its quality and scrub through forecast windows."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import anywidget
import numpy as np
import traitlets

from glurpc_lab.client.base import Client, DatasetInfo
from glurpc_lab.forecast.result import Forecast
from glurpc_lab.ingest.series import GlucoseSeries
from glurpc_lab.report.figures import BANDS, window_title, window_view
from glurpc_lab.report.html import NOTICE

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 8 * 1024 * 1024
"""Largest upload the widget accepts, in bytes.

Widget messages travel over the kernel websocket, whose default maximum
message size in tornado (used by jupyter_server) is 10 MiB. 8 MiB leaves
room for the message envelope. Larger files go through the REST upload.
"""

MAX_REQUEST_ID_CHARS = 64

MESSAGE_TYPES = ("upload", "get_window", "select_series")
"""Message types the front end may send; any other type gets an error reply."""

WINDOW_BUFFERS = ("history_minutes", "history_glucose", "history_imputed", "horizon_minutes", "quantiles", "truth")
"""Names of the float32 buffers of a ``window`` message, in the order they are attached."""


class MessageError(ValueError):
    """A front-end message that is not one of the accepted types or has invalid fields."""


def _float32(values: np.ndarray) -> bytes:
    # Little-endian float32, which every browser's Float32Array reads natively.
    return np.ascontiguousarray(values, dtype="<f4").tobytes()


def _require_int(content: dict, key: str) -> int:
    value = content.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MessageError(f"field {key!r} must be an integer, got {type(value).__name__}")
    return value


def _request_id(content: dict) -> str | None:
    value = content.get("request_id")
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_REQUEST_ID_CHARS:
        raise MessageError(f"field 'request_id' must be a string of at most {MAX_REQUEST_ID_CHARS} characters")
    return value


class ForecastExplorer(anywidget.AnyWidget):
    """Jupyter widget that uploads a CGM export and shows its quality flags and forecast fan charts.

    The browser side draws an upload control, a quality panel, an SVG fan
    chart and a slider over the forecasting windows. Small state travels as
    synced traits. Window arrays travel as float32 binary buffers in custom
    messages, one window per message, so a long series never crosses the
    websocket as a whole.

    Parameters
    ----------
    client : glurpc_lab.client.Client, optional
        Engine front-end used for processing and forecasting. Defaults to a
        ``LocalClient`` with the bundled model, created on first use.
    """

    _esm = Path(__file__).with_name("explorer.js")
    _css = Path(__file__).with_name("explorer.css")

    status = traitlets.Unicode("empty", help="empty, processing, ready or error").tag(sync=True)
    error = traitlets.Unicode("", help="Message shown to the user when status is error").tag(sync=True)
    notice = traitlets.Unicode(NOTICE, help="Research-use notice shown above the widget").tag(sync=True)
    max_upload_bytes = traitlets.Int(MAX_UPLOAD_BYTES, help="Largest accepted upload in bytes").tag(sync=True)
    subjects = traitlets.List(traitlets.Unicode(), help="Subject label of each series in the upload").tag(sync=True)
    series_index = traitlets.Int(0, help="Index of the series shown").tag(sync=True)
    n_windows = traitlets.Int(0, help="Forecasting windows of the series shown").tag(sync=True)
    window = traitlets.Int(-1, help="Selected window index; -1 before a series is loaded").tag(sync=True)
    quality = traitlets.Dict(help="QualityReport.to_dict() of the series shown").tag(sync=True)
    # Not "model_id": ipywidgets.Widget.model_id is the comm id of the widget.
    forecast_model_id = traitlets.Unicode("", help="model_id of the model that produced the forecasts").tag(sync=True)

    def __init__(self, client: Client | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._client = client
        self._dataset: DatasetInfo | None = None
        self._series: GlucoseSeries | None = None
        self._forecast: Forecast | None = None
        self._sending_reply = False
        self.on_msg(self._on_custom_message)
        self.observe(self._on_window_change, names="window")

    @classmethod
    def from_path(cls, path: str | os.PathLike, client: Client | None = None) -> ForecastExplorer:
        """Create an explorer and load an export file from disk, without the browser upload.

        Raises
        ------
        glurpc_lab.ingest.IngestError
            If the file cannot be read as a CGM export.
        """
        explorer = cls(client=client)
        explorer.load(Path(path).read_bytes())
        return explorer

    @property
    def client(self) -> Client:
        """The engine front-end; a ``LocalClient`` with the bundled model unless one was passed."""
        if self._client is None:
            from glurpc_lab.client import LocalClient

            self._client = LocalClient()
        return self._client

    @property
    def dataset(self) -> DatasetInfo | None:
        """The processed upload, or None before the first load."""
        return self._dataset

    def load(self, content: bytes) -> DatasetInfo:
        """Process an export's bytes, show its first series and select the latest window.

        Raises
        ------
        glurpc_lab.ingest.IngestError
            If the bytes cannot be read as a CGM export; ``status`` becomes "error".
        """
        self.status = "processing"
        self.error = ""
        try:
            dataset = self.client.process(bytes(content))
            if not dataset.series:
                raise ValueError("the file contains no glucose series")
            self._dataset = dataset
            self.subjects = [summary.subject for summary in dataset.series]
            self._show_series(0)
        except Exception as exc:
            self._fail(exc)
            raise
        logger.info("explorer loaded %d bytes: %d series", len(content), len(dataset.series))
        return dataset

    def select_series(self, index: int) -> None:
        """Show series ``index`` of the loaded upload and select its latest window."""
        if self._dataset is None:
            raise ValueError("no file is loaded: upload an export or use ForecastExplorer.from_path first")
        if not 0 <= index < len(self._dataset.series):
            raise ValueError(f"series {index} is out of range: the upload has {len(self._dataset.series)} series")
        self._show_series(index)

    def _show_series(self, index: int) -> None:
        handle = self._dataset.handle
        series = self.client.series(handle, index)
        # NOTE: this forecasts every window and blocks the kernel until done. With the
        # published model on a CPU a two-week export can take minutes; the engine caches the result.
        forecast = self.client.forecast(handle, index)
        self._series = series
        self._forecast = forecast

        # Set every trait before "status", so the front end never receives "ready" with stale state.
        self._sending_reply = True
        try:
            self.series_index = index
            self.quality = series.quality.to_dict()
            self.forecast_model_id = forecast.model_id
            self.n_windows = forecast.n_windows
            self.window = forecast.n_windows - 1
        finally:
            self._sending_reply = False
        self.status = "ready"
        if forecast.n_windows:
            self._send_custom(*self.window_message(self.window))

    def _fail(self, exc: Exception) -> None:
        if isinstance(exc, ValueError):
            # IngestError is a ValueError whose message is written to be shown to the user.
            message = str(exc)
        else:
            message = f"Processing failed ({type(exc).__name__}). The kernel log has the details."

        # One sync message for both traits, so the browser never shows the error state without its text.
        with self.hold_sync():
            self.error = message
            self.status = "error"
        logger.warning("explorer load failed: %s", type(exc).__name__)

    def window_message(self, window: int, request_id: str | None = None) -> tuple[dict, list[bytes]]:
        """Build the ``window`` message: metadata as JSON, arrays as float32 buffers.

        Times are minutes relative to the window's last input point, whose
        naive time, as stored in the series, is ``time_end`` (ISO 8601, seconds).

        Returns
        -------
        tuple of (dict, list of bytes)
            The message content and its buffers, named in ``content["buffers"]``.
        """
        if self._series is None or self._forecast is None:
            raise ValueError("no file is loaded: upload an export or use ForecastExplorer.from_path first")
        view = window_view(self._series, self._forecast, window)

        minute = np.timedelta64(1, "m")
        history_minutes = (view.history_time - view.time_end) / minute
        levels = [float(level) for level in self._forecast.levels]
        band_indices = []
        for coverage, lower_level, upper_level in BANDS:
            band_indices.append([coverage, levels.index(lower_level), levels.index(upper_level)])

        content = {
            "type": "window",
            "request_id": request_id,
            "series_index": self.series_index,
            "window": view.window,
            "n_windows": self._forecast.n_windows,
            "is_future": view.is_future,
            "title": window_title(view, self._forecast, self._series.subject),
            "time_end": str(np.datetime_as_string(view.time_end, unit="s")),
            "time_zone": self._series.quality.time_zone,
            "last_observed": view.last_observed,
            "levels": levels,
            "bands": band_indices,
            "median_index": levels.index(0.5),
            "buffers": list(WINDOW_BUFFERS),
        }
        buffers = [
            _float32(history_minutes),
            _float32(view.history_glucose),
            _float32(view.history_imputed),
            _float32(self._forecast.horizon_minutes),
            _float32(self._forecast.quantiles[view.window]),
            _float32(view.truth),
        ]
        return content, buffers

    def dispatch(self, content: object, buffers: list) -> list[tuple[dict, list[bytes]]]:
        """Validate and run one front-end message; return the replies to send.

        Accepted types are ``upload`` (one binary buffer holding the file,
        ``size`` its length in bytes), ``get_window`` (``window``, a window
        index) and ``select_series`` (``index``). Every message may carry a
        ``request_id`` string, which the replies echo. Invalid messages get
        an ``error`` reply instead of raising.
        """
        request_id = None
        try:
            if not isinstance(content, dict):
                raise MessageError(f"a message must be a JSON object, got {type(content).__name__}")
            request_id = _request_id(content)
            kind = content.get("type")
            if kind not in MESSAGE_TYPES:
                raise MessageError(f"unknown message type {kind!r}: expected one of {', '.join(MESSAGE_TYPES)}")

            if kind == "upload":
                return self._dispatch_upload(content, buffers, request_id)
            if kind == "get_window":
                return self._dispatch_get_window(content, request_id)
            return self._dispatch_select_series(content, request_id)
        except ValueError as exc:
            # MessageError, IngestError and range errors carry messages meant for the user.
            logger.info("explorer rejected a message: %s", type(exc).__name__)
            return [({"type": "error", "request_id": request_id, "message": str(exc)}, [])]
        except Exception as exc:
            logger.exception("explorer message failed")
            message = f"Processing failed ({type(exc).__name__}). The kernel log has the details."
            return [({"type": "error", "request_id": request_id, "message": message}, [])]

    def _dispatch_upload(self, content: dict, buffers: list, request_id: str | None) -> list:
        size = _require_int(content, "size")
        if len(buffers) != 1:
            raise MessageError(f"an upload must carry exactly one binary buffer, got {len(buffers)}")
        data = bytes(buffers[0])
        if len(data) != size:
            raise MessageError(f"the upload carries {len(data)} bytes but declares size {size}: upload the file again")
        if size > MAX_UPLOAD_BYTES:
            raise MessageError(
                f"the file is {size / 2**20:.1f} MiB, above the widget's {MAX_UPLOAD_BYTES / 2**20:.0f} MiB limit: "
                "upload it through the glurpc-lab REST API instead"
            )
        if size == 0:
            raise MessageError("the file is empty: choose a CGM export file")

        self.load(data)
        return [({"type": "uploaded", "request_id": request_id, "series": len(self.subjects)}, [])]

    def _dispatch_get_window(self, content: dict, request_id: str | None) -> list:
        window = _require_int(content, "window")
        if self._forecast is None:
            raise MessageError("no file is loaded: upload a CGM export first")
        if not 0 <= window < self._forecast.n_windows:
            raise MessageError(
                f"window {window} is out of range: the series has {self._forecast.n_windows} windows"
            )

        self._sending_reply = True
        try:
            self.window = window
        finally:
            self._sending_reply = False
        return [self.window_message(window, request_id)]

    def _dispatch_select_series(self, content: dict, request_id: str | None) -> list:
        index = _require_int(content, "index")
        self.select_series(index)
        return [({"type": "series_selected", "request_id": request_id, "index": index}, [])]

    def _on_custom_message(self, _widget, content, buffers) -> None:
        for reply, reply_buffers in self.dispatch(content, list(buffers or [])):
            self._send_custom(reply, reply_buffers)

    def _on_window_change(self, change) -> None:
        # A window set from Python (explorer.window = 5) pushes that window to
        # every view. A window set while handling a message is sent in the reply.
        if self._sending_reply or self._forecast is None:
            return
        if 0 <= change["new"] < self._forecast.n_windows:
            self._send_custom(*self.window_message(change["new"]))

    def _send_custom(self, content: dict, buffers: list[bytes]) -> None:
        self.send(content, buffers or None)
