"""Shared fixtures: real corpus exports, a tiny real model, and a Jupyter server with the extension."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytest_jupyter.jupyter_server"]

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPORA = SHARED / "corpora"

SMALL_EXPORT = "nightscout_entries.csv"
"""Real Nightscout export (no header, newest reading first)."""

SMALL_EXPORT_LINES = 200
"""Readings kept from ``SMALL_EXPORT``: its newest 200 give 198 grid points in 2 segments and 81
forecasting windows, few enough to forecast every window in a few seconds with the tiny model
on 2 CPU cores."""

TEST_SAMPLES = 3
"""MC-dropout samples in tests; few, so forecasts of every window stay fast on 2 CPU cores."""


def corpus_bytes(name: str) -> bytes:
    """Return the bytes of a shared corpus export, skipping the test when the folder is absent."""
    path = CORPORA / name
    if not path.is_file():
        pytest.skip(f"shared corpus export {name} not found under {CORPORA}")
    return path.read_bytes()


@pytest.fixture
def small_export() -> bytes:
    """A real Nightscout export cut to its newest readings, as a user exporting one day uploads it."""
    lines = corpus_bytes(SMALL_EXPORT).splitlines(keepends=True)
    return b"".join(lines[:SMALL_EXPORT_LINES])


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A weights file of a randomly initialised ``GluformerConfig.tiny()`` model, with its config JSON beside it.

    Random weights give meaningless forecasts, but they run the real network,
    loader and sampling code at a small fraction of the published model's cost.
    """
    import torch

    from glurpc_lab.model import Gluformer, GluformerConfig

    folder = tmp_path_factory.mktemp("tiny-model")
    config = GluformerConfig.tiny()
    torch.manual_seed(0)
    module = Gluformer(config)
    weights = folder / "tiny.pth"
    torch.save(module.state_dict(), weights)
    config.to_json(folder / "tiny.json")
    return weights


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    """An empty directory for the engine's zarr store."""
    return tmp_path / "store"


@pytest.fixture
def jp_server_config(tiny_model_path, cache_dir):
    """Enable only the glurpc_lab extension, with the tiny model and a temporary store."""
    # pytest-jupyter adds jupyter_server_terminals unless it is named here.
    extensions = {"glurpc_lab": True, "jupyter_server_terminals": False}
    return {
        "ServerApp": {"jpserver_extensions": extensions, "allow_root": True},
        "GlurpcLabApp": {
            "model_source": str(tiny_model_path),
            "cache_dir": str(cache_dir),
            "devices": ["cpu"],
            "n_samples": TEST_SAMPLES,
            "max_upload_bytes": 1024 * 1024,
            "preload_model": False,
            "prefetch_forecasts": False,
        },
    }
