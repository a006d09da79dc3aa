"""Variance head: one bounded log-variance per window from the encoder embedding."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from glurpc_lab.model.dropout import RowSeededDropout


class Variance(nn.Module):
    """Map the encoder embedding ``[B, len_seq + 1, d]`` to a log-variance ``[B, 1, 1]`` in (-10, 10).

    The log-variance is in scaled glucose units and is shared by all forecast steps.
    """

    def __init__(self, d_model: int, r_drop: float, len_seq: int) -> None:
        super().__init__()
        self.proj1 = nn.Linear(d_model, 1)
        self.dropout = RowSeededDropout(r_drop)
        self.proj2 = nn.Linear(len_seq + 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        per_token = self.dropout(F.relu(self.proj1(x)))
        return 10.0 * torch.tanh(self.proj2(per_token.transpose(1, 2)))
