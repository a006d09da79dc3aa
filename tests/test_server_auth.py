"""Auth coverage: every handler verb of the extension declares its authentication rule."""

from __future__ import annotations

import json
import warnings

import pytest
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import JupyterServerAuthWarning
from tornado.httpclient import HTTPClientError


@pytest.fixture
def jp_server_config(jp_server_config):
    """The shared configuration with unauthenticated access switched off, as hardened servers run."""
    config = dict(jp_server_config)
    config["ServerApp"] = {**config["ServerApp"], "allow_unauthenticated_access": False}
    return config


def _auth_warnings(caught) -> list[str]:
    return [str(item.message) for item in caught if issubclass(item.category, JupyterServerAuthWarning)]


def test_every_route_declares_auth(jp_configurable_serverapp, jp_server_config):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        app = jp_configurable_serverapp(config=jp_server_config)

    assert "glurpc_lab" in app.extension_manager.extensions
    assert app.extension_manager.extensions["glurpc_lab"].enabled
    assert _auth_warnings(caught) == []


def test_undecorated_route_is_detected(jp_serverapp):
    """The check above can fail: jupyter_server warns for a handler verb without an auth rule."""

    class Undecorated(APIHandler):
        def get(self):
            self.finish("{}")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        jp_serverapp.web_app.add_handlers(".*$", [(r"/undecorated-probe", Undecorated)])

    assert any("Undecorated" in message for message in _auth_warnings(caught))


async def test_live_stays_public(jp_fetch):
    response = await jp_fetch("glurpc-lab", "health", "live", headers={"Authorization": ""})

    assert json.loads(response.body) == {"status": "ok"}


async def test_health_needs_token(jp_fetch):
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("glurpc-lab", "health", headers={"Authorization": ""})

    assert caught.value.code == 403
