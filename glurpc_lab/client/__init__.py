"""Clients of the engine: in-process and REST, behind one interface."""

from glurpc_lab.client.base import Client, DatasetInfo, SeriesSummary

__all__ = ["Client", "DatasetInfo", "SeriesSummary"]
