"""The scheduler on a real pool of tiny model copies: order, coalescing, cancellation, bounds, fairness."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError

import pytest

from glurpc_lab.engine import ModelPool, Priority, QueueFullError, Scheduler
from glurpc_lab.model import load_model


@pytest.fixture
def make_scheduler(tiny_model_path):
    schedulers = []

    def make(devices=("cpu",), **options) -> Scheduler:
        pool = ModelPool(lambda device: load_model(tiny_model_path, device=device), list(devices))
        scheduler = Scheduler(pool, **options)
        schedulers.append(scheduler)
        return scheduler

    yield make
    for scheduler in schedulers:
        scheduler.close()


def _blocker(scheduler: Scheduler, key="blocker"):
    """Occupy one model copy until the returned event is set; return (event, started event, ticket)."""
    release = threading.Event()
    started = threading.Event()

    def run(model):
        started.set()
        release.wait(30)
        return "blocker done"

    ticket = scheduler.submit(key, run)
    assert started.wait(30)
    return release, ticket


def _recorder(order: list, label: str):
    def run(model):
        order.append(label)
        return label

    return run


def test_interactive_runs_before_background(make_scheduler):
    scheduler = make_scheduler()
    order: list[str] = []
    release, _ = _blocker(scheduler)

    tickets = [
        scheduler.submit("fill-a", _recorder(order, "fill-a"), Priority.BACKGROUND),
        scheduler.submit("fill-b", _recorder(order, "fill-b"), Priority.BACKGROUND),
        scheduler.submit("latest-a", _recorder(order, "latest-a"), Priority.INTERACTIVE),
        scheduler.submit("latest-b", _recorder(order, "latest-b"), Priority.INTERACTIVE),
    ]
    release.set()
    for ticket in tickets:
        ticket.result(30)

    assert order == ["latest-a", "latest-b", "fill-a", "fill-b"]


def test_identical_requests_coalesce(make_scheduler):
    scheduler = make_scheduler()
    runs: list[str] = []
    release, _ = _blocker(scheduler)

    first = scheduler.submit("same", _recorder(runs, "first"), Priority.BACKGROUND)
    second = scheduler.submit("same", _recorder(runs, "second"), Priority.BACKGROUND)
    third = scheduler.submit("same", _recorder(runs, "third"), Priority.BACKGROUND)
    release.set()

    assert [ticket.result(30) for ticket in (first, second, third)] == ["first"] * 3
    assert runs == ["first"]
    assert (first.coalesced, second.coalesced, third.coalesced) == (False, True, True)
    assert scheduler.stats()["coalesced"] == 2
    assert scheduler.stats()["submitted"] == 2


def test_interactive_request_promotes_queued_job(make_scheduler):
    scheduler = make_scheduler()
    order: list[str] = []
    release, _ = _blocker(scheduler)

    other = scheduler.submit("other-fill", _recorder(order, "other-fill"), Priority.BACKGROUND)
    fill = scheduler.submit("fill", _recorder(order, "fill"), Priority.BACKGROUND)
    viewed = scheduler.submit("fill", _recorder(order, "unused"), Priority.INTERACTIVE)
    release.set()
    for ticket in (other, fill, viewed):
        ticket.result(30)

    assert order == ["fill", "other-fill"]


def test_cancelled_request_drops_queued_job(make_scheduler):
    scheduler = make_scheduler()
    runs: list[str] = []
    release, _ = _blocker(scheduler)

    lonely = scheduler.submit("lonely", _recorder(runs, "lonely"))
    shared = scheduler.submit("shared", _recorder(runs, "shared"))
    shared_again = scheduler.submit("shared", _recorder(runs, "unused"))
    detached = scheduler.submit("fill", _recorder(runs, "fill"), Priority.BACKGROUND, detached=True)
    viewer = scheduler.submit("fill", _recorder(runs, "unused"), Priority.BACKGROUND)

    assert lonely.cancel() is True
    assert lonely.cancel() is False
    assert shared.cancel() is False
    assert viewer.cancel() is False
    assert scheduler.stats()["queued"] == {"interactive": 1, "background": 1}
    release.set()

    with pytest.raises(CancelledError):
        lonely.result(30)
    assert shared_again.result(30) == "shared"
    assert detached.result(30) == "fill"
    assert runs == ["shared", "fill"]
    assert scheduler.stats()["cancelled"] == 1


def test_running_job_is_not_cancelled(make_scheduler):
    scheduler = make_scheduler()
    release, blocker = _blocker(scheduler)

    assert blocker.cancel() is False
    release.set()

    assert blocker.result(30) == "blocker done"


def test_full_queue_rejects_new_jobs(make_scheduler):
    scheduler = make_scheduler(max_queued={Priority.INTERACTIVE: 1, Priority.BACKGROUND: 2})
    release, _ = _blocker(scheduler)
    runs: list[str] = []

    scheduler.submit("a", _recorder(runs, "a"), Priority.BACKGROUND)
    scheduler.submit("b", _recorder(runs, "b"), Priority.BACKGROUND)
    with pytest.raises(QueueFullError, match="background queue is full") as caught:
        scheduler.submit("c", _recorder(runs, "c"), Priority.BACKGROUND)
    joined = scheduler.submit("a", _recorder(runs, "unused"), Priority.BACKGROUND)
    interactive = scheduler.submit("d", _recorder(runs, "d"), Priority.INTERACTIVE)
    stats = scheduler.stats()
    release.set()

    assert caught.value.retry_after >= 1
    assert joined.coalesced
    assert stats["rejected"] == 1
    assert stats["queued"] == {"interactive": 1, "background": 2}
    assert interactive.result(30) == "d"
    assert joined.result(30) == "a"


def test_owners_take_turns(make_scheduler):
    scheduler = make_scheduler()
    order: list[str] = []
    release, _ = _blocker(scheduler)

    tickets = [scheduler.submit(f"a{i}", _recorder(order, f"a{i}"), Priority.BACKGROUND, owner="alice") for i in range(4)]
    tickets += [scheduler.submit(f"b{i}", _recorder(order, f"b{i}"), Priority.BACKGROUND, owner="bob") for i in range(2)]
    release.set()
    for ticket in tickets:
        ticket.result(30)

    assert order == ["a0", "b0", "a1", "b1", "a2", "a3"]


def test_copies_on_two_devices_run_in_parallel(make_scheduler):
    scheduler = make_scheduler(devices=("cpu", "cpu"))
    both_running = threading.Barrier(2, timeout=30)
    copies = []

    def run(model):
        copies.append(id(model))
        # Each job waits for the other, so this only passes when two copies run at once.
        both_running.wait()
        return model.device

    first = scheduler.submit("one", run)
    second = scheduler.submit("two", run)

    assert first.result(30) == second.result(30) == "cpu"
    assert len(set(copies)) == 2
    assert scheduler.stats()["runs_by_copy"] == {"0/cpu": 1, "1/cpu": 1}


def test_job_error_reaches_every_waiter(make_scheduler):
    scheduler = make_scheduler()

    def fail(model):
        raise RuntimeError("inference failed")

    release, _ = _blocker(scheduler)
    first = scheduler.submit("bad", fail)
    second = scheduler.submit("bad", fail)
    release.set()

    for ticket in (first, second):
        with pytest.raises(RuntimeError, match="inference failed"):
            ticket.result(30)
    assert scheduler.stats()["failed"] == 1


def test_close_drops_queued_jobs(make_scheduler):
    scheduler = make_scheduler()
    release, _ = _blocker(scheduler)
    queued = scheduler.submit("queued", lambda model: "ran")

    closer = threading.Thread(target=scheduler.close)
    closer.start()
    with pytest.raises(CancelledError):
        queued.result(30)
    release.set()
    closer.join(30)

    with pytest.raises(RuntimeError, match="closed"):
        scheduler.submit("late", lambda model: "ran")
