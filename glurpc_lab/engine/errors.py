"""Errors the engine raises for requests it cannot serve. Messages are safe to show a user."""

from __future__ import annotations


class InvalidHandleError(ValueError):
    """A handle that is not 64 lowercase hex digits."""


class HandleNotFoundError(LookupError):
    """A well-formed handle with no stored dataset."""


class SeriesIndexError(IndexError):
    """A series or window index outside the dataset."""


class ModelBusyError(TimeoutError):
    """No model copy became free within the configured wait."""


class ModelUnavailableError(RuntimeError):
    """The model copies failed to load, so no forecast can be computed."""


class QueueFullError(RuntimeError):
    """The queue of the request's priority class is full; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = int(retry_after)
