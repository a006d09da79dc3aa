"""REST client: talks to the glurpc_lab server extension of a running Jupyter server."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request

from glurpc_lab.client.base import DatasetInfo
from glurpc_lab.forecast.result import Forecast
from glurpc_lab.ingest.series import GlucoseSeries
from glurpc_lab.server import wire

logger = logging.getLogger(__name__)


class RemoteError(RuntimeError):
    """A request to the server failed; ``status`` is the HTTP status, 0 when none was received."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RemoteInputError(RemoteError, ValueError):
    """The server rejected the input (HTTP 400, 413 or 422); the message gives the reason."""


class RemoteNotFoundError(RemoteError, LookupError):
    """The handle or route does not exist on the server (HTTP 404)."""


class RemoteAuthError(RemoteError, PermissionError):
    """The token was missing or rejected (HTTP 401 or 403)."""


class RemoteBusyError(RemoteError, TimeoutError):
    """The server is busy or its model is unavailable (HTTP 503); ``retry_after`` is in seconds."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(status, message)
        self.retry_after = retry_after


def _remote_error(status: int, message: str, retry_after: str | None) -> RemoteError:
    if status in (400, 413, 422):
        return RemoteInputError(status, message)
    if status == 404:
        return RemoteNotFoundError(status, message)
    if status in (401, 403):
        return RemoteAuthError(status, message)
    if status == 503:
        seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
        return RemoteBusyError(status, message, seconds)
    return RemoteError(status, message)


class RestClient:
    """A :class:`~glurpc_lab.client.base.Client` for the server extension's REST API.

    Parameters
    ----------
    base_url : str
        The Jupyter server's URL including its base path, e.g.
        ``"http://127.0.0.1:8888/"`` or ``"https://hub.example/user/ana/"``.
    token : str
        Jupyter server token, sent as ``Authorization: token ...``.
    timeout : float
        Socket timeout per request in seconds. Computing the forecasts of a
        long series on CPU can take minutes.
    """

    def __init__(self, base_url: str, token: str, *, timeout: float = 600.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/") + "/glurpc-lab/"
        self.timeout = float(timeout)
        self._headers = {"Authorization": f"token {token}"}

    def _request(self, method: str, path: str, *, body: bytes | None = None, query: dict | None = None):
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = "application/octet-stream"
        request = urllib.request.Request(url, data=body, method=method, headers=headers)

        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                message = json.loads(raw).get("message") or error.reason
            except (ValueError, AttributeError):
                message = str(error.reason)
            raise _remote_error(error.code, str(message), error.headers.get("Retry-After")) from None
        except urllib.error.URLError as error:
            raise RemoteError(0, f"cannot reach {self.base_url}: {error.reason}") from None

    def health(self) -> dict:
        """Return the engine's status: model, devices, pool and cache counters."""
        return self._request("GET", "health")

    def process(self, content: bytes) -> DatasetInfo:
        """Upload an export's bytes, and return the stored dataset's handle and summaries."""
        return wire.dataset_info_from_json(self._request("POST", "datasets", body=bytes(content)))

    def info(self, handle: str) -> DatasetInfo:
        """Return the summary of a stored dataset."""
        return wire.dataset_info_from_json(self._request("GET", f"datasets/{_quote(handle)}"))

    def series(self, handle: str, index: int = 0) -> GlucoseSeries:
        """Return the gridded series ``index`` of a processed upload."""
        data = self._request("GET", f"datasets/{_quote(handle)}/series/{int(index)}")
        return wire.series_from_json(data)

    def forecast(self, handle: str, index: int = 0, *, windows: str = "all") -> Forecast:
        """Return the forecasts of series ``index`` (``windows`` is ``"all"`` or ``"latest"``)."""
        data = self._request(
            "GET", f"datasets/{_quote(handle)}/series/{int(index)}/forecasts", query={"windows": windows}
        )
        return wire.forecast_from_json(data)

    def plot(self, handle: str, index: int = 0, window: int = -1) -> dict:
        """Return the Plotly figure dict of one window; negative ``window`` counts from the end."""
        return self._request(
            "GET", f"datasets/{_quote(handle)}/series/{int(index)}/plot", query={"window": int(window)}
        )


def _quote(text: str) -> str:
    return urllib.parse.quote(str(text), safe="")
