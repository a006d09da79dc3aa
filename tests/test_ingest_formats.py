"""Vendor layouts, encodings and separators, each from a small hand-made export."""

import numpy as np
import pytest

from glurpc_lab.ingest import IngestError, read_export

CLARITY_COLUMNS = [
    "Index", "Timestamp (YYYY-MM-DDThh:mm:ss)", "Event Type", "Event Subtype", "Patient Info",
    "Device Info", "Source Device ID", "Glucose Value ({unit})", "Insulin Value (u)", "Carb Value (grams)",
    "Duration (hh:mm:ss)", "Glucose Rate of Change ({unit}/min)", "Transmitter Time (Long Integer)",
    "Transmitter ID",
]


def clarity_lines(readings, *, unit="mg/dL", alerts=0, sep=",", extra=()):
    """Write Clarity lines: header, a preamble of 4 + ``alerts`` rows, then EGV rows.

    ``readings`` are (timestamp, event type, glucose) tuples; ``extra`` rows
    (already split into cells) are appended after them.
    """
    preamble = [
        ["", "", "FirstName", "", "Test"], ["", "", "LastName", "", "Subject"],
        ["", "", "DateOfBirth", "", "2000-01-01"], ["", "", "Device", "", "", "Dexcom G7 Receiver"],
    ] + [["", "", "Alert", "High"] for _ in range(alerts)]
    rows = [[c.format(unit=unit) for c in CLARITY_COLUMNS]]
    rows += [cells + [""] * (14 - len(cells)) for cells in preamble]
    for stamp, kind, value in readings:
        rows.append(["", stamp, kind, "", "", "", "G7 receiver", str(value), "", "", "", "", "1", "TX0001"])
    rows += list(extra)
    for number, row in enumerate(rows[1:], start=1):
        row[0] = str(number)
    return [sep.join(row) for row in rows]


def every_five_minutes(count, start="2024-01-10T10:00:00", first=100, step=1):
    """Return ``count`` (ISO time, EGV, value) readings 5 minutes apart."""
    base = np.datetime64(start)
    return [(str(base + np.timedelta64(5 * i, "m")), "EGV", first + step * i) for i in range(count)]


def only_series(content, **kwargs):
    dataset = read_export(content, **kwargs)
    assert len(dataset.series) == 1
    return dataset.series[0]


def assert_balanced(report):
    assert report.readings_in == report.readings_used + sum(report.dropped.values())


@pytest.mark.parametrize("alerts", [0, 6, 7, 8, 40])
def test_clarity_preamble_any_length(alerts):
    content = "\n".join(clarity_lines(every_five_minutes(20), alerts=alerts)).encode()
    series = only_series(content)

    assert series.quality.readings_in == 20
    assert series.quality.readings_used == 20
    assert series.glucose[0] == 100.0
    assert series.glucose[-1] == 119.0
    assert_balanced(series.quality)


def test_clarity_lines_above_header():
    lines = ["Export for Test Subject", "Generated 2024-01-11", ""] + clarity_lines(every_five_minutes(12))
    series = only_series("\n".join(lines).encode())

    assert series.quality.readings_in == 12
    assert series.quality.readings_used == 12


def test_clarity_blank_row_inside_data():
    lines = clarity_lines(every_five_minutes(10))
    lines.insert(10, ",,,,,,,,,,,,,")
    series = only_series("\n".join(lines).encode())

    assert series.quality.readings_in == 10
    assert series.quality.dropped == {}
    assert len(series) == 10


def test_clarity_g7_fasting_glucose_and_unknown_event():
    readings = every_five_minutes(8)
    readings[4] = (readings[4][0], "Fasting Glucose", 95)
    extra = [["", "2024-01-10T10:12:00", "Exercise", "Light"] + [""] * 10,
             ["", "2024-01-10T10:13:00", "Calibration", "", "", "", "G7 receiver", "104"] + [""] * 6]
    series = only_series("\n".join(clarity_lines(readings, extra=extra)).encode())
    report = series.quality

    assert report.readings_in == 8
    assert report.readings_used == 8
    assert series.glucose[4] == 95.0
    assert report.other_records == {"exercise": 1}
    assert report.calibration_records == 1
    assert_balanced(report)


def test_clarity_mmol_semicolon_decimal_comma():
    readings = [(t, k, str(v)) for t, k, v in every_five_minutes(6, first=5.4, step=0.1)]
    readings = [(t, k, f"{float(v):.1f}".replace(".", ",")) for t, k, v in readings]
    content = "\n".join(clarity_lines(readings, unit="mmol/L", sep=";")).encode()
    series = only_series(content)

    assert series.quality.source_units == "mmol/L"
    assert series.glucose.tolist() == pytest.approx([97.2, 99.0, 100.8, 102.6, 104.4, 106.2])
    assert series.quality.readings_used == 6


