"""Train a Gluformer on the shared research data sets.

Usage: ``python -m glurpc_lab.training.train --out DIR --max-minutes M [--config small]``.
A run resumes from ``DIR/checkpoint.pt`` when it exists, and writes the best
weights (``gluformer_<config>.pth``), their config JSON and ``metrics.json`` to DIR.
It then fits the interval calibration on validation windows
(``glurpc_lab.training.calibrate``) and writes them into the config JSON.

The data are the GlucoBench train and validation splits of the chosen data sets,
without the subjects and targets that ``glurpc-lab evaluate`` scores
(``glurpc_lab.training.corpus``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch

from glurpc_lab.forecast.scaling import fit_scaler
from glurpc_lab.forecast.windows import model_inputs
from glurpc_lab.model.config import GluformerConfig
from glurpc_lab.model.gluformer import Gluformer
from glurpc_lab.training.calibrate import main as calibrate_main
from glurpc_lab.training.corpus import Corpus, load_corpus
from glurpc_lab.training.options import add_data_options
from glurpc_lab.training.metrics import score_pool
from glurpc_lab.training.pool import WindowPool, build_pool

logger = logging.getLogger(__name__)


def gaussian_nll(pred: torch.Tensor, logvar: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Return the mean Gaussian negative log-likelihood per forecast step.

    This is the Gluformer mixture loss with one sample: for each window
    ``(L/2) logvar + ||y - pred||^2 / (2 exp(logvar))``, divided by the horizon L
    and averaged over windows (the constant ``(L/2) log 2 pi`` is left out).
    ``pred`` and ``target`` are ``[B, L]``, ``logvar`` is ``[B, 1, 1]``.
    """
    horizon = pred.shape[1]
    logvar = logvar.reshape(-1)
    squared = ((target - pred) ** 2).sum(dim=1)
    per_window = 0.5 * horizon * logvar + squared / (2.0 * torch.exp(logvar))
    return (per_window / horizon).mean()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="glurpc-lab train", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="output folder for checkpoint, weights, config and metrics")
    parser.add_argument("--max-minutes", type=float, default=10.0, help="wall-clock minutes of training in this run (default 10)")
    parser.add_argument("--config", default="small", help="config preset: small, tiny or published (default small)")
    add_data_options(parser)
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many optimiser steps in total")
    parser.add_argument("--batch-size", type=int, default=64, help="windows per optimiser step (default 64)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialisation and batch order (default 0)")
    parser.add_argument("--checkpoint-minutes", type=float, default=2.0, help="minutes between validation + checkpoint (default 2)")
    parser.add_argument("--val-stride", type=int, default=12, help="score every N-th validation window at checkpoints (default 12)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--no-calibrate", dest="calibrate", action="store_false",
                        help="skip fitting the interval calibration on validation windows after training")
    return parser.parse_args(argv)


def load_corpora(args: argparse.Namespace, input_len: int) -> list[Corpus]:
    try:
        return load_corpus(args.data_dir, args.datasets, input_len)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(str(error)) from None


def pool_of(corpora: list[Corpus], role: str, scaler, config: GluformerConfig, stride: int = 1) -> WindowPool:
    segments = [(corpus.name, series) for corpus in corpora for series in getattr(corpus, role)]
    return build_pool(segments, scaler, config.len_seq, config.len_pred, stride=stride)


