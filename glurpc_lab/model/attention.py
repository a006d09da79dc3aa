"""Multi-head attention with an optional causal mask."""

from __future__ import annotations

import math

import torch
from torch import nn

from glurpc_lab.model.dropout import RowSeededDropout


class MultiheadAttention(nn.Module):
    """Scaled dot-product attention over ``n_heads`` heads of width ``d_model // n_heads``.

    The projections are ``d_model -> n_heads * d_keys`` (512 -> 510 in the published
    model, because 512 is not divisible by 10). Dropout acts on the attention weights.
    """

    def __init__(self, d_model: int, n_heads: int, r_drop: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.d_keys = d_model // n_heads
        inner = self.d_keys * n_heads
        self.proj_q = nn.Linear(d_model, inner)
        self.proj_k = nn.Linear(d_model, inner)
        self.proj_v = nn.Linear(d_model, inner)
        self.proj_out = nn.Linear(inner, d_model)
        self.dropout = RowSeededDropout(r_drop)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, causal: bool = False) -> torch.Tensor:
        """Attend ``queries [B, L, d]`` to ``keys``/``values [B, S, d]``; return ``[B, L, d]``.

        With ``causal=True`` position i only sees positions <= i.
        """
        batch, len_q, _ = queries.shape
        len_k = keys.shape[1]
        q = self.proj_q(queries).view(batch, len_q, self.n_heads, self.d_keys)
        k = self.proj_k(keys).view(batch, len_k, self.n_heads, self.d_keys)
        v = self.proj_v(values).view(batch, len_k, self.n_heads, self.d_keys)

        scores = torch.einsum("blhe,bshe->bhls", q, k)
        if causal:
            future = torch.triu(torch.ones(len_q, len_k, dtype=torch.bool, device=scores.device), diagonal=1)
            scores = scores.masked_fill(future, float("-inf"))

        weights = self.dropout(torch.softmax(scores / math.sqrt(self.d_keys), dim=-1))
        out = torch.einsum("bhls,bshd->blhd", weights, v).reshape(batch, len_q, self.n_heads * self.d_keys)
        return self.proj_out(out)
