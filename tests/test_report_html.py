"""Standalone HTML reports built from series and forecasts made of known arrays."""

from __future__ import annotations

import re

import numpy as np
import pytest
from bs4 import BeautifulSoup

import glurpc_lab
from glurpc_lab.client.base import DatasetInfo, SeriesSummary
from glurpc_lab.report.html import NOTICE, write_report
from test_report_figures import make_forecast, make_series


def make_dataset(series_list) -> DatasetInfo:
    summaries = tuple(
        SeriesSummary(subject=s.subject, points=len(s), windows=0, quality=s.quality.to_dict()) for s in series_list
    )
    return DatasetInfo(handle="0123456789abcdef", source_format="dexcom", series=summaries)


@pytest.fixture
def report(tmp_path):
    first = make_series(subject="series-1")
    second = make_series(points=200, subject="series-2")
    forecasts = [
        make_forecast(first, [100, 130, len(first) - 1], seed=3),
        make_forecast(second, [150, 170], seed=3),
    ]
    path = write_report(tmp_path / "report.html", make_dataset([first, second]), [first, second], forecasts)
    soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
    return path, soup, [first, second], forecasts


def cell_number(cell) -> float:
    return float(cell.get_text(strip=True))


def test_report_loads_nothing_from_network(report):
    path, soup, _, _ = report
    text = path.read_text(encoding="utf-8")

    assert not re.search(r"<script[^>]+src=", text, flags=re.IGNORECASE)
    assert not soup.find_all("link", href=True)
    scripts = sorted((s.get_text() for s in soup.find_all("script")), key=len)
    # plotly.js itself is inline: its bundle is several megabytes. It contains
    # default URLs for map features the fan charts never use, so only the
    # figure scripts are checked for URLs.
    assert len(scripts[-1]) > 1_000_000
    assert "Plotly.newPlot" in scripts[0]
    for script in scripts[:-1]:
        assert "http" not in script


def test_report_shows_notice(report):
    _, soup, _, _ = report

    notice = soup.find(id="notice")

    assert notice is not None
    assert notice.get_text(strip=True) == NOTICE
    assert "not a medical device" in NOTICE


def test_next_hour_matches_forecast(report):
    _, soup, series_list, forecasts = report
    section = soup.find("section", attrs={"data-series": "0"})
    rows = section.find("table", class_="next-hour").find("tbody").find_all("tr")
    latest = forecasts[0]

    assert len(rows) == 12
    for step, row in enumerate(rows):
        assert cell_number(row.find("td", class_="median")) == round(float(latest.median[-1, step]))
        low, high = row.find("td", class_="interval80").get_text(strip=True).split("–")
        assert float(low) == round(float(latest.quantile(0.1)[-1, step]))
        assert float(high) == round(float(latest.quantile(0.9)[-1, step]))
        assert row.find("td", class_="truth").get_text(strip=True) == "–"

    first_time = rows[0].find("td").get_text(strip=True)
    expected = np.datetime_as_string(series_list[0].time[-1] + np.timedelta64(5, "m"), unit="m").replace("T", " ")
    assert first_time == expected
    assert "Next hour after the last reading" in section.get_text()


def test_backtest_table_has_truth(report):
    _, soup, series_list, forecasts = report
    section = soup.find("section", attrs={"data-series": "1"})
    rows = section.find("table", class_="next-hour").find("tbody").find_all("tr")

    truths = [cell_number(row.find("td", class_="truth")) for row in rows]

    np.testing.assert_allclose(truths, np.round(series_list[1].glucose[171:183]))
    assert "backtest" in section.find("h3", string=re.compile("Last forecast window")).get_text()


