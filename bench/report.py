"""Compare a benchmark record with the project's targets and render it as Markdown."""

from __future__ import annotations


REPRODUCE = """
## Reproduce

```bash
.venv/bin/python bench/run.py                 # full suite: docs/benchmarks.json and this page
.venv/bin/python bench/run.py --quick --out out/bench/quick.json   # every section at a tiny size, for CI
.venv/bin/python bench/run.py --only rest     # one section (matmul, inference, first_forecast, cache, rest, ingestion, gpu)
.venv/bin/python bench/run.py --render docs/benchmarks.json   # rewrite this page from the JSON
```

The predecessor runs in a separate environment: torch 2.13.0 (CPU) and `glucosedao-glucobench==0.4.1`
installed with `--no-deps`, plus `six` and `tqdm`, which its collate function and `predict` import.
Only training and data preparation use `optuna`, `darts`, `torch.utils.tensorboard` and
`glucobench.utils.darts_dataset`, so `bench/predecessor_predict.py` puts empty stand-in modules in
their place while it imports `Gluformer`. It feeds `predict` a plain torch `Dataset` that yields
the same 4-tuple per window as the package's `SamplingDatasetInferenceDual`. Point
`--predecessor-python` (or `GLURPC_BENCH_PREDECESSOR_PYTHON`) at that environment's interpreter;
without it the comparison is skipped with a note. Both sides use random weights of the same
architecture (the parameter counts are recorded) and the same torch thread count.

All inputs are synthetic `id,time,gl` exports (a mean-reverting random walk on a 5-minute grid),
so no personal data is involved. Timings on a machine shared with other processes are upper
bounds; the load averages above show how busy it was.
"""


def _get(record: dict, *path):
    """Return ``record[path[0]][path[1]]...``, or None when a step is missing or a section failed."""
    value = record
    for step in path:
        if not isinstance(value, dict) or step not in value:
            return None
        value = value[step]
    return value


def targets(record: dict) -> list[dict]:
    """Return one row per target: what, threshold, measured value, unit and whether it is met.

    ``met`` is None when the value was not measured (a skipped or failed section).
    """
    def row(name: str, measured, threshold: float, unit: str, higher_is_better: bool) -> dict:
        if measured is None:
            met = None
        else:
            met = measured >= threshold if higher_is_better else measured < threshold
        comparison = ">=" if higher_is_better else "<"
        return {"target": name, "threshold": f"{comparison} {threshold:g} {unit}".strip(), "measured": measured, "unit": unit, "met": met}

    rows = []
    for preset in ("published", "bundled"):
        rows.append(row(
            f"Inference speed-up over the predecessor, {preset} architecture (forecast_series vs predict)",
            _get(record, "inference", preset, "speedup_forecast_series"), 2.5, "x", True,
        ))
    rows.append(row(
        "Fraction of the fp32 matmul rate reached, published architecture",
        _get(record, "inference", "published", "fraction_of_matmul_rate"), 0.5, "", True,
    ))
    warm_ms = {
        preset: _get(record, "first_forecast", preset, "warm", "total_s", "median_s") for preset in ("published", "bundled")
    }
    rows.append(row(
        "First forecast, warm, published architecture (median)",
        None if warm_ms["published"] is None else warm_ms["published"] * 1e3, 300, "ms", False,
    ))
    rows.append(row(
        "First forecast, warm, bundled model (median)",
        None if warm_ms["bundled"] is None else warm_ms["bundled"] * 1e3, 50, "ms", False,
    ))
    for label, key in (("MemoryCache.get", "memory_tier_get_s"), ("through Engine.forecast", "engine_memory_hit_s")):
        value = _get(record, "cache", key, "median_s")
        rows.append(row(f"Memory-tier hit, {label} (median)", None if value is None else value * 1e3, 1, "ms", False))
    for label, key in (("Store.read_forecast", "zarr_tier_read_s"), ("through Engine.forecast", "engine_zarr_hit_s")):
        value = _get(record, "cache", key, "median_s")
        rows.append(row(f"Zarr-tier read of one dataset's forecasts, {label} (median)", None if value is None else value * 1e3, 20, "ms", False))
    rest = _get(record, "rest", "cached", "8", "latency_s", "median_s")
    rows.append(row("Forecast endpoint at 8 concurrent clients (median)", None if rest is None else rest * 1e3, 30, "ms", False))
    gpu = _get(record, "gpu", "one_device_all_windows_s")
    rows.append(row("One GPU: every window of a 14-day export, 10 samples", gpu, 1, "s", False))
    return rows


