"""ForecastExplorer's message handler, driven with real export bytes through a real engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import glurpc_lab.widgets
from conftest import TEST_SAMPLES
from glurpc_lab.client import LocalClient
from glurpc_lab.engine import Engine
from glurpc_lab.widgets import MAX_UPLOAD_BYTES, ForecastExplorer
from glurpc_lab.widgets.explorer import WINDOW_BUFFERS

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
EXPORT = SHARED / "corpora" / "nightscout_entries.csv"
RESEARCH_TABLE = SHARED / "datasets" / "iglu_example_data_5_subject.csv"


def decode_window(reply) -> tuple[dict, dict]:
    content, buffers = reply
    assert content["type"] == "window", content
    assert content["buffers"] == list(WINDOW_BUFFERS)
    arrays = {name: np.frombuffer(buffer, dtype="<f4") for name, buffer in zip(content["buffers"], buffers)}
    return content, arrays


@pytest.fixture(scope="module")
def client(tmp_path_factory, tiny_model_path):
    engine = Engine(
        model_source=tiny_model_path,
        cache_dir=tmp_path_factory.mktemp("engine-cache"),
        devices=["cpu"],
        n_samples=TEST_SAMPLES,
    )
    yield LocalClient(engine)
    engine.close()


@pytest.fixture(scope="module")
def export_bytes() -> bytes:
    if not EXPORT.is_file():
        pytest.skip(f"corpus export not found at {EXPORT}: the shared corpora folder is absent")
    return EXPORT.read_bytes()


@pytest.fixture
def loaded(client, export_bytes):
    explorer = ForecastExplorer(client=client)
    replies = explorer.dispatch({"type": "upload", "request_id": "u1", "size": len(export_bytes)}, [export_bytes])
    return explorer, replies


# Messages that never reach the engine.


@pytest.mark.parametrize(
    ("content", "buffers", "expected"),
    [
        ({"type": "run_code", "code": "1"}, [], "unknown message type 'run_code'"),
        ({"window": 1}, [], "unknown message type None"),
        (["get_window"], [], "must be a JSON object"),
        ({"type": "get_window", "window": "3"}, [], "field 'window' must be an integer, got str"),
        ({"type": "get_window", "window": True}, [], "field 'window' must be an integer, got bool"),
        ({"type": "get_window", "window": 0}, [], "no file is loaded"),
        ({"type": "select_series", "index": 0}, [], "no file is loaded"),
        ({"type": "upload", "size": 3}, [], "exactly one binary buffer, got 0"),
        ({"type": "upload", "size": 3}, [b"abc", b"def"], "exactly one binary buffer, got 2"),
        ({"type": "upload", "size": 4}, [b"abc"], "carries 3 bytes but declares size 4"),
        ({"type": "upload", "size": 0}, [b""], "the file is empty"),
        ({"type": "get_window", "window": 0, "request_id": "x" * 65}, [], "at most 64 characters"),
    ],
)
def test_invalid_message_rejected(content, buffers, expected):
    explorer = ForecastExplorer(client=None)

    replies = explorer.dispatch(content, buffers)

    assert len(replies) == 1
    reply, reply_buffers = replies[0]
    assert reply["type"] == "error"
    assert expected in reply["message"]
    assert reply_buffers == []
    assert explorer.status == "empty"


def test_upload_over_limit_rejected():
    explorer = ForecastExplorer(client=None)
    content = bytes(MAX_UPLOAD_BYTES + 1)

    [(reply, _)] = explorer.dispatch({"type": "upload", "request_id": "big", "size": len(content)}, [content])

    assert reply["type"] == "error"
    assert reply["request_id"] == "big"
    assert "REST API" in reply["message"]
    assert "8 MiB" in reply["message"]


def test_esm_and_css_ship_in_package():
    package = Path(glurpc_lab.widgets.__file__).parent
    esm = (package / "explorer.js").read_text(encoding="utf-8")

    assert (package / "explorer.css").is_file()
    assert "export default" in esm
    # The module loads nothing: no imports and no URLs except the SVG namespace.
    assert "import " not in esm
    assert "https://" not in esm
    assert esm.count("http://") == esm.count("http://www.w3.org/2000/svg")


def test_widget_model_id_is_comm_id():
    explorer = ForecastExplorer(client=None)

    # A synced trait named model_id would hide the comm id and the front end could not find the model.
    assert explorer.model_id == explorer.comm.comm_id


# Real export bytes through the engine.


def test_upload_loads_latest_window(client, loaded):
    explorer, replies = loaded

    assert replies == [({"type": "uploaded", "request_id": "u1", "series": 1}, [])]
    assert explorer.status == "ready"
    assert explorer.error == ""
    forecast = client.forecast(explorer.dataset.handle, 0)
    assert explorer.n_windows == forecast.n_windows
    assert explorer.n_windows > 1
    assert explorer.window == forecast.n_windows - 1
    assert explorer.forecast_model_id == forecast.model_id
    assert explorer.quality["readings_in"] > 0
    assert explorer.quality["readings_used"] <= explorer.quality["readings_in"]
    assert explorer.subjects == [explorer.dataset.series[0].subject]


def test_latest_window_message(client, loaded):
    explorer, _ = loaded
    series = client.series(explorer.dataset.handle, 0)
    forecast = client.forecast(explorer.dataset.handle, 0)
    latest = forecast.n_windows - 1

    content, arrays = decode_window(
        explorer.dispatch({"type": "get_window", "request_id": "w1", "window": latest}, [])[0]
    )

    assert content["request_id"] == "w1"
    assert content["window"] == latest
    assert content["is_future"] is True
    assert content["title"].startswith("Forecast past the last reading")
    assert content["time_end"] == str(np.datetime_as_string(series.time[-1], unit="s"))
    np.testing.assert_array_equal(arrays["quantiles"], forecast.quantiles[latest].ravel())
    assert np.isnan(arrays["truth"]).all()
    assert arrays["history_minutes"][-1] == 0
    assert arrays["history_glucose"][-1] == pytest.approx(float(series.glucose[-1]))
    np.testing.assert_array_equal(arrays["horizon_minutes"], np.arange(5, 65, 5))
    assert content["last_observed"] == pytest.approx(float(series.glucose[-1]))
    assert [band[0] for band in content["bands"]] == [0.95, 0.8, 0.5]
    assert content["levels"][content["median_index"]] == 0.5


def test_backtest_window_message(client, loaded):
    explorer, _ = loaded
    forecast = client.forecast(explorer.dataset.handle, 0)

    content, arrays = decode_window(explorer.dispatch({"type": "get_window", "window": 0}, [])[0])

    assert explorer.window == 0
    assert content["is_future"] is False
    assert content["title"].startswith("Backtest")
    np.testing.assert_array_equal(arrays["quantiles"], forecast.quantiles[0].ravel())
    np.testing.assert_array_equal(arrays["truth"], forecast.truth[0])
    # History is the 96-point input, gap-free, plus up to 36 earlier points, in minutes before the window end.
    assert arrays["history_minutes"][-1] == 0
    assert arrays["history_minutes"].size <= 96 + 36
    np.testing.assert_array_equal(np.diff(arrays["history_minutes"][-96:]), 5)


def test_window_out_of_range_kept(loaded):
    explorer, _ = loaded
    before = explorer.window

    [(reply, _)] = explorer.dispatch({"type": "get_window", "window": explorer.n_windows}, [])

    assert reply["type"] == "error"
    assert f"window {explorer.n_windows} is out of range" in reply["message"]
    assert explorer.window == before


def test_series_index_out_of_range(loaded):
    explorer, _ = loaded

    [(reply, _)] = explorer.dispatch({"type": "select_series", "index": 1}, [])

    assert reply["type"] == "error"
    assert "series 1 is out of range: the upload has 1 series" in reply["message"]


def test_invalid_export_reports_error(client):
    explorer = ForecastExplorer(client=client)
    content = b"alpha,beta\nsecret-name,42\n"

    [(reply, _)] = explorer.dispatch({"type": "upload", "request_id": "bad", "size": len(content)}, [content])

    assert reply["type"] == "error"
    assert reply["request_id"] == "bad"
    assert explorer.status == "error"
    assert explorer.error == reply["message"]
    assert "secret-name" not in reply["message"]
    assert explorer.n_windows == 0


def test_from_path_matches_upload(client, loaded):
    uploaded, _ = loaded

    explorer = ForecastExplorer.from_path(EXPORT, client=client)

    assert explorer.dataset.handle == uploaded.dataset.handle
    assert explorer.status == "ready"
    assert explorer.window == uploaded.n_windows - 1


def test_select_series_switches_subject(client, tmp_path):
    if not RESEARCH_TABLE.is_file():
        pytest.skip(f"research table not found at {RESEARCH_TABLE}: the shared datasets folder is absent")
    # The first 150 readings of two subjects keep the forecasts small: a few dozen windows each.
    lines = RESEARCH_TABLE.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    subjects = list(dict.fromkeys(row.split(",")[0] for row in rows))[:2]
    subset_rows = [row for subject in subjects for row in [r for r in rows if r.startswith(subject + ",")][:150]]
    content = "\n".join([header, *subset_rows]).encode("utf-8")
    explorer = ForecastExplorer(client=client)
    explorer.dispatch({"type": "upload", "size": len(content)}, [content])

    [(reply, _)] = explorer.dispatch({"type": "select_series", "request_id": "s2", "index": 1}, [])

    assert explorer.status == "ready", explorer.error
    assert reply == {"type": "series_selected", "request_id": "s2", "index": 1}
    assert len(explorer.subjects) == 2
    assert explorer.series_index == 1
    forecast = client.forecast(explorer.dataset.handle, 1)
    assert explorer.n_windows == forecast.n_windows
    assert explorer.window == forecast.n_windows - 1
    content, arrays = decode_window(explorer.window_message(explorer.window))
    assert explorer.subjects[1] in content["title"]
    np.testing.assert_array_equal(arrays["quantiles"], forecast.quantiles[-1].ravel())
