"""A pending or completed forecast request, as the engine returns it to its callers."""

from __future__ import annotations

from collections.abc import Callable

from glurpc_lab.engine.errors import ModelBusyError
from glurpc_lab.engine.scheduler import Ticket
from glurpc_lab.forecast.result import Forecast


class ForecastRequest:
    """A forecast that is either already known (from a cache) or computed by a scheduler job.

    Parameters
    ----------
    value : Forecast, optional
        The forecast, when it came from a cache.
    ticket : Ticket, optional
        The scheduler ticket of the job that computes the forecast.
    transform : callable, optional
        Applied to the job's value before it is returned, e.g. to keep only
        the latest window.
    on_wait_timeout : callable, optional
        Called once when :meth:`result` gives up waiting for a model copy.
    """

    def __init__(
        self,
        *,
        value: Forecast | None = None,
        ticket: Ticket | None = None,
        transform: Callable[[Forecast], Forecast] | None = None,
        on_wait_timeout: Callable[[], None] | None = None,
    ) -> None:
        if (value is None) == (ticket is None):
            raise ValueError("pass exactly one of value and ticket")
        self._value = value
        self.ticket = ticket
        self._transform = transform
        self._on_wait_timeout = on_wait_timeout

    @property
    def from_cache(self) -> bool:
        """True when the forecast came from the memory tier or the store without running the model."""
        return self.ticket is None

    def done(self) -> bool:
        """Return True once :meth:`result` would return or raise without waiting."""
        return self.ticket is None or self.ticket.done()

    def result(self, wait_seconds: float | None = None) -> Forecast:
        """Wait for the forecast and return it.

        Parameters
        ----------
        wait_seconds : float, optional
            Maximum wait in seconds for the job to start on a model copy.
            Once it runs, this waits for it to finish. None waits forever.

        Raises
        ------
        ModelBusyError
            When the job did not start in time; the request is then cancelled.
        concurrent.futures.CancelledError
            When the request was cancelled before its job started.
        """
        if self.ticket is None:
            return self._value
        job = self.ticket.job
        if not job.started.wait(wait_seconds) and not self.ticket.done():
            dropped = self.ticket.cancel()
            if self._on_wait_timeout is not None:
                self._on_wait_timeout()
            if dropped or not job.started.is_set():
                raise ModelBusyError(
                    f"no model copy became free within {wait_seconds:g} s; retry later"
                )
        value = self.ticket.result()
        return self._transform(value) if self._transform is not None else value

    def cancel(self) -> bool:
        """Withdraw this request; return True when that dropped its queued job."""
        return self.ticket.cancel() if self.ticket is not None else False

    def add_done_callback(self, callback: Callable[[ForecastRequest], None]) -> None:
        """Call ``callback(request)`` once the request is answered, failed or cancelled."""
        if self.ticket is None:
            callback(self)
        else:
            self.ticket.add_done_callback(lambda _job: callback(self))
