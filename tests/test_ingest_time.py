"""Clock problems: UTC offsets, daylight-saving jumps, warm-up gaps, duplicates and overlapping devices."""

import json

import numpy as np
import pytest

from glurpc_lab.forecast import window_ends
from glurpc_lab.ingest import read_export

from test_ingest_formats import clarity_lines, every_five_minutes


def research_table(rows):
    """Write an id,time,gl table from (id, time, gl) tuples."""
    return ("id,time,gl\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows)).encode()


def local_rows(start, count, first=100, subject="S1"):
    base = np.datetime64(start)
    return [(subject, str(base + np.timedelta64(5 * i, "m")).replace("T", " "), first + i) for i in range(count)]


def only_series(content, **kwargs):
    dataset = read_export(content, **kwargs)
    assert len(dataset.series) == 1
    return dataset.series[0]


def assert_balanced(report):
    assert report.readings_in == report.readings_used + sum(report.dropped.values())


def assert_one_grid(series):
    seconds = series.time.astype(np.int64)
    assert np.all(np.diff(seconds) > 0)
    for start, stop in series.segment_bounds():
        assert np.all(np.diff(seconds[start:stop]) == 300)


def test_fall_back_hour_kept_not_duplicated():
    # 00:00-00:55, the repeated hour 01:00-01:55 twice, then 02:00-02:55 (local time).
    rows = local_rows("2024-10-27T00:00", 24)
    rows += local_rows("2024-10-27T01:00", 12, first=124)
    rows += local_rows("2024-10-27T02:00", 12, first=136)
    series = only_series(research_table(rows))
    report = series.quality

    assert report.readings_in == 48
    assert report.readings_used == 48
    assert report.dropped == {}
    assert report.dst_changes == 1
    assert report.repaired == {"time moved for a daylight-saving change": 24}
    assert report.segments == 1
    assert len(series) == 48
    assert series.glucose.tolist() == list(range(100, 148))
    # The series runs on the clock after the change, so it ends at 02:55.
    assert str(series.time[-1]) == "2024-10-27T02:55:00"
    assert str(series.time[0]) == "2024-10-26T23:00:00"
    assert_one_grid(series)
    assert_balanced(report)


def test_spring_forward_hour_not_imputed():
    rows = local_rows("2024-03-31T00:00", 24) + local_rows("2024-03-31T03:00", 24, first=124)
    series = only_series(research_table(rows))
    report = series.quality

    assert report.dst_changes == 1
    assert report.points_imputed == 0
    assert report.segments == 1
    assert len(series) == 48
    assert str(series.time[23]) == "2024-03-31T02:55:00"
    assert str(series.time[24]) == "2024-03-31T03:00:00"
    assert series.glucose.tolist() == list(range(100, 148))
    assert_balanced(report)


def test_same_jump_in_july_is_a_gap():
    rows = local_rows("2024-07-14T00:00", 24) + local_rows("2024-07-14T03:00", 24, first=124)
    report = only_series(research_table(rows)).quality

    assert report.dst_changes == 0
    assert report.segments == 2


def test_fall_back_in_clarity_newest_first():
    readings = every_five_minutes(24, start="2024-11-03T00:00:00")
    readings += every_five_minutes(12, start="2024-11-03T01:00:00", first=124)
    series = only_series("\n".join(clarity_lines(readings[::-1])).encode())

    assert series.quality.dst_changes == 1
    assert series.quality.readings_used == 36
    assert series.glucose.tolist() == list(range(100, 136))


def test_utc_offsets_converted_across_dst():
    # Wall clock 01:00-01:55 twice, distinguished by +02:00 and +01:00.
    stamps = [f"2024-10-27T01:{5 * i:02d}:00+02:00" for i in range(12)]
    stamps += [f"2024-10-27T01:{5 * i:02d}:00+01:00" for i in range(12)]
    rows = [("S1", s, 100 + i) for i, s in enumerate(stamps)]
    series = only_series(research_table(rows))
    report = series.quality

    assert report.time_zone == "UTC"
    assert report.readings_used == 24
    assert report.dst_changes == 0
    assert str(series.time[0]) == "2024-10-26T23:00:00"
    assert str(series.time[-1]) == "2024-10-27T00:55:00"
    assert any("+02:00, +01:00" in m for m in report.messages)


def test_naive_time_among_offsets_dropped():
    rows = [("S1", f"2024-01-10T10:{5 * i:02d}:00Z", 100 + i) for i in range(6)]
    rows.append(("S1", "2024-01-10 10:30:00", 106))
    report = only_series(research_table(rows)).quality

    assert report.readings_in == 7
    assert report.dropped == {
        "timestamp without a UTC offset in a column whose other timestamps have one": 1
    }
    assert report.quality
    assert_balanced(report)


def test_clarity_offsets_not_rejected():
    readings = [(f"2024-01-10T10:{5 * i:02d}:00-05:00", "EGV", 100 + i) for i in range(6)]
    series = only_series("\n".join(clarity_lines(readings)).encode())

    assert series.quality.time_zone == "UTC"
    assert str(series.time[0]) == "2024-01-10T15:00:00"


def test_nightscout_utc_offset_and_fake_utc():
    base = 1704880800000  # 2024-01-10T10:00:00Z
    entries = [
        {"type": "sgv", "sgv": 100 + i, "date": base + i * 300000, "utcOffset": 120,
         # Local wall time written with a Z: two hours ahead of the epoch.
         "dateString": f"2024-01-10T12:{5 * i:02d}:00.000Z"}
        for i in range(6)
    ]
    entries.append({"type": "sgv", "sgv": 107.6, "unfiltered": 88000, "filtered": 87000,
                    "date": base + 6 * 300000, "dateString": "2024-01-10T12:30:00+02:00"})
    series = only_series(json.dumps(entries[::-1]).encode())
    report = series.quality

    assert report.time_zone == "UTC"
    assert str(series.time[0]) == "2024-01-10T10:00:00"
    assert series.glucose[-1] == pytest.approx(107.6)
    assert float(series.glucose.max()) < 200.0
    assert any("UTC+2 h" in m for m in report.messages)
    assert any("6 entries have a dateString in local time" in m for m in report.messages)


def test_warmup_gap_splits_and_flags():
    # 6 h, a 2-hour sensor warm-up gap, 6 more hours.
    rows = local_rows("2024-01-10T00:00", 72) + local_rows("2024-01-10T08:00", 72, first=150)
    series = only_series(research_table(rows))
    report = series.quality

    assert report.segments == 2
    assert report.segment_lengths == [72, 72]
    assert report.warmup_gaps == 1
    assert report.warmup_starts == ["2024-01-10T08:00:00"]
    assert report.calibration
    assert report.points_imputed == 0
    assert any("sensor may still be settling" in m for m in report.messages)


def test_windows_never_span_warmup_gap():
    rows = local_rows("2024-01-10T00:00", 110) + local_rows("2024-01-10T11:15", 110, first=150)
    series = only_series(research_table(rows))
    ends = window_ends(series)

    assert len(ends) == 2 * (110 - 96 + 1)
    for end in ends:
        assert series.segment[end - 95] == series.segment[end]


def test_three_kinds_of_duplicates():
    rows = local_rows("2024-01-10T10:00", 10)
    rows.insert(3, rows[2])  # an exact duplicate row
    rows.insert(6, ("S1", rows[5][1] + ":10", rows[5][2]))  # same value 10 s later
    rows.insert(9, (rows[8][0], rows[8][1], 250))  # one time, two values
    series = only_series(research_table(rows))
    report = series.quality

    assert report.readings_in == 13
    assert report.readings_used == 10
    assert report.dropped == {
        "duplicate timestamp": 2,
        "near-duplicate (same value within 60 s of the previous reading)": 1,
    }
    assert report.time_duplicates
    assert report.quality  # the conflicting value
    assert 250.0 not in series.glucose.tolist()
    assert_balanced(report)


def clarity_two_devices(second_device_rows):
    lines = clarity_lines(every_five_minutes(24))
    for stamp, value in second_device_rows:
        lines.append(f"99,{stamp},EGV,,,,phone,{value},,,,,2,TX0002")
    return "\n".join(lines).encode()


def test_overlapping_devices_keep_larger_track():
    # A second device reports the same two hours at other seconds, scaled by 0.7.
    base = np.datetime64("2024-01-10T10:02:30")
    second = [(str(base + np.timedelta64(5 * i, "m")), round(0.7 * (100 + i))) for i in range(10)]
    series = only_series(clarity_two_devices(second))
    report = series.quality

    assert report.readings_in == 34
    assert report.readings_used == 24
    assert report.dropped == {"overlapping device track (a device with more readings covers the same time)": 10}
    assert series.glucose.tolist() == list(range(100, 124))
    assert_balanced(report)


def test_device_clock_shifted_three_hours():
    base = np.datetime64("2024-01-10T13:00:00")
    second = [(str(base + np.timedelta64(5 * i, "m")), 100 + i) for i in range(20)]
    series = only_series(clarity_two_devices(second))
    report = series.quality

    assert report.readings_used == 24
    assert report.dropped == {
        "copy of another device's readings shifted by whole hours (device clock in another time zone)": 20
    }
    assert report.segments == 1
    assert any("+3 h apart" in m for m in report.messages)


def test_second_device_after_first_is_kept():
    base = np.datetime64("2024-01-10T12:00:00")
    second = [(str(base + np.timedelta64(5 * i, "m")), 150 + i) for i in range(12)]
    series = only_series(clarity_two_devices(second))

    assert series.quality.readings_used == 36
    assert series.quality.dropped == {}
