"""On-disk zarr 3 store of processed datasets and their forecasts.

Layout under the store root, every directory a zarr group::

    datasets/<handle>/<i>/{time, glucose, segment, imputed, censored}
    forecasts/<key>/{input_end, time_end, horizon_minutes, levels,
                     quantiles, sample_mean, sample_std, truth}

Each entry is written to a hidden temporary directory beside its final place
and published with one ``os.replace``, so a reader sees either no entry or a
complete one, even after a crash. Entries are content-addressed, so two
writers of the same key write the same data and the loser simply discards its
copy. Readers open with ``use_consolidated=False`` because consolidated
metadata is not kept.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path

import numpy as np
import zarr
from zarr.storage import LocalStore

from glurpc_lab.engine.keys import is_key
from glurpc_lab.forecast.result import Forecast
from glurpc_lab.ingest.quality import QualityReport
from glurpc_lab.ingest.series import CgmDataset, GlucoseSeries

logger = logging.getLogger(__name__)

STORE_FORMAT_VERSION = 1
"""Layout version written to the root group's attributes."""

WINDOW_CHUNK = 512
"""Windows per chunk of every forecast array."""

POINT_CHUNK = 16384
"""Grid points per chunk of every series array."""

STALE_TEMP_SECONDS = 3600
"""Age after which a leftover temporary directory is treated as abandoned and removed."""

_TEMP_PREFIX = ".tmp-"
_TRASH_PREFIX = ".old-"


def default_cache_dir() -> Path:
    """Return ``~/.cache/glurpc-lab/store``."""
    return Path.home() / ".cache" / "glurpc-lab" / "store"


def _jsonable(value):
    # Attributes are stored as JSON; numpy scalars and other objects become plain values or strings.
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _seconds(times: np.ndarray) -> np.ndarray:
    return np.asarray(times).astype("datetime64[s]").view("int64")


