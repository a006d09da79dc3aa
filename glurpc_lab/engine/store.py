"""On-disk zarr 3 store of processed datasets and their forecasts.

Each namespace (one per user on a shared server) has its own entries; the
layout is described in :mod:`glurpc_lab.engine.layout`. Every entry is a zarr
group::

    datasets/<handle>/<i>/{time, glucose, segment, imputed, censored}
    forecasts/<key>/{input_end, time_end, horizon_minutes, levels,
                     quantiles, sample_mean, sample_std, truth}

Crash safety: an entry is written to a hidden temporary directory beside its
final place and published with one ``os.replace``, so a reader sees either no
entry or a complete one, even after the writer is killed. Removal renames the
entry away before deleting it, for the same reason.

Several processes may share one store: a writer holds the entry's file lock
from its existence check to the rename, so one entry has one writer at a
time. Entries are never modified after publishing, so no two writers ever
append to one zarr array. Readers open with ``use_consolidated=False``
because consolidated metadata is not kept.
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

from glurpc_lab.engine import layout
from glurpc_lab.engine.budget import DiskBudget
from glurpc_lab.engine.keys import DEFAULT_NAMESPACE, check_namespace, is_key
from glurpc_lab.engine.locks import FileLock
from glurpc_lab.forecast.result import Forecast
from glurpc_lab.ingest.quality import QualityReport
from glurpc_lab.ingest.series import CgmDataset, GlucoseSeries

logger = logging.getLogger(__name__)

STORE_FORMAT_VERSION = 2
"""Layout version written to the root group's attributes; 2 added namespaces."""

WINDOW_CHUNK = 512
"""Windows per chunk of every forecast array."""

POINT_CHUNK = 16384
"""Grid points per chunk of every series array."""

STALE_TEMP_SECONDS = 3600
"""Age after which a leftover temporary directory is treated as abandoned and removed."""

LOCK_WAIT_SECONDS = 300.0
"""Maximum wait for an entry's file lock, in seconds, before the write fails."""

