"""Ingestion of small hand-made exports written inside the tests."""

import json

import numpy as np
import pytest

from glurpc_lab.ingest import read_export

CLARITY_HEADER = (
    "Index,Timestamp (YYYY-MM-DDThh:mm:ss),Event Type,Event Subtype,Patient Info,Device Info,"
    "Source Device ID,Glucose Value ({unit}),Insulin Value (u),Carb Value (grams),Duration (hh:mm:ss),"
    "Glucose Rate of Change ({unit}/min),Transmitter Time (Long Integer),Transmitter ID"
)
CLARITY_PREAMBLE = [
    "1,,FirstName,,Test,,,,,,,,,",
    "2,,LastName,,Subject,,,,,,,,,",
    "3,,Device,,,Dexcom G6 Mobile App,android G6,,,,,,,",
]


def clarity_csv(rows, unit="mg/dL", preamble=CLARITY_PREAMBLE):
    """Write a Clarity CSV from (timestamp, event type, glucose) tuples."""
    lines = [CLARITY_HEADER.format(unit=unit), *preamble]
    for index, (stamp, kind, value) in enumerate(rows, start=len(preamble) + 1):
        lines.append(f"{index},{stamp},{kind},,,,android G6,{value},,,,,{1000 + index},TESTTX")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def research_csv(rows):
    """Write an id,time,gl table from (id, time, gl) tuples."""
    return ("id,time,gl\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows)).encode()


def five_minute_rows(start_hour, count, start_value=100, subject="S1", offset_seconds=0):
    """Return ``count`` research rows every 5 minutes from ``start_hour``:00 plus an offset."""
    base = np.datetime64("2024-01-10T00:00:00") + np.timedelta64(start_hour * 3600 + offset_seconds, "s")
    return [
        (subject, str(base + np.timedelta64(300 * i, "s")).replace("T", " "), start_value + i)
        for i in range(count)
    ]


def only_series(content, **kwargs):
    dataset = read_export(content, **kwargs)
    assert len(dataset.series) == 1
    return dataset.series[0]


def assert_balanced(report):
    assert report.readings_in == report.readings_used + sum(report.dropped.values())


def test_grid_interpolates_at_instants():
    series = only_series(
        research_csv([("S1", "2024-01-10 10:02:30", 100), ("S1", "2024-01-10 10:07:30", 110)])
    )

    assert [str(t) for t in series.time] == ["2024-01-10T10:05:00"]
    assert series.glucose.tolist() == [105.0]
    assert not series.imputed.any()


def test_duplicates_dropped_first_kept():
    rows = five_minute_rows(10, 10)
    rows.insert(3, rows[2])  # exact duplicate row
    rows.insert(6, (rows[5][0], rows[5][1], 999))  # same time, different value
    series = only_series(research_csv(rows))
    report = series.quality

    assert report.readings_in == 12
    assert report.dropped == {"duplicate timestamp": 2}
    assert report.readings_used == 10
    assert report.time_duplicates
    assert report.quality  # the conflicting value sets the quality flag
    assert 999.0 not in series.glucose.tolist()
    assert_balanced(report)


def test_out_of_order_rows_sorted():
    rows = five_minute_rows(10, 12)
    shuffled = [rows[i] for i in (5, 0, 11, 3, 2, 8, 1, 4, 10, 6, 9, 7)]
    ordered = only_series(research_csv(rows))
    series = only_series(research_csv(shuffled))

    assert np.array_equal(series.time, ordered.time)
    assert np.array_equal(series.glucose, ordered.glucose)
    assert any("out of time order" in m for m in series.quality.messages)


def test_long_gap_splits_segments():
    rows = five_minute_rows(10, 13) + five_minute_rows(12, 13, start_value=200)
    series = only_series(research_csv(rows))

    assert series.quality.segments == 2
    assert series.quality.segment_lengths == [13, 13]
    assert series.segment_bounds() == [(0, 13), (13, 26)]
    assert str(series.time[12]) == "2024-01-10T11:00:00"
    assert str(series.time[13]) == "2024-01-10T12:00:00"
    assert series.quality.points_imputed == 0


def test_limit_bridges_the_same_gap():
    rows = five_minute_rows(10, 13) + five_minute_rows(12, 13, start_value=200)
    series = only_series(research_csv(rows), interpolation_limit_minutes=60)

    assert series.quality.segments == 1
    assert len(series) == 37
    assert series.quality.points_imputed == 11
    # Halfway through the 11:00-12:00 gap, between 112 and 200.
    assert float(series.glucose[18]) == pytest.approx(156.0)


def test_short_gap_interpolated():
    rows = five_minute_rows(10, 3) + [("S1", "2024-01-10 10:25:00", 130)]
    series = only_series(research_csv(rows))

    assert series.quality.segments == 1
    assert [str(t)[11:16] for t in series.time] == ["10:00", "10:05", "10:10", "10:15", "10:20", "10:25"]
    assert series.imputed.tolist() == [False, False, False, True, True, False]
    # 102 mg/dL at 10:10 and 130 at 10:25: 28 mg/dL over three steps.
    assert series.glucose[3:5].tolist() == pytest.approx([102 + 28 / 3, 102 + 56 / 3])
    assert series.quality.points_imputed == 2
    assert series.quality.imputation


def test_clarity_high_low_censored():
    rows = [
        ("2024-01-10 10:00:00", "EGV", "380"),
        ("2024-01-10 10:05:00", "EGV", "High"),
        ("2024-01-10 10:10:00", "EGV", "390"),
        ("2024-01-10 10:15:00", "EGV", "60"),
        ("2024-01-10 10:20:00", "EGV", "Low"),
        ("2024-01-10 10:25:00", "EGV", "50"),
        ("2024-01-10 10:30:00", "Calibration", "55"),
    ]
    series = only_series(clarity_csv(rows))
    report = series.quality

    assert report.readings_in == 6
    assert report.readings_used == 6
    assert report.censored_high == 1
    assert report.censored_low == 1
    assert series.glucose[1] == pytest.approx(400.0)
    assert series.glucose[4] == pytest.approx(40.0)
    assert series.censored.tolist() == [0, 1, 0, 0, -1, 0]
    assert report.calibration_records == 1
    assert report.calibration
    assert report.out_of_range
    assert report.repaired == {"censored value set to the sensor limit": 2}


def test_clarity_mmol_converted():
    rows = [(f"2024-01-10 10:{m:02d}:00", "EGV", v) for m, v in ((0, "5.4"), (5, "7.2"), (10, "10.0"))]
    series = only_series(clarity_csv(rows, unit="mmol/L"))

    assert series.quality.source_units == "mmol/L"
    assert series.glucose.tolist() == pytest.approx([97.2, 129.6, 180.0])


def test_clarity_with_plain_bom_and_crlf():
    rows = [(f"2024-01-10 10:{m:02d}:00", "EGV", 100 + m) for m in range(0, 30, 5)]
    series = only_series(b"\xef\xbb\xbf" + clarity_csv(rows))

    assert series.quality.readings_in == 6
    assert series.glucose.tolist() == [100, 105, 110, 115, 120, 125]


def test_research_mmol_detected_by_range():
    rows = [("S1", f"2024-01-10 10:{m:02d}:00", v) for m, v in ((0, 5.0), (5, 5.5), (10, 6.0))]
    series = only_series(research_csv(rows))

    assert series.quality.source_units == "mmol/L"
    assert series.glucose.tolist() == pytest.approx([90.0, 99.0, 108.0])


def test_research_invalid_rows_dropped():
    rows = five_minute_rows(10, 4) + [("S1", "not a time", 120), ("S1", "2024-01-10 10:20:00", "n/a")]
    report = only_series(research_csv(rows)).quality

    assert report.readings_in == 6
    assert report.dropped == {"missing or invalid timestamp": 1, "missing or invalid glucose value": 1}
    assert report.quality
    assert_balanced(report)


LIBRE_US_HEADER = (
    "Device,Serial Number,Device Timestamp,Record Type,Historic Glucose mg/dL,Scan Glucose mg/dL,"
    "Non-numeric Rapid-Acting Insulin,Rapid-Acting Insulin (units),Non-numeric Food,"
    "Carbohydrates (grams),Carbohydrates (servings),Non-numeric Long-Acting Insulin,"
    "Long-Acting Insulin (units),Notes,Strip Glucose mg/dL,Ketone mmol/L,Meal Insulin (units),"
    "Correction Insulin (units),User Change Insulin (units)"
)


def libre_row(stamp, kind, historic="", scan="", strip=""):
    cells = ["FreeStyle Libre Pro", "TESTSERIAL", stamp, kind, historic, scan] + [""] * 13
    cells[14] = strip
    return ",".join(cells)


def test_libre_us_layout_and_scans():
    lines = [
        "Patient report,Generated on,01-15-2024 05:25 PM UTC,Generated by,Test Subject",
        "Test,Subject,,,,,,,,,,,,,,,,,",
        LIBRE_US_HEADER,
        libre_row("01-13-2024 11:45 PM", "0", "100"),
        libre_row("01-14-2024 12:00 AM", "0", "HI"),
        libre_row("01-14-2024 12:07 AM", "1", scan="140"),
        libre_row("01-14-2024 12:15 AM", "0", "LO"),
        libre_row("01-14-2024 12:30 AM", "0", "130"),
        libre_row("01-14-2024 12:31 AM", "2", strip="128"),
        libre_row("01-14-2024 12:32 AM", "6"),
    ]
    dataset = read_export("\n".join(lines).encode())
    series = dataset.series[0]
    report = series.quality

    assert dataset.source_format == "libre"
    assert str(series.time[0]) == "2024-01-13T23:45:00"
    assert str(series.time[-1]) == "2024-01-14T00:30:00"
    assert report.readings_in == 5
    assert report.dropped == {"scan reading (series built from historic readings)": 1}
    assert report.censored_high == 1
    assert report.censored_low == 1
    assert series.glucose[3] == pytest.approx(500.0)  # 00:00 is the HI reading
    assert series.censored[3] == 1
    assert report.calibration_records == 1
    assert report.other_records == {"note": 1}
    assert_balanced(report)


def test_libre_date_order_from_whole_file():
    header = LIBRE_US_HEADER.replace("Long-Acting Insulin (units)", "Long-Acting Insulin Value (units)")
    stamps = [f"{d:02d}-02-2024 08:00" for d in range(1, 13)] + ["13-02-2024 08:00"]
    lines = ["Glucose Data,Generated on,13-02-2024 09:00 UTC,Generated by,Test Subject", header]
    lines += [libre_row(s, "0", "100") for s in stamps]
    series = read_export("\n".join(lines).encode()).series[0]

    # Day-first: one reading per day from 1 to 13 February, no January dates.
    assert series.quality.segments == 13
    assert str(series.time[0]) == "2024-02-01T08:00:00"
    assert str(series.time[-1]) == "2024-02-13T08:00:00"


def test_nightscout_json_via_cgm_format():
    base = 1704880800000  # 2024-01-10T10:00:00Z
    entries = [
        {"type": "sgv", "sgv": 110 + i, "date": base + i * 300000,
         "dateString": f"2024-01-10T10:{5 * i:02d}:00.000Z", "direction": "Flat"}
        for i in range(6)
    ]
    entries.append({"type": "sgv", "sgv": 5, "date": base + 1800000, "dateString": "2024-01-10T10:30:00.000Z"})
    entries.append({"type": "mbg", "mbg": 120, "date": base, "dateString": "2024-01-10T10:00:00.000Z"})
    dataset = read_export(json.dumps(entries[::-1]).encode())
    series = dataset.series[0]

    assert dataset.source_format == "nightscout"
    assert series.quality.readings_in == 7
    assert series.quality.dropped == {"Nightscout sensor error code (sgv below 39)": 1}
    assert series.glucose.tolist() == [110, 111, 112, 113, 114, 115]
    assert str(series.time[0]) == "2024-01-10T10:00:00"


def test_denser_than_grid_readings_dropped():
    rows = [("S1", f"2024-01-10 10:{m:02d}:00", 100 + m) for m in range(0, 11)]
    report = only_series(research_csv(rows)).quality

    # 1-minute data: only the readings on :00, :05 and :10 are used.
    assert report.readings_used == 3
    assert report.dropped == {"between grid instants (sampled more often than every 5 minutes)": 8}
    assert_balanced(report)


def test_too_short_flag():
    short = only_series(research_csv(five_minute_rows(10, 50))).quality
    long = only_series(research_csv(five_minute_rows(0, 108))).quality

    assert short.too_short
    assert any("96 points" in m for m in short.messages)
    assert not long.too_short
