"""Units that contradict the file, the display helper, oversized and truncated files."""

import json
import logging
import time
import tracemalloc

import numpy as np
import pytest

from glurpc_lab.ingest import MAX_INPUT_BYTES, IngestError, read_export, read_path
from glurpc_lab.ingest import MMOL_TO_MGDL, to_display_units
from glurpc_lab.ingest.units import mgdl_to_mmol, mmol_to_mgdl

from test_ingest_formats import clarity_lines, every_five_minutes


def assert_balanced(report):
    assert report.readings_in == report.readings_used + sum(report.dropped.values())


def test_mgdl_header_with_mmol_values():
    readings = [(t, k, f"{5 + i / 10:.1f}") for i, (t, k, _) in enumerate(every_five_minutes(6))]
    series = read_export("\n".join(clarity_lines(readings, unit="mg/dL")).encode()).series[0]
    report = series.quality

    assert report.source_units == "mmol/L"
    assert report.declared_units == "mg/dL"
    assert report.quality
    assert series.glucose[0] == pytest.approx(90.0)
    assert any("declares mg/dL" in m and "mmol/L" in m for m in report.messages)


def test_mmol_header_with_mgdl_values():
    series = read_export("\n".join(clarity_lines(every_five_minutes(6), unit="mmol/L")).encode()).series[0]
    report = series.quality

    assert report.source_units == "mg/dL"
    assert report.declared_units == "mmol/L"
    assert series.glucose.tolist() == [100, 101, 102, 103, 104, 105]


def test_nightscout_declared_mmol_kept_mgdl():
    base = 1704880800000
    entries = [{"type": "sgv", "sgv": 100 + 10 * i, "units": "mmol", "date": base + i * 300000} for i in range(3)]
    series = read_export(json.dumps(entries).encode()).series[0]
    report = series.quality

    assert report.source_units == "mg/dL"
    assert report.declared_units == "mmol/L"
    assert report.quality
    assert series.glucose.tolist() == [100, 110, 120]


def test_display_units_mmol():
    mgdl = np.array([54.0, 100.0, 180.0, 400.0])

    assert to_display_units(mgdl, "mmol/L", decimals=1).tolist() == [3.0, 5.6, 10.0, 22.2]
    assert to_display_units(mgdl, "mg/dL").tolist() == mgdl.tolist()
    assert MMOL_TO_MGDL == 18.0
    with pytest.raises(ValueError, match="Unknown display unit"):
        to_display_units(mgdl, "mmol")


def test_unit_round_trips_exact():
    mgdl = np.arange(39.0, 401.0, 0.1).round(1)
    mmol = np.arange(2.2, 33.3, 0.1).round(1)

    assert np.array_equal(mmol_to_mgdl(mgdl_to_mmol(mgdl)), mgdl)
    assert np.array_equal(np.round(mgdl_to_mmol(mmol_to_mgdl(mmol)), 1), mmol)


def test_200_mb_path_fails_fast(tmp_path):
    path = tmp_path / "big_export.csv"
    with open(path, "wb") as handle:
        handle.truncate(200 * 1000 * 1000)  # sparse: takes no disk space

    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(IngestError, match=f"over the {MAX_INPUT_BYTES // 2**20} MiB limit"):
        read_path(path)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    assert elapsed < 1.0
    assert peak < 1 * 2**20


def test_truncated_clarity_last_row():
    text = "\n".join(clarity_lines(every_five_minutes(12)))
    cut = text[: text.rindex("EGV") - 6]  # inside the last timestamp
    series = read_export(cut.encode()).series[0]
    report = series.quality

    # The cut row lost its event type, so nothing shows it was a reading.
    assert report.readings_in == 11
    assert report.readings_used == 11
    assert report.other_records == {"incomplete row": 1}
    assert report.quality
    assert any("looks truncated" in m for m in report.messages)
    assert_balanced(report)


def test_truncated_glucose_cell_dropped():
    text = "\n".join(clarity_lines(every_five_minutes(12)))
    cut = text[: text.rindex(",G7 receiver,") + len(",G7 receiver,")]
    report = read_export(cut.encode()).series[0].quality

    assert report.readings_in == 12
    assert report.dropped == {"missing or invalid glucose value": 1}
    assert any("looks truncated" in m for m in report.messages)
    assert_balanced(report)


def test_truncated_inside_utf8_character():
    lines = clarity_lines(every_five_minutes(6))
    content = ("\n".join(lines) + "\n7,,Note,,Zoë").encode()[:-1]
    report = read_export(content).series[0].quality

    assert report.readings_in == 6


def test_truncated_nightscout_json(caplog):
    entries = [{"type": "sgv", "sgv": 100 + i, "date": 1704880800000 + i * 300000, "device": "Test Phone"} for i in range(5)]
    text = json.dumps(entries, indent=1)
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(IngestError, match=r"Line \d+, column \d+: the file is not valid JSON") as info:
            read_export(text[: len(text) // 2].encode())

    assert "Test Phone" not in str(info.value)
    assert "Test Phone" not in caplog.text


def test_truncated_utf16_odd_length():
    content = "\n".join(clarity_lines(every_five_minutes(6), sep="\t")).encode("utf-16")
    report = read_export(content[:-1]).series[0].quality

    assert report.readings_in == 6
