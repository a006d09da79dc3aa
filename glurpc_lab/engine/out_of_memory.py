"""Forecasting that halves its batch and retries when the device runs out of memory."""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from glurpc_lab.engine.errors import ModelBusyError
from glurpc_lab.forecast.result import Forecast

logger = logging.getLogger(__name__)


def is_out_of_memory(error: BaseException) -> bool:
    """Return True for a device out-of-memory error.

    ``torch.OutOfMemoryError`` covers CUDA in torch 2.x; other backends raise
    a plain ``RuntimeError`` whose message contains "out of memory".
    """
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def _release_cached_memory(device: str) -> None:
    # Blocks freed by the failed pass stay reserved by the caching allocator until emptied.
    if str(device).startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()


def forecast_with_backoff(
    forecast: Callable[[int], Forecast],
    batch_size: int,
    *,
    device: str,
    on_retry: Callable[[int], None] | None = None,
) -> tuple[Forecast, int]:
    """Call ``forecast(batch_size)``, halving the batch after each out-of-memory error.

    Parameters
    ----------
    forecast : callable
        ``forecast(batch_size) -> Forecast``; runs the model.
    batch_size : int
        Windows per forward pass to try first.
    device : str
        Torch device of the model, whose cached memory is released before a retry.
    on_retry : callable, optional
        ``on_retry(new_batch_size)``, called before each retry (for counters).

    Returns
    -------
    forecast : Forecast
    batch_size : int
        The batch size that succeeded, to start from next time on this device.

    Raises
    ------
    ModelBusyError
        When even one window per batch runs out of memory.
    """
    batch = max(1, int(batch_size))
    while True:
        try:
            return forecast(batch), batch
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            _release_cached_memory(device)
            if batch == 1:
                logger.error("out of memory on %s even with 1 window per batch", device)
                raise ModelBusyError(
                    f"the model ran out of memory on {device} even with 1 window per batch; retry later"
                ) from error
            batch = max(1, batch // 2)
            logger.warning("out of memory on %s; retrying with %d windows per batch", device, batch)
            if on_retry is not None:
                on_retry(batch)
