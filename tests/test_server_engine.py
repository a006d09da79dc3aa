"""The extension's queueing, cancellation, namespaces and admin flush, in a real Jupyter server."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from tornado.httpclient import HTTPClientError

from jupyter_server.auth.identity import IdentityProvider, User

from conftest import SMALL_EXPORT, corpus_bytes
from glurpc_lab.engine import namespace_for_user


class HeaderIdentityProvider(IdentityProvider):
    """Token authentication as usual, with the user name taken from an ``X-Test-User`` header.

    jupyter_server gives every token-authenticated request without a login
    cookie a new random user; JupyterHub supplies a stable name instead,
    and this header plays that role.
    """

    def generate_anonymous_user(self, handler) -> User:
        name = handler.request.headers.get("X-Test-User", "nobody")
        return User(username=name, name=name, display_name=name)


@pytest.fixture
def jp_server_config(jp_server_config):
    """The shared configuration with a one-job interactive queue and header-named users."""
    config = json.loads(json.dumps(jp_server_config))
    config["ServerApp"]["identity_provider_class"] = f"{__name__}.HeaderIdentityProvider"
    config["GlurpcLabApp"]["max_queued_interactive"] = 1
    config["GlurpcLabApp"]["background_fill"] = False
    return config


def _as(user: str) -> dict:
    return {"X-Test-User": user}


def _app(jp_serverapp):
    return jp_serverapp.web_app.settings["glurpc_lab"]


async def _upload(jp_fetch, content: bytes) -> str:
    response = await jp_fetch("glurpc-lab", "datasets", method="POST", body=content)
    return json.loads(response.body)["handle"]


async def _wait_for(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_full_queue_is_503_and_health_answers(jp_fetch, jp_serverapp, small_export):
    engine = _app(jp_serverapp).engine
    first = await _upload(jp_fetch, small_export)
    second = await _upload(jp_fetch, b"".join(corpus_bytes(SMALL_EXPORT).splitlines(keepends=True)[:190]))

    with engine.load_models().borrow():
        queued = asyncio.ensure_future(
            jp_fetch("glurpc-lab", "datasets", first, "series", "0", "forecasts", params={"windows": "latest"}, request_timeout=60)
        )
        await _wait_for(lambda: engine.scheduler.stats()["queued"]["interactive"] == 1)

        with pytest.raises(HTTPClientError) as caught:
            await jp_fetch("glurpc-lab", "datasets", second, "series", "0", "forecasts", params={"windows": "latest"})
        started = time.perf_counter()
        health = json.loads((await jp_fetch("glurpc-lab", "health")).body)
        health_seconds = time.perf_counter() - started

    answered = await queued

    assert caught.value.code == 503
    assert int(caught.value.response.headers["Retry-After"]) >= 1
    assert "queue is full" in json.loads(caught.value.response.body)["message"]
    assert health["scheduler"]["rejected"] == 1
    assert health_seconds < 2.0
    assert answered.code == 200
    assert len(json.loads(answered.body)["time_end"]) == 1


async def test_disconnect_cancels_queued_job(jp_fetch, jp_serverapp, small_export):
    engine = _app(jp_serverapp).engine
    handle = await _upload(jp_fetch, small_export)

    with engine.load_models().borrow():
        with pytest.raises(HTTPClientError) as caught:
            await jp_fetch("glurpc-lab", "datasets", handle, "series", "0", "forecasts", request_timeout=0.5)
        await _wait_for(lambda: engine.scheduler.stats()["cancelled"] == 1)

    assert caught.value.code == 599
    await _wait_for(lambda: engine.pool.stats()["free"] == 1)
    assert engine.scheduler.stats()["completed"] == 0
    assert engine.store.counts()["forecasts"] == 0


async def test_per_user_namespaces(jp_fetch, jp_serverapp, small_export, cache_dir):
    _app(jp_serverapp).per_user_namespaces = True

    response = await jp_fetch("glurpc-lab", "datasets", method="POST", body=small_export, headers=_as("alice"))
    handle = json.loads(response.body)["handle"]
    own = await jp_fetch("glurpc-lab", "datasets", handle, headers=_as("alice"))
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("glurpc-lab", "datasets", handle, headers=_as("bob"))

    assert own.code == 200
    assert caught.value.code == 404
    assert (cache_dir / "ns" / namespace_for_user("alice") / "datasets" / handle).is_dir()
    assert not (cache_dir / "ns" / "local" / "datasets" / handle).exists()


async def test_flush_is_admin_only(jp_fetch, jp_serverapp, small_export):
    app = _app(jp_serverapp)
    app.admin_users = ["admin"]
    await _upload(jp_fetch, small_export)

    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("glurpc-lab", "cache", "flush", method="POST", body="{}", headers=_as("alice"))
    response = await jp_fetch("glurpc-lab", "cache", "flush", method="POST", body="{}", headers=_as("admin"))
    flushed = json.loads(response.body)

    assert caught.value.code == 403
    assert "admin_users" in json.loads(caught.value.response.body)["message"]
    assert flushed == {"removed": 1, "all_namespaces": False}
    assert app.engine.store.counts()["datasets"] == 0


async def test_flush_without_token_is_403(jp_fetch):
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("glurpc-lab", "cache", "flush", method="POST", body="{}", headers={"Authorization": ""})

    assert caught.value.code == 403
