"""The GlucoBench evaluation protocol: exact cleaning, segmenting and seeded subject split.

This follows GlucoBench (IrinaStatsLab/GlucoBench, ``data_formatter/utils.py``) step by
step, so that errors computed on these series are comparable with its published tables:

1. read the ``id,time,gl`` table with pandas' default type inference (numeric ids become
   integers), drop rows with a missing id, time or glucose, and read glucose as float32;
2. label-encode the ids in sorted order (numeric order for numeric ids);
3. per subject in code order, round times to the minute and start a new segment where
   the gap to the previous reading is strictly greater than the data set's gap
   threshold. Segments with fewer raw readings than its minimum are dropped, and each
   kept segment is re-gridded to 5 minutes from its first reading by linear
   interpolation in time;
4. with ``np.random.seed(seed)``, draw ``ceil(0.1 n)`` of the subjects that kept a
   segment with ``np.random.choice`` as out-of-distribution (OOD); every segment of
   those is OOD test, and the last segment(s) of every other subject give the
   in-distribution (ID) validation and test series.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

HORIZON = 12
"""Forecast steps (5-minute points) scored per window."""

GRID_STEP_MINUTES = 5


@dataclass(frozen=True)
class ProtocolSpec:
    """GlucoBench settings of one data set.

    Attributes
    ----------
    name : str
        Short name used on the command line.
    title : str
        Name in GlucoBench's tables.
    filename : str
        File in the data set folder: a CSV, or a zip that contains one CSV.
    gap_minutes : int
        A gap strictly longer than this starts a new segment.
    min_readings : int
        Segments with fewer raw readings are dropped before re-gridding.
    length_segment : int
        Points of the last segment held out for ID test (and validation).
    max_length_input : int
        Context points prepended to each ID validation and test series.
    linreg_input_len : int
        Lags of GlucoBench's linear-regression baseline.
    gluformer_input_len : int
        Input length of GlucoBench's Gluformer, which sets where its scored windows start.
    drop_rows : tuple of int
        Row labels GlucoBench drops from the file (applied twice, as it does).
    """

    name: str
    title: str
    filename: str
    gap_minutes: int
    min_readings: int
    length_segment: int
    max_length_input: int
    linreg_input_len: int
    gluformer_input_len: int
    drop_rows: tuple[int, ...] = ()


PROTOCOLS = {
    spec.name: spec
    for spec in (
        ProtocolSpec("iglu", "Broll (iglu)", "iglu_example_data_5_subject.csv", 45, 240, 240, 192, 192, 96),
        ProtocolSpec("colas", "Colas", "Colas2019_processed.zip", 45, 192, 72, 144, 12, 96),
        ProtocolSpec("hall", "Hall", "Hall2018_processed_akhil.csv", 30, 192, 192, 144, 84, 96, drop_rows=(57309,)),
        ProtocolSpec("weinstock", "Weinstock", "Weinstock2016_processed.zip", 45, 240, 240, 192, 84, 144),
    )
}
"""The four shared data sets with GlucoBench's per-data-set settings."""


@dataclass(frozen=True)
class Series:
    """One gap-free series on the 5-minute grid.

    Attributes
    ----------
    code : int
        Label code of the subject (rank of its id among all ids of the file).
    segment : int
        Running index of the segment over the kept segments of the data set.
    minutes : numpy.ndarray
        ``int64`` grid times in minutes since the Unix epoch, ``(n,)``.
    glucose : numpy.ndarray
        ``float32`` glucose in mg/dL, ``(n,)``.
    observed : numpy.ndarray or None
        ``bool``, True where a grid point coincides with a reading, ``(n,)``;
        None means every point counts as observed.
    """

    code: int
    segment: int
    minutes: np.ndarray
    glucose: np.ndarray
    observed: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.glucose.shape[0])

    def slice(self, start: int | None, stop: int | None) -> Series:
        """Return the points ``[start:stop]`` as a new series of the same segment."""
        observed = None if self.observed is None else self.observed[start:stop]
        return Series(self.code, self.segment, self.minutes[start:stop], self.glucose[start:stop], observed)

    @property
    def times(self) -> np.ndarray:
        """Grid times as ``datetime64[s]``, ``(n,)``."""
        return (self.minutes * 60).astype("datetime64[s]")


@dataclass
class ProtocolSplit:
    """Series of one data set and one data seed, by role.

    ``train``, ``val`` and ``test`` hold the series of the in-distribution subjects,
    ``ood`` every segment of the held-out subjects, ``ood_codes`` their label codes.
    """

    train: list[Series] = field(default_factory=list)
    val: list[Series] = field(default_factory=list)
    test: list[Series] = field(default_factory=list)
    ood: list[Series] = field(default_factory=list)
    ood_codes: list[int] = field(default_factory=list)