class Store:
    """Datasets and forecasts in a zarr 3 ``LocalStore`` hierarchy.

    Parameters
    ----------
    root : str or os.PathLike
        Directory of the store; created with mode 0700 when missing, because
        the store contains personal health data.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser()
        self.datasets_dir = self.root / "datasets"
        self.forecasts_dir = self.root / "forecasts"

        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not (self.root / "zarr.json").exists():
            store = LocalStore(self.root)
            root_group = zarr.open_group(
                store=store, mode="a", attributes={"glurpc_lab_store": STORE_FORMAT_VERSION}
            )
            root_group.require_group("datasets")
            root_group.require_group("forecasts")
        self.datasets_dir.mkdir(exist_ok=True)
        self.forecasts_dir.mkdir(exist_ok=True)
        self._remove_stale_temporaries()

    # ------------------------------------------------------------ publishing

    def _remove_stale_temporaries(self) -> None:
        # A crash between writing and os.replace leaves a hidden directory behind.
        # Young ones may belong to another process that is still writing.
        now = time.time()
        for parent in (self.datasets_dir, self.forecasts_dir):
            for entry in parent.iterdir():
                if not entry.name.startswith((_TEMP_PREFIX, _TRASH_PREFIX)):
                    continue
                try:
                    age = now - entry.stat().st_mtime
                except FileNotFoundError:
                    continue
                if age > STALE_TEMP_SECONDS:
                    shutil.rmtree(entry, ignore_errors=True)

    def _publish(self, parent: Path, key: str, write, *, replace: bool = False) -> bool:
        """Write an entry with ``write(group)`` into a temporary directory, then rename it into place.

        Returns True when this call published the entry, False when an
        entry with the same key already existed and ``replace`` is False.
        """
        final = parent / key
        if final.exists() and not replace:
            return False

        temporary = parent / f"{_TEMP_PREFIX}{key[:16]}-{uuid.uuid4().hex}"
        try:
            group = zarr.open_group(store=LocalStore(temporary), mode="w")
            write(group)

            trash = None
            if replace and final.exists():
                trash = parent / f"{_TRASH_PREFIX}{key[:16]}-{uuid.uuid4().hex}"
                try:
                    os.replace(final, trash)
                except FileNotFoundError:
                    trash = None
            try:
                os.replace(temporary, final)
            except OSError:
                # Another writer published the same content-addressed key first.
                if not final.exists():
                    raise
                return False
            finally:
                if trash is not None:
                    shutil.rmtree(trash, ignore_errors=True)
            return True
        finally:
            if temporary.exists():
                shutil.rmtree(temporary, ignore_errors=True)

    def _open(self, parent: Path, key: str):
        if not is_key(key):
            raise ValueError(f"invalid store key {key!r}: expected 64 lowercase hex digits")
        path = parent / key
        if not (path / "zarr.json").exists():
            return None
        return zarr.open_group(
            store=LocalStore(path, read_only=True), mode="r", use_consolidated=False
        )

    # ------------------------------------------------------------ datasets

    def has_dataset(self, handle: str) -> bool:
        """Return True when a dataset is stored under ``handle``."""
        return is_key(handle) and (self.datasets_dir / handle / "zarr.json").exists()

    def write_dataset(self, handle: str, dataset: CgmDataset, settings: dict) -> bool:
        """Store every series of ``dataset`` under ``handle``.

        Returns True when written, False when the handle was already stored.
        """
        if not is_key(handle):
            raise ValueError(f"invalid handle {handle!r}: expected 64 lowercase hex digits")

        def write(group) -> None:
            group.attrs.update(
                {
                    "source_format": dataset.source_format,
                    "n_series": len(dataset.series),
                    "ingest_settings": _jsonable(settings),
                }
            )
            for index, series in enumerate(dataset.series):
                self._write_series(group.create_group(str(index)), series)

        return self._publish(self.datasets_dir, handle, write)

    @staticmethod
    def _write_series(group, series: GlucoseSeries) -> None:
        group.attrs.update(
            {"subject": series.subject, "quality": _jsonable(series.quality.to_dict())}
        )
        columns = {
            "time": (_seconds(series.time), "int64", "seconds since 1970-01-01, naive device time"),
            "glucose": (np.asarray(series.glucose), "float32", "mg/dL"),
            "segment": (np.asarray(series.segment), "int32", None),
            "imputed": (np.asarray(series.imputed), "bool", None),
            "censored": (np.asarray(series.censored), "int8", "+1 High, -1 Low, 0 otherwise"),
        }
        for name, (values, dtype, units) in columns.items():
            attributes = {"units": units} if units else {}
            group.create_array(
                name,
                data=values.astype(dtype),
                chunks=(POINT_CHUNK,),
                dimension_names=("point",),
                attributes=attributes,
            )

    def dataset_source_format(self, handle: str) -> str | None:
        """Return the stored source format, or None when the handle is not stored."""
        group = self._open(self.datasets_dir, handle)
        return None if group is None else str(group.attrs["source_format"])

    def dataset_size(self, handle: str) -> int | None:
        """Return the number of stored series, or None when the handle is not stored."""
        group = self._open(self.datasets_dir, handle)
        return None if group is None else int(group.attrs["n_series"])

    def read_series(self, handle: str, index: int) -> GlucoseSeries | None:
        """Return series ``index`` of a stored dataset, or None when the handle is not stored."""
        dataset = self._open(self.datasets_dir, handle)
        if dataset is None:
            return None
        group = dataset[str(index)]

        quality = dict(group.attrs["quality"])
        quality.pop("has_warnings", None)
        return GlucoseSeries(
            subject=str(group.attrs["subject"]),
            time=group["time"][:].astype("datetime64[s]"),
            glucose=group["glucose"][:],
            segment=group["segment"][:],
            imputed=group["imputed"][:],
            censored=group["censored"][:],
            quality=QualityReport(**quality),
        )

    # ------------------------------------------------------------ forecasts

    def has_forecast(self, key: str) -> bool:
        """Return True when forecasts are stored under ``key``."""
        return is_key(key) and (self.forecasts_dir / key / "zarr.json").exists()

    def write_forecast(self, key: str, forecast: Forecast, attributes: dict, *, replace: bool = False) -> bool:
        """Store ``forecast`` under ``key`` with extra ``attributes`` (e.g. handle, n_samples).

        Returns True when written, False when the key was already stored
        and ``replace`` is False.
        """
        if not is_key(key):
            raise ValueError(f"invalid forecast key {key!r}: expected 64 lowercase hex digits")

        def write(group) -> None:
            group.attrs.update(
                _jsonable(
                    {
                        **attributes,
                        "levels": np.asarray(forecast.levels).tolist(),
                        "seed": int(forecast.seed),
                        "model_id": forecast.model_id,
                        "subject": forecast.subject,
                        "metadata": forecast.metadata,
                    }
                )
            )
            windows = forecast.n_windows
            arrays = {
                "input_end": (forecast.input_end, "int64", ("window",), None),
                "time_end": (_seconds(forecast.time_end), "int64", ("window",), "seconds since 1970-01-01"),
                "quantiles": (forecast.quantiles, "float32", ("window", "horizon", "level"), "mg/dL"),
                "sample_mean": (forecast.sample_mean, "float32", ("window", "horizon", "sample"), "mg/dL"),
                "sample_std": (forecast.sample_std, "float32", ("window", "sample"), "mg/dL"),
                "truth": (forecast.truth, "float32", ("window", "horizon"), "mg/dL"),
            }
            for name, (values, dtype, dimensions, units) in arrays.items():
                values = np.asarray(values).astype(dtype)
                if values.shape[:1] != (windows,):
                    raise ValueError(f"forecast array {name} has shape {values.shape}, expected {windows} windows first")
                group.create_array(
                    name,
                    data=values,
                    chunks=(WINDOW_CHUNK, *values.shape[1:]),
                    dimension_names=dimensions,
                    attributes={"units": units} if units else {},
                )

            group.create_array("horizon_minutes", data=np.asarray(forecast.horizon_minutes).astype("int64"), dimension_names=("horizon",))
            group.create_array("levels", data=np.asarray(forecast.levels).astype("float64"), dimension_names=("level",))

        return self._publish(self.forecasts_dir, key, write, replace=replace)

    def read_forecast(self, key: str) -> Forecast | None:
        """Return the forecasts stored under ``key``, or None when there are none."""
        try:
            group = self._open(self.forecasts_dir, key)
            if group is None:
                return None
            attributes = group.attrs.asdict()
            return Forecast(
                subject=str(attributes["subject"]),
                input_end=group["input_end"][:],
                time_end=group["time_end"][:].astype("datetime64[s]"),
                horizon_minutes=group["horizon_minutes"][:],
                levels=group["levels"][:],
                quantiles=group["quantiles"][:],
                sample_mean=group["sample_mean"][:],
                sample_std=group["sample_std"][:],
                truth=group["truth"][:],
                seed=int(attributes["seed"]),
                model_id=str(attributes["model_id"]),
                metadata=dict(attributes.get("metadata") or {}),
            )
        except FileNotFoundError:
            # A forced recompute replaced the entry while it was being read.
            return None

    # ------------------------------------------------------------ bookkeeping

    def counts(self) -> dict:
        """Return the number of stored datasets and forecast entries."""
        return {
            "datasets": sum(1 for entry in self.datasets_dir.iterdir() if is_key(entry.name)),
            "forecasts": sum(1 for entry in self.forecasts_dir.iterdir() if is_key(entry.name)),
        }
