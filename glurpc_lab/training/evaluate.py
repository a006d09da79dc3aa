"""Evaluate a Gluformer and three baselines under the GlucoBench protocol.

Usage: ``glurpc-lab evaluate [--model bundled] [--datasets iglu,colas,hall,weinstock]
[--seeds 1,2] [--samples 10] [--max-windows N] [--arima-windows N]``. Writes a JSON file
and a Markdown table.

For every data set and data seed the series are cleaned and split as GlucoBench does
(see ``glurpc_lab.training.glucobench``). The scored windows are every stride-1 window
of each ID-test and OOD series whose targets start at or after
``max(model input length, GlucoBench's Gluformer input length)``, 12 steps ahead. The
model, persistence and linear regression (darts, lags + subject code, fitted on the
train split) are scored on the same windows. ARIMA (darts, one automatic order search
per series) is scored on a seeded subsample of the model's windows, together with the
model and the other baselines on exactly those windows. Medians are taken over the
pooled windows of a split and then averaged over the data seeds.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from glurpc_lab.forecast.calibration import component_stds
from glurpc_lab.forecast.covariates import calendar_covariates
from glurpc_lab.forecast.predictive import mixture_quantiles
from glurpc_lab.forecast.sampling import mc_dropout_samples
from glurpc_lab.forecast.scaling import fit_scaler
from glurpc_lab.forecast.windows import model_inputs
from glurpc_lab.training.arima import ArimaBaseline
from glurpc_lab.training.baselines import LinearRegressionBaseline, WindowSet, build_windows, persistence_forecast
from glurpc_lab.training.glucobench import HORIZON, PROTOCOLS, ProtocolSpec, load_protocol_segments, split_protocol
from glurpc_lab.training.options import add_data_options
from glurpc_lab.training.report import write_markdown
from glurpc_lab.training.scoring import (
    INTERVAL_LEVELS,
    calibration_error,
    interval_coverage,
    median_errors,
    mixture_log_likelihood,
)

logger = logging.getLogger(__name__)

MODEL_CHUNK_WINDOWS = 2048
"""Windows whose inputs are built and sampled at once (bounds memory)."""

DEFAULT_ARIMA_WINDOWS = 50
"""ARIMA windows per data set, split and seed. One order search took about 0.5 s and one
window 0.1 to 0.6 s on a shared 2-core machine, so the 16 groups of a full run add
roughly 2 to 8 minutes."""

LINEAR_REGRESSION_DEFINITION = (
    "darts LinearRegressionModel(lags=L, output_chunk_length=12): one least-squares regression with an "
    "intercept per step on the last L values (min-max scaled over the train split) and the subject's label "
    "code (min-max scaled over the train subjects, as a darts static covariate), fitted on every stride-1 "
    "window of the train split"
)
ARIMA_DEFINITION = (
    "darts ARIMA (statsmodels), one order search per ID-test or OOD series on its first max_length_input "
    "points: d by KPSS at 5% (at most 2), p and q by a stepwise AICc search (at most 5) with constant or "
    "drift; each window applies the fitted parameters to its last max_length_input points without refitting"
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="glurpc-lab evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="weights: 'bundled' (default), a local weights file, or hf:OWNER/REPO/FILE[@REVISION]")
    add_data_options(parser)
    parser.add_argument("--seeds", default="1,2", help="comma-separated data seeds of the subject split (default 1,2, as GlucoBench)")
    parser.add_argument("--samples", type=int, default=10, help="MC-dropout samples per window (default 10)")
    parser.add_argument("--sample-seed", type=int, default=0, help="seed of the MC-dropout masks and calibration draws (default 0)")
    parser.add_argument("--max-windows", type=int, default=None,
                        help="score the model on at most N windows per data set, split and seed, drawn at random "
                             "(default all); baselines are also scored on all windows")
    parser.add_argument("--arima-windows", type=int, default=DEFAULT_ARIMA_WINDOWS,
                        help="score ARIMA on at most N of the model's windows per data set, split and seed, drawn "
                             "at random among those with GlucoBench's max_length_input points of history "
                             f"(default {DEFAULT_ARIMA_WINDOWS}; 0 skips ARIMA)")
    parser.add_argument("--batch-size", type=int, default=16, help="windows per forward pass (default 16)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--json", type=Path, default=Path("out/evaluation/model-evaluation.json"), help="output JSON path (default %(default)s)")
    parser.add_argument("--markdown", type=Path, default=Path("out/evaluation/model-evaluation.md"), help="output Markdown path (default %(default)s)")
    args = parser.parse_args(argv)

    try:
        args.seed_list = [int(seed) for seed in args.seeds.split(",") if seed.strip()]
    except ValueError:
        parser.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    if args.samples < 1:
        parser.error(f"--samples must be at least 1, got {args.samples}")
    if args.max_windows is not None and args.max_windows < 1:
        parser.error(f"--max-windows must be at least 1, got {args.max_windows}")
    if args.arima_windows < 0:
        parser.error(f"--arima-windows must be 0 or more, got {args.arima_windows}")
    return args


def window_scalers(config, windows: WindowSet) -> list[tuple[np.ndarray, object]]:
    """Group the windows by the scaler that the model's scaling policy gives them.

    Returns ``(window indices, Scaler)`` pairs. Under fixed scaling that is one group.
    Under per-series scaling each ID-test or OOD series gets the ranges of its own
    readings and grid times, as ``forecast_series`` fits them on a whole upload.
    """
    if config.scaling.kind == "fixed":
        return [(np.arange(len(windows)), fit_scaler(config.scaling, np.zeros(1), np.ones(1, bool), np.zeros((1, 6))))]

    groups = []
    window_series = windows.series_index[windows.target_start]
    for index in np.unique(window_series):
        points = np.flatnonzero(windows.series_index == index)
        times = (windows.minutes[points] * 60).astype("datetime64[s]")
        scaler = fit_scaler(config.scaling, windows.glucose[points], windows.observed[points], calendar_covariates(times))
        groups.append((np.flatnonzero(window_series == index), scaler))
    return groups


def model_mixture(model, windows: WindowSet, *, n_samples: int, seed: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample the model's predictive mixture on each window.

    Returns component means and standard deviations, ``(W, 12, k)``, mg/dL.
    Each window reads the last ``len_seq`` points before its targets.
    """
    config = model.config
    means = np.zeros((len(windows), HORIZON, n_samples))
    stds = np.ones((len(windows), HORIZON, n_samples))
    for group, scaler in window_scalers(config, windows):
        for first in range(0, group.size, MODEL_CHUNK_WINDOWS):
            chosen = group[first : first + MODEL_CHUNK_WINDOWS]
            chunk = windows.subset(chosen)
            past_index = chunk.target_start[:, None] + np.arange(-config.len_seq, 0)
            future_index = chunk.target_start[:, None] + np.arange(HORIZON)
            past_times = (chunk.minutes[past_index] * 60).astype("datetime64[s]")
            future_times = (chunk.minutes[future_index] * 60).astype("datetime64[s]")

            inputs = model_inputs(
                scaler.scale_glucose(chunk.glucose[past_index]),
                scaler.scale_covariates(calendar_covariates(past_times)),
                scaler.scale_covariates(calendar_covariates(future_times)),
                config,
            )
            # The key of a window is its target start, unique within one window set.
            pred, logvar = mc_dropout_samples(
                model.module, inputs, chunk.target_start, n_samples=n_samples, seed=seed, batch_size=batch_size
            )
            means[chosen] = scaler.unscale_glucose(pred)
            stds[chosen] = component_stds(logvar, scaler.glucose_span, config, chunk.glucose[past_index])
    return means, stds