def test_clarity_tab_separated_utf16():
    content = "\r\n".join(clarity_lines(every_five_minutes(7), sep="\t")).encode("utf-16")
    series = only_series(content)

    assert content[:2] == b"\xff\xfe"
    assert series.quality.readings_in == 7
    assert series.glucose[-1] == 106.0


def test_utf16_without_bom():
    content = "\n".join(clarity_lines(every_five_minutes(5), sep="\t")).encode("utf-16-le")
    series = only_series(content)

    assert series.quality.readings_in == 5


def test_clarity_double_encoded_bom():
    lines = clarity_lines(every_five_minutes(5))
    lines[0] = 'ï»¿""""Index"""""' + lines[0][len("Index"):]
    series = only_series(b"\xef\xbb\xbf" + "\n".join(lines).encode())

    assert series.quality.readings_in == 5


def test_clarity_windows_1252():
    lines = clarity_lines(every_five_minutes(5))
    lines[1] = lines[1].replace("Test", "Zoë Müller")
    content = "\n".join(lines).encode("cp1252")
    series = only_series(content)

    assert series.quality.readings_in == 5


LIBRE_EN = [
    "Device", "Serial Number", "Device Timestamp", "Record Type", "Historic Glucose {unit}",
    "Scan Glucose {unit}", "Non-numeric Rapid-Acting Insulin", "Rapid-Acting Insulin (units)",
    "Non-numeric Food", "Carbohydrates (grams)", "Carbohydrates (servings)",
    "Non-numeric Long-Acting Insulin", "Long-Acting Insulin Value (units)", "Notes",
    "Strip Glucose {unit}", "Ketone mmol/L", "Meal Insulin (units)", "Correction Insulin (units)",
    "User Change Insulin (units)",
]
LIBRE_DE = [
    "Gerät", "Seriennummer", "Gerätezeitstempel", "Aufzeichnungstyp", "Glukosewert-Verlauf {unit}",
    "Glukose-Scan {unit}",
] + LIBRE_EN[6:]
LIBRE_FR = [
    "Appareil", "Numéro de série", "Horodatage de l'appareil", "Type d'enregistrement",
    "Historique de la glycémie {unit}", "Numérisation de la glycémie {unit}",
] + LIBRE_EN[6:]
LIBRE_ES = [
    "Dispositivo", "Número de serie", "Sello de tiempo del dispositivo", "Tipo de registro",
    "Historial de glucosa {unit}", "Escaneo de glucosa {unit}",
] + LIBRE_EN[6:]


def libre_lines(header, rows, *, unit="mg/dL", sep=",", title="Glucose Data,Generated on,x,Generated by,Test"):
    """Write a LibreView export: a title line, the header, then (timestamp, type, historic, scan) rows."""
    lines = [title, sep.join(h.format(unit=unit) for h in header)]
    for stamp, kind, historic, scan in rows:
        cells = ["FreeStyle Libre 2", "TESTSERIAL", stamp, kind, historic, scan] + [""] * (len(header) - 6)
        lines.append(sep.join(cells))
    return lines


def libre_rows(count, start_day=14, first="100"):
    """Historic rows every 15 minutes from 08:00 on day ``start_day`` of March 2024 (day-first)."""
    rows = []
    for i in range(count):
        minutes = 8 * 60 + 15 * i
        stamp = f"{start_day:02d}-03-2024 {minutes // 60:02d}:{minutes % 60:02d}"
        value = str(int(first) + i) if first.isdigit() else first
        rows.append((stamp, "0", value, ""))
    return rows


@pytest.mark.parametrize("header, language", [(LIBRE_DE, "German"), (LIBRE_FR, "French"), (LIBRE_ES, "Spanish")])
def test_libre_translated_headers(header, language):
    rows = libre_rows(6) + [("14-03-2024 08:20", "1", "", "150")]
    series = only_series("\n".join(libre_lines(header, rows)).encode())
    report = series.quality

    assert report.readings_in == 7
    assert report.readings_used == 6
    assert report.dropped == {"scan reading (series built from historic readings)": 1}
    assert series.glucose[0] == 100.0
    assert str(series.time[0]) == "2024-03-14T08:00:00"
    assert any(language in m for m in report.messages)


