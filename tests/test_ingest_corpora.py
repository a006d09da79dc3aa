"""Ingestion of the shared vendor exports and the iglu research table, read in place."""

from pathlib import Path

import numpy as np
import pytest

from glurpc_lab.ingest import GRID_MINUTES, read_path

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPORA = SHARED / "corpora"
IGLU = SHARED / "datasets" / "iglu_example_data_5_subject.csv"

needs_corpora = pytest.mark.skipif(not CORPORA.is_dir(), reason=f"vendor exports not found at {CORPORA}")
needs_iglu = pytest.mark.skipif(not IGLU.is_file(), reason=f"iglu research table not found at {IGLU}")

CORPUS_FILES = sorted(p.name for p in CORPORA.glob("*") if p.suffix in {".csv", ".xlsx", ".json"}) if CORPORA.is_dir() else []


def assert_grid_invariants(series):
    """Check the GlucoseSeries contract that every reader must meet."""
    n = len(series)
    assert series.time.dtype == np.dtype("datetime64[s]")
    assert series.glucose.dtype == np.float32
    assert series.segment.dtype == np.int32
    assert series.censored.dtype == np.int8
    assert series.imputed.dtype == bool
    for array in (series.time, series.segment, series.imputed, series.censored):
        assert array.shape == (n,)
    seconds = series.time.astype(np.int64)
    assert np.all(seconds % (GRID_MINUTES * 60) == 0)
    assert np.all(np.diff(series.segment) >= 0)
    for start, stop in series.segment_bounds():
        assert np.all(np.diff(seconds[start:stop]) == GRID_MINUTES * 60)
    assert np.all(np.isfinite(series.glucose))
    assert series.quality.segments == len(series.segment_bounds())


@needs_corpora
@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_counts_balance(name):
    dataset = read_path(CORPORA / name)

    assert dataset.series
    for series in dataset.series:
        report = series.quality
        assert report.readings_in > 0
        assert report.readings_in == report.readings_used + sum(report.dropped.values())
        assert_grid_invariants(series)


@needs_corpora
def test_clarity_synthetic_with_double_bom():
    dataset = read_path(CORPORA / "Clarity_Export_synthetic.csv")
    report = dataset.series[0].quality

    assert dataset.source_format == "dexcom"
    assert report.source_units == "mg/dL"
    assert report.readings_in == 3922
    assert report.readings_used == 3922
    assert report.dropped == {}
    assert report.censored_low == 5
    assert report.censored_high == 0
    assert report.other_records == {"insulin": 47}
    assert report.segments == 2
    assert report.span_start == "1961-04-12T01:00:00"
    assert report.span_end == "1961-04-25T18:50:00"
    assert report.sampling_interval_minutes == pytest.approx(5.0)
    assert report.out_of_range


@needs_corpora
def test_clarity_low_readings_censored_at_40():
    series = read_path(CORPORA / "Clarity_Export_synthetic.csv").series[0]

    low = series.glucose[series.censored == -1]

    # Points next to a Low reading interpolate between 40 and a real low neighbour.
    assert low.size >= 5
    assert float(low.min()) == pytest.approx(40.0)
    assert float(low.max()) < 55.0


@needs_corpora
def test_dexcom_xlsx_mmol_with_high_low():
    dataset = read_path(CORPORA / "dexcom_eur_01.xlsx")
    series = dataset.series[0]
    report = series.quality

    assert dataset.source_format == "dexcom"
    assert report.source_units == "mmol/L"
    assert report.readings_in == 3853
    assert report.readings_used == 3853
    assert report.censored_high == 27
    assert report.censored_low == 2
    assert report.span_start == "2023-03-08T00:05:00"
    assert report.span_end == "2023-03-21T15:25:00"
    assert report.segment_lengths == [500, 2855, 500]
    assert float(series.glucose[series.censored == 1].max()) == pytest.approx(400.0)
    # mmol/L values are 2.2-22.2; in mg/dL the median must be well above 35.
    assert float(np.median(series.glucose)) > 60.0


@needs_corpora
def test_libre3_uses_historic_only():
    report = read_path(CORPORA / "FreeStyle_Libre_3_synthetic.csv").series[0].quality

    assert report.readings_in == 4305 + 316
    assert report.readings_used == 4305
    assert report.dropped == {"scan reading (series built from historic readings)": 316}
    assert report.other_records == {"note": 936}
    assert report.sampling_interval_minutes == pytest.approx(5.0)
    assert not report.time_duplicates


@needs_corpora
def test_libre_us_ampm_15_minute():
    dataset = read_path(CORPORA / "libre_amer_01.csv")
    series = dataset.series[0]
    report = series.quality

    assert dataset.source_format == "libre"
    assert report.readings_in == 1339
    assert report.readings_used == 1339
    assert report.sampling_interval_minutes == pytest.approx(15.0)
    # First reading 03-20-2021 05:38 PM, so the first grid instant is 17:40.
    assert report.span_start == "2021-03-20T17:40:00"
    # Two of every three 5-minute points between 15-minute readings are synthetic.
    assert report.points_imputed == 2 * 1338
    assert len(series) == 4014
    assert report.imputation


@needs_corpora
def test_unified_synthetic_via_cgm_format():
    dataset = read_path(CORPORA / "Unified_synthetic.csv")
    report = dataset.series[0].quality

    assert dataset.source_format == "unified"
    assert report.readings_in == 8227
    assert report.censored_low == 5
    assert report.other_records == {"INS_SLOW": 14, "INS_FAST": 33}


@needs_corpora
def test_nightscout_api_csv():
    dataset = read_path(CORPORA / "nightscout_entries.csv")
    report = dataset.series[0].quality

    assert dataset.source_format == "nightscout"
    assert report.readings_in == 1000
    assert report.dropped["Nightscout sensor error code (sgv below 39)"] == 4
    assert report.span_start == "2026-03-31T10:30:00"
    assert report.span_end == "2026-04-05T20:30:00"


@needs_iglu
def test_iglu_research_table_five_series():
    dataset = read_path(IGLU)

    assert dataset.source_format == "research-table"
    assert [s.subject for s in dataset.series] == [f"Subject {i}" for i in range(1, 6)]
    assert [s.quality.readings_in for s in dataset.series] == [2915, 2829, 1533, 3664, 2925]
    assert sum(s.quality.readings_in for s in dataset.series) == 13866
    for series in dataset.series:
        report = series.quality
        assert report.readings_in == report.readings_used + sum(report.dropped.values())
        assert_grid_invariants(series)
