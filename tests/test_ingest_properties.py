"""Property-based checks: shuffled, duplicated, gappy, DST-shifted and truncated inputs keep the invariants."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glurpc_lab.forecast import window_ends
from glurpc_lab.ingest import GRID_MINUTES, IngestError, read_export

GRID_SECONDS = GRID_MINUTES * 60
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_invariants(series, limit_minutes=45):
    """The GlucoseSeries contract, and the balance of its report."""
    report = series.quality
    seconds = series.time.astype(np.int64)

    assert report.readings_in == report.readings_used + sum(report.dropped.values())
    assert np.all(seconds % GRID_SECONDS == 0)
    assert np.all(np.diff(seconds) > 0)
    assert np.all(np.diff(series.segment) >= 0)
    bounds = series.segment_bounds()
    for start, stop in bounds:
        assert np.all(np.diff(seconds[start:stop]) == GRID_SECONDS)
    for (_, stop), (start, _) in zip(bounds, bounds[1:]):
        assert seconds[start] - seconds[stop - 1] > limit_minutes * 60
    for end in window_ends(series):
        assert series.segment[end - 95] == series.segment[end]
    assert np.all(np.isfinite(series.glucose))


readings = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=3 * 24 * 60 * 60),  # seconds after the start
        st.integers(min_value=40, max_value=400),
    ),
    min_size=2,
    max_size=400,
)


def research_table(rows):
    base = np.datetime64("2024-01-10T00:00:00")
    lines = ["id,time,gl"] + [
        f"S1,{str(base + np.timedelta64(int(s), 's')).replace('T', ' ')},{v}" for s, v in rows
    ]
    return "\n".join(lines) + "\n"


@FAST
@given(readings, st.randoms(use_true_random=False))
def test_shuffled_duplicated_readings(rows, random):
    rows = list(rows) + random.sample(rows, k=len(rows) // 4)  # exact duplicate rows
    random.shuffle(rows)
    try:
        dataset = read_export(research_table(rows).encode())
    except IngestError as error:
        # Only inputs with fewer than two distinct valid times are refused.
        assert "valid glucose reading" in str(error) or "no row" in str(error)
        return
    series = dataset.series[0]

    assert series.quality.readings_in == len(rows)
    assert_invariants(series)


@FAST
@given(
    st.integers(min_value=3, max_value=200),
    st.lists(st.integers(min_value=0, max_value=199), max_size=30),
    st.integers(min_value=0, max_value=299),
    st.sampled_from([5, 15]),
)
def test_regular_series_with_gaps(count, missing, offset_seconds, cadence):
    kept = [i for i in range(count) if i not in set(missing)]
    rows = [(offset_seconds + i * cadence * 60, 100 + (i % 50)) for i in kept]
    if len(rows) < 2:
        return
    series = read_export(research_table(rows).encode()).series[0]

    assert series.quality.readings_in == len(rows)
    assert_invariants(series)


@FAST
@given(
    st.integers(min_value=13, max_value=60),
    st.integers(min_value=13, max_value=60),
    st.sampled_from(["fall back", "spring forward"]),
    st.booleans(),
)
def test_dst_shifted_series(before, after, change, newest_first):
    # Readings every 5 minutes that reach the change at 02:00 local time
    # (fall back: the clock returns to 01:00; spring forward: it jumps to 03:00).
    change_at = np.datetime64("2024-10-27T02:00" if change == "fall back" else "2024-03-31T02:00")
    jump = np.timedelta64(-60 if change == "fall back" else 60, "m")
    stamps = [change_at - np.timedelta64(5 * (before - i), "m") for i in range(before)]
    stamps += [change_at + jump + np.timedelta64(5 * i, "m") for i in range(after)]
    rows = [("S1", str(t).replace("T", " "), 100 + i) for i, t in enumerate(stamps)]
    if newest_first:
        rows = rows[::-1]
    text = "id,time,gl\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows)
    series = read_export(text.encode()).series[0]
    report = series.quality

    assert report.dst_changes == 1
    assert report.readings_used == before + after
    assert report.segments == 1
    assert series.glucose.tolist() == list(range(100, 100 + before + after))
    assert_invariants(series)


@FAST
@given(st.integers(min_value=20, max_value=120), st.floats(min_value=0.3, max_value=1.0))
def test_truncated_files_still_balance(count, keep_fraction):
    rows = [(i * 300, 100 + i % 30) for i in range(count)]
    text = research_table(rows)
    cut = text[: int(len(text) * keep_fraction)]
    series = read_export(cut.encode()).series[0]
    complete_lines = cut.count("\n") - 1

    assert series.quality.readings_in in (complete_lines, complete_lines + 1)
    assert_invariants(series)