def dataset_blocks(dataset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the first index and the length of each data set's block of windows.

    ``dataset`` names the data set of every window of a pool, ``(W,)``. A pool keeps
    the windows of one data set contiguous, so a block starts at its first window.
    """
    _, starts, counts = np.unique(np.asarray(dataset).astype(str), return_index=True, return_counts=True)
    return starts.astype(np.int64), counts.astype(np.int64)


def draw_windows(blocks: tuple[np.ndarray, np.ndarray], count: int, generator: torch.Generator) -> np.ndarray:
    """Draw ``count`` training windows, each data set weighted by the square root of its window count.

    ``blocks`` comes from ``dataset_blocks``. Weinstock alone has more windows than the
    other three sets together, so drawing uniformly would make the model a Weinstock
    model. Equal weights would replay the few Broll (iglu) windows until they are memorised.
    """
    starts, counts = blocks
    weights = torch.as_tensor(np.sqrt(counts), dtype=torch.float64)
    chosen = torch.multinomial(weights, count, replacement=True, generator=generator).numpy()
    offsets = (torch.rand(count, generator=generator, dtype=torch.float64).numpy() * counts[chosen]).astype(np.int64)
    return starts[chosen] + offsets


def save_checkpoint(path: Path, state: dict) -> None:
    # Write to a temporary file first so an interrupted save never corrupts the last good checkpoint.
    partial = path.with_suffix(".tmp")
    torch.save(state, partial)
    partial.replace(path)


def main(argv: list[str] | None = None) -> int:
    """Run training from command-line arguments; return the process exit code."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)

    config = GluformerConfig.preset(args.config)
    if config.scaling.kind != "fixed":
        raise SystemExit(f"config {config.name!r} uses {config.scaling.kind!r} scaling; training needs a fixed scaling policy")
    scaler = fit_scaler(config.scaling, np.zeros(1), np.ones(1, bool), np.zeros((1, 6)))

    corpora = load_corpora(args, config.len_seq)
    train_pool = pool_of(corpora, "train", scaler, config)
    val_pool = pool_of(corpora, "val", scaler, config, stride=args.val_stride)
    if len(train_pool) == 0 or len(val_pool) == 0:
        raise SystemExit(f"no windows to train or validate on ({len(train_pool)} train, {len(val_pool)} validation)")
    logger.info("%d training windows, %d validation windows at checkpoints", len(train_pool), len(val_pool))

    torch.manual_seed(args.seed)
    model = Gluformer(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    batch_rng = torch.Generator().manual_seed(args.seed)
    state = {"step": 0, "train_seconds": 0.0, "best_val_mse": math.inf, "best_state": None, "history": []}

    checkpoint_path = args.out / "checkpoint.pt"
    if checkpoint_path.exists():
        saved = torch.load(checkpoint_path, weights_only=True)
        # Compare as configs, so that fields added later with their defaults still match.
        if GluformerConfig.from_dict(saved["config"]) != config:
            raise SystemExit(f"{checkpoint_path} was written for another config; use a new --out folder")
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        # The saved optimiser state carries the old rate; --lr applies to the resumed run.
        for group in optimizer.param_groups:
            group["lr"] = args.lr
        torch.set_rng_state(saved["rng"])
        batch_rng.set_state(saved["batch_rng"])
        state = {key: saved[key] for key in state}
        logger.info("resumed from %s at step %d", checkpoint_path, state["step"])

    def validate_and_checkpoint() -> None:
        scores = score_pool(model, val_pool, scaler)["all"]
        state["history"].append({"step": state["step"], "train_seconds": round(state["train_seconds"], 1), **scores})
        if scores["model_median_mse"] < state["best_val_mse"]:
            state["best_val_mse"] = scores["model_median_mse"]
            state["best_state"] = {key: value.clone() for key, value in model.state_dict().items()}
        logger.info(
            "step %d: validation median MSE %.1f (persistence %.1f), best %.1f",
            state["step"], scores["model_median_mse"], scores["persistence_median_mse"], state["best_val_mse"],
        )
        save_checkpoint(checkpoint_path, {
            **state, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "rng": torch.get_rng_state(), "batch_rng": batch_rng.get_state(), "config": config.to_dict(),
        })

    blocks = dataset_blocks(train_pool.dataset)
    started = time.monotonic()
    last_checkpoint = started
    deadline = started + 60.0 * args.max_minutes
    model.train()
    while time.monotonic() < deadline and (args.max_steps is None or state["step"] < args.max_steps):
        step_started = time.monotonic()
        indices = draw_windows(blocks, args.batch_size, batch_rng)
        batch = train_pool.batch(indices)
        inputs = model_inputs(batch["past"], batch["past_covariates"], batch["future_covariates"], config)

        pred, logvar = model(*inputs)
        loss = gaussian_nll(pred[:, :, 0], logvar, torch.as_tensor(batch["target"]))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

        state["step"] += 1
        state["train_seconds"] += time.monotonic() - step_started
        if state["step"] % 100 == 0:
            logger.info("step %d: loss %.4f", state["step"], loss.item())
        if time.monotonic() - last_checkpoint > 60.0 * args.checkpoint_minutes:
            validate_and_checkpoint()
            model.train()
            last_checkpoint = time.monotonic()

    validate_and_checkpoint()
    model.load_state_dict(state["best_state"])
    weights = write_outputs(args, config, model, corpora, scaler, state)
    if args.calibrate:
        calibrate_main(["--weights", str(weights), "--data-dir", str(args.data_dir), "--datasets", ",".join(args.datasets),
                        "--threads", str(args.threads)])
    return 0


def write_outputs(args, config: GluformerConfig, model: Gluformer, corpora: list[Corpus], scaler, state: dict) -> Path:
    """Write the best weights, their config and their validation metrics; return the weights' path.

    Test and OOD scores come from ``glurpc-lab evaluate``, which scores the same
    windows as GlucoBench.
    """
    stem = args.out / f"gluformer_{config.name}"
    torch.save(model.state_dict(), stem.with_suffix(".pth"))
    config.to_json(stem.with_suffix(".json"))

    metrics = {
        "config": config.name,
        "steps": state["step"],
        "train_seconds": round(state["train_seconds"], 1),
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "datasets": [corpus.name for corpus in corpora],
        "excluded_subjects": {corpus.name: corpus.excluded_subjects for corpus in corpora},
        "point_forecast": "single forward pass with dropout off",
        "metric": "median over windows of per-window MSE (mg/dL^2) and MAE (mg/dL), every stride-1 window",
        "history": state["history"],
    }
    metrics["val"] = score_pool(model, pool_of(corpora, "val", scaler, config), scaler)
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote %s.pth, its config and metrics.json", stem)
    return stem.with_suffix(".pth")


if __name__ == "__main__":
    raise SystemExit(main())