def test_libre_mmol_semicolon_latin1():
    rows = [(s, k, f"{5 + i / 10:.1f}".replace(".", ","), c) for i, (s, k, _, c) in enumerate(libre_rows(4))]
    lines = libre_lines(LIBRE_DE, rows, unit="mmol/L", sep=";", title="Glukose-Werte;Erstellt am;x;Erstellt von;Test")
    series = only_series("\n".join(lines).encode("latin-1"))

    assert series.quality.source_units == "mmol/L"
    # 5.0, 5.1, 5.2, 5.3 mmol/L every 15 min: readings on the quarter hours.
    assert series.glucose[::3].tolist() == pytest.approx([90.0, 91.8, 93.6, 95.4])
    assert series.quality.readings_used == 4


def test_libre_eu_mmol_ketone_columns():
    header = LIBRE_EN + ["Historic Ketone mmol/L", "Scan Ketone mmol/L"]
    rows = [(s, k, f"{7 + i / 10:.1f}", c) for i, (s, k, _, c) in enumerate(libre_rows(3))]
    series = only_series("\n".join(libre_lines(header, rows, unit="mmol/L")).encode())

    assert series.quality.source_units == "mmol/L"
    assert series.glucose[0] == pytest.approx(126.0)


CARELINK_COLUMNS = (
    "Index;Date;Time;New Device Time;BG Reading (mg/dL);Linked BG Meter ID;Basal Rate (U/h);"
    "Temp Basal Amount;Temp Basal Type;Temp Basal Duration (h:mm:ss);Bolus Type;Bolus Volume Selected (U);"
    "Bolus Volume Delivered (U);Bolus Duration (h:mm:ss);Prime Type;Prime Volume Delivered (U);Alarm;"
    "Suspend;Rewind;BWZ Estimate (U);BWZ Target High BG (mg/dL);BWZ Target Low BG (mg/dL);"
    "BWZ Carb Ratio (g/U);BWZ Insulin Sensitivity (mg/dL/U);BWZ Carb Input (grams);BWZ BG Input (mg/dL);"
    "BWZ Correction Estimate (U);BWZ Food Estimate (U);BWZ Active Insulin (U);BWZ Status;"
    "Sensor Calibration BG (mg/dL);Sensor Glucose (mg/dL);ISIG Value;Event Marker;Bolus Number;"
    "Bolus Cancellation Reason;BWZ Unabsorbed Insulin Total (U);Final Bolus Estimate;Scroll Step Size;"
    "Insulin Action Curve Time;Sensor Calibration Rejected Reason;Preset Bolus;Bolus Source;"
    "Network Device Associated Reason;Network Device Disassociated Reason;"
    "Network Device Disconnected Reason;Sensor Exception;Preset Temp Basal Name"
).split(";")
GLUCOSE_AT = CARELINK_COLUMNS.index("Sensor Glucose (mg/dL)")
CALIBRATION_AT = CARELINK_COLUMNS.index("Sensor Calibration BG (mg/dL)")


def carelink_row(index, stamp, glucose="", calibration="", marker=""):
    cells = [""] * len(CARELINK_COLUMNS)
    cells[0] = f"{index},00000"
    cells[1], cells[2] = stamp.split(" ")
    cells[GLUCOSE_AT] = glucose
    cells[CALIBRATION_AT] = calibration
    cells[CARELINK_COLUMNS.index("Event Marker")] = marker
    cells[CARELINK_COLUMNS.index("ISIG Value")] = "-------" if not glucose else "25,10"
    return ";".join(cells)


def carelink_export(sections, columns=CARELINK_COLUMNS):
    """Write a CareLink EU export: metadata lines, then per section a separator, header and rows."""
    lines = [
        "Last Name;First Name;Patient ID;System ID;Start Date;End Date;Device",
        "Subject;Test;;;2024/01/01;2024/01/02;Pump",
        "",
        "Patient DOB;;;;;;",
        "",
    ]
    for number, rows in enumerate(sections):
        lines.append(f"-------;Device {number};Sensor;SERIAL{number};-------")
        lines.append(";".join(columns))
        lines.extend(rows)
    return ("\ufeff" + "\n".join(lines)).encode("utf-8")


def test_carelink_semicolon_decimal_comma_sections():
    # Section 1, newest first: 6 sensor readings, a calibration and a meal marker.
    first = [carelink_row(i, f"2024/01/10 10:{25 - 5 * i:02d}:00", glucose=f"{130 - i},00") for i in range(6)]
    first.insert(2, carelink_row(9, "2024/01/10 10:16:00", calibration="118,00"))
    first.append(carelink_row(10, "2024/01/10 09:58:00", marker="Meal: 60,00grams"))
    # Section 2 continues after a 30-minute gap, with a placeholder glucose row.
    second = [carelink_row(i, f"2024/01/10 11:{55 - 5 * i:02d}:00", glucose=f"{150 - i},50") for i in range(4)]
    second.append(carelink_row(5, "2024/01/10 11:30:00", glucose="-------"))
    series = only_series(carelink_export([first, second]))
    report = series.quality

    assert report.source_units == "mg/dL"
    assert report.readings_in == 10
    assert report.readings_used == 10
    assert report.calibration_records == 1
    assert report.other_records == {"pump or meter event": 2}
    assert str(series.time[0]) == "2024-01-10T10:00:00"
    assert series.glucose[0] == 125.0
    assert series.glucose[-1] == 150.5
    assert any("out of time order" in m for m in report.messages)
    assert_balanced(report)


