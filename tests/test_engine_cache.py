"""Engine caching and scheduling end to end: real exports, the tiny real model, a zarr store on disk."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
import torch

from conftest import CORPORA, SMALL_EXPORT, TEST_SAMPLES, corpus_bytes
from glurpc_lab.engine import (
    Engine,
    HandleNotFoundError,
    ModelBusyError,
    QueueFullError,
    namespace_for_user,
)

FORECAST_ARRAYS = ("input_end", "time_end", "quantiles", "sample_mean", "sample_std", "truth")


def _engine(model_path, cache_dir, **options) -> Engine:
    options.setdefault("devices", ["cpu"])
    options.setdefault("n_samples", TEST_SAMPLES)
    return Engine(model_path, cache_dir=cache_dir, **options)


def _newest_lines(first: int, stop: int) -> bytes:
    """Lines ``first:stop`` of the Nightscout export, which lists the newest reading first."""
    lines = corpus_bytes(SMALL_EXPORT).splitlines(keepends=True)
    return b"".join(lines[first:stop])


def _count_forward_rows(engine: Engine) -> list[int]:
    """Count the rows (windows x samples) of every forward pass over all model copies."""
    rows = [0]

    def hook(module, inputs, output) -> None:
        rows[0] += int(inputs[0].shape[0])

    for copy in engine.load_models().copies:
        copy.module.register_forward_hook(hook)
    return rows


def _wait_for(condition, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_extended_upload_computes_only_new_windows(tiny_model_path, tmp_path):
    older = _newest_lines(30, 200)
    extended = _newest_lines(0, 200)

    with _engine(tiny_model_path, tmp_path / "store") as engine:
        old_info = engine.process(older)
        old = engine.forecast(old_info.handle)
        rows = _count_forward_rows(engine)
        new_info = engine.process(extended)
        reused = engine.forecast(new_info.handle)
        counters = engine.health()["counters"]

    with _engine(tiny_model_path, tmp_path / "fresh") as fresh_engine:
        fresh = fresh_engine.forecast(fresh_engine.process(extended).handle)

    new_windows = new_info.series[0].windows - old_info.series[0].windows
    assert old.n_windows == 51
    assert reused.n_windows == 81
    assert new_windows == 30
    assert rows[0] == new_windows * TEST_SAMPLES
    assert counters["windows_reused"] == 51
    np.testing.assert_array_equal(reused.input_end, fresh.input_end)
    np.testing.assert_array_equal(reused.time_end, fresh.time_end)
    np.testing.assert_array_equal(reused.truth, fresh.truth)
    # Shared windows have the same seeds and inputs; only float rounding of batched kernels may differ.
    np.testing.assert_allclose(reused.quantiles, fresh.quantiles, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(reused.sample_mean, fresh.sample_mean, rtol=1e-5, atol=1e-4)
    # The old last window forecast past its last reading; the extension observed those steps.
    assert np.isnan(old.truth[-1]).all()
    assert not np.isnan(reused.truth[old.n_windows - 1]).any()


def test_extension_needs_same_prefix(tiny_model_path, tmp_path):
    with _engine(tiny_model_path, tmp_path / "store") as engine:
        engine.forecast(engine.process(_newest_lines(30, 200)).handle)
        # Dropping the oldest readings changes the start, so nothing can be reused.
        engine.forecast(engine.process(_newest_lines(0, 180)).handle)

        assert engine.health()["counters"]["windows_reused"] == 0


def test_latest_first_then_background_fill(tiny_model_path, cache_dir, small_export):
    with _engine(tiny_model_path, cache_dir, background_fill=True) as engine:
        handle = engine.process(small_export).handle
        rows = _count_forward_rows(engine)

        latest = engine.forecast(handle, windows="latest")
        assert latest.n_windows == 1
        _wait_for(lambda: engine.health()["scheduler"]["completed"] == 2)
        every = engine.forecast(handle)
        health = engine.health()

    assert every.n_windows == 81
    assert rows[0] == 81 * TEST_SAMPLES
    assert health["counters"]["background_fills_queued"] == 1
    assert health["counters"]["windows_reused"] == 1
    assert health["counters"]["forecast_cache_hits"] == 1
    np.testing.assert_array_equal(every.quantiles[-1], latest.quantiles[0])


def test_memory_tier_serves_without_disk(tiny_model_path, cache_dir, small_export):
    with _engine(tiny_model_path, cache_dir) as engine:
        handle = engine.process(small_export).handle
        first = engine.forecast(handle, windows="latest")
        # Deleting the entries on disk proves the second forecast came from memory.
        shutil.rmtree(engine.store.forecasts_dir)
        engine.store.forecasts_dir.mkdir()
        second = engine.forecast(handle, windows="latest")
        memory = engine.health()["memory_cache"]

    np.testing.assert_array_equal(second.quantiles, first.quantiles)
    assert memory["hits"] >= 1
    assert memory["entries"] == 1
    assert memory["bytes"] > 0


def test_memory_tier_can_be_disabled(tiny_model_path, cache_dir, small_export):
    with _engine(tiny_model_path, cache_dir, memory_cache_bytes=0) as engine:
        handle = engine.process(small_export).handle
        engine.forecast(handle, windows="latest")
        engine.forecast(handle, windows="latest")

        assert engine.health()["memory_cache"]["entries"] == 0
        assert engine.health()["counters"]["forecast_cache_hits"] == 1


def test_out_of_memory_halves_batch(tiny_model_path, cache_dir, small_export):
    """An out-of-memory error injected on CPU: no GPU is needed to test the retry logic."""
    max_rows = 8 * TEST_SAMPLES

    def fail_large_batches(module, inputs) -> None:
        if inputs[0].shape[0] > max_rows:
            raise torch.OutOfMemoryError("CUDA out of memory (injected by the test)")

    with _engine(tiny_model_path, cache_dir / "a", batch_size=64) as engine:
        handle = engine.process(small_export).handle
        for copy in engine.load_models().copies:
            copy.module.register_forward_pre_hook(fail_large_batches)
        retried = engine.forecast(handle)
        health = engine.health()

    with _engine(tiny_model_path, cache_dir / "b", batch_size=64) as plain:
        expected = plain.forecast(plain.process(small_export).handle)

    assert retried.n_windows == 81
    assert health["counters"]["out_of_memory_retries"] == 3
    assert health["batch_sizes_in_use"] == {"cpu": 8}
    assert health["counters"]["forecast_errors"] == 0
    np.testing.assert_allclose(retried.quantiles, expected.quantiles, rtol=1e-5, atol=1e-4)


def test_out_of_memory_at_batch_one(tiny_model_path, cache_dir, small_export):
    def always_fail(module, inputs) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory (injected by the test)")

    with _engine(tiny_model_path, cache_dir, batch_size=4) as engine:
        handle = engine.process(small_export).handle
        for copy in engine.load_models().copies:
            copy.module.register_forward_pre_hook(always_fail)

        with pytest.raises(ModelBusyError, match="out of memory"):
            engine.forecast(handle, windows="latest")
        health = engine.health()

    assert health["counters"]["out_of_memory_retries"] == 2
    assert health["counters"]["forecast_errors"] == 1
    assert health["status"] == "ok"


def test_full_interactive_queue_raises(tiny_model_path, cache_dir, small_export):
    with _engine(tiny_model_path, cache_dir, max_queued_interactive=1, model_wait_seconds=30) as engine:
        first = engine.process(small_export)
        second = engine.process(_newest_lines(0, 190))

        with engine.load_models().borrow():
            queued = engine.request_forecast(first.handle, windows="latest")
            joined = engine.request_forecast(first.handle, windows="latest")
            with pytest.raises(QueueFullError, match="interactive queue is full"):
                engine.request_forecast(second.handle, windows="latest")
            started = time.perf_counter()
            health = engine.health()
            health_seconds = time.perf_counter() - started

        assert queued.result(30).n_windows == 1
        assert joined.result(30).n_windows == 1

    assert health["scheduler"]["queued"]["interactive"] == 1
    assert health["scheduler"]["rejected"] == 1
    assert health_seconds < 1.0


def test_cancelled_request_computes_nothing(tiny_model_path, cache_dir, small_export):
    with _engine(tiny_model_path, cache_dir) as engine:
        handle = engine.process(small_export).handle
        rows = _count_forward_rows(engine)

        with engine.load_models().borrow():
            request = engine.request_forecast(handle)
            assert request.cancel() is True

        _wait_for(lambda: engine.pool.stats()["free"] == 1)
        health = engine.health()

    assert rows[0] == 0
    assert health["scheduler"]["cancelled"] == 1
    assert health["store"]["forecasts"] == 0


def test_namespaces_isolate_users(tiny_model_path, cache_dir, small_export):
    alice = namespace_for_user("alice")
    bob = namespace_for_user("bob@example.org")

    with _engine(tiny_model_path, cache_dir) as engine:
        alice_info = engine.process(small_export, namespace=alice)
        bob_info = engine.process(small_export, namespace=bob)
        shared_info = engine.process(small_export)

        assert engine.series(alice_info.handle, namespace=alice).subject
        with pytest.raises(HandleNotFoundError):
            engine.series(alice_info.handle, namespace=bob)
        with pytest.raises(HandleNotFoundError):
            engine.forecast(alice_info.handle, windows="latest")

    assert len({alice_info.handle, bob_info.handle, shared_info.handle}) == 3
    assert alice.startswith("u-")
    assert len(alice) == 34
    assert "alice" not in alice
    assert sorted(path.name for path in (cache_dir / "ns").iterdir()) == sorted([alice, bob, "local"])


def test_flush_clears_namespace(tiny_model_path, cache_dir, small_export):
    other = namespace_for_user("other")
    with _engine(tiny_model_path, cache_dir) as engine:
        handle = engine.process(small_export).handle
        engine.forecast(handle, windows="latest")
        engine.process(small_export, namespace=other)

        removed = engine.flush()

        assert removed == 2
        assert engine.store.counts() == {"datasets": 0, "forecasts": 0}
        assert engine.store.in_namespace(other).counts()["datasets"] == 1
        with pytest.raises(HandleNotFoundError):
            engine.forecast(handle, windows="latest")
        assert engine.flush(all_namespaces=True) == 1
        assert engine.store.in_namespace(other).counts()["datasets"] == 0


def test_store_budget_evicts_least_recently_used(tiny_model_path, cache_dir, small_export):
    with _engine(tiny_model_path, cache_dir, store_budget_bytes=10**9) as probe:
        probe.process(small_export)
        dataset_bytes = probe.store.budget.scan()[0][1]

    budget = int(dataset_bytes * 2.5)
    uploads = [_newest_lines(0, 200), _newest_lines(0, 190), _newest_lines(0, 180)]
    with _engine(tiny_model_path, cache_dir / "budget", store_budget_bytes=budget) as engine:
        handles = []
        for content in uploads[:2]:
            handles.append(engine.process(content).handle)
            time.sleep(0.05)
        engine.series(handles[0])
        time.sleep(0.05)
        handles.append(engine.process(uploads[2]).handle)
        stored = [engine.store.has_dataset(handle) for handle in handles]
        stats = engine.health()["store_budget"]

    assert stored == [True, False, True]
    assert stats["evicted_entries"] == 1
    assert stats["bytes_at_last_check"] <= budget


@pytest.mark.parametrize("memory_cache_bytes", [256 * 1024 * 1024, 0])
def test_cache_hit_reads_no_series(tiny_model_path, cache_dir, small_export, memory_cache_bytes):
    """A hit in either tier needs the forecast key only, never the stored series arrays."""
    with _engine(tiny_model_path, cache_dir, memory_cache_bytes=memory_cache_bytes) as engine:
        handle = engine.process(small_export).handle
        first = engine.forecast(handle, windows="latest")
        # Removing the series arrays (but not the dataset's metadata) makes any series read fail.
        shutil.rmtree(engine.store.datasets_dir / handle / "0")

        second = engine.forecast(handle, windows="latest")
        hits = engine.health()["counters"]["forecast_cache_hits"]

    np.testing.assert_array_equal(second.quantiles, first.quantiles)
    assert hits == 1


def test_memory_tier_keeps_namespaces_apart(tiny_model_path, cache_dir, small_export):
    other = namespace_for_user("other")
    with _engine(tiny_model_path, cache_dir) as engine:
        handle = engine.process(small_export).handle
        engine.forecast(handle, windows="latest")

        with pytest.raises(HandleNotFoundError):
            engine.forecast(handle, windows="latest", namespace=other)


def test_memory_hit_after_dataset_eviction_raises(tiny_model_path, cache_dir, small_export):
    with _engine(tiny_model_path, cache_dir) as engine:
        handle = engine.process(small_export).handle
        engine.forecast(handle, windows="latest")
        engine.store.remove("datasets", handle)

        with pytest.raises(HandleNotFoundError):
            engine.forecast(handle, windows="latest")


def test_computed_latest_matches_stored_copy(tiny_model_path, cache_dir, small_export):
    with _engine(tiny_model_path, cache_dir) as engine:
        handle = engine.process(small_export).handle
        computed = engine.forecast(handle, windows="latest")
        pool = engine.load_models()
        key = engine._key(handle, 0, pool.model_id, "latest")
        stored = engine.store.read_forecast(key)

    for name in FORECAST_ARRAYS + ("horizon_minutes", "levels"):
        assert getattr(computed, name).dtype == getattr(stored, name).dtype, name
        np.testing.assert_array_equal(getattr(computed, name), getattr(stored, name), err_msg=name)
    assert computed.metadata == stored.metadata
    assert (computed.subject, computed.seed, computed.model_id) == (stored.subject, stored.seed, stored.model_id)
