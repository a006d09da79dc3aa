"""The model pool with real tiny models: exclusive borrowing, bounded waits, several threads."""

from __future__ import annotations

import threading
import time

import pytest

from glurpc_lab.engine import ModelBusyError, ModelPool
from glurpc_lab.model import load_model


@pytest.fixture
def load(tiny_model_path):
    def load_copy(device: str):
        return load_model(tiny_model_path, device=device)

    return load_copy


def test_pool_loads_copies_per_device(load):
    pool = ModelPool(load, ["cpu", "cpu"], copies_per_device=2)

    assert len(pool.copies) == 4
    assert len({id(copy.module) for copy in pool.copies}) == 4
    assert pool.model_id.startswith("tiny-")
    assert pool.stats()["free"] == 4


def test_pool_lends_each_copy_to_one_thread(load):
    pool = ModelPool(load, ["cpu", "cpu"])
    in_use: set[int] = set()
    peak = [0]
    overlaps = []
    guard = threading.Lock()

    def work() -> None:
        for _ in range(5):
            with pool.borrow(timeout=30) as copy:
                with guard:
                    if id(copy) in in_use:
                        overlaps.append(id(copy))
                    in_use.add(id(copy))
                    peak[0] = max(peak[0], len(in_use))
                time.sleep(0.01)
                with guard:
                    in_use.discard(id(copy))

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    stats = pool.stats()
    assert overlaps == []
    assert peak[0] == 2
    assert stats["borrows"] == 30
    assert stats["free"] == 2
    assert stats["waiting"] == 0
    assert stats["timeouts"] == 0


def test_pool_wait_is_bounded(load):
    pool = ModelPool(load, ["cpu"], wait_seconds=0.2)

    with pool.borrow():
        started = time.perf_counter()
        with pytest.raises(ModelBusyError, match="retry later"):
            with pool.borrow():
                pass
        waited = time.perf_counter() - started

    assert 0.15 <= waited < 5
    assert pool.stats()["timeouts"] == 1
    with pool.borrow(timeout=0.1) as copy:
        assert copy is pool.copies[0]


def test_pool_returns_copy_after_error(load):
    pool = ModelPool(load, ["cpu"])

    with pytest.raises(RuntimeError, match="inference failed"):
        with pool.borrow():
            raise RuntimeError("inference failed")

    assert pool.stats()["free"] == 1


def test_pool_rejects_bad_settings(load):
    with pytest.raises(ValueError, match="copies_per_device"):
        ModelPool(load, ["cpu"], copies_per_device=0)
    with pytest.raises(ValueError, match="devices is empty"):
        ModelPool(load, [])