def read_research_table(path: Path, spec: ProtocolSpec) -> pd.DataFrame:
    """Read and clean an ``id,time,gl`` table as GlucoBench does.

    Returns a frame with ``code`` (int64 label code), ``time`` (datetime64) and
    ``gl`` (float32 mg/dL), rows in file order.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        A column is missing or a time cannot be parsed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data set file {path} not found; pass --data-dir with the folder that contains {spec.filename}")

    # Default type inference on purpose: GlucoBench's codes, and so its split, follow it.
    table = pd.read_csv(path)
    missing = [column for column in ("id", "time", "gl") if column not in table.columns]
    if missing:
        raise ValueError(f"{path.name}: column(s) {', '.join(missing)} missing; a research table needs id, time and gl")

    table = table[["id", "time", "gl"]]
    table = table.drop(index=[row for row in spec.drop_rows if row in table.index]).reset_index(drop=True)
    table = table.dropna(subset=["id", "time", "gl"])
    try:
        table["time"] = pd.to_datetime(table["time"])
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path.name}: column time has a value that is not a date and time ({error})") from None
    table["gl"] = table["gl"].astype(np.float32)

    # GlucoBench runs its row drop a second time after the index was reset, so it removes one more row.
    table = table.drop(index=[row for row in spec.drop_rows if row in table.index]).reset_index(drop=True)

    _, codes = np.unique(table["id"].to_numpy(), return_inverse=True)
    return pd.DataFrame({"code": codes.astype(np.int64), "time": table["time"].to_numpy(), "gl": table["gl"].to_numpy()})


def segment_subjects(table: pd.DataFrame, spec: ProtocolSpec) -> dict[int, list[Series]]:
    """Cut every subject's readings into kept, re-gridded segments.

    Returns the segments of each subject that kept at least one, keyed by label code
    in ascending order, each list in time order.

    Raises
    ------
    ValueError
        Two readings of a kept segment fall on the same minute (GlucoBench raises too).
    """
    by_subject: dict[int, list[Series]] = {}
    segment_index = 0
    rounded = table["time"].dt.round("min")
    for code, rows in table.assign(time=rounded).groupby("code", sort=True):
        rows = rows.sort_values("time", kind="stable")
        minutes = rows["time"].to_numpy().astype("datetime64[m]").astype(np.int64)
        values = rows["gl"].to_numpy(dtype=np.float32)

        breaks = np.flatnonzero(np.diff(minutes) > spec.gap_minutes) + 1
        for part_minutes, part_values in zip(np.split(minutes, breaks), np.split(values, breaks)):
            if part_minutes.size < spec.min_readings:
                continue
            if np.any(np.diff(part_minutes) == 0):
                raise ValueError(
                    f"data set {spec.name}, subject code {code}: two readings fall on the same minute "
                    "in a kept segment; remove the duplicate reading from the file"
                )
            grid = np.arange(part_minutes[0], part_minutes[-1] + 1, GRID_STEP_MINUTES, dtype=np.int64)
            gridded = np.interp(grid, part_minutes, part_values.astype(np.float64)).astype(np.float32)
            observed = np.isin(grid, part_minutes)
            by_subject.setdefault(int(code), []).append(Series(int(code), segment_index, grid, gridded, observed))
            segment_index += 1
    return by_subject


def split_protocol(by_subject: dict[int, list[Series]], spec: ProtocolSpec, seed: int, ood_fraction: float = 0.1) -> ProtocolSplit:
    """Assign segments to train, validation, ID test and OOD test for data seed ``seed``.

    Uses and changes numpy's global random state (``np.random.seed``), because
    GlucoBench draws its OOD subjects that way and the draw must match it.
    """
    split = ProtocolSplit()
    codes = np.array(sorted(by_subject), dtype=np.int64)
    if codes.size == 0:
        return split

    np.random.seed(seed)
    ood = np.random.choice(codes, math.ceil(codes.size * ood_fraction), replace=False)
    split.ood_codes = sorted(int(code) for code in ood)

    mli, ls = spec.max_length_input, spec.length_segment
    for code in codes.tolist():
        segments = by_subject[code]
        if code in split.ood_codes:
            split.ood.extend(segments)
            continue

        if len(segments) >= 2:
            split.train.extend(segments[:-2])
            penultimate, last = segments[-2], segments[-1]
            n = len(last)
            if n >= mli + 3 * ls:
                split.train.append(penultimate)
                split.train.append(last.slice(None, n - 2 * ls))
                split.val.append(last.slice(n - 2 * ls - mli, n - ls))
                split.test.append(last.slice(n - ls - mli, None))
            elif n >= mli + 2 * ls:
                split.train.append(penultimate)
                split.val.append(last.slice(None, n - ls))
                split.test.append(last.slice(n - ls - mli, None))
            else:
                split.test.append(last)
                m = len(penultimate)
                if m >= mli + 2 * ls:
                    split.val.append(penultimate.slice(m - ls - mli, None))
                    split.train.append(penultimate.slice(None, m - ls))
                else:
                    split.train.append(penultimate)
        else:
            only = segments[0]
            n = len(only)
            if n >= mli + 3 * ls:
                split.train.append(only.slice(None, n - 2 * ls))
                split.val.append(only.slice(n - 2 * ls - mli, n - ls))
                split.test.append(only.slice(n - ls - mli, None))
            elif n >= mli + 2 * ls:
                split.train.append(only.slice(None, n - ls))
                split.test.append(only.slice(n - ls - mli, None))
            else:
                split.train.append(only)
    return split


def load_protocol_segments(folder: Path, spec: ProtocolSpec) -> dict[int, list[Series]]:
    """Read, clean and segment one data set from ``folder``; see ``segment_subjects``."""
    table = read_research_table(Path(folder) / spec.filename, spec)
    by_subject = segment_subjects(table, spec)
    logger.info(
        "data set %s: %d subjects in the file, %d kept a segment, %d segments",
        spec.name, table["code"].nunique(), len(by_subject), sum(len(v) for v in by_subject.values()),
    )
    return by_subject
