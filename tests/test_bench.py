"""The benchmark harness: ``bench/run.py --quick`` completes and records every section.

Timings are not checked; the quick mode runs at a size where they mean nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.predecessor import DEFAULT_PYTHON  # noqa: E402
from bench.report import targets  # noqa: E402
from bench.synthetic import READINGS_PER_DAY, research_export  # noqa: E402

SECTIONS = ("matmul", "inference", "first_forecast", "cache", "model_memory", "rest", "ingestion", "gpu")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    completed = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--out", str(out), "--note", "test run"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    return completed, out


def test_quick_run_exits_cleanly(quick_run):
    completed, _ = quick_run
    assert completed.returncode == 0, completed.stderr[-3000:]


def test_quick_run_records_every_section(quick_run):
    _, out = quick_run
    record = json.loads(out.read_text(encoding="utf-8"))
    for section in SECTIONS:
        assert section in record, f"section {section} missing"
        assert "error" not in record[section], f"section {section} failed: {record[section].get('error')}"


def test_quick_run_records_the_machine(quick_run):
    _, out = quick_run
    run = json.loads(out.read_text(encoding="utf-8"))["record"]
    assert run["mode"] == "quick"
    assert run["note"] == "test run"
    assert "--quick" in run["command"]
    assert run["machine"]["logical_cores"] >= 1
    assert run["machine"]["torch_threads"] >= 1
    assert run["git"]["commit"]
    if run["load_average_start"] is not None:
        assert len(run["load_average_start"]) == 3
        assert len(run["load_average_end"]) == 3


def test_inference_entries_are_complete(quick_run):
    _, out = quick_run
    inference = json.loads(out.read_text(encoding="utf-8"))["inference"]
    assert set(inference) == {"tiny", "bundled"}
    for preset, entry in inference.items():
        assert entry["forecast_series_window_samples_per_s"] > 0, preset
        assert entry["model_only_window_samples_per_s"] > 0, preset
        assert entry["forward_flops_per_row"] > 0, preset
        assert 0 < entry["fraction_of_matmul_rate"], preset


def test_predecessor_ran_or_says_why(quick_run):
    _, out = quick_run
    inference = json.loads(out.read_text(encoding="utf-8"))["inference"]
    for preset, entry in inference.items():
        predecessor = entry["predecessor"]
        if not Path(DEFAULT_PYTHON).is_file():
            assert "not found" in predecessor["skipped"]
            continue
        assert "skipped" not in predecessor, predecessor.get("skipped")
        # Same architecture on both sides: the parameter counts must agree.
        assert predecessor["parameters"] == entry["parameters"], preset
        assert predecessor["predictions_shape"] == [entry["windows"], 12, entry["n_samples"]]
        assert entry["speedup_forecast_series"] > 0


def test_rest_section_covers_each_client_count(quick_run):
    _, out = quick_run
    rest = json.loads(out.read_text(encoding="utf-8"))["rest"]
    assert set(rest["cached"]) == {"1", "8", "32"}
    for clients, entry in rest["cached"].items():
        assert entry["statuses"] == {"200": entry["requests"]}, clients
    burst = rest["burst_uncached"]
    # One job runs and max_queued_interactive wait; every other request is shed with 503.
    assert burst["statuses"].get("503", 0) >= 1
    assert burst["statuses"].get("200", 0) >= 1


def test_markdown_page_has_targets_table(quick_run):
    _, out = quick_run
    page = out.with_suffix(".md").read_text(encoding="utf-8")
    assert "## Targets" in page
    assert "| target | threshold | measured | met |" in page
    assert "Load average" in page


def test_targets_compare_with_thresholds():
    record = {
        "rest": {"cached": {"8": {"latency_s": {"median_s": 0.010}}}},
        "cache": {"memory_tier_get_s": {"median_s": 0.002}},
    }
    rows = {row["target"]: row for row in targets(record)}
    assert rows["Forecast endpoint at 8 concurrent clients (median)"]["met"] is True
    assert rows["Memory-tier hit, MemoryCache.get (median)"]["met"] is False
    assert rows["One GPU: every window of a 14-day export, 10 samples"]["met"] is None


def test_synthetic_export_has_requested_readings():
    content = research_export(1.0, subjects=2, seed=4)
    lines = content.decode("utf-8").strip().splitlines()
    assert lines[0] == "id,time,gl"
    assert len(lines) - 1 == 2 * READINGS_PER_DAY
    assert research_export(1.0, seed=5) != research_export(1.0, seed=6)