def score_model(truth: np.ndarray, means: np.ndarray, stds: np.ndarray, *, seed: int) -> dict:
    """Score the mixture forecasts: errors of the mixture mean, likelihood, calibration, coverage."""
    scores = median_errors(means.mean(axis=-1), truth)
    log_likelihood = mixture_log_likelihood(truth, means, stds)
    scores["mean_log_likelihood"] = float(log_likelihood.mean())
    calibration = calibration_error(truth, means, stds, seed=seed)
    scores["calibration_error"] = float(calibration.mean())
    scores["calibration_error_per_step"] = calibration.tolist()

    tails = [(1.0 - level) / 2.0 for level in INTERVAL_LEVELS]
    quantile_levels = np.array(sorted(tails + [1.0 - tail for tail in tails]))
    quantiles = mixture_quantiles(means, stds, quantile_levels)
    coverage = {}
    for level, tail in zip(INTERVAL_LEVELS, tails):
        lower = quantiles[..., int(np.argmin(np.abs(quantile_levels - tail)))]
        upper = quantiles[..., int(np.argmin(np.abs(quantile_levels - (1.0 - tail))))]
        coverage[f"{round(level * 100)}"] = interval_coverage(truth, lower, upper).tolist()
    scores["coverage_per_step"] = coverage
    return scores


