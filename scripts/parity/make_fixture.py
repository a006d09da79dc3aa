"""Write a parity fixture from the published Gluformer implementation.

Runs in a separate environment that has torch, numpy and ``glucosedao-glucobench``
0.4.1 (installed with ``--no-deps``); it imports nothing from glurpc_lab. It builds
the package's ``Gluformer`` from a fixed seed, gives every normalisation layer
non-trivial parameters and running statistics, runs a few input windows through it in
eval mode and saves:

- ``config.json``: the constructor arguments, the seed and the package versions;
- ``state_dict.npz``: every state_dict entry as a numpy array under its key;
- ``cases.npz``: the five forward() inputs and the outputs ``pred`` and ``logvar``.

See README.md beside this file for the commands.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
from pathlib import Path

import numpy as np
import torch

PRESETS = {
    # Small enough to commit (under 1 MB; the two 5000-row positional tables are most
    # of it). 16 is not divisible by 3 heads, so the Q/K/V projections are 16 -> 15,
    # like 512 -> 510 in the published weights.
    "small": dict(d_model=16, n_heads=3, d_fcn=32),
    # The architecture of the published livia_large weights.
    "published": dict(d_model=512, n_heads=10, d_fcn=1024),
}
SHARED = dict(
    r_drop=0.2, activ="gelu", num_enc_layers=2, num_dec_layers=2, distil=True,
    len_seq=96, len_pred=12, num_dynamic_features=6, num_static_features=1, label_len=32,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reference_gluformer import import_reference_gluformer  # noqa: E402


def randomise_normalisation(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Give LayerNorm and BatchNorm layers random affine parameters and running statistics.

    Fresh layers all have weight 1 and bias 0, so a model that swapped two of them
    would still match. Random values make every layer count.
    """
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, (torch.nn.LayerNorm, torch.nn.BatchNorm1d)):
                layer.weight.copy_(1.0 + 0.2 * torch.randn(layer.weight.shape, generator=generator))
                layer.bias.copy_(0.2 * torch.randn(layer.bias.shape, generator=generator))
            if isinstance(layer, torch.nn.BatchNorm1d):
                layer.running_mean.copy_(0.3 * torch.randn(layer.running_mean.shape, generator=generator))
                layer.running_var.copy_(0.5 + torch.rand(layer.running_var.shape, generator=generator))
                layer.num_batches_tracked.fill_(1000)


def make_inputs(config: dict, n_windows: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Build forward() inputs shaped like real windows: the decoder input repeats the last label_len points."""
    len_seq, label_len, len_pred = config["len_seq"], config["label_len"], config["len_pred"]
    n_dynamic = config["num_dynamic_features"]

    glucose = torch.rand(n_windows, len_seq, 1, generator=generator)
    marks = torch.rand(n_windows, len_seq, n_dynamic, generator=generator)
    future_marks = torch.rand(n_windows, len_pred, n_dynamic, generator=generator)
    return {
        "x_id": torch.rand(n_windows, config["num_static_features"], generator=generator),
        "x_enc": glucose,
        "x_mark_enc": marks,
        "x_dec": torch.cat([glucose[:, -label_len:], torch.zeros(n_windows, len_pred, 1)], dim=1),
        "x_mark_dec": torch.cat([marks[:, -label_len:], future_marks], dim=1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small", help="architecture size (default small)")
    parser.add_argument("--seed", type=int, default=1234, help="torch seed of the weights and inputs (default 1234)")
    parser.add_argument("--windows", type=int, default=4, help="input windows to save (default 4)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write config.json, state_dict.npz and cases.npz to")
    args = parser.parse_args()

    gluformer_class = import_reference_gluformer()
    config = {**PRESETS[args.preset], **SHARED}

    torch.manual_seed(args.seed)
    model = gluformer_class(**config)
    generator = torch.Generator().manual_seed(args.seed + 1)
    randomise_normalisation(model, generator)
    model.eval()

    inputs = make_inputs(config, args.windows, generator)
    with torch.no_grad():
        pred, logvar = model(*inputs.values())

    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out / "state_dict.npz", **{key: value.numpy() for key, value in model.state_dict().items()})
    np.savez_compressed(
        args.out / "cases.npz",
        **{name: tensor.numpy() for name, tensor in inputs.items()},
        pred=pred.numpy(),
        logvar=logvar.numpy(),
    )
    metadata = {
        "preset": args.preset,
        "gluformer_args": config,
        "seed": args.seed,
        "windows": args.windows,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "glucosedao-glucobench": importlib.metadata.version("glucosedao-glucobench"),
    }
    (args.out / "config.json").write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.preset} fixture to {args.out}: {sum(p.numel() for p in model.parameters())} parameters")


if __name__ == "__main__":
    main()
