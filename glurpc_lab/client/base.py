"""The one interface through which widgets, reports and the CLI reach the engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from glurpc_lab.forecast.result import Forecast
from glurpc_lab.ingest.series import GlucoseSeries


@dataclass(frozen=True)
class SeriesSummary:
    """One series of a processed upload, without its arrays."""

    subject: str
    points: int
    windows: int
    quality: dict


@dataclass(frozen=True)
class DatasetInfo:
    """A processed upload: its handle and one summary per series.

    ``handle`` is a content hash of the parsed, gridded data; it does not
    depend on the file name or on rows that carry no glucose.
    """

    handle: str
    source_format: str
    series: tuple[SeriesSummary, ...]


class Client(Protocol):
    """Operations every engine front-end uses, in-process or over REST."""

    def health(self) -> dict:
        """Return the engine's status: model, devices, queue and cache counters."""
        ...

    def process(self, content: bytes) -> DatasetInfo:
        """Parse an export's bytes, store the gridded series and return its handle."""
        ...

    def series(self, handle: str, index: int = 0) -> GlucoseSeries:
        """Return the gridded series ``index`` of a processed upload."""
        ...

    def forecast(self, handle: str, index: int = 0, *, windows: str = "all") -> Forecast:
        """Return the forecasts of series ``index``, computing them if needed.

        ``windows="all"`` returns every window; ``"latest"`` only the newest one,
        which forecasts past the last reading and costs one window of compute.
        """
        ...