def evaluate_role(
    model,
    windows: WindowSet,
    linreg: LinearRegressionBaseline,
    arima: ArimaBaseline | None,
    args: argparse.Namespace,
    seed: int,
) -> dict:
    """Score one split: baselines on all windows, then model and baselines on the model's windows.

    When ``arima`` is given, ARIMA and the others are also scored on a subsample of the
    model's windows (``arima_windows`` in the result).
    """
    result = {"windows": len(windows)}
    if len(windows) == 0:
        return result

    linreg_ok = windows.position >= linreg.lags
    all_windows = {"persistence": median_errors(persistence_forecast(windows), windows.truth())}
    if linreg_ok.any():
        scored = windows.subset(np.flatnonzero(linreg_ok))
        all_windows["linear_regression"] = median_errors(linreg.predict(scored), scored.truth())
    result["all_windows"] = all_windows

    chosen = np.arange(len(windows))
    if args.max_windows is not None and len(windows) > args.max_windows:
        chosen = np.sort(np.random.default_rng(seed).choice(len(windows), args.max_windows, replace=False))
    sampled = windows.subset(chosen)
    truth = sampled.truth()
    started = time.monotonic()
    means, stds = model_mixture(model, sampled, n_samples=args.samples, seed=args.sample_seed, batch_size=args.batch_size)

    same = {"model": score_model(truth, means, stds, seed=args.sample_seed)}
    same["model"]["seconds"] = round(time.monotonic() - started, 1)
    same["persistence"] = median_errors(persistence_forecast(sampled), truth)
    sampled_ok = sampled.position >= linreg.lags
    if sampled_ok.any():
        subset = sampled.subset(np.flatnonzero(sampled_ok))
        same["linear_regression"] = median_errors(linreg.predict(subset), subset.truth())
    result["model_windows"] = same

    if arima is not None and args.arima_windows > 0:
        result["arima_windows"] = score_arima_windows(arima, linreg, sampled, means.mean(axis=-1), args.arima_windows, seed)
    return result


def score_arima_windows(
    arima: ArimaBaseline,
    linreg: LinearRegressionBaseline,
    windows: WindowSet,
    model_point: np.ndarray,
    count: int,
    seed: int,
) -> dict:
    """Score ARIMA, the model and the other baselines on the same subsample of ``windows``.

    ``count`` windows are drawn, seeded by ``seed``, among those with ``arima.input_len``
    points of history. ``model_point`` is the model's point forecast of every window of
    ``windows``, mg/dL, ``(W, 12)``. Windows where ARIMA failed are counted in ``failed``
    and left out of every score, so all scores share one set of windows.
    """
    eligible = np.flatnonzero(windows.position >= arima.input_len)
    result = {"eligible": int(eligible.size), "drawn": 0, "failed": 0}
    if eligible.size == 0:
        return result
    # A seed offset keeps this draw independent of the model-window draw with the same data seed.
    rng = np.random.default_rng(seed + 1_000)
    drawn = np.sort(rng.choice(eligible, min(count, eligible.size), replace=False))
    subset = windows.subset(drawn)
    forecasts = arima.forecast(subset)

    result.update(
        drawn=int(drawn.size),
        failed=int(forecasts.failed.sum()),
        fits=forecasts.fits,
        failed_fits=forecasts.failed_fits,
        seconds=round(forecasts.seconds, 1),
        seconds_per_window=round(forecasts.seconds / drawn.size, 3),
    )
    forecast_rows = np.flatnonzero(~forecasts.failed)
    if forecast_rows.size == 0:
        return result

    scored = subset.subset(forecast_rows)
    truth = scored.truth()
    result["arima"] = median_errors(forecasts.forecast[forecast_rows], truth)
    result["model"] = median_errors(model_point[drawn[forecast_rows]], truth)
    result["persistence"] = median_errors(persistence_forecast(scored), truth)
    if int(scored.position.min()) >= linreg.lags:
        result["linear_regression"] = median_errors(linreg.predict(scored), truth)
    return result


