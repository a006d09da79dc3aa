"""Run the benchmark suite and write its record as JSON and Markdown.

    python bench/run.py [--quick] [--out docs/benchmarks.json]

The full suite takes several minutes on 2 CPU cores. ``--quick`` runs every
section at a tiny size to check that the harness works, so its timings mean
nothing. The Markdown page goes beside the JSON with the suffix ``.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import tempfile
import time
import traceback
from pathlib import Path

# Run as a script, Python puts bench/ itself on sys.path; the repository root is needed for ``bench.*``.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import REPO_ROOT, describe_machine, git_commit, load_average, now_iso  # noqa: E402
from bench.sizes import FULL, QUICK, Sizes  # noqa: E402

logger = logging.getLogger("bench.run")

DEFAULT_FULL_OUT = REPO_ROOT / "docs" / "benchmarks.json"
DEFAULT_QUICK_OUT = REPO_ROOT / "out" / "bench" / "quick.json"


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description="Run glurpc-lab's speed and memory benchmarks.")
    parser.add_argument("--quick", action="store_true", help="run every section at a tiny size (for CI; timings mean nothing)")
    parser.add_argument(
        "--out", type=Path, default=None,
        help=f"JSON record to write; Markdown goes beside it as .md (default {DEFAULT_FULL_OUT.relative_to(REPO_ROOT)}, "
        f"or {DEFAULT_QUICK_OUT.relative_to(REPO_ROOT)} with --quick)",
    )
    parser.add_argument(
        "--predecessor-python", default=None,
        help="interpreter of the environment with glucosedao-glucobench (default: GLURPC_BENCH_PREDECESSOR_PYTHON or /work/refenv/bin/python)",
    )
    parser.add_argument("--no-predecessor", action="store_true", help="skip the comparison with the predecessor's predict")
    parser.add_argument("--only", action="append", default=None, help="run only this section (repeatable)")
    parser.add_argument("--note", default="", help="free text stored with the run, e.g. what else was running")
    parser.add_argument(
        "--render", type=Path, default=None, metavar="JSON",
        help="run nothing; rewrite the Markdown page beside an existing JSON record",
    )
    return parser.parse_args(argv)


def run_section(name: str, function, record: dict) -> None:
    """Run one section and store its result, or its error, under ``record[name]``."""
    logger.info("running %s", name)
    started = time.perf_counter()
    try:
        record[name] = function()
    except Exception as error:  # one failing section must not lose the others' figures
        logger.error("section %s failed: %s\n%s", name, error, traceback.format_exc())
        record[name] = {"error": f"{type(error).__name__}: {error}"}
    logger.info("%s took %.1f s", name, time.perf_counter() - started)


def model_source(preset: str, folder: Path) -> str:
    """Return a model source for ``preset``: ``"bundled"``, or random weights of a config preset written to ``folder``."""
    from bench.models import random_weights

    if preset == "bundled":
        return "bundled"
    path = folder / f"random_{preset}.pth"
    if not path.is_file():
        random_weights(folder, preset)
    return str(path)


def run_suite(sizes: Sizes, *, predecessor_python: str | None, only: list[str] | None, folder: Path) -> dict:
    """Run the selected sections with ``sizes`` and return their results by section name."""
    from bench.cache import cache_benchmark, model_memory
    from bench.first_forecast import first_forecast_benchmark
    from bench.gpu import gpu_benchmark
    from bench.inference import add_matmul_fraction, inference_benchmark
    from bench.ingestion import ingestion_benchmark
    from bench.matmul import matmul_rate
    from bench.rest import rest_benchmark
    from bench.synthetic import research_export
    from glurpc_lab.ingest import read_export
    from glurpc_lab.model import load_model

    results: dict = {}

    def wanted(name: str) -> bool:
        return only is None or name in only

    def measure_matmul() -> dict:
        return matmul_rate(sizes.matmul_sizes, repeats=sizes.matmul_repeats)

    if wanted("matmul") or wanted("inference"):
        run_section("matmul_before", measure_matmul, results)

    if wanted("inference"):
        series = read_export(research_export(max(sizes.days, 2.0), seed=5)).series[0]

        def inference() -> dict:
            entries = {}
            for preset, n_windows in sizes.inference_models:
                model = load_model(model_source(preset, folder))
                entries[preset] = inference_benchmark(
                    model, series, n_windows=n_windows, n_samples=sizes.n_samples, repeats=sizes.repeats,
                    predecessor_python=predecessor_python,
                )
            return entries

        run_section("inference", inference, results)

    if wanted("matmul") or wanted("inference"):
        # Other processes slow a single measurement down, so the rate is measured on both sides
        # of the inference runs and the higher one, the less flattering yardstick, is used.
        run_section("matmul_after", measure_matmul, results)
        before, after = results.pop("matmul_before"), results.pop("matmul_after")
        rates = [entry["best_flops_per_s"] for entry in (before, after) if "best_flops_per_s" in entry]
        results["matmul"] = {"before_inference": before, "after_inference": after}
        if rates:
            results["matmul"]["best_flops_per_s"] = max(rates)
            if isinstance(results.get("inference"), dict) and "error" not in results["inference"]:
                add_matmul_fraction(results["inference"], max(rates))
        else:
            results["matmul"]["error"] = "both matmul measurements failed"

    if wanted("first_forecast"):
        run_section("first_forecast", lambda: {
            preset: first_forecast_benchmark(model_source(preset, folder), sizes.days, warm_repeats=sizes.warm_repeats)
            for preset in sizes.first_forecast_models
        }, results)

    if wanted("cache"):
        run_section("cache", lambda: cache_benchmark(sizes.days, repeats=sizes.cache_repeats), results)
        run_section("model_memory", lambda: {
            preset: model_memory(model_source(preset, folder)) for preset in sizes.memory_models
        }, results)

    if wanted("rest"):
        run_section("rest", lambda: rest_benchmark(
            "bundled",
            days=sizes.days,
            client_counts=sizes.rest_clients,
            requests_per_client=sizes.rest_requests_per_client,
            burst_datasets=sizes.rest_burst_datasets,
            max_queued_interactive=sizes.rest_max_queued,
        ), results)

    if wanted("ingestion"):
        run_section("ingestion", lambda: ingestion_benchmark(
            sizes.ingestion_readings, subjects=sizes.ingestion_subjects, repeats=sizes.ingestion_repeats
        ), results)

    if wanted("gpu"):
        run_section("gpu", lambda: gpu_benchmark(sizes.days, n_samples=sizes.n_samples), results)
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the suite, write the JSON and Markdown record, and return 1 when a section failed."""
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from bench.predecessor import DEFAULT_PYTHON
    from bench.report import render_markdown, targets

    if arguments.render is not None:
        record = json.loads(arguments.render.read_text(encoding="utf-8"))
        record["targets"] = targets(record)
        arguments.render.with_suffix(".md").write_text(render_markdown(record), encoding="utf-8")
        logger.info("wrote %s", arguments.render.with_suffix(".md"))
        return 0

    sizes = QUICK if arguments.quick else FULL
    out = arguments.out or (DEFAULT_QUICK_OUT if arguments.quick else DEFAULT_FULL_OUT)
    predecessor_python = None if arguments.no_predecessor else (arguments.predecessor_python or DEFAULT_PYTHON)

    started_at, started = now_iso(), time.perf_counter()
    load_start = load_average()
    with tempfile.TemporaryDirectory(prefix="glurpc-bench-models-") as folder:
        results = run_suite(sizes, predecessor_python=predecessor_python, only=arguments.only, folder=Path(folder))

    record = {
        "record": {
            "command": shlex.join([Path(sys.executable).name, "bench/run.py", *(sys.argv[1:] if argv is None else argv)]),
            "mode": "quick" if arguments.quick else "full",
            "started": started_at,
            "finished": now_iso(),
            "duration_s": time.perf_counter() - started,
            "git": git_commit(),
            "machine": describe_machine(),
            "load_average_start": load_start,
            "load_average_end": load_average(),
            "note": arguments.note,
        },
        **results,
    }
    record["targets"] = targets(record)

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    markdown = out.with_suffix(".md")
    markdown.write_text(render_markdown(record), encoding="utf-8")
    logger.info("wrote %s and %s", out, markdown)

    failed = [name for name, value in results.items() if isinstance(value, dict) and "error" in value]
    if failed:
        logger.error("sections failed: %s", ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
