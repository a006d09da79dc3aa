"""The engine end to end: real exports, the tiny real model and a zarr store on disk."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from conftest import TEST_SAMPLES, corpus_bytes
from glurpc_lab.engine import (
    Engine,
    HandleNotFoundError,
    InvalidHandleError,
    ModelUnavailableError,
    SeriesIndexError,
)
from glurpc_lab.ingest import IngestError
from glurpc_lab.model import Gluformer, GluformerConfig


def _engine(model_path, cache_dir, **options) -> Engine:
    options.setdefault("devices", ["cpu"])
    options.setdefault("n_samples", TEST_SAMPLES)
    return Engine(model_path, cache_dir=cache_dir, **options)


def _count_forward_calls(engine: Engine) -> list[int]:
    """Load the engine's model copies and count forward passes over all of them."""
    calls = [0]

    def hook(module, inputs, output) -> None:
        calls[0] += 1

    for copy in engine.load_models().copies:
        copy.module.register_forward_hook(hook)
    return calls


def _assert_same_forecast(actual, expected) -> None:
    for name in ("input_end", "time_end", "horizon_minutes", "levels", "quantiles", "sample_mean", "sample_std", "truth"):
        np.testing.assert_array_equal(getattr(actual, name), getattr(expected, name), err_msg=name)
    assert actual.model_id == expected.model_id
    assert actual.seed == expected.seed


@pytest.fixture
def engine(tiny_model_path, cache_dir):
    with _engine(tiny_model_path, cache_dir) as engine:
        yield engine


def test_process_summarizes_series(engine, small_export):
    info = engine.process(small_export)

    assert len(info.handle) == 64
    assert info.source_format == "nightscout"
    assert len(info.series) == 1
    assert info.series[0].points == 198
    assert info.series[0].windows == 81
    assert "has_warnings" in info.series[0].quality
    assert engine.store.has_dataset(info.handle)


def test_handle_ignores_identifying_rows():
    original = corpus_bytes("Clarity_Export_synthetic.csv")
    renamed = original.replace(b"Gagarin", b"Tereshkova").replace(b"HBRPOI", b"XKQWZT")
    assert renamed != original

    from glurpc_lab.engine.keys import dataset_handle
    from glurpc_lab.ingest import read_export

    settings = {"interpolation_limit_minutes": 45}
    assert dataset_handle(read_export(original), settings) == dataset_handle(read_export(renamed), settings)


def test_handle_depends_on_data_and_settings(tiny_model_path, tmp_path, small_export):
    default = _engine(tiny_model_path, tmp_path / "a").process(small_export)
    again = _engine(tiny_model_path, tmp_path / "b").process(small_export)
    shorter_limit = _engine(tiny_model_path, tmp_path / "c", interpolation_limit_minutes=15).process(small_export)
    fewer_rows = _engine(tiny_model_path, tmp_path / "d").process(b"".join(small_export.splitlines(keepends=True)[1:]))

    assert default.handle == again.handle
    assert shorter_limit.handle != default.handle
    assert fewer_rows.handle != default.handle


def test_series_round_trips_through_store(engine, small_export):
    from glurpc_lab.ingest import read_export

    expected = read_export(small_export).series[0]
    handle = engine.process(small_export).handle

    actual = engine.series(handle, 0)

    np.testing.assert_array_equal(actual.time, expected.time)
    np.testing.assert_array_equal(actual.glucose, expected.glucose)
    np.testing.assert_array_equal(actual.segment, expected.segment)
    np.testing.assert_array_equal(actual.imputed, expected.imputed)
    np.testing.assert_array_equal(actual.censored, expected.censored)
    assert actual.quality.to_dict() == expected.quality.to_dict()


def test_second_forecast_served_from_store(engine, small_export):
    handle = engine.process(small_export).handle
    calls = _count_forward_calls(engine)

    first = engine.forecast(handle)
    calls_after_first = calls[0]
    second = engine.forecast(handle)

    assert calls_after_first > 0
    assert calls[0] == calls_after_first
    assert first.quantiles.shape == (81, 12, 7)
    assert first.sample_mean.shape == (81, 12, TEST_SAMPLES)
    _assert_same_forecast(second, first)
    counters = engine.health()["counters"]
    assert counters["forecasts_computed"] == 1
    assert counters["forecast_cache_hits"] == 1


def test_forecast_survives_restart(tiny_model_path, cache_dir, small_export):
    with _engine(tiny_model_path, cache_dir) as first_engine:
        handle = first_engine.process(small_export).handle
        before = first_engine.forecast(handle)

    with _engine(tiny_model_path, cache_dir) as restarted:
        calls = _count_forward_calls(restarted)
        after = restarted.forecast(handle)
        series = restarted.series(handle)

    assert calls[0] == 0
    assert len(series) == 198
    _assert_same_forecast(after, before)


def test_changed_model_recomputes(tiny_model_path, cache_dir, small_export, tmp_path):
    other_weights = tmp_path / "other" / "tiny.pth"
    other_weights.parent.mkdir()
    config = GluformerConfig.tiny()
    torch.manual_seed(1)
    torch.save(Gluformer(config).state_dict(), other_weights)
    config.to_json(other_weights.with_suffix(".json"))

    with _engine(tiny_model_path, cache_dir) as first_engine:
        handle = first_engine.process(small_export).handle
        original = first_engine.forecast(handle)

    with _engine(other_weights, cache_dir) as changed:
        calls = _count_forward_calls(changed)
        recomputed = changed.forecast(handle)

    assert calls[0] > 0
    assert recomputed.model_id != original.model_id
    assert not np.array_equal(recomputed.quantiles, original.quantiles)
    assert changed.store.counts()["forecasts"] == 2