_TEMP_PREFIX = layout.TEMP_PREFIX
_TRASH_PREFIX = layout.TRASH_PREFIX


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
    """Datasets and forecasts of one namespace in a zarr 3 store on disk.

    Parameters
    ----------
    root : str or os.PathLike
        Directory of the store; created with mode 0700 when missing, because
        the store contains personal health data.
    namespace : str
        The namespace this object reads and writes; see
        :func:`glurpc_lab.engine.keys.namespace_for_user`.
    budget_bytes : int, optional
        Maximum total size of all entries of all namespaces, in bytes. After
        each write the least recently used entries are deleted until the store
        fits. None keeps everything.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        budget_bytes: int | None = None,
    ) -> None:
        self.root = Path(root).expanduser()
        self.namespace = check_namespace(namespace)
        self.datasets_dir = layout.entry_parent(self.root, self.namespace, "datasets")
        self.forecasts_dir = layout.entry_parent(self.root, self.namespace, "forecasts")
        self.lineage_dir = layout.namespaces_dir(self.root) / self.namespace / "lineage"

        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not (self.root / "zarr.json").exists():
            zarr.open_group(
                store=LocalStore(self.root), mode="a", attributes={"glurpc_lab_store": STORE_FORMAT_VERSION}
            )
        for folder in (self.root / "locks", self.datasets_dir, self.forecasts_dir, self.lineage_dir):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.budget = DiskBudget(self.root, budget_bytes)
        self._remove_stale_temporaries()

    def in_namespace(self, namespace: str) -> Store:
        """Return a store object for another namespace of the same root, with the same byte budget."""
        if namespace == self.namespace:
            return self
        return Store(self.root, namespace, budget_bytes=self.budget.max_bytes)

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

    def _lock(self, parent: Path, key: str) -> FileLock:
        return FileLock(layout.lock_path(self.root, self.namespace, parent.name, key), timeout=LOCK_WAIT_SECONDS)

    def _publish(self, parent: Path, key: str, write, *, replace: bool = False) -> bool:
        """Write an entry with ``write(group)`` into a temporary directory, then rename it into place.

        Returns True when this call published the entry, False when an
        entry with the same key already existed and ``replace`` is False.
        """
        final = parent / key
        if final.exists() and not replace:
            return False

        with self._lock(parent, key):
            # Checked again under the lock: another process may have published meanwhile.
            if final.exists() and not replace:
                return False
            temporary = parent / f"{_TEMP_PREFIX}{key[:16]}-{uuid.uuid4().hex}"
            try:
                group = zarr.open_group(store=LocalStore(temporary), mode="w")
                write(group)
                if replace and final.exists():
                    self._discard(final)
                os.replace(temporary, final)
            finally:
                if temporary.exists():
                    shutil.rmtree(temporary, ignore_errors=True)

        self.budget.enforce(protect={final})
        return True

    @staticmethod
    def _discard(entry: Path) -> bool:
        """Rename an entry out of sight, then delete it; return False when it was already gone."""
        trash = entry.parent / f"{_TRASH_PREFIX}{entry.name[:16]}-{uuid.uuid4().hex}"
        try:
            os.replace(entry, trash)
        except FileNotFoundError:
            return False
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def remove(self, kind: str, key: str) -> bool:
        """Delete one entry under its lock; ``kind`` is ``"datasets"`` or ``"forecasts"``.

        Returns True when an entry was deleted.
        """
        if kind not in layout.ENTRY_KINDS:
            raise ValueError(f"kind must be one of {layout.ENTRY_KINDS}, got {kind!r}")
        if not is_key(key):
            raise ValueError(f"invalid store key {key!r}: expected 64 lowercase hex digits")
        parent = self.datasets_dir if kind == "datasets" else self.forecasts_dir
        with self._lock(parent, key):
            return self._discard(parent / key)

    def flush(self, *, all_namespaces: bool = False) -> int:
        """Delete every entry of this namespace, or of every namespace, and return how many were deleted.

        Authorisation is the caller's job: the server allows it to admins only.
        """
        removed = 0
        namespace = None if all_namespaces else self.namespace
        for name, kind, path in list(layout.iter_entries(self.root, namespace)):
            with FileLock(layout.lock_path(self.root, name, kind, path.name), timeout=LOCK_WAIT_SECONDS):
                removed += self._discard(path)
        for name in [namespace] if namespace else list(layout.iter_namespaces(self.root)):
            lineage = layout.namespaces_dir(self.root) / name / "lineage"
            for anchor in list(lineage.iterdir()) if lineage.is_dir() else []:
                shutil.rmtree(anchor, ignore_errors=True)
        logger.info("flushed %d store entries (%s)", removed, "all namespaces" if all_namespaces else "one namespace")
        return removed

    def touch(self, kind: str, key: str) -> None:
        """Mark an entry as used now, for least-recently-used eviction."""
        parent = self.datasets_dir if kind == "datasets" else self.forecasts_dir
        try:
            os.utime(parent / key)
        except (FileNotFoundError, PermissionError):
            # Gone (evicted meanwhile) or a read-only store: nothing to record.
            pass

    def _open(self, parent: Path, key: str):
        if not is_key(key):
            raise ValueError(f"invalid store key {key!r}: expected 64 lowercase hex digits")
        path = parent / key
        if not (path / "zarr.json").exists():
            return None
        self.touch(parent.name, key)
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
        try:
            group = self._open(self.datasets_dir, handle)
            return None if group is None else str(group.attrs["source_format"])
        except FileNotFoundError:
            return None

    def dataset_size(self, handle: str) -> int | None:
        """Return the number of stored series, or None when the handle is not stored."""
        try:
            group = self._open(self.datasets_dir, handle)
            return None if group is None else int(group.attrs["n_series"])
        except FileNotFoundError:
            return None

    def read_series(self, handle: str, index: int) -> GlucoseSeries | None:
        """Return series ``index`` of a stored dataset, or None when the handle is not stored."""
        try:
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
        except FileNotFoundError:
            # Evicted or flushed while it was being read.
            return None

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
                "sample_std": (forecast.sample_std, "float32", ("window", "horizon", "sample"), "mg/dL"),
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
            # Replaced by a forced recompute, evicted or flushed while it was being read.
            return None

    # ------------------------------------------------------------ lineage

    def write_lineage(self, anchor: str, key: str, record: dict) -> None:
        """Record that forecast entry ``key`` belongs to a series whose start hashes to ``anchor``.

        ``record`` (JSON types) describes the series, e.g. its handle, index and length.
        """
        if not (is_key(anchor) and is_key(key)):
            raise ValueError("lineage anchor and key must be 64 lowercase hex digits")
        folder = self.lineage_dir / anchor
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f"{_TEMP_PREFIX}{uuid.uuid4().hex}"
        temporary.write_text(json.dumps(_jsonable(record)))
        os.replace(temporary, folder / f"{key}.json")

    def lineage(self, anchor: str) -> list[tuple[str, dict]]:
        """Return ``(key, record)`` of the stored forecast entries recorded under ``anchor``.

        Markers whose entry is gone (evicted or flushed) are deleted on the way.
        """
        folder = self.lineage_dir / anchor
        if not is_key(anchor) or not folder.is_dir():
            return []
        found = []
        for marker in folder.iterdir():
            key = marker.name.removesuffix(".json")
            if not is_key(key):
                continue
            if not self.has_forecast(key):
                marker.unlink(missing_ok=True)
                continue
            try:
                found.append((key, json.loads(marker.read_text())))
            except (FileNotFoundError, json.JSONDecodeError):
                continue
        return found

    # ------------------------------------------------------------ bookkeeping

    def counts(self) -> dict:
        """Return the number of stored datasets and forecast entries of this namespace."""
        return {
            "datasets": sum(1 for entry in self.datasets_dir.iterdir() if is_key(entry.name)),
            "forecasts": sum(1 for entry in self.forecasts_dir.iterdir() if is_key(entry.name)),
        }

    def verify(self, *, all_namespaces: bool = True) -> list[str]:
        """Read every published entry in full and return a description of each problem found.

        An empty list means every visible entry opens and its arrays agree
        in shape. Descriptions name the namespace, kind and a key prefix only.
        """
        problems = []
        namespace = None if all_namespaces else self.namespace
        for name, kind, path in list(layout.iter_entries(self.root, namespace)):
            label = f"{name}/{kind}/{path.name[:12]}"
            try:
                group = zarr.open_group(store=LocalStore(path, read_only=True), mode="r", use_consolidated=False)
                problem = _check_dataset(group) if kind == "datasets" else _check_forecast(group)
            except FileNotFoundError:
                # Removed by another process during the check: not a visible entry any more.
                continue
            except Exception as error:
                problem = f"unreadable ({type(error).__name__})"
            if problem:
                problems.append(f"{label}: {problem}")
        return problems


def _check_dataset(group) -> str | None:
    for index in range(int(group.attrs["n_series"])):
        series = group[str(index)]
        lengths = {name: series[name][:].shape[0] for name in ("time", "glucose", "segment", "imputed", "censored")}
        if len(set(lengths.values())) != 1:
            return f"series {index} arrays differ in length: {lengths}"
    return None


def _check_forecast(group) -> str | None:
    windows = {name: group[name][:].shape[0] for name in ("input_end", "time_end", "quantiles", "sample_mean", "sample_std", "truth")}
    if len(set(windows.values())) != 1:
        return f"arrays differ in window count: {windows}"
    for name in ("horizon_minutes", "levels"):
        group[name][:]
    for attribute in ("seed", "model_id", "subject"):
        if attribute not in group.attrs:
            return f"attribute {attribute} is missing"
    return None
