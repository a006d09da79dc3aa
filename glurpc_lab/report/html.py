"""Standalone HTML reports that open offline: quality, fan chart and next-hour table per series."""

from __future__ import annotations

import datetime as dt
import html
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import plotly
import plotly.offline

import glurpc_lab
from glurpc_lab.client.base import DatasetInfo
from glurpc_lab.forecast.result import Forecast
from glurpc_lab.forecast.windows import window_ends
from glurpc_lab.ingest.quality import QualityReport
from glurpc_lab.ingest.series import GlucoseSeries
from glurpc_lab.ingest.units import to_display_units
from glurpc_lab.report.figures import INPUT_POINTS, format_glucose, in_units, window_figure, window_view

logger = logging.getLogger(__name__)

NOTICE = (
    "Research use only. glurpc-lab is not a medical device: its forecasts are not validated "
    "for diagnosis or treatment, and no dosing or other treatment decision may be based on them."
)

FLAG_LABELS = {
    "too_short": "too short",
    "calibration": "calibration",
    "quality": "quality",
    "imputation": "imputation",
    "out_of_range": "out of range",
    "time_duplicates": "time duplicates",
}
"""Quality flags of ``QualityReport`` with their display labels."""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #1f2d3d; }
.notice { border: 2px solid #c0392b; background: #fdecea; padding: 0.8em 1em; font-weight: 600; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #d0d7de; padding: 0.25em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.flag { display: inline-block; padding: 0.1em 0.5em; margin: 0 0.3em 0.3em 0; border-radius: 0.8em; }
.flag.set { background: #fbe3c4; } .flag.clear { background: #e6f4ea; color: #555; }
section.series { border-top: 1px solid #d0d7de; margin-top: 2em; }
"""


def _text(value: object) -> str:
    return html.escape(str(value), quote=True)


def _quality_section(quality: QualityReport) -> str:
    """Render the quality report: counts with reasons, flags, span, interval and messages."""
    dropped_total = sum(quality.dropped.values())
    rows = [
        ("Readings in the file", quality.readings_in),
        ("Readings used", quality.readings_used),
        ("Readings repaired", quality.readings_repaired),
        ("Readings dropped", dropped_total),
        ("Grid points interpolated", quality.points_imputed),
        ("Censored high readings", quality.censored_high),
        ("Censored low readings", quality.censored_low),
        ("Gap-free segments", quality.segments),
        ("Calibration records", quality.calibration_records),
        ("Sensor warm-up gaps", quality.warmup_gaps),
        ("Daylight-saving changes", quality.dst_changes),
    ]
    parts = ['<table class="quality-counts">']
    for label, count in rows:
        parts.append(f'<tr><th>{_text(label)}</th><td class="num">{int(count)}</td></tr>')

    interval = quality.sampling_interval_minutes
    interval_text = "unknown" if interval is None else f"{interval:g} min"
    span_text = f"{quality.span_start or 'unknown'} to {quality.span_end or 'unknown'}"
    parts.append(f"<tr><th>Span</th><td>{_text(span_text)}</td></tr>")
    parts.append(f"<tr><th>Sampling interval</th><td>{_text(interval_text)}</td></tr>")
    parts.append(f"<tr><th>Units in the file</th><td>{_text(quality.source_units)}</td></tr>")
    parts.append(f"<tr><th>Time zone</th><td>{_text(quality.time_zone)}</td></tr>")
    parts.append("</table>")

    for title, reasons, css in (
        ("Dropped readings by reason", quality.dropped, "dropped"),
        ("Repaired readings by reason", quality.repaired, "repaired"),
    ):
        if reasons:
            parts.append(f"<h4>{title}</h4><table class=\"{css}\">")
            for reason, count in sorted(reasons.items()):
                parts.append(f'<tr><th>{_text(reason)}</th><td class="num">{int(count)}</td></tr>')
            parts.append("</table>")

    parts.append('<p class="flags">Flags: ')
    for name, label in FLAG_LABELS.items():
        state = "set" if getattr(quality, name) else "clear"
        parts.append(f'<span class="flag {state}" data-flag="{name}">{_text(label)}: {state}</span>')
    parts.append("</p>")

    if quality.messages:
        parts.append('<ul class="messages">')
        parts.extend(f"<li>{_text(message)}</li>" for message in quality.messages)
        parts.append("</ul>")
    return "\n".join(parts)


def _next_hour_table(series: GlucoseSeries, forecast: Forecast, units: str) -> str:
    """Render the latest window's forecast steps: time, median, 80% and 95% intervals, truth."""
    view = in_units(window_view(series, forecast, -1), units)

    def value(number: float) -> str:
        return format_glucose(number, units)

    lower80, upper80 = view.bands[0.80]
    lower95, upper95 = view.bands[0.95]
    heading = (
        "Next hour after the last reading"
        if view.is_future
        else "Last forecast window (backtest: the series does not end with a full input window)"
    )

    parts = [
        f"<h3>{_text(heading)}</h3>",
        '<table class="next-hour"><thead><tr><th>Time</th><th>Minutes ahead</th>'
        f"<th>Median ({units})</th><th>80% interval ({units})</th><th>95% interval ({units})</th>"
        f"<th>Observed ({units})</th></tr></thead><tbody>",
    ]
    times = np.datetime_as_string(view.forecast_time, unit="m")
    for step, time_text in enumerate(times):
        parts.append(
            f'<tr data-step="{step}"><td>{_text(time_text.replace("T", " "))}</td>'
            f'<td class="num">{int(forecast.horizon_minutes[step])}</td>'
            f'<td class="num median">{value(view.median[step])}</td>'
            f'<td class="num interval80">{value(lower80[step])}–{value(upper80[step])}</td>'
            f'<td class="num interval95">{value(lower95[step])}–{value(upper95[step])}</td>'
            f'<td class="num truth">{value(view.truth[step])}</td></tr>'
        )
    parts.append("</tbody></table>")
    return "\n".join(parts)


def _metadata_rows(forecasts: Sequence[Forecast]) -> list[tuple[str, str]]:
    model_ids = sorted({f.model_id for f in forecasts})
    seeds = sorted({int(f.seed) for f in forecasts})
    samples = sorted({int(f.sample_mean.shape[2]) for f in forecasts if f.sample_mean.ndim == 3})
    return [
        ("Model", ", ".join(model_ids) or "none"),
        ("Seed", ", ".join(str(s) for s in seeds) or "none"),
        ("MC-dropout samples", ", ".join(str(s) for s in samples) or "none"),
        ("glurpc-lab version", glurpc_lab.__version__),
        ("plotly version", plotly.__version__),
        ("Generated (UTC)", dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")),
    ]


def _windows_sentence(series: GlucoseSeries, forecast: Forecast) -> str:
    """Describe how many windows the series has and how many of them were forecast."""
    total = int(window_ends(series, INPUT_POINTS).size)
    noun = "window" if total == 1 else "windows"
    sentence = f"{len(series)} grid points, {total} forecasting {noun}"
    if forecast.n_windows == total:
        return sentence + ", all forecast."
    return sentence + f", of which {forecast.n_windows} forecast (the latest)."


def _series_section(position: int, series: GlucoseSeries, forecast: Forecast, units: str) -> str:
    parts = [
        f'<section class="series" data-series="{position}">',
        f"<h2>Series {position + 1}: {_text(series.subject)}</h2>",
        f"<p>{_windows_sentence(series, forecast)}</p>",
        "<h3>Data quality</h3>",
        _quality_section(series.quality),
    ]

    if forecast.n_windows == 0:
        parts.append(
            '<p class="no-forecast">No forecast: the series has no segment with '
            f"{INPUT_POINTS} gap-free grid points (8 hours at 5 minutes).</p>"
        )
    else:
        figure = window_figure(series, forecast, -1, units=units)
        parts.append(
            figure.to_html(
                full_html=False,
                include_plotlyjs=False,
                div_id=f"fan-chart-{position}",
                config={"displaylogo": False},
            )
        )
        parts.append(_next_hour_table(series, forecast, units))

    parts.append("</section>")
    return "\n".join(parts)


def write_report(
    path: str | os.PathLike,
    dataset: DatasetInfo,
    series_list: Sequence[GlucoseSeries],
    forecasts: Sequence[Forecast],
    *,
    units: str = "mg/dL",
) -> Path:
    """Write a standalone HTML report of a processed upload.

    The page embeds plotly.js inline, so it opens offline and loads nothing
    from the network. Per series it shows the quality report, the fan chart
    of the latest window and a table of that window's forecast steps. It
    names no file and contains no raw rows, only the gridded values plotted.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; its parent folder must exist.
    dataset : DatasetInfo
        The processed upload the series came from.
    series_list : sequence of GlucoseSeries
        The series to report, usually all of ``dataset.series``.
    forecasts : sequence of Forecast
        One forecast per entry of ``series_list``, in the same order.
    units : {"mg/dL", "mmol/L"}, default "mg/dL"
        Unit of the charts and forecast tables.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ValueError
        If the lists differ in length or a forecast belongs to another subject.
    """
    if len(series_list) != len(forecasts):
        raise ValueError(
            f"write_report got {len(series_list)} series but {len(forecasts)} forecasts: pass one forecast per series"
        )
    for position, (series, forecast) in enumerate(zip(series_list, forecasts)):
        if series.subject != forecast.subject:
            raise ValueError(
                f"forecast {position} is for subject {forecast.subject!r} but series {position} is "
                f"{series.subject!r}: pass the forecasts in the order of the series"
            )

    to_display_units(np.zeros(1), units)  # rejects an unknown unit before any work
    output = Path(path)
    meta_rows = "\n".join(
        f'<tr><th>{_text(label)}</th><td data-meta="{_text(label)}">{_text(value)}</td></tr>'
        for label, value in _metadata_rows(forecasts)
    )
    sections = "\n".join(
        _series_section(position, series, forecast, units)
        for position, (series, forecast) in enumerate(zip(series_list, forecasts))
    )

    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>glurpc-lab glucose forecast report</title>
<style>{_STYLE}</style>
<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>
</head>
<body>
<h1>Glucose forecast report</h1>
<p class="notice" id="notice">{_text(NOTICE)}</p>
<p>Input format: {_text(dataset.source_format)}; {len(series_list)} series reported of {len(dataset.series)}.
Times are as recorded in the export (device time for most vendors, UTC for Nightscout; the quality messages say which). Glucose is in {_text(units)}.</p>
<h2>Run</h2>
<table class="metadata">
{meta_rows}
</table>
{sections}
<p class="notice">{_text(NOTICE)}</p>
</body>
</html>
"""
    output.write_text(page, encoding="utf-8")
    logger.info("wrote report: %d series, %d bytes", len(series_list), len(page.encode("utf-8")))
    return output
