"""The training corpus of the bundled model: GlucoBench train splits, with nothing that is ever scored.

One model serves every data set and both evaluation data seeds, so its training data
must avoid the scored series of all of them at once:

- a subject that is out-of-distribution (OOD) under any evaluation seed is left out entirely;
- the train and validation series of the other subjects come from GlucoBench's split
  (``glucobench.split_protocol``), and each is cut short before the first point that the
  evaluation scores as an in-distribution target of the same segment. GlucoBench's
  own split lets train or validation data reach into those targets (its test series
  carry ``max_length_input`` points of context, and its Gluformer scores windows from
  index 96), so this cut is stricter than the published models were.

The same segments, splits and OOD draws as ``glurpc-lab evaluate`` are used, so the
two commands cannot drift apart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from glurpc_lab.training.glucobench import PROTOCOLS, ProtocolSpec, Series, load_protocol_segments, split_protocol

logger = logging.getLogger(__name__)

EVALUATION_SEEDS = (1, 2)
"""Data seeds under which GlucoBench scores its deep models, and so ours."""


@dataclass
class Corpus:
    """Training and validation series of one data set.

    Attributes
    ----------
    name : str
        Data set name, e.g. ``"hall"``.
    train, val : list of Series
        Series to train on and to select checkpoints with.
    excluded_subjects : list of int
        Label codes of the subjects left out because some evaluation seed scores them as OOD.
    """

    name: str
    train: list[Series] = field(default_factory=list)
    val: list[Series] = field(default_factory=list)
    excluded_subjects: list[int] = field(default_factory=list)


def first_scored_index(spec: ProtocolSpec, input_len: int) -> int:
    """Return the index in an ID test series of the first point that the evaluation scores as a target."""
    return max(input_len, spec.gluformer_input_len)


def build_corpus(
    by_subject: dict[int, list[Series]],
    spec: ProtocolSpec,
    input_len: int,
    seeds: tuple[int, ...] = EVALUATION_SEEDS,
) -> Corpus:
    """Select the series of one data set that training may use.

    Parameters
    ----------
    by_subject : dict
        Segments of each subject, as ``glucobench.segment_subjects`` returns them.
    spec : ProtocolSpec
        The data set's GlucoBench settings.
    input_len : int
        Input length of the model to train; it sets where scored targets begin.
    seeds : tuple of int
        Evaluation data seeds whose OOD subjects and test targets must stay unseen.

    Returns
    -------
    Corpus
    """
    if not seeds:
        raise ValueError("at least one evaluation seed is needed to know what to hold out")

    splits = [split_protocol(by_subject, spec, seed) for seed in seeds]
    excluded = sorted({code for split in splits for code in split.ood_codes})

    # Train, validation and test positions depend only on the subject's own segments,
    # not on the seed. Any seed's split therefore gives them, and the first is used.
    split = splits[0]
    offset = first_scored_index(spec, input_len)
    scored_from = {(test.code, test.segment): int(test.minutes[offset]) for test in split.test if len(test) > offset}

    corpus = Corpus(spec.name, excluded_subjects=excluded)
    for role in ("train", "val"):
        selected = getattr(corpus, role)
        for series in getattr(split, role):
            if series.code in excluded:
                continue
            limit = scored_from.get((series.code, series.segment))
            if limit is not None:
                series = series.slice(None, int((series.minutes < limit).sum()))
            if len(series):
                selected.append(series)
    return corpus


def load_corpus(folder: Path, names: list[str], input_len: int, seeds: tuple[int, ...] = EVALUATION_SEEDS) -> list[Corpus]:
    """Read the data sets ``names`` from ``folder`` and build each one's corpus."""
    unknown = [name for name in names if name not in PROTOCOLS]
    if unknown:
        raise ValueError(f"unknown data set(s) {', '.join(unknown)}; choose from {', '.join(PROTOCOLS)}")

    corpora = []
    for name in names:
        spec = PROTOCOLS[name]
        corpus = build_corpus(load_protocol_segments(Path(folder), spec), spec, input_len, seeds)
        logger.info(
            "data set %s: %d train and %d validation series, %d subject(s) held out for OOD",
            name, len(corpus.train), len(corpus.val), len(corpus.excluded_subjects),
        )
        corpora.append(corpus)
    return corpora
