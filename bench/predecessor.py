"""The predecessor's inference (``glucosedao-glucobench`` ``Gluformer.predict``) in its own interpreter."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

from glurpc_lab.model import GluformerConfig

logger = logging.getLogger(__name__)

SCRIPT = Path(__file__).resolve().parent / "predecessor_predict.py"

DEFAULT_PYTHON = os.environ.get("GLURPC_BENCH_PREDECESSOR_PYTHON", "/work/refenv/bin/python")
"""Interpreter of the predecessor's environment; ``--predecessor-python`` or this variable moves it."""

PREDICT_BATCH_SIZE = 32
"""Windows per batch in the predecessor service's call to ``predict`` (32 windows x 10 samples = 320 rows)."""


def constructor_arguments(config: GluformerConfig) -> dict:
    """Map a glurpc-lab config to the arguments of the package's ``Gluformer`` constructor."""
    names = (
        "d_model", "n_heads", "d_fcn", "r_drop", "activ", "num_enc_layers", "num_dec_layers",
        "distil", "len_seq", "len_pred", "num_dynamic_features", "num_static_features", "label_len",
    )
    return {name: getattr(config, name) for name in names}


def save_case(path: Path, inputs: tuple[torch.Tensor, ...], config: GluformerConfig) -> None:
    """Save glurpc-lab's forward() inputs as the 4-tuple arrays the predecessor's dataset yields."""
    x_id, x_enc, x_mark_enc, _x_dec, x_mark_dec = (tensor.numpy() for tensor in inputs)
    np.savez(
        path,
        past_target=x_enc,
        historic_covariates=x_mark_enc,
        future_covariates=x_mark_dec[:, config.label_len :],
        static=x_id,
    )


def run_predecessor(
    inputs: tuple[torch.Tensor, ...],
    config: GluformerConfig,
    *,
    n_samples: int,
    repeats: int = 1,
    python: str = DEFAULT_PYTHON,
    warmup_windows: int = 2,
    timeout_s: float = 1800.0,
) -> dict:
    """Time ``Gluformer.predict`` of the predecessor on the same windows and sample count.

    Parameters
    ----------
    inputs : tuple of torch.Tensor
        glurpc-lab's five forward() inputs, ``W`` windows each.
    config : GluformerConfig
        Architecture; the predecessor's model gets the same shape with random weights.
    n_samples : int
        MC-dropout samples per window.
    repeats : int
        Timed calls of ``predict``; the fastest counts.
    python : str
        Interpreter of the predecessor's environment.
    warmup_windows : int
        Windows predicted once, untimed, before the timed call.
    timeout_s : float
        Limit on the subprocess in seconds.

    Returns
    -------
    dict
        The script's JSON (``seconds``, ``window_samples_per_s`` and versions), or
        ``{"skipped": reason}`` when the interpreter is missing or the run fails.
    """
    if not Path(python).is_file():
        note = f"predecessor interpreter {python} not found; pass --predecessor-python or set GLURPC_BENCH_PREDECESSOR_PYTHON"
        logger.warning("%s", note)
        return {"skipped": note}

    with tempfile.TemporaryDirectory(prefix="glurpc-bench-predecessor-") as folder:
        case_path = Path(folder) / "case.npz"
        config_path = Path(folder) / "config.json"
        save_case(case_path, inputs, config)
        settings = {
            **constructor_arguments(config),
            "num_samples": n_samples,
            "batch_size": PREDICT_BATCH_SIZE,
            "repeats": repeats,
            "warmup_windows": min(warmup_windows, int(inputs[0].shape[0])),
        }
        config_path.write_text(json.dumps(settings), encoding="utf-8")

        # The predecessor environment must not see this environment's packages.
        environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
        try:
            completed = subprocess.run(
                [python, str(SCRIPT), str(case_path), str(config_path)],
                capture_output=True, text=True, timeout=timeout_s, env=environment, check=False,
            )
        except subprocess.TimeoutExpired:
            return {"skipped": f"predecessor run timed out after {timeout_s:.0f} s"}

    if completed.returncode != 0:
        last_line = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        logger.warning("predecessor run failed with exit code %d: %s", completed.returncode, last_line)
        return {"skipped": f"predecessor run failed with exit code {completed.returncode}: {last_line}"}
    return json.loads(completed.stdout.strip().splitlines()[-1])
