"""Training data preparation, loss and a few-step training run on a slice of real data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from glurpc_lab.model import load_model
from glurpc_lab.training.data import DatasetSpec, split_subjects, subject_segments
from glurpc_lab.training.train import gaussian_nll, main

DATASETS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
SPEC = DatasetSpec("test", "unused.csv", gap_minutes=45, min_readings=5, test_points=10)


def minutes(*values: float) -> np.ndarray:
    return (np.datetime64("2024-01-01T00:00:00", "s") + (np.array(values) * 60).astype("timedelta64[s]"))


def test_segments_split_at_long_gaps():
    times = minutes(0, 5, 10, 15, 20, 25, 100, 105, 110, 115, 120, 125)
    glucose = np.arange(12, dtype=float) + 100

    segments = subject_segments(times, glucose, SPEC, "a")

    assert [len(segment) for segment in segments] == [6, 6]
    assert segments[1].time[0] == minutes(100)[0]


def test_segments_interpolate_short_gaps():
    times = minutes(0, 5, 10, 40, 45)
    glucose = np.array([100.0, 100.0, 100.0, 160.0, 160.0])

    (segment,) = subject_segments(times, glucose, SPEC, "a")

    assert len(segment) == 10
    np.testing.assert_allclose(segment.glucose[2:7], [100, 110, 120, 130, 140])


def test_segments_round_to_minute_and_drop_duplicates():
    times = minutes(0, 0.2, 5.4, 10, 15, 20)
    glucose = np.array([100.0, 999.0, 105.0, 110.0, 115.0, 120.0])

    (segment,) = subject_segments(times, glucose, SPEC, "a")

    np.testing.assert_allclose(segment.glucose, [100, 105, 110, 115, 120])


def test_short_segments_dropped():
    times = minutes(0, 5, 10, 15, 200, 205, 210, 215, 220)

    segments = subject_segments(times, np.full(9, 100.0), SPEC, "a")

    assert [len(segment) for segment in segments] == [5]


def test_split_holds_out_subjects_by_seed():
    by_subject = {f"s{i:02d}": subject_segments(minutes(*range(0, 1000, 5)), np.full(200, 100.0), SPEC, f"s{i:02d}") for i in range(20)}

    first = split_subjects(by_subject, SPEC, input_len=12, seed=0)
    again = split_subjects(by_subject, SPEC, input_len=12, seed=0)
    other = split_subjects(by_subject, SPEC, input_len=12, seed=1)

    ood_subjects = {segment.subject for segment in first.ood}
    assert len(ood_subjects) == math.ceil(20 * 0.1)
    assert ood_subjects == {segment.subject for segment in again.ood}
    assert ood_subjects != {segment.subject for segment in other.ood}
    assert not ood_subjects & {segment.subject for segment in first.train}
    # 200 points >= 12 + 3 * 10, so each subject gets train, validation and test parts.
    assert len(first.val) == len(first.test) == 18
    assert {len(segment) for segment in first.test} == {22}
    assert {len(segment) for segment in first.val} == {22}


def test_gaussian_nll_value():
    pred = torch.tensor([[1.0, 2.0]])
    target = torch.tensor([[2.0, 2.0]])
    logvar = torch.tensor([[[math.log(4.0)]]])

    # (L/2) log 4 + 1 / (2 * 4), divided by L = 2.
    expected = (math.log(4.0) + 1.0 / 8.0) / 2.0
    assert gaussian_nll(pred, logvar, target).item() == pytest.approx(expected)


def test_train_and_resume_tiny(tmp_path):
    if not (DATASETS_DIR / "iglu_example_data_5_subject.csv").is_file():
        pytest.skip(f"shared research data sets not found under {DATASETS_DIR}")
    args = ["--out", str(tmp_path), "--config", "tiny", "--datasets", "iglu", "--max-minutes", "2", "--val-stride", "24", "--threads", "1"]

    assert main(args + ["--max-steps", "3"]) == 0
    first = json.loads((tmp_path / "metrics.json").read_text())
    assert main(args + ["--max-steps", "5"]) == 0
    resumed = json.loads((tmp_path / "metrics.json").read_text())

    assert first["steps"] == 3
    assert resumed["steps"] == 5
    assert [entry["step"] for entry in resumed["history"]] == [3, 5]
    for role in ("val", "test", "ood"):
        scores = resumed[role]["all"]
        assert scores["windows"] > 0
        assert scores["model_median_mse"] > 0
        assert scores["persistence_median_mae"] > 0
    loaded = load_model(tmp_path / "gluformer_tiny.pth")
    assert loaded.config.name == "tiny"
