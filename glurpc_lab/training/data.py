"""Research data sets for training: GlucoBench-style cleaning, regridding and subject split.

The steps follow the GlucoBench protocol in simplified form: times are rounded to the
minute, a subject's readings are split into segments at gaps longer than the data set's
gap threshold, segments with too few raw readings are dropped, and each kept segment is
re-gridded to 5 minutes from its first reading by linear interpolation in time. 10% of
the subjects of each data set are held out as out-of-distribution (OOD) with a fixed
seed, and the last segment of every other subject supplies validation and test series.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from glurpc_lab.ingest.series import GRID_MINUTES

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetSpec:
    """Cleaning and split settings of one research data set.

    Attributes
    ----------
    name : str
        Short name, e.g. ``"hall"``.
    filename : str
        File name in the data set folder (``.csv`` or a ``.zip`` holding one CSV).
    gap_minutes : int
        A gap longer than this starts a new segment; shorter gaps are interpolated.
    min_readings : int
        Segments with fewer raw readings are dropped.
    test_points : int
        Points of each subject's last segment scored as test (GlucoBench ``length_segment``).
    """

    name: str
    filename: str
    gap_minutes: int
    min_readings: int
    test_points: int


DATASETS = (
    DatasetSpec("iglu", "iglu_example_data_5_subject.csv", 45, 240, 240),
    DatasetSpec("hall", "Hall2018_processed_akhil.csv", 30, 192, 192),
    DatasetSpec("colas", "Colas2019_processed.zip", 45, 192, 72),
    DatasetSpec("weinstock", "Weinstock2016_processed.zip", 45, 240, 240),
)
"""The four shared data sets with their GlucoBench gap and minimum-length settings."""


@dataclass(frozen=True)
class Segment:
    """One gap-free series on the 5-minute grid.

    Attributes
    ----------
    dataset : str
        Data set name.
    subject : str
        Subject id as written in the file.
    time : numpy.ndarray
        ``datetime64[s]`` grid times, ``(n,)``.
    glucose : numpy.ndarray
        ``float32`` glucose in mg/dL, ``(n,)``.
    """

    dataset: str
    subject: str
    time: np.ndarray
    glucose: np.ndarray

    def __len__(self) -> int:
        return int(self.glucose.shape[0])

    def slice(self, start: int | None, stop: int | None) -> Segment:
        """Return the points ``[start:stop]`` as a new segment."""
        return Segment(self.dataset, self.subject, self.time[start:stop], self.glucose[start:stop])


@dataclass
class Split:
    """Series of one data set by role."""

    train: list[Segment] = field(default_factory=list)
    val: list[Segment] = field(default_factory=list)
    test: list[Segment] = field(default_factory=list)
    ood: list[Segment] = field(default_factory=list)


def read_table(path: Path) -> pd.DataFrame:
    """Read an ``id,time,gl`` table; rows with a missing value are dropped."""
    table = pd.read_csv(path, usecols=["id", "time", "gl"], dtype={"id": str})
    table["time"] = pd.to_datetime(table["time"], errors="coerce")
    table["gl"] = pd.to_numeric(table["gl"], errors="coerce")
    return table.dropna()


def subject_segments(time: np.ndarray, glucose: np.ndarray, spec: DatasetSpec, subject: str) -> list[Segment]:
    """Cut one subject's readings into re-gridded segments.

    ``time`` is ``datetime64`` and ``glucose`` mg/dL, both ``(n,)`` in any order.
    """
    minutes = np.asarray(time).astype("datetime64[s]").astype(np.int64)
    minutes = np.round(minutes / 60.0).astype(np.int64)
    order = np.argsort(minutes, kind="stable")
    minutes, values = minutes[order], np.asarray(glucose, dtype=np.float64)[order]

    # Two readings in the same minute cannot both sit on the grid; keep the first.
    keep = np.concatenate([[True], np.diff(minutes) > 0])
    minutes, values = minutes[keep], values[keep]

    breaks = np.flatnonzero(np.diff(minutes) > spec.gap_minutes) + 1
    segments = []
    for part_minutes, part_values in zip(np.split(minutes, breaks), np.split(values, breaks)):
        if part_minutes.size < spec.min_readings:
            continue
        grid = np.arange(part_minutes[0], part_minutes[-1] + 1, GRID_MINUTES)
        gridded = np.interp(grid, part_minutes, part_values).astype(np.float32)
        times = (grid * 60).astype("datetime64[s]")
        segments.append(Segment(spec.name, subject, times, gridded))
    return segments


def split_subjects(
    by_subject: dict[str, list[Segment]], spec: DatasetSpec, input_len: int, seed: int = 0, ood_fraction: float = 0.1
) -> Split:
    """Assign segments to train, validation, ID test and OOD.

    A fraction ``ood_fraction`` of the subjects (rounded up, drawn with ``seed``) is OOD.
    For every other subject all segments but the last are training data, and the last
    segment of ``n`` points is divided with ``ls = spec.test_points``: when
    ``n >= input_len + 3 ls``, train gets ``[:-2 ls]``, validation ``[-2 ls - input_len : -ls]``
    and test ``[-ls - input_len:]``; when ``n >= input_len + 2 ls`` validation gets
    ``[:-ls]`` and test ``[-ls - input_len:]``; otherwise the whole segment is test.
    """
    split = Split()
    subjects = sorted(by_subject)
    if not subjects:
        return split

    rng = np.random.default_rng(seed)
    n_ood = math.ceil(len(subjects) * ood_fraction)
    ood = set(rng.choice(np.array(subjects, dtype=object), size=n_ood, replace=False).tolist())

    ls = spec.test_points
    for subject in subjects:
        segments = by_subject[subject]
        if subject in ood:
            split.ood.extend(segments)
            continue

        split.train.extend(segments[:-1])
        last = segments[-1]
        n = len(last)
        if n >= input_len + 3 * ls:
            split.train.append(last.slice(None, -2 * ls))
            split.val.append(last.slice(n - 2 * ls - input_len, n - ls))
            split.test.append(last.slice(n - ls - input_len, None))
        elif n >= input_len + 2 * ls:
            split.val.append(last.slice(None, -ls))
            split.test.append(last.slice(n - ls - input_len, None))
        else:
            split.test.append(last)
    return split


def load_dataset(folder: Path, spec: DatasetSpec, input_len: int, seed: int = 0, max_subjects: int | None = None) -> Split:
    """Read, clean and split one data set from ``folder``.

    ``max_subjects`` keeps only the first subjects in sorted order (for quick tests).
    """
    path = Path(folder) / spec.filename
    if not path.is_file():
        raise FileNotFoundError(f"data set file {path} not found; pass --data-dir with the folder that holds {spec.filename}")

    table = read_table(path)
    by_subject: dict[str, list[Segment]] = {}
    for index, (subject, rows) in enumerate(sorted(table.groupby("id", sort=False), key=lambda item: item[0])):
        if max_subjects is not None and index >= max_subjects:
            break
        segments = subject_segments(rows["time"].to_numpy(), rows["gl"].to_numpy(), spec, subject)
        if segments:
            by_subject[subject] = segments

    split = split_subjects(by_subject, spec, input_len, seed=seed)
    logger.info(
        "data set %s: %d subjects kept, %d train / %d val / %d test / %d OOD series",
        spec.name, len(by_subject), len(split.train), len(split.val), len(split.test), len(split.ood),
    )
    return split
