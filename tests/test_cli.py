"""The glurpc-lab command line on real exports."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from glurpc_lab.cli import main

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
needs_corpora = pytest.mark.skipif(not CORPORA.is_dir(), reason=f"vendor exports not found at {CORPORA}")

STEP_LINE = re.compile(r"^\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+(\d+)\s+(\d+) - (\d+)$")


@needs_corpora
def test_forecast_prints_next_hour(tmp_path, capsys):
    report = tmp_path / "report.html"
    forecast_json = tmp_path / "forecast.json"

    status = main([
        "forecast", str(CORPORA / "Clarity_Export_synthetic.csv"),
        "--cache-dir", str(tmp_path / "store"), "--samples", "4",
        "--html", str(report), "--json", str(forecast_json),
    ])

    output = capsys.readouterr().out
    steps = [STEP_LINE.match(line) for line in output.splitlines()]
    steps = [m for m in steps if m]
    assert status == 0
    assert len(steps) == 12
    for match in steps:
        median, low, high = (int(g) for g in match.groups())
        assert low <= median <= high
    assert report.stat().st_size > 10_000
    payload = json.loads(forecast_json.read_text())
    assert len(payload["series"][0]["times"]) == 12


@needs_corpora
def test_forecast_is_reproducible_with_seed(tmp_path, capsys):
    export = str(CORPORA / "Clarity_Export_synthetic.csv")
    runs = []
    for store in ("a", "b"):
        main(["forecast", export, "--cache-dir", str(tmp_path / store), "--samples", "4", "--seed", "7"])
        runs.append(capsys.readouterr().out)

    assert runs[0] == runs[1]


def test_forecast_of_garbage_is_a_clear_error(tmp_path, capsys):
    garbage = tmp_path / "notes.csv"
    garbage.write_text("this,is\nnot,glucose\n")

    status = main(["forecast", str(garbage), "--cache-dir", str(tmp_path / "store")])

    error = capsys.readouterr().err
    assert status == 2
    assert error.startswith("error: ")
    assert "Traceback" not in error


def test_forecast_of_missing_file(tmp_path, capsys):
    status = main(["forecast", str(tmp_path / "absent.csv")])

    assert status == 2
    assert "does not exist" in capsys.readouterr().err


def test_lab_passes_options_to_jupyterlab(tmp_path):
    # An empty PATH proves the command does not rely on an activated environment.
    result = subprocess.run(
        [sys.executable, "-m", "glurpc_lab", "lab", "--version"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PATH": str(tmp_path)},
    )

    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*\n", result.stdout)


def test_version_option(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])

    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith("glurpc-lab ")


@needs_corpora
def test_forecast_in_mmol_per_litre(tmp_path, capsys):
    status = main([
        "forecast", str(CORPORA / "Clarity_Export_synthetic.csv"),
        "--cache-dir", str(tmp_path / "store"), "--samples", "4", "--units", "mmol/L",
        "--json", str(tmp_path / "forecast.json"),
    ])

    output = capsys.readouterr().out
    steps = re.findall(r"^\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+(\d+\.\d)\s+(\d+\.\d) - (\d+\.\d)$", output, flags=re.M)
    assert status == 0
    assert "80% interval (mmol/L)" in output
    assert len(steps) == 12
    for median, low, high in steps:
        assert 1.0 < float(median) < 30.0
        assert float(low) <= float(median) <= float(high)
    payload = json.loads((tmp_path / "forecast.json").read_text())
    assert payload["units"] == "mmol/L"
    assert max(max(step) for step in payload["series"][0]["quantiles"]) < 35.0


@pytest.mark.parametrize("command", ["train", "calibrate", "evaluate"])
def test_training_commands_pass_options_through(command, capsys):
    with pytest.raises(SystemExit) as stopped:
        main([command, "--help"])

    assert stopped.value.code == 0
    assert "--data-dir" in capsys.readouterr().out


def test_units_option_ignores_case(tmp_path, capsys):
    export = CORPORA / "Clarity_Export_synthetic.csv"
    if not export.is_file():
        pytest.skip(f"vendor export {export} not found")

    code = main(["forecast", str(export), "--units", "mmol/l", "--cache-dir", str(tmp_path)])

    assert code == 0
    assert "mmol/L" in capsys.readouterr().out


def test_evaluate_without_data_is_one_line(tmp_path, capsys):
    code = main(["evaluate", "--data-dir", str(tmp_path), "--datasets", "iglu", "--model", "bundled"])

    error = capsys.readouterr().err
    assert code == 2
    assert "glurpc-lab evaluate: error: data set file" in error
    assert "--data-dir" in error
    assert "Traceback" not in error


def test_forecast_with_missing_weights_is_one_line(tmp_path, capsys):
    export = CORPORA / "Clarity_Export_synthetic.csv"
    if not export.is_file():
        pytest.skip(f"vendor export {export} not found")

    code = main(["forecast", str(export), "--model", str(tmp_path / "absent.pth"), "--cache-dir", str(tmp_path)])

    assert code == 2
    assert "absent.pth not found" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "calibrate", "evaluate"])
def test_unknown_data_set_rejected(command, capsys):
    with pytest.raises(SystemExit) as stopped:
        main([command, "--datasets", "iglu,broll", "--out", "unused", "--weights", "unused.pth"])

    error = capsys.readouterr().err
    assert stopped.value.code == 2
    assert "unknown data set(s) broll" in error
    assert "iglu, colas, hall, weinstock" in error
