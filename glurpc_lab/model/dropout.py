"""Dropout whose masks can come from one random generator per batch row."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class RowSeededDropout(nn.Dropout):
    """``nn.Dropout`` that can draw each batch row's mask from that row's own generator.

    When ``row_generators`` is None it behaves exactly like ``nn.Dropout``. When the
    MC-dropout sampler sets it to one ``torch.Generator`` per row of dimension 0, each
    row's masks depend only on its generator, so a window's samples are the same
    whichever other windows share its batch, and the global torch RNG is not touched.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p)
        self.row_generators: list[torch.Generator] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        generators = self.row_generators
        if generators is None or not self.training or self.p == 0.0:
            return F.dropout(x, self.p, self.training)

        if len(generators) != x.shape[0]:
            raise ValueError(f"{len(generators)} row generators for a batch of {x.shape[0]} rows")

        # One uniform draw per element, row by row, so row r only advances generator r.
        uniform = torch.stack(
            [torch.rand(x.shape[1:], generator=g, dtype=x.dtype, device=g.device) for g in generators]
        )
        keep = uniform.to(x.device) >= self.p
        return x * keep / (1.0 - self.p)
