"""ForecastExplorer in a real JupyterLab, driven by headless Chromium through Playwright.

The test starts ``jupyter lab`` on 127.0.0.1 with a token and a temporary root
folder. It runs a notebook that loads a real export with
``ForecastExplorer.from_path``, then checks the quality panel, the SVG fan
chart, the window slider and a browser upload. Every request the page makes
to another host is aborted and fails the test.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from conftest import CORPORA, TEST_SAMPLES

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
NOTEBOOK_EXPORT = CORPORA / "nightscout_entries.csv"
UPLOAD_EXPORT = CORPORA / "libre_amer_01.csv"
INVALID_UPLOAD = CORPORA / "README.md"
SCREENSHOT = Path("/tmp/glurpc_lab_widget.png")

SERVER_START_SECONDS = 90
WIDGET_READY_MS = 120_000
UPLOAD_READY_MS = 300_000
STEP_MS = 30_000


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_notebook(path: Path, export: Path, model: Path, store: Path) -> None:
    notebook = new_notebook(
        metadata={"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}}
    )
    notebook.cells = [
        new_code_cell(
            "from glurpc_lab.client import LocalClient\n"
            "from glurpc_lab.engine import Engine\n"
            "from glurpc_lab.widgets import ForecastExplorer\n"
            f"engine = Engine(model_source={str(model)!r}, cache_dir={str(store)!r}, devices=['cpu'], "
            f"n_samples={TEST_SAMPLES})\n"
            f"explorer = ForecastExplorer.from_path({str(export)!r}, client=LocalClient(engine))\n"
            "explorer"
        )
    ]
    nbformat.write(notebook, path)


def wait_for_server(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with code {process.returncode}; log:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"jupyter lab did not answer within {SERVER_START_SECONDS} s; log:\n{log_path.read_text()[-3000:]}")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    # SIGTERM makes jupyter_server shut down its kernels before exiting.
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def lab(tmp_path_factory, tiny_model_path):
    for required in (NOTEBOOK_EXPORT, UPLOAD_EXPORT, INVALID_UPLOAD):
        if not required.is_file():
            pytest.skip(f"{required} not found: the shared corpora folder is absent")
    if not CHROMIUM.is_file():
        pytest.skip(f"Chromium not found at {CHROMIUM}: install the Debian chromium package")

    base = tmp_path_factory.mktemp("lab")
    root = base / "root"
    root.mkdir()
    write_notebook(root / "explorer.ipynb", NOTEBOOK_EXPORT, tiny_model_path, base / "store")

    port = free_port()
    token = secrets.token_hex(16)
    env = dict(os.environ)
    # Keep JupyterLab's settings, workspaces and runtime files out of the real home folder.
    env.update(
        HOME=str(base / "home"),
        JUPYTER_CONFIG_DIR=str(base / "jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(base / "jupyter-runtime"),
    )
    command = [
        str(Path(sys.executable).with_name("jupyter-lab")),
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        # The widget needs no server extension; this test covers the widget alone.
        "--ServerApp.jpserver_extensions={'glurpc_lab': False}",
        # No announcements or update checks: the server must not contact other hosts.
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    log_path = base / "lab.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for_server(f"http://127.0.0.1:{port}/api/status?token={token}", process, log_path)
        yield {"url": f"http://127.0.0.1:{port}", "token": token, "log": log_path}
    finally:
        stop_server(process)


@pytest.fixture
def page(lab):
    from playwright.sync_api import sync_playwright

    blocked: list[str] = []

    def local_only(route):
        host = urlparse(route.request.url).hostname
        if host == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        context = browser.new_context(viewport={"width": 1280, "height": 1100})
        context.route("**/*", local_only)
        page = context.new_page()
        page.set_default_timeout(STEP_MS)
        page.console_messages_seen = []
        page.on("console", lambda message: page.console_messages_seen.append(f"{message.type}: {message.text}"))
        try:
            yield page
        finally:
            context.close()
            browser.close()
    assert blocked == [], f"the page requested other hosts: {blocked[:5]}"


def wait_visible(page, selector: str, timeout_ms: int):
    """Wait for ``selector``; on timeout, save a screenshot and fail with the cell outputs and console."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    locator = page.locator(selector)
    try:
        locator.wait_for(timeout=timeout_ms)
    except PlaywrightTimeout:
        failure = SCREENSHOT.with_name("glurpc_lab_widget_failure.png")
        page.screenshot(path=str(failure), full_page=True)
        outputs = page.locator(".jp-OutputArea").all_inner_texts()
        console = "\n".join(page.console_messages_seen[-20:])
        pytest.fail(
            f"{selector} did not appear within {timeout_ms / 1000:.0f} s (screenshot {failure}).\n"
            f"Cell outputs: {outputs}\nBrowser console:\n{console}"
        )
    return locator


