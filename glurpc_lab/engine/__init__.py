"""The engine: uploads to a zarr store, forecasts from a pool of loaded model copies."""

from glurpc_lab.engine.engine import Engine
from glurpc_lab.engine.errors import (
    HandleNotFoundError,
    InvalidHandleError,
    ModelBusyError,
    ModelUnavailableError,
    SeriesIndexError,
)
from glurpc_lab.engine.pool import ModelPool, default_devices
from glurpc_lab.engine.store import Store, default_cache_dir

__all__ = [
    "Engine",
    "HandleNotFoundError",
    "InvalidHandleError",
    "ModelBusyError",
    "ModelPool",
    "ModelUnavailableError",
    "SeriesIndexError",
    "Store",
    "default_cache_dir",
    "default_devices",
]