def test_changed_seed_recomputes(tiny_model_path, cache_dir, small_export):
    with _engine(tiny_model_path, cache_dir) as first_engine:
        handle = first_engine.process(small_export).handle
        original = first_engine.forecast(handle, windows="latest")

    with _engine(tiny_model_path, cache_dir, seed=5) as reseeded:
        calls = _count_forward_calls(reseeded)
        recomputed = reseeded.forecast(handle, windows="latest")

    assert calls[0] > 0
    assert recomputed.seed == 5
    assert not np.array_equal(recomputed.sample_mean, original.sample_mean)


def test_concurrent_requests_compute_once(tiny_model_path, cache_dir, small_export):
    with _engine(tiny_model_path, cache_dir, devices=["cpu", "cpu"]) as engine:
        handle = engine.process(small_export).handle
        calls = _count_forward_calls(engine)
        results = [None] * 4
        barrier = threading.Barrier(4)

        def request(slot: int) -> None:
            barrier.wait()
            results[slot] = engine.forecast(handle, windows="latest")

        threads = [threading.Thread(target=request, args=(slot,)) for slot in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        counters = engine.health()["counters"]
        coalesced = engine.health()["scheduler"]["coalesced"]

    assert all(result is not None for result in results)
    for result in results[1:]:
        _assert_same_forecast(result, results[0])
    assert counters["forecasts_computed"] == 1
    # A request that arrives while the job is queued or running joins it; one that arrives later hits the cache.
    assert counters["forecast_cache_hits"] + coalesced == 3
    # One window fits one batch; four separate computations would make at least four passes.
    assert 0 < calls[0] <= TEST_SAMPLES


def test_latest_window_matches_all(engine, small_export):
    handle = engine.process(small_export).handle

    latest = engine.forecast(handle, windows="latest")
    every = engine.forecast(handle)
    latest_from_store = engine.forecast(handle, windows="latest")

    assert latest.n_windows == 1
    assert int(latest.input_end[0]) == 197
    np.testing.assert_allclose(latest.quantiles[0], every.quantiles[-1], rtol=1e-5)
    assert np.isnan(latest.truth).all()
    np.testing.assert_array_equal(latest_from_store.quantiles[0], every.quantiles[-1])


def test_force_recomputes(engine, small_export):
    handle = engine.process(small_export).handle
    engine.forecast(handle, windows="latest")
    calls = _count_forward_calls(engine)

    engine.forecast(handle, windows="latest", force=True)

    assert calls[0] > 0
    assert engine.health()["counters"]["forecasts_computed"] == 2
    assert engine.store.counts()["forecasts"] == 1


def test_bad_requests_raise_clear_errors(engine, small_export):
    handle = engine.process(small_export).handle

    with pytest.raises(InvalidHandleError, match="64 lowercase hex digits"):
        engine.series("../../etc")
    with pytest.raises(HandleNotFoundError, match="upload the file again"):
        engine.series("0" * 64)
    with pytest.raises(SeriesIndexError, match="1 series"):
        engine.series(handle, 1)
    with pytest.raises(SeriesIndexError, match="out of range"):
        engine.forecast(handle, -1)
    with pytest.raises(IngestError):
        engine.process(b"this is not a glucose export\n1,2,3\n")
    with pytest.raises(ValueError, match="windows"):
        engine.forecast(handle, windows="first")


def test_health_reports_status(engine, small_export):
    assert engine.health()["status"] == "not_loaded"
    assert engine.health()["ready"] is False

    engine.forecast(engine.process(small_export).handle, windows="latest")
    health = engine.health()

    assert health["status"] == "ok"
    assert health["model_id"].startswith("tiny-")
    assert health["pool"]["copies"] == 1
    assert health["pool"]["free"] == 1
    assert health["store"] == {"datasets": 1, "forecasts": 1}
    engine.close()
    assert engine.health()["status"] == "closed"


def test_missing_weights_reported(tmp_path, small_export):
    engine = _engine(tmp_path / "missing.pth", tmp_path / "store")
    handle = engine.process(small_export).handle

    with pytest.raises(ModelUnavailableError, match="not found"):
        engine.forecast(handle)

    health = engine.health()
    assert health["status"] == "error"
    assert "not found" in health["load_error"]


def test_logs_carry_no_health_data(engine, small_export, caplog):
    from glurpc_lab.ingest import read_export

    series = read_export(small_export).series[0]
    dates = {str(day) for day in np.unique(series.time.astype("datetime64[D]"))}
    caplog.set_level("DEBUG", logger="glurpc_lab")

    handle = engine.process(small_export).handle
    engine.forecast(handle, windows="latest")

    engine_records = [record for record in caplog.records if record.name.startswith("glurpc_lab.engine")]
    assert engine_records
    for record in engine_records:
        message = record.getMessage()
        assert handle not in message
        assert not any(date in message for date in dates)
        assert series.subject not in message


def test_busy_pool_raises_after_wait(tiny_model_path, cache_dir, small_export):
    from glurpc_lab.engine import ModelBusyError

    with _engine(tiny_model_path, cache_dir, model_wait_seconds=0.2) as engine:
        handle = engine.process(small_export).handle

        with engine.load_models().borrow():
            with pytest.raises(ModelBusyError, match="retry later"):
                engine.forecast(handle, windows="latest")

        health = engine.health()
        assert health["counters"]["wait_timeouts"] == 1
        assert health["scheduler"]["cancelled"] == 1
        assert engine.forecast(handle, windows="latest").n_windows == 1
