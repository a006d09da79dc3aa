"""Time to the first forecast (latest window) of a fresh export, in a new process and in a warm engine.

Run as ``python -m bench.first_forecast MODEL_SOURCE EXPORT CACHE_DIR N_SAMPLES``
from the repository root, it is the cold-start child: it prints one JSON object
with the seconds of each step since the interpreter reached this module.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.machine import REPO_ROOT
from bench.synthetic import research_export
from bench.timing import summarize_seconds


def cold_start(model_source: str, export_path: Path, cache_dir: Path, n_samples: int, *, timeout_s: float = 600.0) -> dict:
    """Run the cold-start child in a new interpreter and return its step times and the total wall time.

    ``total_s`` runs from starting the interpreter to the child's exit, so it
    includes Python start-up, imports, loading the model, parsing, storing
    and forecasting the latest window.
    """
    command = [sys.executable, "-m", "bench.first_forecast", model_source, str(export_path), str(cache_dir), str(n_samples)]
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout_s, check=False)
    total = time.perf_counter() - started
    if completed.returncode != 0:
        last_line = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"cold-start child failed with exit code {completed.returncode}: {last_line}")
    steps = json.loads(completed.stdout.strip().splitlines()[-1])
    return {"total_s": total, **steps}


def warm_start(model_source: str, days: float, *, repeats: int, n_samples: int = 10) -> dict:
    """Time upload-to-first-forecast in an engine whose model is already loaded.

    Each repeat uploads a new export (different readings, so nothing is cached)
    and requests its latest window. One untimed upload runs first.

    Returns
    -------
    dict
        Summaries of ``process_s`` (parse and store), ``forecast_s`` (the latest
        window, stored and read back) and ``total_s``.
    """
    from glurpc_lab.engine import Engine

    process_times, forecast_times, totals = [], [], []
    with tempfile.TemporaryDirectory(prefix="glurpc-bench-warm-") as folder:
        with Engine(model_source, cache_dir=folder, n_samples=n_samples) as engine:
            engine.load_models()
            for attempt in range(repeats + 1):
                content = research_export(days, seed=1000 + attempt)
                started = time.perf_counter()
                info = engine.process(content)
                parsed = time.perf_counter()
                engine.forecast(info.handle, 0, windows="latest")
                finished = time.perf_counter()
                if attempt == 0:
                    continue
                process_times.append(parsed - started)
                forecast_times.append(finished - parsed)
                totals.append(finished - started)
        steps = warm_steps(model_source, content, repeats=repeats, n_samples=n_samples)
    return {
        "process_s": summarize_seconds(process_times),
        "forecast_s": summarize_seconds(forecast_times),
        "total_s": summarize_seconds(totals),
        "steps": steps,
    }


def warm_steps(model_source: str, content: bytes, *, repeats: int, n_samples: int) -> dict:
    """Time each step of the warm path on its own, to show where the first forecast's time goes.

    The steps are parsing the export, writing the dataset to the store, reading
    the series back, ``forecast_series`` of the latest window and writing the
    forecast to the store. The engine runs ``forecast_series`` on a scheduler
    thread, so it is timed on a separate thread here too (on CPU, torch runs
    small batches more slowly off the main thread).
    """
    from glurpc_lab.engine.store import Store
    from glurpc_lab.forecast import forecast_series
    from glurpc_lab.ingest import read_export
    from glurpc_lab.model import load_model

    model = load_model(model_source)
    times: dict[str, list[float]] = {name: [] for name in ("parse_s", "store_dataset_s", "read_series_s", "forecast_series_s", "store_forecast_s")}
    with tempfile.TemporaryDirectory(prefix="glurpc-bench-steps-") as folder:
        store = Store(folder)
        for attempt in range(repeats + 1):
            key = f"{attempt + 1:064x}"
            started = time.perf_counter()
            dataset = read_export(content)
            parsed = time.perf_counter()
            store.write_dataset(key, dataset, {})
            stored = time.perf_counter()
            series = store.read_series(key, 0)
            read = time.perf_counter()

            box: dict = {}

            def run_forecast() -> None:
                begun = time.perf_counter()
                box["forecast"] = forecast_series(model, series, n_samples=n_samples, windows="latest")
                box["seconds"] = time.perf_counter() - begun

            worker = threading.Thread(target=run_forecast)
            worker.start()
            worker.join()
            written = time.perf_counter()
            store.write_forecast(key, box["forecast"], {"windows": "latest"})
            finished = time.perf_counter()
            if attempt == 0:
                continue
            times["parse_s"].append(parsed - started)
            times["store_dataset_s"].append(stored - parsed)
            times["read_series_s"].append(read - stored)
            times["forecast_series_s"].append(box["seconds"])
            times["store_forecast_s"].append(finished - written)
    return {name: summarize_seconds(values) for name, values in times.items()}


def first_forecast_benchmark(model_source: str, days: float, *, warm_repeats: int, n_samples: int = 10) -> dict:
    """Measure the cold and warm time to the latest-window forecast of a ``days``-long export."""
    with tempfile.TemporaryDirectory(prefix="glurpc-bench-cold-") as folder:
        export_path = Path(folder) / "export.csv"
        export_path.write_bytes(research_export(days, seed=999))
        cold = cold_start(model_source, export_path, Path(folder) / "store", n_samples)
    warm = warm_start(model_source, days, repeats=warm_repeats, n_samples=n_samples)
    return {"days": days, "n_samples": n_samples, "windows": "latest", "cold": cold, "warm": warm}


def _cold_child(model_source: str, export_path: str, cache_dir: str, n_samples: int) -> dict:
    started = time.perf_counter()
    from glurpc_lab.engine import Engine

    imported = time.perf_counter()
    with Engine(model_source, cache_dir=cache_dir, n_samples=n_samples) as engine:
        engine.load_models()
        loaded = time.perf_counter()
        info = engine.process(Path(export_path).read_bytes())
        processed = time.perf_counter()
        engine.forecast(info.handle, 0, windows="latest")
        forecast = time.perf_counter()
    return {
        "import_s": imported - started,
        "load_model_s": loaded - imported,
        "process_s": processed - loaded,
        "forecast_s": forecast - processed,
    }


if __name__ == "__main__":
    print(json.dumps(_cold_child(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))))
