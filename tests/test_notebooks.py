"""Stored notebooks: clean, parameterised, and the report notebook run end to end with papermill."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import papermill
import pytest
from bs4 import BeautifulSoup

from glurpc_lab.report.html import NOTICE

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
EXPORT = REPO.parent / "shared" / "corpora" / "nightscout_entries.csv"


@pytest.mark.parametrize("name", ["forecast_report.ipynb", "explore.ipynb"])
def test_stored_notebook_has_no_outputs(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)

    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: a code cell has stored outputs"
            assert cell.execution_count is None, f"{name}: a code cell has an execution count"


def test_report_notebook_parameters():
    parameters = papermill.inspect_notebook(str(NOTEBOOKS / "forecast_report.ipynb"))

    assert {"input_path", "output_html", "n_samples", "seed", "model"} <= set(parameters)
    assert parameters["output_html"]["default"] == '"report.html"'
    assert parameters["n_samples"]["default"] == "10"
    assert parameters["seed"]["default"] == "0"
    assert parameters["model"]["default"] == '"bundled"'


def test_explore_notebook_shows_explorer():
    notebook = nbformat.read(NOTEBOOKS / "explore.ipynb", as_version=4)
    source = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")

    assert "ForecastExplorer()" in source
    assert "ForecastExplorer.from_path(" in source


def test_report_notebook_without_input_fails(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError, match="input_path is empty"):
        papermill.execute_notebook(
            str(NOTEBOOKS / "forecast_report.ipynb"),
            str(tmp_path / "out.ipynb"),
            parameters={"output_html": str(tmp_path / "report.html")},
            kernel_name="python3",
            progress_bar=False,
        )
    assert not (tmp_path / "report.html").exists()


def test_report_notebook_writes_report(tmp_path):
    if not EXPORT.is_file():
        pytest.skip(f"corpus export not found at {EXPORT}: the shared corpora folder is absent")
    output_html = tmp_path / "report.html"

    started = time.perf_counter()
    executed = papermill.execute_notebook(
        str(NOTEBOOKS / "forecast_report.ipynb"),
        str(tmp_path / "out.ipynb"),
        parameters={
            "input_path": str(EXPORT),
            "output_html": str(output_html),
            "n_samples": 3,
            "seed": 7,
            "cache_dir": str(tmp_path / "store"),
        },
        kernel_name="python3",
        progress_bar=False,
        cwd=str(tmp_path),
    )
    elapsed = time.perf_counter() - started

    assert executed.metadata.papermill.parameters["seed"] == 7
    outputs = [output for cell in executed.cells if cell.cell_type == "code" for output in cell.outputs]
    assert any("application/vnd.plotly.v1+json" in output.get("data", {}) for output in outputs)
    assert any("text/html" in output.get("data", {}) for output in outputs)

    soup = BeautifulSoup(output_html.read_text(encoding="utf-8"), "html.parser")
    assert soup.find(id="notice").get_text(strip=True) == NOTICE
    meta = {td["data-meta"]: td.get_text(strip=True) for td in soup.find_all("td", attrs={"data-meta": True})}
    assert meta["Seed"] == "7"
    assert meta["MC-dropout samples"] == "3"
    assert len(soup.find("table", class_="next-hour").find("tbody").find_all("tr")) == 12
    assert EXPORT.name not in output_html.read_text(encoding="utf-8")
    print(f"report notebook ran in {elapsed:.1f} s")


@pytest.mark.slow
def test_explore_notebook_runs(tmp_path, monkeypatch):
    if not EXPORT.is_file():
        pytest.skip(f"corpus export not found at {EXPORT}: the shared corpora folder is absent")
    # The notebook uses the default client: the bundled model, 10 samples and
    # a store under the home folder. It took 57-69 s on 2 shared CPU cores.
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    executed = papermill.execute_notebook(
        str(NOTEBOOKS / "explore.ipynb"),
        str(tmp_path / "out.ipynb"),
        parameters={"input_path": str(EXPORT)},
        kernel_name="python3",
        progress_bar=False,
        cwd=str(tmp_path),
    )

    views = [
        output
        for cell in executed.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "application/vnd.jupyter.widget-view+json" in output.get("data", {})
    ]
    assert len(views) == 2
