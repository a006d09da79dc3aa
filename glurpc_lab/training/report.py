"""Markdown tables of an evaluation result written by ``glurpc_lab.training.evaluate``."""

from __future__ import annotations

from pathlib import Path

SPLITS = (("id", "ID"), ("ood", "OOD"))


def _pair(scores: dict | None) -> str:
    if not scores:
        return "n/a"
    return f"{scores['median_mse']:.2f} / {scores['median_mae']:.2f}"


def _windows(value) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _mean_count(value) -> str:
    # Counts averaged over seeds keep one decimal, so that one failure in one seed still shows.
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def render_arima_table(results: dict) -> list[str]:
    """Return the lines of the ARIMA table, or none when the run skipped ARIMA."""
    if not results.get("arima_windows"):
        return []
    lines = [
        "",
        "## ARIMA on a subsample of the model's windows (median MSE / median MAE, mean over data seeds)",
        "",
        f"At most {results['arima_windows']:,} windows per data set, split and seed, drawn at random among the "
        "model's windows with at least M points of history. Every column scores the same windows: those drawn, "
        "less those where ARIMA failed.",
        "",
        "| data set | split | windows (scored) | windows (drawn) | ARIMA failures | ARIMA | model | persistence "
        "| linear regression | ARIMA seconds per window |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset in results["datasets"].values():
        for key, label in SPLITS:
            arima = (dataset["mean"].get(key) or {}).get("arima_windows")
            if not arima:
                continue
            seconds = arima.get("seconds_per_window")
            lines.append(
                f"| {dataset['title']} | {label} | {_mean_count((arima.get('arima') or {}).get('windows'))} "
                f"| {_mean_count(arima.get('drawn'))} | {_mean_count(arima.get('failed'))} | {_pair(arima.get('arima'))} "
                f"| {_pair(arima.get('model'))} | {_pair(arima.get('persistence'))} | {_pair(arima.get('linear_regression'))} "
                f"| {'n/a' if seconds is None else f'{seconds:.2f}'} |"
            )
    return lines


def render_markdown(results: dict, argv_text: str = "") -> str:
    """Return the evaluation page: protocol, accuracy table, probabilistic scores and coverage."""
    seeds = " and ".join(str(seed) for seed in results["data_seeds"])
    threads = f" with {results['threads']} torch CPU threads" if results.get("threads") else ""
    subsampled = results["max_windows"] is not None
    lines = [
        "# Model evaluation under the GlucoBench protocol",
        "",
        f"Model `{results['model_id']}` (input length {results['input_len']} points). Data seeds {seeds}. "
        f"{results['samples']} MC-dropout samples per window (sample seed {results['sample_seed']}). "
        f"Run time {results['seconds']:.0f} s{threads}.",
        "",
        f"Command: `glurpc-lab evaluate {argv_text}`".rstrip() if argv_text else "Command: `glurpc-lab evaluate`",
        "",
        "## Protocol",
        "",
        "- Cleaning as GlucoBench does it: times are rounded to the minute, and segments are cut at gaps longer "
        "than 45 min (30 for Hall). Segments with fewer than 240 readings (192 for Colas and Hall) are dropped, "
        "and the rest are re-gridded to 5 minutes by linear interpolation.",
        "- Split as GlucoBench does it: 10% of the subjects are held out as OOD with `np.random.seed(seed)` and "
        "`np.random.choice` over the label-encoded ids. ID test comes from the last segment(s) of every other subject.",
        "- Windows: every stride-1 window of each ID-test and OOD series whose targets start at or after "
        "max(model input length, GlucoBench's Gluformer input length: 96, or 144 for Weinstock); 12 steps (1 h).",
        "- Accuracy: median over the pooled windows of a split of per-window MSE (mg/dL²) and MAE (mg/dL), "
        "then the mean over data seeds. The model's point forecast is the mean of its MC-dropout sample means.",
        "- Persistence repeats the last input value.",
        "- Linear regression is GlucoBench's: darts `LinearRegressionModel(lags=L, output_chunk_length=12)`, "
        "one least-squares regression with an intercept per step on the last L values plus the subject's "
        "label code as a static covariate, both min-max scaled over the train split, and fitted on every "
        "stride-1 window of the train split (L = 192 Broll, 12 Colas, 84 Hall and Weinstock). It scores only "
        "windows with at least L points of history, so on Broll it scores fewer windows than the others.",
        "- ARIMA follows GlucoBench's `lib/arima.py` with darts `ARIMA` (statsmodels) in place of "
        "statsforecast's AutoARIMA. Each ID-test or OOD series gets one order search on its first M points "
        "(M = GlucoBench's max_length_input: 192 Broll and Weinstock, 144 Colas and Hall), min-max scaled "
        "over the train split. The search takes d from a KPSS test at 5% (at most 2), then p and q (at most "
        "5) by a stepwise AICc search with a constant (d = 0) or drift (d = 1). Each window's forecast applies "
        "the fitted parameters to its last M points without refitting. Windows where ARIMA failed are "
        "counted and left out of every column of the ARIMA table.",
        "- Log-likelihood: mean over windows and steps of the log density (mg/dL units) of the target under "
        "the equal-weight mixture of the samples' Gaussians, including the -log k term.",
        "- Calibration error: GlucoBench's, per step the sum over p = 0, 0.1, ..., 1 of "
        "(fraction of targets at or below the p-quantile of 30 Normal draws per sample - p)², "
        "mean over the 12 steps.",
        "",
    ]
    if subsampled:
        lines += [
            f"**Windows were subsampled:** the model was scored on at most {results['max_windows']:,} windows "
            "per data set, split and seed, drawn uniformly at random (seeded by the data seed). The columns "
            "under \"same windows\" score the baselines on exactly those windows; the \"all windows\" columns "
            "score them on every window.",
            "",
        ]

    lines += [
        "## Accuracy (median MSE / median MAE, mean over data seeds)",
        "",
        "| data set | split | windows (all) | persistence, all windows | linear regression, all windows "
        "| windows (linear regression) | windows (model) | model | persistence, same windows "
        "| linear regression, same windows |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset in results["datasets"].values():
        for key, label in SPLITS:
            split = dataset["mean"].get(key) or {}
            every = split.get("all_windows") or {}
            same = split.get("model_windows") or {}
            lines.append(
                f"| {dataset['title']} | {label} | {_windows(split.get('windows'))} | {_pair(every.get('persistence'))} "
                f"| {_pair(every.get('linear_regression'))} | {_windows((every.get('linear_regression') or {}).get('windows'))} "
                f"| {_windows((same.get('model') or {}).get('windows'))} "
                f"| {_pair(same.get('model'))} | {_pair(same.get('persistence'))} | {_pair(same.get('linear_regression'))} |"
            )
    lines += render_arima_table(results)

    lines += [
        "",
        "## Uncertainty",
        "",
        "Coverage of the central 50/80/95% intervals of the mixture, minimum and maximum over the 12 steps.",
        "",
        "| data set | split | log-likelihood | calibration error | 50% coverage | 80% coverage | 95% coverage |",
        "|---|---|---|---|---|---|---|",
    ]
    for dataset in results["datasets"].values():
        for key, label in SPLITS:
            model = ((dataset["mean"].get(key) or {}).get("model_windows") or {}).get("model")
            if not model:
                continue
            cells = []
            for level in ("50", "80", "95"):
                steps = model["coverage_per_step"][level]
                cells.append(f"{min(steps):.3f} - {max(steps):.3f}")
            lines.append(
                f"| {dataset['title']} | {label} | {model['mean_log_likelihood']:.3f} | {model['calibration_error']:.3f} "
                f"| {' | '.join(cells)} |"
            )

    lines += ["", "80% interval coverage per step (5 to 60 minutes ahead):", "",
              "| data set | split | " + " | ".join(str(5 * step) for step in range(1, 13)) + " |",
              "|---|---|" + "---|" * 12]
    for dataset in results["datasets"].values():
        for key, label in SPLITS:
            model = ((dataset["mean"].get(key) or {}).get("model_windows") or {}).get("model")
            if model:
                steps = model["coverage_per_step"]["80"]
                lines.append(f"| {dataset['title']} | {label} | " + " | ".join(f"{value:.2f}" for value in steps) + " |")
    lines += ["", "The full per-seed numbers are in the JSON file written by the same command.", ""]
    return "\n".join(lines)


def write_markdown(path: Path, results: dict, argv_text: str = "") -> Path:
    """Write ``render_markdown(results)`` to ``path`` and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown(results, argv_text), encoding="utf-8")
    return path
