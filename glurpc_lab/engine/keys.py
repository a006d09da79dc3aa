"""Content-derived identifiers: dataset handles and forecast cache keys.

A handle depends only on the gridded arrays, the subject labels and the
ingestion settings, never on the file name or the raw bytes, so a re-exported
copy of the same data gets the same handle. A forecast key adds everything
that changes forecast values, so a new model, seed or sample count never
serves a stale forecast.

NOTE: handles are unkeyed SHA-256 digests, so the same data gets the same
handle on every server. A per-server HMAC key would stop a handle from
linking one person's uploads across servers.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence

import numpy as np

import glurpc_lab
from glurpc_lab.ingest.series import GRID_MINUTES, CgmDataset, GlucoseSeries

DATASET_KEY_VERSION = 1
"""Bump when the gridding in ``glurpc_lab.ingest`` changes its output for the same file."""

FORECAST_KEY_VERSION = 1
"""Bump when scaling, windowing or sampling in ``glurpc_lab.forecast`` changes forecast values."""

_KEY_PATTERN = re.compile(r"^[0-9a-f]{64}$")

# Canonical little-endian dtypes, so the same data hashes the same on every platform.
_SERIES_DTYPES = (
    ("time", "<i8"),
    ("glucose", "<f4"),
    ("segment", "<i4"),
    ("imputed", "|u1"),
    ("censored", "|i1"),
)


def is_key(text: str) -> bool:
    """Return True when ``text`` has the form of a handle or forecast key (64 lowercase hex digits)."""
    return isinstance(text, str) and bool(_KEY_PATTERN.match(text))


def _update_length_prefixed(digest, payload: bytes) -> None:
    # The length prefix keeps field boundaries unambiguous: ("ab", "c") != ("a", "bc").
    digest.update(len(payload).to_bytes(8, "little"))
    digest.update(payload)


def _series_array(series: GlucoseSeries, name: str, dtype: str) -> np.ndarray:
    values = getattr(series, name)
    if name == "time":
        values = np.asarray(values).astype("datetime64[s]").view("int64")
    return np.ascontiguousarray(np.asarray(values).astype(dtype))


def dataset_handle(dataset: CgmDataset, settings: Mapping[str, object]) -> str:
    """Compute the handle of a parsed upload.

    Parameters
    ----------
    dataset : CgmDataset
        The gridded series. Each series contributes its subject label and its
        time (as int64 seconds), glucose, segment, imputed and censored arrays.
    settings : mapping
        Ingestion settings that shaped the grid, e.g. the interpolation limit.
        Values must be JSON-serialisable.

    Returns
    -------
    str
        SHA-256 hex digest, 64 characters.
    """
    digest = hashlib.sha256()
    header = {
        "kind": "dataset",
        "version": DATASET_KEY_VERSION,
        "grid_minutes": GRID_MINUTES,
        "settings": dict(settings),
        "series": len(dataset.series),
    }
    _update_length_prefixed(digest, json.dumps(header, sort_keys=True).encode())

    for series in dataset.series:
        _update_length_prefixed(digest, series.subject.encode("utf-8"))
        for name, dtype in _SERIES_DTYPES:
            array = _series_array(series, name, dtype)
            _update_length_prefixed(digest, f"{name}:{dtype}:{array.shape}".encode())
            _update_length_prefixed(digest, array.tobytes())
    return digest.hexdigest()


def forecast_key(
    handle: str,
    index: int,
    *,
    model_id: str,
    n_samples: int,
    seed: int,
    levels: Sequence[float],
    windows: str,
) -> str:
    """Compute the cache key of the forecasts of one series.

    Parameters
    ----------
    handle : str
        Dataset handle from :func:`dataset_handle`.
    index : int
        Series index within the dataset.
    model_id : str
        Identifier of the model and its weights.
    n_samples : int
        MC-dropout samples per window.
    seed : int
        Sampling seed.
    levels : sequence of float
        Stored quantile levels.
    windows : str
        Which windows were computed: ``"all"`` or ``"latest"``.

    Returns
    -------
    str
        SHA-256 hex digest, 64 characters.
    """
    payload = {
        "kind": "forecast",
        "version": FORECAST_KEY_VERSION,
        "package_version": glurpc_lab.__version__,
        "handle": handle,
        "series": int(index),
        "model_id": model_id,
        "n_samples": int(n_samples),
        "seed": int(seed),
        "levels": [float(level) for level in levels],
        "windows": windows,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
