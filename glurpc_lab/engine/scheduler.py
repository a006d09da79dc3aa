"""A priority scheduler that runs jobs on the model copies of a pool.

Interactive jobs (the latest window, a window a user is looking at) run
before background jobs (filling every window, cohort batches). Within one
priority class, owners (namespaces, i.e. users) take turns: each job gets a
start tag one above the later of its owner's previous tag and the tag of the
last job started, and the smallest tag runs first (start-time fair queuing
with unit cost). Identical requests coalesce into one job, a job whose every
requester cancelled is dropped before it starts, and each class has a bounded
queue that rejects new work with :class:`QueueFullError` when full.

A worker thread per model copy takes the best queued job only once it has
acquired a free copy, so a job waits in the queue (where it can still be promoted or
cancelled) rather than on a copy.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import CancelledError
from enum import IntEnum
from typing import Any

from glurpc_lab.engine.errors import QueueFullError

logger = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER_SECONDS = 30
"""``retry_after`` of a full queue before any job has finished, in seconds."""


class Priority(IntEnum):
    """Priority classes; lower values run first."""

    INTERACTIVE = 0
    BACKGROUND = 1


class Job:
    """One unit of work shared by every request that coalesced into it."""

    def __init__(self, key: Hashable, run: Callable[[Any], Any], priority: Priority, owner: str) -> None:
        self.key = key
        self.run = run
        self.priority = priority
        self.owner = owner
        self.tag = 0
        self.state = "queued"
        self.waiters = 0
        self.detached = False
        self.device: str | None = None
        self.value: Any = None
        self.error: BaseException | None = None
        self._done = threading.Event()
        self.started = threading.Event()
        self._callbacks: list[Callable[[Job], None]] = []
        self._callbacks_lock = threading.Lock()

    def finish(self, value: Any, error: BaseException | None) -> None:
        """Store the outcome, wake the waiters and run the done callbacks."""
        self.value = value
        self.error = error
        # Waiters for the start wake too, and then see that the job has ended.
        self.started.set()
        with self._callbacks_lock:
            self._done.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                logger.exception("a job done callback failed")

    def add_done_callback(self, callback: Callable[[Job], None]) -> None:
        """Call ``callback(job)`` when the job ends; at once when it already has."""
        with self._callbacks_lock:
            if not self._done.is_set():
                self._callbacks.append(callback)
                return
        callback(self)


class Ticket:
    """One requester's interest in a job: wait for its result or cancel it."""

    def __init__(self, scheduler: Scheduler, job: Job, *, coalesced: bool) -> None:
        self._scheduler = scheduler
        self.job = job
        self.coalesced = coalesced
        self._released = False

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the job and return its value, or raise its error.

        Raises
        ------
        TimeoutError
            When the job has not ended within ``timeout`` seconds; the ticket
            stays valid, so the caller decides whether to cancel it.
        concurrent.futures.CancelledError
            When the job was dropped before it started.
        """
        if not self.job._done.wait(timeout):
            raise TimeoutError(f"the job did not finish within {timeout:g} s")
        if self.job.error is not None:
            raise self.job.error
        return self.job.value

    def done(self) -> bool:
        """Return True once the job has ended (finished, failed or dropped)."""
        return self.job._done.is_set()

    def cancel(self) -> bool:
        """Withdraw this requester; return True when that dropped the queued job.

        A job that is running, or that other requesters still wait for, goes on.
        """
        if self._released:
            return False
        self._released = True
        return self._scheduler._withdraw(self.job)

    def add_done_callback(self, callback: Callable[[Job], None]) -> None:
        """Call ``callback(job)`` when the job ends."""
        self.job.add_done_callback(callback)


class Scheduler:
    """Run jobs on a model pool's copies, interactive first, with coalescing and bounded queues.

    Parameters
    ----------
    pool : ModelPool
        Supplies the model copies; one worker thread is started per copy.
    max_queued : dict, optional
        Maximum queued (not yet running) jobs per :class:`Priority`.
    """

    POLL_SECONDS = 0.2

    def __init__(self, pool, *, max_queued: dict[Priority, int] | None = None) -> None:
        limits = {Priority.INTERACTIVE: 64, Priority.BACKGROUND: 1024}
        limits.update(max_queued or {})
        for priority, limit in limits.items():
            if limit < 1:
                raise ValueError(f"max_queued for {priority.name.lower()} jobs must be at least 1, got {limit}")

        self.pool = pool
        self.max_queued = {Priority(priority): int(limit) for priority, limit in limits.items()}
        self._cond = threading.Condition()
        self._heap: list[tuple[int, int, int, Job]] = []
        self._jobs: dict[Hashable, Job] = {}
        self._queued = {priority: 0 for priority in Priority}
        self._order = itertools.count()
        self._owner_tags: dict[tuple[Priority, str], int] = {}
        self._virtual_time = {priority: 0 for priority in Priority}
        self._running = 0
        self._closed = False
        self._mean_run_seconds: float | None = None
        self._counters = {
            "submitted": 0,
            "coalesced": 0,
            "rejected": 0,
            "cancelled": 0,
            "completed": 0,
            "failed": 0,
        }
        self._runs_by_copy: dict[str, int] = {}

        self._workers = [
            threading.Thread(target=self._work, name=f"glurpc-lab-worker-{number}", daemon=True)
            for number in range(len(pool.copies))
        ]
        for worker in self._workers:
            worker.start()

    # ------------------------------------------------------------ submitting

    def submit(
        self,
        key: Hashable,
        run: Callable[[Any], Any],
        priority: Priority = Priority.INTERACTIVE,
        *,
        owner: str = "",
        detached: bool = False,
    ) -> Ticket:
        """Queue ``run(model_copy)`` under ``key``, or join the queued or running job with that key.

        Joining a queued job with a more urgent ``priority`` promotes it.
        A ``detached`` submission (e.g. a background fill that no caller waits for)
        keeps the job alive even after every other requester cancelled.

        Raises
        ------
        QueueFullError
            When a new job is needed and the queue of ``priority`` is full.
        RuntimeError
            After :meth:`close`.
        """
        priority = Priority(priority)
        with self._cond:
            if self._closed:
                raise RuntimeError("the scheduler is closed")

            job = self._jobs.get(key)
            if job is not None:
                job.waiters += 1
                job.detached = job.detached or detached
                self._counters["coalesced"] += 1
                if job.state == "queued" and priority < job.priority:
                    self._queued[job.priority] -= 1
                    self._queued[priority] += 1
                    job.priority = priority
                    self._push(job)
                    self._cond.notify()
                return Ticket(self, job, coalesced=True)

            if self._queued[priority] >= self.max_queued[priority]:
                self._counters["rejected"] += 1
                retry_after = self._retry_after()
                raise QueueFullError(
                    f"the {priority.name.lower()} queue is full ({self.max_queued[priority]} jobs); "
                    f"retry in {retry_after} s",
                    retry_after,
                )

            job = Job(key, run, priority, owner)
            job.waiters = 1
            job.detached = detached
            self._jobs[key] = job
            self._queued[priority] += 1
            self._counters["submitted"] += 1
            self._push(job)
            self._cond.notify()
            return Ticket(self, job, coalesced=False)

    def _push(self, job: Job) -> None:
        # Start-time fair queuing: an owner's next tag follows its previous one,
        # but never starts behind the work that has already begun.
        owner_key = (job.priority, job.owner)
        job.tag = max(self._owner_tags.get(owner_key, 0), self._virtual_time[job.priority]) + 1
        self._owner_tags[owner_key] = job.tag
        heapq.heappush(self._heap, (int(job.priority), job.tag, next(self._order), job))

    def _retry_after(self) -> int:
        if self._mean_run_seconds is None:
            return DEFAULT_RETRY_AFTER_SECONDS
        backlog = sum(self._queued.values()) + self._running
        estimate = self._mean_run_seconds * backlog / max(1, len(self._workers))
        return int(min(300, max(1, math.ceil(estimate))))

    def _withdraw(self, job: Job) -> bool:
        with self._cond:
            job.waiters -= 1
            if job.waiters > 0 or job.detached or job.state != "queued":
                return False
            job.state = "cancelled"
            self._queued[job.priority] -= 1
            self._counters["cancelled"] += 1
            if self._jobs.get(job.key) is job:
                del self._jobs[job.key]
        job.finish(None, CancelledError("the request was cancelled before its job started"))
        return True

    # ------------------------------------------------------------ running

    def _copy_label(self, copy: Any) -> str:
        number = next((i for i, candidate in enumerate(self.pool.copies) if candidate is copy), -1)
        return f"{number}/{getattr(copy, 'device', 'unknown')}"

    def _next_job(self) -> Job | None:
        # Heap entries of promoted or cancelled jobs are stale; skip them.
        while self._heap:
            priority, tag, _, job = heapq.heappop(self._heap)
            if job.state == "queued" and priority == job.priority and tag == job.tag:
                return job
        return None

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not any(self._queued.values()):
                    self._cond.wait()
                if self._closed:
                    return

            copy = self.pool.acquire(timeout=self.POLL_SECONDS)
            if copy is None:
                continue

            with self._cond:
                job = self._next_job()
                if job is None:
                    self.pool.release(copy)
                    continue
                job.state = "running"
                job.device = self._copy_label(copy)
                self._queued[job.priority] -= 1
                self._virtual_time[job.priority] = max(self._virtual_time[job.priority], job.tag)
                self._running += 1
            job.started.set()

            started = time.perf_counter()
            value, error = None, None
            try:
                value = job.run(copy)
            except BaseException as caught:  # handed to the waiters, never lost
                error = caught
            finally:
                self.pool.release(copy)
            elapsed = time.perf_counter() - started

            with self._cond:
                job.state = "done"
                self._running -= 1
                if self._jobs.get(job.key) is job:
                    del self._jobs[job.key]
                self._counters["failed" if error is not None else "completed"] += 1
                self._runs_by_copy[job.device] = self._runs_by_copy.get(job.device, 0) + 1
                previous = self._mean_run_seconds
                self._mean_run_seconds = elapsed if previous is None else 0.8 * previous + 0.2 * elapsed
            if error is not None:
                logger.warning("a %s job failed with %s", job.priority.name.lower(), type(error).__name__)
            job.finish(value, error)

    # ------------------------------------------------------------ status

    def stats(self) -> dict:
        """Return queue lengths and limits, running jobs, counters and runs per model copy.

        ``runs_by_copy`` is keyed ``"<copy number>/<device>"``, e.g. ``"1/cuda:0"``.
        """
        with self._cond:
            return {
                "queued": {priority.name.lower(): count for priority, count in self._queued.items()},
                "max_queued": {priority.name.lower(): limit for priority, limit in self.max_queued.items()},
                "running": self._running,
                "workers": len(self._workers),
                "mean_run_seconds": None if self._mean_run_seconds is None else round(self._mean_run_seconds, 4),
                "runs_by_copy": dict(self._runs_by_copy),
                **self._counters,
            }

    def close(self, timeout: float = 5.0) -> None:
        """Drop every queued job, stop the workers and wait up to ``timeout`` seconds for running jobs."""
        with self._cond:
            self._closed = True
            dropped = [job for job in self._jobs.values() if job.state == "queued"]
            for job in dropped:
                job.state = "cancelled"
                self._queued[job.priority] -= 1
            self._jobs = {key: job for key, job in self._jobs.items() if job.state == "running"}
            self._heap.clear()
            self._cond.notify_all()
        for job in dropped:
            job.finish(None, CancelledError("the engine closed before the job started"))
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