def _format(value, digits: int = 3) -> str:
    if value is None:
        return "not measured"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _ms(seconds) -> str:
    return "not measured" if seconds is None else f"{seconds * 1e3:.3g} ms"


def _section_note(record: dict, name: str) -> str | None:
    section = record.get(name)
    if isinstance(section, dict) and "error" in section:
        return f"**{name} failed:** {section['error']}"
    if isinstance(section, dict) and "skipped" in section:
        return f"**{name} skipped:** {section['skipped']}"
    return None


def render_markdown(record: dict) -> str:
    """Render the record as a Markdown page: run description, targets, then each section's figures."""
    run = record["record"]
    machine = run["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `bench/run.py`; rerun it to replace this page and the JSON beside it.",
        "",
        "## Run",
        "",
        f"- Command: `{run['command']}` ({run['mode']} mode)",
        f"- Date: {run['started']} to {run['finished']} (UTC), {run['duration_s']:.0f} s",
        f"- Commit: {run['git']['commit']}{' with uncommitted changes' if run['git']['dirty'] else ''}",
        f"- Machine: {machine['cpu_model']}, {machine['cores_available']} cores available "
        f"({machine['logical_cores']} logical), {_format((machine['memory_bytes'] or 0) / 2**30)} GiB RAM, "
        f"flags {' '.join(machine['cpu_flags']) or 'unknown'}",
        f"- Software: Python {machine['python']}, torch {machine['torch']}, "
        f"{machine['torch_threads']} torch threads ({machine['torch_interop_threads']} inter-op)",
        f"- GPUs: {', '.join(machine['cuda_devices']) or 'none'}",
        f"- Load average (1, 5, 15 min): {run['load_average_start']} at the start, {run['load_average_end']} at the end",
    ]
    if run.get("note"):
        lines.append(f"- Note: {run['note']}")
    lines += ["", "## Targets", "", "| target | threshold | measured | met |", "| --- | --- | --- | --- |"]
    for item in record["targets"]:
        met = {True: "met", False: "not met", None: "not measured"}[item["met"]]
        measured = _format(item["measured"]) + (f" {item['unit']}" if item["measured"] is not None and item["unit"] else "")
        lines.append(f"| {item['target']} | {item['threshold']} | {measured} | {met} |")

    lines += ["", "## Inference throughput", ""]
    lines += [
        "Window-samples per second (windows x MC samples / wall time), fastest of the repeats.",
        "`forecast_series` is glurpc-lab's whole path from a series to quantiles; \"model only\" is",
        "`mc_dropout_samples` on prepared inputs; the predecessor is `Gluformer.predict` of",
        "glucosedao-glucobench on the same windows, in its own interpreter, with random weights.",
        "",
        "| model | params | windows x samples | forecast_series | model only | predecessor | speed-up (forecast_series / model only) | forward GFLOP per row | model-only GFLOP/s | fraction of matmul rate |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for preset, entry in (record.get("inference") or {}).items():
        if not isinstance(entry, dict) or "windows" not in entry:
            lines.append(f"| {preset} | {_format(entry)} |")
            continue
        predecessor = entry.get("predecessor", {})
        theirs = predecessor.get("window_samples_per_s")
        speedup = (
            f"{entry['speedup_forecast_series']:.2f} / {entry['speedup_model_only']:.2f}"
            if "speedup_forecast_series" in entry else predecessor.get("skipped", "not measured")
        )
        lines.append(
            f"| {preset} ({entry['model_id']}) | {entry['parameters']:,} | {entry['windows']} x {entry['n_samples']} "
            f"| {entry['forecast_series_window_samples_per_s']:.1f}/s | {entry['model_only_window_samples_per_s']:.1f}/s "
            f"| {_format(theirs)}/s | {speedup} | {entry['forward_flops_per_row'] / 1e9:.3g} "
            f"| {entry['model_only_flops_per_s'] / 1e9:.3g} | {_format(entry.get('fraction_of_matmul_rate'))} |"
        )
    spreads = []
    for preset, entry in (record.get("inference") or {}).items():
        if isinstance(entry, dict) and "forecast_series_s" in entry:
            theirs = entry.get("predecessor", {}).get("all_seconds")
            spreads.append(
                f"{preset}: forecast_series {entry['forecast_series_s']['min_s']:.2f}-{entry['forecast_series_s']['max_s']:.2f} s, "
                f"model only {entry['model_only_s']['min_s']:.2f}-{entry['model_only_s']['max_s']:.2f} s"
                + (f", predecessor {min(theirs):.2f}-{max(theirs):.2f} s" if theirs else "")
            )
    if spreads:
        lines += ["", "Fastest to slowest timed call: " + "; ".join(spreads) + "."]
    batches = []
    for preset, entry in (record.get("inference") or {}).items():
        if isinstance(entry, dict) and "batch_size_windows" in entry:
            theirs = entry.get("predecessor", {}).get("batch_size")
            batches.append(
                f"{preset}: glurpc-lab {entry['batch_size_windows']}"
                + (f", predecessor {theirs} (its service's setting)" if theirs else "")
            )
    if batches:
        lines += ["", "Windows per forward pass (each window runs as n_samples rows): " + "; ".join(batches) + "."]

    matmul = record.get("matmul") or {}
    if "best_flops_per_s" in matmul:
        measured = []
        for when in ("before_inference", "after_inference"):
            entry = matmul.get(when, {})
            if "sizes" in entry:
                sizes = ", ".join(f"{n}: {v['flops_per_s'] / 1e9:.1f}" for n, v in entry["sizes"].items())
                measured.append(f"{when.replace('_', ' ')} {sizes}")
        lines += [
            "",
            f"fp32 matmul rate: {matmul['best_flops_per_s'] / 1e9:.1f} GFLOP/s, the higher of two measurements "
            f"(GFLOP/s by matrix size: {'; '.join(measured)}).",
            "The fraction divides the model-only FLOP rate, counting matmuls, convolutions and attention products",
            "(torch.utils.flop_counter), by it.",
        ]

    lines += ["", "## First forecast (latest window)", "",
              "Cold: a new interpreter imports glurpc_lab, loads the model, parses and stores the export and forecasts.",
              "Warm: the engine's model is loaded; each upload is a new export, so nothing is cached.", "",
              "| model | export | cold total | cold: import / load / parse+store / forecast | warm median (parse+store / forecast) | warm p99 |",
              "| --- | --- | --- | --- | --- | --- |"]
    for preset, entry in (record.get("first_forecast") or {}).items():
        if not isinstance(entry, dict) or "cold" not in entry:
            lines.append(f"| {preset} | {_format(entry)} |")
            continue
        cold, warm = entry["cold"], entry["warm"]
        lines.append(
            f"| {preset} | {entry['days']:g} days | {cold['total_s']:.2f} s "
            f"| {cold['import_s']:.2f} / {cold['load_model_s']:.2f} / {cold['process_s']:.3f} / {cold['forecast_s']:.3f} s "
            f"| {_ms(warm['total_s']['median_s'])} ({_ms(warm['process_s']['median_s'])} / {_ms(warm['forecast_s']['median_s'])}) "
            f"| {_ms(warm['total_s']['p99_s'])} |"
        )

    step_lines = []
    for preset, entry in (record.get("first_forecast") or {}).items():
        steps = entry.get("warm", {}).get("steps") if isinstance(entry, dict) else None
        if steps:
            step_lines.append(
                f"{preset}: parse {_ms(steps['parse_s']['median_s'])}, store the dataset {_ms(steps['store_dataset_s']['median_s'])}, "
                f"read the series {_ms(steps['read_series_s']['median_s'])}, forecast_series on a worker thread "
                f"{_ms(steps['forecast_series_s']['median_s'])}, store the forecast {_ms(steps['store_forecast_s']['median_s'])}"
            )
    if step_lines:
        lines += ["", "Warm steps timed one by one (medians): " + "; ".join(step_lines) + "."]

    cache = record.get("cache") or {}
    lines += ["", "## Cache", ""]
    if "windows" in cache:
        lines += [
            f"Forecasts of every window ({cache['windows']} windows x {cache['n_samples']} samples) of a {cache['days']:g}-day export,",
            f"computed in {cache['compute_all_windows_s']:.1f} s by a tiny random-weights model (the cached arrays have the same shapes for any model).",
            "",
            "| read | median | p99 |",
            "| --- | --- | --- |",
        ]
        for label, key in (
            ("memory tier, MemoryCache.get", "memory_tier_get_s"),
            ("memory tier hit through Engine.forecast", "engine_memory_hit_s"),
            ("zarr tier, Store.read_forecast", "zarr_tier_read_s"),
            ("zarr tier hit through Engine.forecast (memory tier off)", "engine_zarr_hit_s"),
        ):
            lines.append(f"| {label} | {_ms(cache[key]['median_s'])} | {_ms(cache[key]['p99_s'])} |")
        lines += [
            "",
            f"On disk: dataset {cache['dataset_disk_bytes']:,} bytes (raw arrays {cache['dataset_raw_bytes']:,}), "
            f"forecasts {cache['forecast_disk_bytes']:,} bytes (raw arrays {cache['forecast_raw_bytes']:,}); "
            f"disk / raw = {cache['disk_to_raw_ratio']:.2f}.",
        ]
    memory = record.get("model_memory") or {}
    if memory:
        lines += ["", "| model copy | parameters + buffers | resident memory added per copy (first, next) |", "| --- | --- | --- |"]
        for preset, entry in memory.items():
            if not isinstance(entry, dict) or "copies" not in entry:
                lines.append(f"| {preset} | {_format(entry)} |")
                continue
            increases = ", ".join(f"{value / 2**20:.1f} MiB" for value in entry["rss_increase_per_copy_bytes"])
            lines.append(f"| {preset} ({entry['model_id']}) | {(entry['parameter_bytes'] + entry['buffer_bytes']) / 2**20:.1f} MiB | {increases} |")

    rest = record.get("rest") or {}
    lines += ["", "## REST forecast endpoint", ""]
    if "cached" in rest:
        lines += [
            f"`{rest['endpoint']}` on a real Jupyter server on 127.0.0.1 with the {rest['model_source']} model; "
            f"the latest window of a {rest['days']:g}-day export is computed once "
            f"({rest['first_uncached_request_s'] * 1e3:.0f} ms), then every request is a cache hit.",
            "",
            "| clients | requests | median | p99 | 200 responses/s | statuses |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for clients, entry in rest["cached"].items():
            lines.append(
                f"| {clients} | {entry['requests']} | {_ms(entry['latency_s']['median_s'])} | {_ms(entry['latency_s']['p99_s'])} "
                f"| {_format(entry['ok_per_s'])} | {entry['statuses']} |"
            )
        burst = rest["burst_uncached"]
        lines += [
            "",
            f"Load shedding: {burst['requests']} uncached latest-window requests at once, with at most "
            f"{burst['max_queued_interactive']} jobs queued behind the running one: statuses {burst['statuses']}, "
            f"{_format(burst['ok_per_s'])} forecasts per second got 200 while the rest got 503.",
        ]

    ingestion = record.get("ingestion") or {}
    lines += ["", "## Ingestion", ""]
    if "readings" in ingestion:
        lines.append(
            f"`read_export` on a {ingestion['file_bytes'] / 2**20:.1f} MiB {ingestion['format']} with "
            f"{ingestion['readings']:,} readings in {ingestion['subjects']} series: "
            f"{ingestion['seconds_per_million_readings']:.2f} s per million readings."
        )

    lines += ["", "## GPU", ""]
    gpu = record.get("gpu") or {}
    if "skipped" in gpu:
        lines.append(f"Not measured: {gpu['skipped']}.")
    if "one_device_all_windows_s" in gpu:
        lines.append(
            f"{', '.join(gpu['devices'])}: every window ({gpu['windows']}) of a {gpu['days']:g}-day export with "
            f"{gpu['n_samples']} samples in {gpu['one_device_all_windows_s']:.2f} s on one device; all devices together "
            f"{gpu['all_devices_window_samples_per_s']:.0f} window-samples/s (scaling efficiency {gpu['scaling_efficiency']:.2f})."
        )

    notes = [note for note in (_section_note(record, name) for name in record if name not in ("record", "targets", "gpu")) if note]
    for preset, entry in (record.get("inference") or {}).items():
        if isinstance(entry, dict) and "skipped" in entry.get("predecessor", {}):
            notes.append(f"**predecessor ({preset}) skipped:** {entry['predecessor']['skipped']}")
    if notes:
        lines += ["", "## Skipped or failed", ""] + [f"- {note}" for note in notes]
    lines += ["", REPRODUCE.strip()]
    return "\n".join(lines) + "\n"