def test_quality_counts_and_reasons(report):
    _, soup, series_list, _ = report
    section = soup.find("section", attrs={"data-series": "0"})
    quality = series_list[0].quality
    counts = {
        row.find("th").get_text(strip=True): row.find("td").get_text(strip=True)
        for row in section.find("table", class_="quality-counts").find_all("tr")
    }

    assert counts["Readings in the file"] == str(quality.readings_in)
    assert counts["Readings used"] == str(quality.readings_used)
    assert counts["Readings repaired"] == str(quality.readings_repaired)
    assert counts["Readings dropped"] == str(sum(quality.dropped.values()))
    assert counts["Sampling interval"] == "5 min"
    assert quality.span_start in counts["Span"]
    dropped = {
        row.find("th").get_text(strip=True): int(row.find("td").get_text(strip=True))
        for row in section.find("table", class_="dropped").find_all("tr")
    }
    assert dropped == quality.dropped
    assert section.find("span", attrs={"data-flag": "imputation"})["class"] == ["flag", "set"]
    assert section.find("span", attrs={"data-flag": "calibration"})["class"] == ["flag", "clear"]
    assert quality.messages[0] in section.find("ul", class_="messages").get_text()


def test_chart_per_series(report):
    _, soup, _, _ = report

    charts = [div["id"] for div in soup.find_all("div", id=re.compile(r"^fan-chart-"))]

    assert charts == ["fan-chart-0", "fan-chart-1"]


def test_metadata_block(report):
    _, soup, _, forecasts = report
    meta = {td["data-meta"]: td.get_text(strip=True) for td in soup.find_all("td", attrs={"data-meta": True})}

    assert meta["Model"] == forecasts[0].model_id
    assert meta["Seed"] == "3"
    assert meta["MC-dropout samples"] == "10"
    assert meta["glurpc-lab version"] == glurpc_lab.__version__


def test_series_without_windows(tmp_path):
    short = make_series(points=50)
    path = write_report(tmp_path / "r.html", make_dataset([short]), [short], [make_forecast(short, [])])

    soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")

    assert soup.find("p", class_="no-forecast") is not None
    assert soup.find("table", class_="next-hour") is None


def test_subject_text_escaped(tmp_path):
    series = make_series(subject="<b>x</b>")
    path = write_report(tmp_path / "r.html", make_dataset([series]), [series], [make_forecast(series, [159])])

    text = path.read_text(encoding="utf-8")

    assert "<b>x</b>" not in text
    assert "&lt;b&gt;x&lt;/b&gt;" in text


def test_mismatched_lists_rejected(tmp_path):
    series = make_series()

    with pytest.raises(ValueError, match="1 series but 0 forecasts"):
        write_report(tmp_path / "r.html", make_dataset([series]), [series], [])


def test_forecast_order_checked(tmp_path):
    first = make_series(subject="a")
    second = make_series(subject="b")
    forecasts = [make_forecast(second, [159]), make_forecast(first, [159])]

    with pytest.raises(ValueError, match="in the order of the series"):
        write_report(tmp_path / "r.html", make_dataset([first, second]), [first, second], forecasts)


def test_report_in_mmol_per_litre(tmp_path):
    series = make_series(subject="series-1")
    forecast = make_forecast(series, [len(series) - 1], seed=3)
    path = write_report(tmp_path / "mmol.html", make_dataset([series]), [series], [forecast], units="mmol/L")
    soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
    rows = soup.find("table", class_="next-hour").find("tbody").find_all("tr")
    header = soup.find("table", class_="next-hour").find("thead").get_text()

    assert "Median (mmol/L)" in header
    for step, row in enumerate(rows):
        expected = round(float(forecast.median[-1, step]) / 18.0, 1)
        assert cell_number(row.find("td", class_="median")) == pytest.approx(expected, abs=0.051)


def test_unknown_unit_rejected(tmp_path):
    series = make_series(subject="series-1")
    forecast = make_forecast(series, [len(series) - 1], seed=3)

    with pytest.raises(ValueError, match="display unit"):
        write_report(tmp_path / "bad.html", make_dataset([series]), [series], [forecast], units="mg")
