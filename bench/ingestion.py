"""Ingestion speed: seconds per million readings through ``read_export``."""

from __future__ import annotations

from bench.synthetic import READINGS_PER_DAY, research_export
from bench.timing import time_calls


def ingestion_benchmark(readings: int, *, subjects: int, repeats: int) -> dict:
    """Time ``read_export`` on an ``id,time,gl`` table of ``readings`` rows split over ``subjects`` series.

    The rate uses the fastest of ``repeats`` calls after one untimed call.
    """
    from glurpc_lab.ingest import read_export

    days = readings / subjects / READINGS_PER_DAY
    content = research_export(days, subjects=subjects, seed=3)
    rows = content.count(b"\n") - 1
    dataset = read_export(content)
    timing = time_calls(lambda: read_export(content), repeats=repeats, warmup=0)
    return {
        "format": "research table id,time,gl",
        "readings": rows,
        "subjects": subjects,
        "file_bytes": len(content),
        "series_points": sum(len(series) for series in dataset.series),
        "read_export_s": timing,
        "seconds_per_million_readings": timing["min_s"] / rows * 1e6,
    }
