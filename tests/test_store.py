"""The zarr store: round trips, atomic publishing and reopening, on a real export's series."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import numpy as np
import pytest
import zarr
from zarr.storage import LocalStore

from glurpc_lab.engine.keys import dataset_handle
from glurpc_lab.engine.store import STALE_TEMP_SECONDS, WINDOW_CHUNK, Store
from glurpc_lab.forecast.result import DEFAULT_LEVELS, Forecast
from glurpc_lab.ingest import read_export

SETTINGS = {"interpolation_limit_minutes": 45}


def _key(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def _array_forecast(series, windows: int, samples: int = 4) -> Forecast:
    """A forecast built from arrays, so the store is tested without a model."""
    rng = np.random.default_rng(7)
    horizon = 12
    levels = np.asarray(DEFAULT_LEVELS)
    ends = np.arange(95, 95 + windows, dtype=np.int64)
    quantiles = np.sort(rng.normal(120, 20, size=(windows, horizon, len(levels))), axis=2).astype(np.float32)
    truth = rng.normal(120, 20, size=(windows, horizon)).astype(np.float32)
    truth[-1, :] = np.nan
    return Forecast(
        subject=series.subject,
        input_end=ends,
        time_end=series.time[0] + (ends * 300).astype("timedelta64[s]"),
        horizon_minutes=np.arange(5, 65, 5),
        levels=levels,
        quantiles=quantiles,
        sample_mean=rng.normal(120, 20, size=(windows, horizon, samples)).astype(np.float32),
        sample_std=rng.uniform(5, 15, size=(windows, 12, samples)).astype(np.float32),
        truth=truth,
        seed=11,
        model_id="tiny-0123456789ab",
        metadata={"scaling": "fixed", "n": np.int64(3)},
    )


@pytest.fixture
def dataset(small_export):
    return read_export(small_export)


def _entries(folder) -> list[str]:
    """Names in a store folder other than its own zarr.json."""
    return sorted(entry.name for entry in folder.iterdir() if entry.name != "zarr.json")


def _assert_same_series(actual, expected) -> None:
    assert actual.subject == expected.subject
    assert actual.time.dtype == np.dtype("datetime64[s]")
    np.testing.assert_array_equal(actual.time, expected.time.astype("datetime64[s]"))
    np.testing.assert_array_equal(actual.glucose, expected.glucose)
    np.testing.assert_array_equal(actual.segment, expected.segment)
    np.testing.assert_array_equal(actual.imputed, expected.imputed)
    np.testing.assert_array_equal(actual.censored, expected.censored)
    assert actual.quality.to_dict() == expected.quality.to_dict()


def _assert_same_forecast(actual: Forecast, expected: Forecast) -> None:
    np.testing.assert_array_equal(actual.input_end, expected.input_end)
    np.testing.assert_array_equal(actual.time_end, expected.time_end)
    np.testing.assert_array_equal(actual.horizon_minutes, expected.horizon_minutes)
    np.testing.assert_array_equal(actual.levels, expected.levels)
    np.testing.assert_array_equal(actual.quantiles, expected.quantiles)
    np.testing.assert_array_equal(actual.sample_mean, expected.sample_mean)
    np.testing.assert_array_equal(actual.sample_std, expected.sample_std)
    np.testing.assert_array_equal(actual.truth, expected.truth)
    assert actual.seed == expected.seed
    assert actual.model_id == expected.model_id
    assert actual.subject == expected.subject


def test_dataset_round_trip(tmp_path, dataset):
    store = Store(tmp_path / "store")
    handle = dataset_handle(dataset, SETTINGS)

    assert store.write_dataset(handle, dataset, SETTINGS) is True

    assert store.has_dataset(handle)
    assert store.dataset_size(handle) == len(dataset.series)
    assert store.dataset_source_format(handle) == dataset.source_format
    _assert_same_series(store.read_series(handle, 0), dataset.series[0])


def test_dataset_second_write_is_skipped(tmp_path, dataset):
    store = Store(tmp_path / "store")
    handle = dataset_handle(dataset, SETTINGS)
    store.write_dataset(handle, dataset, SETTINGS)

    assert store.write_dataset(handle, dataset, SETTINGS) is False
    assert store.counts() == {"datasets": 1, "forecasts": 0}


def test_forecast_round_trip_and_layout(tmp_path, dataset):
    store = Store(tmp_path / "store")
    forecast = _array_forecast(dataset.series[0], windows=700)
    key = _key("forecast")

    assert store.write_forecast(key, forecast, {"handle": _key("dataset"), "n_samples": 4}) is True

    _assert_same_forecast(store.read_forecast(key), forecast)
    assert np.isnan(store.read_forecast(key).truth[-1]).all()

    # The entry is a plain zarr 3 group that any zarr reader can open.
    group = zarr.open_group(
        store=LocalStore(tmp_path / "store" / "ns" / "local" / "forecasts" / key, read_only=True),
        mode="r",
        use_consolidated=False,
    )
    assert group["quantiles"].shape == (700, 12, len(DEFAULT_LEVELS))
    assert group["quantiles"].chunks[0] == WINDOW_CHUNK
    assert group["sample_mean"].chunks[0] == WINDOW_CHUNK
    assert group["time_end"].dtype == np.dtype("int64")
    assert group.attrs["levels"] == list(DEFAULT_LEVELS)
    assert group.attrs["seed"] == 11
    assert group.attrs["model_id"] == "tiny-0123456789ab"
    assert group.attrs["metadata"] == {"scaling": "fixed", "n": 3}
    assert group.attrs["n_samples"] == 4


def test_forecast_without_windows_round_trips(tmp_path, dataset):
    store = Store(tmp_path / "store")
    forecast = _array_forecast(dataset.series[0], windows=1)
    empty = Forecast(**{**forecast.__dict__, **{
        name: getattr(forecast, name)[:0]
        for name in ("input_end", "time_end", "quantiles", "sample_mean", "sample_std", "truth")
    }})

    store.write_forecast(_key("empty"), empty, {})

    restored = store.read_forecast(_key("empty"))
    assert restored.n_windows == 0
    assert restored.quantiles.shape == (0, 12, len(DEFAULT_LEVELS))


def test_store_reopens_after_restart(tmp_path, dataset):
    handle = dataset_handle(dataset, SETTINGS)
    forecast = _array_forecast(dataset.series[0], windows=50)
    first = Store(tmp_path / "store")
    first.write_dataset(handle, dataset, SETTINGS)
    first.write_forecast(_key("f"), forecast, {})

    reopened = Store(tmp_path / "store")

    _assert_same_series(reopened.read_series(handle, 0), dataset.series[0])
    _assert_same_forecast(reopened.read_forecast(_key("f")), forecast)


def test_failed_write_leaves_nothing(tmp_path, dataset):
    store = Store(tmp_path / "store")
    forecast = _array_forecast(dataset.series[0], windows=20)
    broken = Forecast(**{**forecast.__dict__, "truth": forecast.truth[:5]})

    with pytest.raises(ValueError, match="truth"):
        store.write_forecast(_key("broken"), broken, {})

    assert store.read_forecast(_key("broken")) is None
    assert _entries(tmp_path / "store" / "ns" / "local" / "forecasts") == []


def test_replace_overwrites_entry(tmp_path, dataset):
    store = Store(tmp_path / "store")
    first = _array_forecast(dataset.series[0], windows=10)
    second = Forecast(**{**first.__dict__, "seed": 12})
    store.write_forecast(_key("f"), first, {})

    assert store.write_forecast(_key("f"), second, {}) is False
    assert store.read_forecast(_key("f")).seed == 11
    assert store.write_forecast(_key("f"), second, {}, replace=True) is True
    assert store.read_forecast(_key("f")).seed == 12
    assert _entries(tmp_path / "store" / "ns" / "local" / "forecasts") == [_key("f")]


def test_concurrent_writers_publish_once(tmp_path, dataset):
    store = Store(tmp_path / "store")
    forecast = _array_forecast(dataset.series[0], windows=300)
    results = []
    barrier = threading.Barrier(4)

    def write() -> None:
        barrier.wait()
        results.append(store.write_forecast(_key("shared"), forecast, {}))

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False, False, False, True]
    _assert_same_forecast(store.read_forecast(_key("shared")), forecast)
    assert _entries(tmp_path / "store" / "ns" / "local" / "forecasts") == [_key("shared")]


def test_stale_temporaries_are_removed(tmp_path):
    Store(tmp_path / "store")
    stale = tmp_path / "store" / "ns" / "local" / "forecasts" / ".tmp-abandoned"
    fresh = tmp_path / "store" / "ns" / "local" / "forecasts" / ".tmp-in-progress"
    stale.mkdir()
    fresh.mkdir()
    old = time.time() - STALE_TEMP_SECONDS - 60
    os.utime(stale, (old, old))

    Store(tmp_path / "store")

    assert not stale.exists()
    assert fresh.exists()


@pytest.mark.parametrize("key", ["../escape", "A" * 64, "", "0" * 63])
def test_malformed_keys_are_rejected(tmp_path, key):
    store = Store(tmp_path / "store")

    assert store.has_forecast(key) is False
    assert store.has_dataset(key) is False
    with pytest.raises(ValueError, match="64 lowercase hex digits"):
        store.read_forecast(key)
