"""Model sources for the benchmarks: the bundled weights and random weights of any preset."""

from __future__ import annotations

from pathlib import Path

import torch

from glurpc_lab.model import Gluformer, GluformerConfig


def random_weights(folder: Path, preset: str, *, seed: int = 0) -> Path:
    """Write random weights of ``preset`` with their config JSON beside them and return the weights path.

    Random weights run at the speed of trained ones, so the published
    architecture can be timed without downloading its weights.
    """
    config = GluformerConfig.preset(preset)
    torch.manual_seed(seed)
    module = Gluformer(config)
    path = Path(folder) / f"random_{preset}.pth"
    torch.save(module.state_dict(), path)
    config.to_json(path.with_suffix(".json"))
    return path
