"""Clients of the engine: in-process and REST, behind one interface."""

from glurpc_lab.client.base import Client, DatasetInfo, SeriesSummary
from glurpc_lab.client.local import LocalClient
from glurpc_lab.client.rest import (
    RemoteAuthError,
    RemoteBusyError,
    RemoteError,
    RemoteInputError,
    RemoteNotFoundError,
    RestClient,
)

__all__ = [
    "Client",
    "DatasetInfo",
    "LocalClient",
    "RemoteAuthError",
    "RemoteBusyError",
    "RemoteError",
    "RemoteInputError",
    "RemoteNotFoundError",
    "RestClient",
    "SeriesSummary",
]