def test_carelink_overlapping_sections_not_merged():
    first = [carelink_row(i, f"2024/01/10 10:{55 - 5 * i:02d}:00", glucose=f"{100 + i},00") for i in range(12)]
    second = [carelink_row(i, f"2024/01/10 10:{32 - 5 * i:02d}:00", glucose="200,00") for i in range(4)]
    series = only_series(carelink_export([first, second]))
    report = series.quality

    assert report.readings_in == 16
    assert report.readings_used == 12
    assert report.dropped == {"overlapping device track (a device with more readings covers the same time)": 4}
    assert 200.0 not in series.glucose.tolist()
    assert_balanced(report)


def test_carelink_us_comma_layout():
    header = (
        "Index,Date,Time,Timestamp,New Device Time,BG Reading (mg/dL),Linked BG Meter ID,"
        "Temp Basal Amount (U/h),Temp Basal Type,Temp Basal Duration (hh:mm:ss),Bolus Type,"
        "Bolus Volume Selected (U),Bolus Volume Delivered (U),Programmed Bolus Duration (hh:mm:ss),"
        "Prime Type,Prime Volume Delivered (U),Suspend,Rewind,BWZ Estimate (U),BWZ Target High BG (mg/dL),"
        "BWZ Target Low BG (mg/dL),BWZ Carb Ratio (grams),BWZ Insulin Sensitivity (mg/dL),"
        "BWZ Carb Input (grams),BWZ BG Input (mg/dL),BWZ Correction Estimate (U),BWZ Food Estimate (U),"
        "BWZ Active Insulin (U),Alarm,Sensor Calibration BG (mg/dL),Sensor Glucose (mg/dL),ISIG Value,"
        "Daily Insulin Total (U),Raw-Type,Raw-Values,Raw-ID,Raw-Upload ID,Raw-Seq Num,Raw-Device Type"
    )
    columns = header.split(",")
    lines = ["Data Range,1/10/24 00:00:00,to,1/11/24 00:00:00", header]
    for i in range(5):
        cells = [""] * len(columns)
        cells[0], cells[1], cells[2] = str(i), "1/13/24", f"10:{5 * i:02d}:00"
        cells[3] = f"1/13/24 10:{5 * i:02d}:00"
        cells[columns.index("Sensor Glucose (mg/dL)")] = str(110 + i)
        cells[columns.index("Raw-Values")] = f'"AMOUNT={110 + i}, ISIG=20.1, BACKFILL_INDICATOR=false"'
        lines.append(",".join(cells))
    series = only_series("\n".join(lines).encode())

    assert series.quality.readings_in == 5
    assert str(series.time[0]) == "2024-01-13T10:00:00"
    assert series.glucose.tolist() == [110, 111, 112, 113, 114]


def test_carelink_dutch_headers_rejected():
    dutch = ["Index", "Datum", "Tijd"] + [f"Kolom {i}" for i in range(40)]
    rows = [";".join(["1,0", "2024/01/10", "10:00:00"] + ["130,00"] * 40)]
    with pytest.raises(IngestError, match="CareLink export.*another language") as info:
        read_export(carelink_export([rows], columns=dutch))

    assert "130" not in str(info.value)
    assert "Subject" not in str(info.value)


def test_research_table_semicolon_decimal_comma():
    lines = ["id;time;gl"] + [f"S1;2024-01-10 10:{5 * i:02d}:00;{5 + i / 10:.1f}".replace(".", ",") for i in range(4)]
    series = only_series("\n".join(lines).encode())

    assert series.quality.source_units == "mmol/L"
    assert series.glucose.tolist() == pytest.approx([90.0, 91.8, 93.6, 95.4])


def test_research_table_tab_separated():
    lines = ["id\ttime\tgl"] + [f"S{1 + i % 2}\t2024-01-10 10:{5 * (i // 2):02d}:00\t{100 + i}" for i in range(8)]
    dataset = read_export("\n".join(lines).encode())

    assert [s.subject for s in dataset.series] == ["S1", "S2"]
    assert [s.quality.readings_in for s in dataset.series] == [4, 4]
