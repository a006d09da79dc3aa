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

FORECAST_KEY_VERSION = 3
"""Bump when scaling, windowing or sampling in ``glurpc_lab.forecast`` changes forecast values."""

_KEY_PATTERN = re.compile(r"^[0-9a-f]{64}$")

DEFAULT_NAMESPACE = "local"
"""Namespace of the Python API and of a server without per-user namespaces."""

_NAMESPACE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

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


def namespace_for_user(username: str) -> str:
    """Return the store namespace of a user, e.g. a JupyterHub user name.

    The namespace is ``"u-"`` plus 32 hex digits of the SHA-256 of the name,
    so every name, whatever its characters, maps to a safe directory name and
    the store's directory listing does not show user names.
    """
    if not isinstance(username, str) or not username:
        raise ValueError("username must be a non-empty string")
    return "u-" + hashlib.sha256(username.encode("utf-8")).hexdigest()[:32]


def check_namespace(namespace: str) -> str:
    """Return ``namespace`` when it is a valid directory name: 1-64 of ``a-z 0-9 _ -``, not starting with ``_`` or ``-``.

    Raises
    ------
    ValueError
        For any other value.
    """
    if not isinstance(namespace, str) or not _NAMESPACE_PATTERN.match(namespace):
        raise ValueError(
            f"invalid namespace {str(namespace)[:70]!r}: use 1 to 64 characters from a-z, 0-9, '_' and '-', "
            "starting with a letter or digit, or namespace_for_user(name)"
        )
    return namespace


def _update_length_prefixed(digest, payload: bytes) -> None:
    # The length prefix keeps field boundaries unambiguous: ("ab", "c") != ("a", "bc").
    digest.update(len(payload).to_bytes(8, "little"))
    digest.update(payload)


def _series_array(series: GlucoseSeries, name: str, dtype: str) -> np.ndarray:
    values = getattr(series, name)
    if name == "time":
        values = np.asarray(values).astype("datetime64[s]").view("int64")
    return np.ascontiguousarray(np.asarray(values).astype(dtype))


def dataset_handle(dataset: CgmDataset, settings: Mapping[str, object], namespace: str = DEFAULT_NAMESPACE) -> str:
    """Compute the handle of a parsed upload.

    Parameters
    ----------
    dataset : CgmDataset
        The gridded series. Each series contributes its subject label and its
        time (as int64 seconds), glucose, segment, imputed and censored arrays.
    settings : mapping
        Ingestion settings that shaped the grid, e.g. the interpolation limit.
        Values must be JSON-serialisable.
    namespace : str
        Store namespace. Outside the default namespace it enters the digest,
        so the same file uploaded by two users gets two unrelated handles and
        a handle cannot link one person's uploads across users.

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
    # The default namespace adds nothing, so handles from before namespaces existed stay valid.
    if namespace != DEFAULT_NAMESPACE:
        header["namespace"] = check_namespace(namespace)
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
