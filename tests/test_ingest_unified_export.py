"""Gridded series written as unified CSV read back to the same grid."""

import numpy as np
import pytest

from conftest import CORPORA
from glurpc_lab.ingest import read_export, read_path
from glurpc_lab.ingest.unified_export import UNIFIED_COLUMNS, to_unified_csv


@pytest.mark.skipif(not CORPORA.is_dir(), reason=f"vendor exports not found at {CORPORA}")
def test_unified_csv_round_trip():
    original = read_path(CORPORA / "Clarity_Export_synthetic.csv")

    text = to_unified_csv(original)
    again = read_export(text.encode())

    assert text.splitlines()[0] == ",".join(UNIFIED_COLUMNS)
    assert again.source_format == "unified"
    assert len(again.series[0]) == len(original.series[0])
    assert np.array_equal(again.series[0].time, original.series[0].time)
    assert np.abs(again.series[0].glucose - original.series[0].glucose).max() <= 0.05 + 1e-4  # 0.1 mg/dL rounding in the CSV, plus float32 error