def evaluate_dataset(model, spec: ProtocolSpec, args: argparse.Namespace) -> dict:
    """Evaluate one data set over all data seeds; see the module docstring."""
    by_subject = load_protocol_segments(args.data_dir, spec)
    context = max(model.config.len_seq, spec.gluformer_input_len)
    per_seed = {}
    for seed in args.seed_list:
        split = split_protocol(by_subject, spec, seed)
        started = time.monotonic()
        linreg = LinearRegressionBaseline(spec.linreg_input_len).fit(split.train)
        linreg_seconds = time.monotonic() - started
        arima = ArimaBaseline.from_train(split.train, spec.max_length_input) if args.arima_windows > 0 else None
        entry = {
            "subjects": len(by_subject),
            "ood_subjects": len(split.ood_codes),
            "series": {role: len(getattr(split, role)) for role in ("train", "val", "test", "ood")},
            "linear_regression_training_windows": linreg.training_windows,
            "linear_regression_fit_seconds": round(linreg_seconds, 1),
        }
        for role, key in (("test", "id"), ("ood", "ood")):
            windows = build_windows(getattr(split, role), context)
            entry[key] = evaluate_role(model, windows, linreg, arima, args, seed)
            model_windows = entry[key].get("model_windows", {}).get("model", {}).get("windows", 0)
            logger.info("%s seed %d %s: %d windows, %d of them scored by the model", spec.name, seed, key, len(windows), model_windows)
        per_seed[str(seed)] = entry
    return {"title": spec.title, "context": context, "linreg_lags": spec.linreg_input_len,
            "arima_input_len": spec.max_length_input, "seeds": per_seed,
            "mean": average_over_seeds(list(per_seed.values()))}


def average_over_seeds(entries: list[dict]) -> dict:
    """Average every number (and list of numbers) found at the same place in each seed's result.

    Window counts are averaged too. A place missing from some seeds is averaged over the
    seeds that have it.
    """
    def merge(values: list):
        present = [value for value in values if value is not None]
        if not present:
            return None
        first = present[0]
        if isinstance(first, dict):
            return {key: merge([value.get(key) for value in present]) for key in first}
        if isinstance(first, list):
            return np.mean(np.array(present, dtype=np.float64), axis=0).tolist()
        if isinstance(first, (int, float)):
            return float(np.mean(present))
        return first

    return {key: merge([entry.get(key) for entry in entries]) for key in ("id", "ood")}


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation from command-line arguments; return the process exit code."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    torch.set_num_threads(args.threads)

    from glurpc_lab.model import load_model

    model = load_model(args.model)
    started = time.monotonic()
    results = {
        "model_id": model.model_id,
        "model_source": args.model or "bundled",
        "input_len": model.config.len_seq,
        "data_seeds": args.seed_list,
        "samples": args.samples,
        "sample_seed": args.sample_seed,
        "max_windows": args.max_windows,
        "arima_windows": args.arima_windows,
        "threads": args.threads,
        "point_forecast": "mean of the MC-dropout sample means (the mixture mean)",
        "metric": "median over pooled windows of per-window MSE (mg/dL^2) and MAE (mg/dL), mean over data seeds",
        "baselines": {
            "persistence": "the last input value repeated for 12 steps",
            "linear_regression": LINEAR_REGRESSION_DEFINITION,
            "arima": ARIMA_DEFINITION,
        },
        "datasets": {},
    }
    for name in args.datasets:
        results["datasets"][name] = evaluate_dataset(model, PROTOCOLS[name], args)
    results["seconds"] = round(time.monotonic() - started, 1)

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    write_markdown(args.markdown, results, argv_text=" ".join(argv if argv is not None else []))
    logger.info("wrote %s and %s in %.0f s", args.json, args.markdown, results["seconds"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
