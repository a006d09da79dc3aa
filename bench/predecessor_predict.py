"""Time the predecessor's ``Gluformer.predict`` on windows saved by the benchmark harness.

Runs inside the predecessor's own environment (torch, numpy and
``glucosedao-glucobench`` 0.4.1 installed with ``--no-deps``, plus ``six`` and
``tqdm``) and imports nothing from glurpc_lab. The model gets random weights,
which does not change its speed. Usage::

    python predecessor_predict.py CASE.npz CONFIG.json

CASE.npz contains ``past_target`` (W, len_seq, 1), ``historic_covariates``
(W, len_seq, 6), ``future_covariates`` (W, len_pred, 6) and ``static`` (W, 1),
the four arrays the package's inference dataset yields per window. CONFIG.json
contains the ``Gluformer`` constructor arguments and ``num_samples``,
``batch_size``, ``warmup_windows`` and ``repeats`` (timed calls; the fastest
counts). One JSON object goes to stdout.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
import time
from pathlib import Path

started = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402

# The shared importer replaces the package's training-only imports with stand-ins,
# so the module imports without darts 0.29.0 and its numpy<2 pin.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from reference_gluformer import import_reference_gluformer  # noqa: E402


class WindowDataset(torch.utils.data.Dataset):
    """The 4-tuple per window that ``SamplingDatasetInferenceDual`` yields, from saved arrays."""

    def __init__(self, arrays: dict[str, np.ndarray], count: int | None = None) -> None:
        self.arrays = arrays
        self.count = len(arrays["past_target"]) if count is None else count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int):
        return (
            self.arrays["past_target"][index],
            self.arrays["historic_covariates"][index],
            self.arrays["future_covariates"][index],
            self.arrays["static"][index],
        )


def main() -> None:
    case_path, config_path = sys.argv[1], sys.argv[2]
    settings = json.loads(open(config_path, encoding="utf-8").read())
    num_samples = int(settings.pop("num_samples"))
    batch_size = int(settings.pop("batch_size"))
    warmup_windows = int(settings.pop("warmup_windows"))
    repeats = int(settings.pop("repeats"))
    with np.load(case_path) as case:
        arrays = {name: case[name].astype(np.float32) for name in case.files}

    gluformer_class = import_reference_gluformer()
    torch.manual_seed(0)
    model = gluformer_class(**settings)
    imported = time.perf_counter()

    if warmup_windows:
        model.predict(WindowDataset(arrays, warmup_windows), batch_size=batch_size, num_samples=num_samples, device="cpu")

    durations = []
    for _ in range(repeats):
        timed_start = time.perf_counter()
        predictions, logvars = model.predict(
            WindowDataset(arrays), batch_size=batch_size, num_samples=num_samples, device="cpu"
        )
        durations.append(time.perf_counter() - timed_start)
    seconds = min(durations)

    windows = len(arrays["past_target"])
    print(json.dumps({
        "windows": windows,
        "num_samples": num_samples,
        "batch_size": batch_size,
        "seconds": seconds,
        "all_seconds": durations,
        "window_samples_per_s": windows * num_samples / seconds,
        "predictions_shape": list(predictions.shape),
        "logvars_shape": list(logvars.shape),
        "start_to_model_s": imported - started,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "glucosedao_glucobench": importlib.metadata.version("glucosedao-glucobench"),
        "parameters": sum(p.numel() for p in model.parameters()),
    }))


if __name__ == "__main__":
    main()