def run_all_cells(page) -> None:
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()


def test_explorer_in_lab(lab, page):
    page.goto(f"{lab['url']}/lab/tree/explorer.ipynb?token={lab['token']}", timeout=60_000)
    page.locator(".jp-Notebook").wait_for(timeout=60_000)
    # Running cells before the kernel session exists opens a "Select Kernel" dialog instead.
    wait_visible(page, "text=Python 3 (ipykernel) | Idle", 60_000)
    run_all_cells(page)

    widget = wait_visible(page, ".glurpc-explorer[data-status='ready']", WIDGET_READY_MS)

    # Quality panel: all six flags and the reading counts.
    assert widget.locator(".glurpc-flag").count() == 6
    assert widget.locator(".glurpc-flag[data-flag='imputation']").is_visible()
    counts = widget.locator(".glurpc-counts").inner_text()
    assert "Readings in the file" in counts
    assert "research use only" in widget.locator(".glurpc-notice").inner_text().lower()

    # The fan chart starts on the newest window, which forecasts past the last reading.
    chart = widget.locator("svg.glurpc-chart")
    slider = widget.locator("input.glurpc-slider")
    latest = slider.get_attribute("max")
    page.wait_for_function(
        "([svg, value]) => svg.getAttribute('data-window') === value",
        arg=[chart.element_handle(), latest],
        timeout=STEP_MS,
    )
    assert int(latest) > 0
    for band in ("band-95", "band-80", "band-50"):
        assert chart.locator(f"polygon.{band}").count() == 1
    assert chart.locator("polyline.median").count() == 1
    assert chart.locator("path.observed").get_attribute("d").startswith("M")
    assert chart.locator("circle.truth").count() == 0
    assert widget.locator(".glurpc-title").inner_text().startswith("Forecast past the last reading")
    latest_median = chart.locator("polyline.median").get_attribute("points")

    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # Moving the slider redraws the chart for the chosen window, a backtest with known truth.
    slider.fill("0")
    page.wait_for_function(
        "svg => svg.getAttribute('data-window') === '0'", arg=chart.element_handle(), timeout=STEP_MS
    )
    assert chart.locator("polyline.median").get_attribute("points") != latest_median
    assert widget.locator(".glurpc-title").inner_text().startswith("Backtest")
    assert chart.locator("circle.truth").count() > 0
    page.screenshot(path=str(SCREENSHOT.with_name("glurpc_lab_widget_backtest.png")), full_page=True)

    # A file that is not a CGM export shows the ingestion error.
    upload = widget.locator("input[type=file]")
    upload.set_input_files(str(INVALID_UPLOAD))
    wait_visible(page, ".glurpc-explorer[data-status='error']", STEP_MS)
    error_text = page.locator(".glurpc-explorer .glurpc-status").inner_text()
    assert error_text.strip() != ""
    # The message describes the problem without quoting the file.
    assert "samples for tests" not in error_text

    # A real export uploaded through the file input replaces the data and selects its newest window.
    errored = page.locator(".glurpc-explorer[data-status='error']")
    errored.locator("input[type=file]").set_input_files(str(UPLOAD_EXPORT))
    ready = wait_visible(page, ".glurpc-explorer[data-status='ready']", UPLOAD_READY_MS)
    uploaded_latest = ready.locator("input.glurpc-slider").get_attribute("max")
    assert uploaded_latest != latest
    page.wait_for_function(
        "([svg, value]) => svg.getAttribute('data-window') === value",
        arg=[ready.locator("svg.glurpc-chart").element_handle(), uploaded_latest],
        timeout=STEP_MS,
    )
    page.screenshot(path=str(SCREENSHOT.with_name("glurpc_lab_widget_upload.png")), full_page=True)
