"""The engine: uploads to a zarr store, forecasts from a pool of loaded model copies."""

from glurpc_lab.engine.engine import Engine
from glurpc_lab.engine.errors import (
    HandleNotFoundError,
    InvalidHandleError,
    ModelBusyError,
    ModelUnavailableError,
    QueueFullError,
    SeriesIndexError,
)
from glurpc_lab.engine.keys import DEFAULT_NAMESPACE, namespace_for_user
from glurpc_lab.engine.memory_cache import MemoryCache
from glurpc_lab.engine.pool import ModelPool, default_devices
from glurpc_lab.engine.request import ForecastRequest
from glurpc_lab.engine.scheduler import Priority, Scheduler
from glurpc_lab.engine.store import Store, default_cache_dir

__all__ = [
    "DEFAULT_NAMESPACE",
    "Engine",
    "ForecastRequest",
    "HandleNotFoundError",
    "InvalidHandleError",
    "MemoryCache",
    "ModelBusyError",
    "ModelPool",
    "ModelUnavailableError",
    "Priority",
    "QueueFullError",
    "Scheduler",
    "SeriesIndexError",
    "Store",
    "default_cache_dir",
    "default_devices",
    "namespace_for_user",
]
