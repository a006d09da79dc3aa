"""The REST handlers in a real Jupyter server, with the tiny model and a temporary store."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from tornado.httpclient import HTTPClientError

from conftest import TEST_SAMPLES

GARBAGE = b"this is not a glucose export\n1,2,3\n"


async def _error(jp_fetch, *parts, **kwargs) -> HTTPClientError:
    """Fetch and return the HTTP error that must be raised."""
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch(*parts, **kwargs)
    return caught.value


def _message(error: HTTPClientError) -> str:
    return json.loads(error.response.body)["message"]


async def _upload(jp_fetch, content: bytes) -> dict:
    response = await jp_fetch("glurpc-lab", "datasets", method="POST", body=content)
    assert response.code == 201
    return json.loads(response.body)


async def test_live_needs_no_token(jp_fetch):
    response = await jp_fetch("glurpc-lab", "health", "live", headers={"Authorization": ""})

    assert response.code == 200
    assert json.loads(response.body) == {"status": "ok"}


async def test_health_reports_engine(jp_fetch, cache_dir):
    response = await jp_fetch("glurpc-lab", "health")
    health = json.loads(response.body)

    assert response.code == 200
    assert health["status"] == "not_loaded"
    assert health["n_samples"] == TEST_SAMPLES
    assert health["devices"] == ["cpu"]
    assert health["store"] == {"datasets": 0, "forecasts": 0}
    assert cache_dir.is_dir()


async def test_ready_is_503_until_loaded(jp_fetch, jp_serverapp):
    error = await _error(jp_fetch, "glurpc-lab", "health", "ready")
    assert error.code == 503
    assert error.response.headers["Retry-After"] == "30"

    jp_serverapp.web_app.settings["glurpc_lab"].engine.load_models()
    response = await jp_fetch("glurpc-lab", "health", "ready")
    assert json.loads(response.body) == {"ready": True}


@pytest.mark.parametrize(
    "parts",
    [
        ("glurpc-lab", "health"),
        ("glurpc-lab", "datasets", "0" * 64),
        ("glurpc-lab", "datasets", "0" * 64, "series", "0", "forecasts"),
    ],
)
async def test_get_without_token_is_403(jp_fetch, parts):
    error = await _error(jp_fetch, *parts, headers={"Authorization": ""})

    assert error.code == 403


async def test_upload_without_token_is_403(jp_fetch, small_export, cache_dir):
    error = await _error(jp_fetch, "glurpc-lab", "datasets", method="POST", body=small_export, headers={"Authorization": ""})

    assert error.code == 403
    assert [entry for entry in (cache_dir / "ns" / "local" / "datasets").iterdir() if len(entry.name) == 64] == []


async def test_upload_then_read_dataset_and_series(jp_fetch, small_export):
    info = await _upload(jp_fetch, small_export)
    handle = info["handle"]

    fetched = json.loads((await jp_fetch("glurpc-lab", "datasets", handle)).body)
    series = json.loads((await jp_fetch("glurpc-lab", "datasets", handle, "series", "0")).body)

    assert info["source_format"] == "nightscout"
    assert info["series"][0]["points"] == 198
    assert info["series"][0]["windows"] == 81
    assert fetched == info
    assert len(series["time"]) == 198
    assert series["time"][0].startswith("2026-04-0")
    assert len(series["glucose"]) == 198
    assert set(series["segment"]) == {0, 1}
    assert series["quality"]["readings_in"] == info["series"][0]["quality"]["readings_in"]


async def test_forecasts_as_json(jp_fetch, small_export):
    handle = (await _upload(jp_fetch, small_export))["handle"]

    response = await jp_fetch("glurpc-lab", "datasets", handle, "series", "0", "forecasts", request_timeout=120)
    forecast = json.loads(response.body)
    again = json.loads(
        (await jp_fetch("glurpc-lab", "datasets", handle, "series", "0", "forecasts", request_timeout=120)).body
    )
    health = json.loads((await jp_fetch("glurpc-lab", "health")).body)

    assert len(forecast["time_end"]) == 81
    assert len(forecast["quantiles"]) == 81
    assert len(forecast["quantiles"][0]) == 12
    assert len(forecast["quantiles"][0][0]) == len(forecast["levels"])
    assert len(forecast["sample_mean"][0][0]) == TEST_SAMPLES
    assert forecast["truth"][-1] == [None] * 12
    assert all(value is not None for value in forecast["truth"][0])
    assert forecast["times"][-1][0] > forecast["time_end"][-1]
    assert forecast["model_id"].startswith("tiny-")
    assert forecast["seed"] == 0
    assert again == forecast
    assert health["counters"]["forecasts_computed"] == 1
    assert health["counters"]["forecast_cache_hits"] == 1


async def test_plot_returns_plotly_figure(jp_fetch, small_export):
    handle = (await _upload(jp_fetch, small_export))["handle"]

    response = await jp_fetch("glurpc-lab", "datasets", handle, "series", "0", "plot", params={"window": "-1"}, request_timeout=120)
    figure = json.loads(response.body)

    assert response.code == 200
    assert isinstance(figure["data"], list) and figure["data"]
    assert "layout" in figure


async def test_garbage_upload_is_400_with_message(jp_fetch):
    error = await _error(jp_fetch, "glurpc-lab", "datasets", method="POST", body=GARBAGE)

    assert error.code == 400
    message = _message(error)
    assert len(message) > 20
    assert "1,2,3" not in message


async def test_empty_upload_is_400(jp_fetch):
    error = await _error(jp_fetch, "glurpc-lab", "datasets", method="POST", body=b"")

    assert error.code == 400
    assert "empty" in _message(error)


async def test_oversize_upload_is_413(jp_fetch):
    error = await _error(jp_fetch, "glurpc-lab", "datasets", method="POST", body=b"0" * (1024 * 1024 + 1))

    assert error.code == 413
    assert "max_upload_bytes" in _message(error)


async def test_unknown_handle_is_404(jp_fetch):
    for parts in (("0" * 64,), ("0" * 64, "series", "0"), ("0" * 64, "series", "0", "forecasts")):
        error = await _error(jp_fetch, "glurpc-lab", "datasets", *parts)
        assert error.code == 404
        assert "upload the file again" in _message(error)


async def test_malformed_handle_is_400(jp_fetch):
    error = await _error(jp_fetch, "glurpc-lab", "datasets", "not-a-handle")

    assert error.code == 400
    assert "64 lowercase hex digits" in _message(error)


async def test_bad_indices_are_rejected(jp_fetch, small_export):
    handle = (await _upload(jp_fetch, small_export))["handle"]

    out_of_range = await _error(jp_fetch, "glurpc-lab", "datasets", handle, "series", "3")
    not_integer = await _error(jp_fetch, "glurpc-lab", "datasets", handle, "series", "x")
    bad_window = await _error(jp_fetch, "glurpc-lab", "datasets", handle, "series", "0", "plot", params={"window": "500"}, request_timeout=120)
    bad_query = await _error(jp_fetch, "glurpc-lab", "datasets", handle, "series", "0", "plot", params={"window": "last"})

    assert out_of_range.code == 422
    assert "1 series" in _message(out_of_range)
    assert not_integer.code == 400
    assert bad_window.code == 422
    assert "81 windows" in _message(bad_window)
    assert bad_query.code == 400


# ---------------------------------------------------------------- gluRPC-compatible


def _unified_body(content: bytes, **extra) -> str:
    return json.dumps({"csv_base64": base64.b64encode(content).decode(), **extra})


async def test_process_unified_then_draw(jp_fetch, small_export):
    response = await jp_fetch("glurpc-lab", "process_unified", method="POST", body=_unified_body(small_export))
    reply = json.loads(response.body)

    assert response.code == 200
    assert len(reply["handle"]) == 64
    assert reply["total_samples"] == 81
    assert reply["error"] is None
    assert set(reply["warnings"]) == {
        "has_warnings", "too_short", "calibration", "quality", "imputation", "out_of_range", "time_duplicates", "messages",
    }

    latest = await jp_fetch("glurpc-lab", "draw_a_plot", method="POST", body=json.dumps({"handle": reply["handle"], "index": 0}), request_timeout=120)
    earlier = await jp_fetch("glurpc-lab", "draw_a_plot", method="POST", body=json.dumps({"handle": reply["handle"], "index": -80}), request_timeout=120)
    too_early = await _error(jp_fetch, "glurpc-lab", "draw_a_plot", method="POST", body=json.dumps({"handle": reply["handle"], "index": -81}), request_timeout=120)
    positive = await _error(jp_fetch, "glurpc-lab", "draw_a_plot", method="POST", body=json.dumps({"handle": reply["handle"], "index": 1}))

    assert "data" in json.loads(latest.body)
    assert "data" in json.loads(earlier.body)
    assert too_early.code == 422
    assert positive.code == 422
    assert "<= 0" in _message(positive)


async def test_process_unified_rejects_bad_bodies(jp_fetch):
    not_json = await _error(jp_fetch, "glurpc-lab", "process_unified", method="POST", body=b"{not json")
    missing = await _error(jp_fetch, "glurpc-lab", "process_unified", method="POST", body=json.dumps({"force_calculate": False}))
    not_base64 = await _error(jp_fetch, "glurpc-lab", "process_unified", method="POST", body=json.dumps({"csv_base64": "***"}))
    garbage = await _error(jp_fetch, "glurpc-lab", "process_unified", method="POST", body=_unified_body(GARBAGE))

    assert not_json.code == 400
    assert missing.code == 422
    assert "csv_base64" in _message(missing)
    assert not_base64.code == 400
    assert "base64" in _message(not_base64)
    assert garbage.code == 400


async def test_process_unified_short_series_is_422(jp_fetch, small_export):
    newest_hour = b"".join(small_export.splitlines(keepends=True)[:12])

    error = await _error(jp_fetch, "glurpc-lab", "process_unified", method="POST", body=_unified_body(newest_hour))
    reply = json.loads(error.response.body)

    assert error.code == 422
    assert reply["total_samples"] == 0
    assert reply["warnings"]["too_short"] is True
    assert "8 hours" in reply["error"]


async def test_process_unified_prefetches_forecasts(jp_fetch, jp_serverapp, small_export):
    jp_serverapp.web_app.settings["glurpc_lab"].prefetch_forecasts = True

    await jp_fetch("glurpc-lab", "process_unified", method="POST", body=_unified_body(small_export))
    for _ in range(600):
        health = json.loads((await jp_fetch("glurpc-lab", "health")).body)
        if health["store"]["forecasts"]:
            break
        await asyncio.sleep(0.1)

    assert health["counters"]["forecasts_computed"] == 1
    assert health["store"]["forecasts"] == 1


async def test_quick_plot(jp_fetch, small_export):
    response = await jp_fetch("glurpc-lab", "quick_plot", method="POST", body=_unified_body(small_export), request_timeout=120)
    reply = json.loads(response.body)

    assert response.code == 200
    assert reply["error"] is None
    assert "data" in reply["plot_data"]
    assert reply["warnings"]["has_warnings"] in (True, False)


async def test_draw_unknown_handle_is_404(jp_fetch):
    error = await _error(jp_fetch, "glurpc-lab", "draw_a_plot", method="POST", body=json.dumps({"handle": "f" * 64, "index": 0}))

    assert error.code == 404


async def test_busy_model_is_503(jp_fetch, jp_serverapp, small_export):
    handle = (await _upload(jp_fetch, small_export))["handle"]
    pool = jp_serverapp.web_app.settings["glurpc_lab"].engine.load_models()
    pool.wait_seconds = 0.2

    with pool.borrow():
        error = await _error(jp_fetch, "glurpc-lab", "datasets", handle, "series", "0", "forecasts")

    assert error.code == 503
    assert error.response.headers["Retry-After"] == "30"
    assert "retry later" in _message(error)
