"""LocalClient and RestClient return the same data; RestClient runs against a real Jupyter server."""

from __future__ import annotations

import asyncio
import inspect
import socket

import numpy as np
import pytest

from conftest import TEST_SAMPLES
from glurpc_lab.client import (
    Client,
    LocalClient,
    RemoteAuthError,
    RemoteError,
    RemoteInputError,
    RemoteNotFoundError,
    RestClient,
)
from glurpc_lab.engine import Engine, HandleNotFoundError
from glurpc_lab.ingest import IngestError


@pytest.fixture
def server_url(jp_serverapp, http_server, jp_http_port, jp_base_url) -> str:
    """URL of the test server; requesting ``http_server`` makes it accept connections."""
    return f"http://127.0.0.1:{jp_http_port}{jp_base_url}"


@pytest.fixture
def rest_client(jp_serverapp, server_url) -> RestClient:
    token = jp_serverapp.identity_provider.token
    return RestClient(server_url, token, timeout=120)


@pytest.fixture
def local_client(tiny_model_path, cache_dir):
    # Same store as the server, so both clients read the very same forecast entry.
    engine = Engine(tiny_model_path, devices=["cpu"], n_samples=TEST_SAMPLES, cache_dir=cache_dir)
    with LocalClient(engine) as client:
        yield client
    engine.close()


@pytest.mark.parametrize("client_class", [LocalClient, RestClient])
@pytest.mark.parametrize("name", ["health", "process", "series", "forecast"])
def test_clients_implement_protocol(client_class, name):
    expected = inspect.signature(getattr(Client, name))
    actual = inspect.signature(getattr(client_class, name))

    assert list(actual.parameters) == list(expected.parameters)
    for parameter in expected.parameters.values():
        assert actual.parameters[parameter.name].default == parameter.default


async def test_rest_matches_local(rest_client, local_client, small_export):
    remote_info = await asyncio.to_thread(rest_client.process, small_export)
    remote_series = await asyncio.to_thread(rest_client.series, remote_info.handle, 0)
    remote_forecast = await asyncio.to_thread(rest_client.forecast, remote_info.handle, 0)
    remote_health = await asyncio.to_thread(rest_client.health)

    local_info = local_client.process(small_export)
    local_series = local_client.series(local_info.handle, 0)
    local_forecast = local_client.forecast(local_info.handle, 0)

    assert remote_info == local_info
    assert remote_series.subject == local_series.subject
    for name in ("time", "glucose", "segment", "imputed", "censored"):
        remote, local = getattr(remote_series, name), getattr(local_series, name)
        assert remote.dtype == local.dtype, name
        np.testing.assert_array_equal(remote, local, err_msg=name)
    assert remote_series.quality == local_series.quality

    for name in ("input_end", "time_end", "horizon_minutes", "levels", "quantiles", "sample_mean", "sample_std", "truth"):
        remote, local = getattr(remote_forecast, name), getattr(local_forecast, name)
        assert remote.dtype == local.dtype, name
        assert remote.shape == local.shape, name
        np.testing.assert_array_equal(remote, local, err_msg=name)
    assert remote_forecast.model_id == local_forecast.model_id
    assert remote_forecast.seed == local_forecast.seed
    assert remote_forecast.subject == local_forecast.subject
    assert remote_forecast.quantiles.shape == (81, 12, 7)
    assert remote_health["counters"]["forecasts_computed"] == 1
    assert local_client.health()["counters"]["forecasts_computed"] == 0


async def test_rest_plot(rest_client, small_export):
    handle = (await asyncio.to_thread(rest_client.process, small_export)).handle

    figure = await asyncio.to_thread(rest_client.plot, handle, 0, -1)

    assert figure["data"]


async def test_rest_errors_match_local_types(rest_client, local_client):
    garbage = b"this is not a glucose export\n1,2,3\n"

    with pytest.raises(RemoteInputError) as remote_input:
        await asyncio.to_thread(rest_client.process, garbage)
    with pytest.raises(IngestError) as local_input:
        local_client.process(garbage)
    with pytest.raises(RemoteNotFoundError):
        await asyncio.to_thread(rest_client.series, "0" * 64, 0)
    with pytest.raises(HandleNotFoundError):
        local_client.series("0" * 64, 0)

    assert remote_input.value.status == 400
    assert isinstance(remote_input.value, ValueError)
    assert isinstance(local_input.value, ValueError)
    assert remote_input.value.message == str(local_input.value)


async def test_rest_wrong_token_is_auth_error(server_url):
    client = RestClient(server_url, "wrong-token", timeout=30)

    with pytest.raises(RemoteAuthError) as caught:
        await asyncio.to_thread(client.health)

    assert caught.value.status == 403


def test_rest_unreachable_server():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = RestClient(f"http://127.0.0.1:{port}/", "token", timeout=5)

    with pytest.raises(RemoteError, match="cannot reach") as caught:
        client.health()

    assert caught.value.status == 0


def test_rest_rejects_bad_url():
    with pytest.raises(ValueError, match="http"):
        RestClient("127.0.0.1:8888", "token")
