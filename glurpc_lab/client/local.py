"""In-process client: calls an :class:`~glurpc_lab.engine.Engine` directly."""

from __future__ import annotations

from glurpc_lab.client.base import DatasetInfo
from glurpc_lab.forecast.result import Forecast
from glurpc_lab.ingest.series import GlucoseSeries


class LocalClient:
    """A :class:`~glurpc_lab.client.base.Client` backed by an engine in this process.

    Parameters
    ----------
    engine : Engine, optional
        The engine to use; a default one (bundled model, default store) is
        created when None, and closed by :meth:`close`.
    """

    def __init__(self, engine=None) -> None:
        if engine is None:
            from glurpc_lab.engine import Engine

            engine = Engine()
            self._owns_engine = True
        else:
            self._owns_engine = False
        self.engine = engine

    def health(self) -> dict:
        """Return the engine's status: model, devices, pool and cache counters."""
        return self.engine.health()

    def process(self, content: bytes) -> DatasetInfo:
        """Parse an export's bytes, store the gridded series and return its handle."""
        return self.engine.process(content)

    def series(self, handle: str, index: int = 0) -> GlucoseSeries:
        """Return the gridded series ``index`` of a processed upload."""
        return self.engine.series(handle, index)

    def forecast(self, handle: str, index: int = 0, *, windows: str = "all") -> Forecast:
        """Return the forecasts of series ``index`` (``windows`` is ``"all"`` or ``"latest"``)."""
        return self.engine.forecast(handle, index, windows=windows)

    def close(self) -> None:
        """Close the engine when this client created it."""
        if self._owns_engine:
            self.engine.close()

    def __enter__(self) -> LocalClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
