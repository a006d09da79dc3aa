"""Token embeddings: glucose values, calendar covariates, position and subject."""

from __future__ import annotations

import math

import torch
from torch import nn

from glurpc_lab.model.dropout import RowSeededDropout


class PositionalEmbedding(nn.Module):
    """Fixed sinusoidal table (sin on even, cos on odd dimensions, base 10000).

    Stored as the persistent buffer ``pos_emb`` of shape ``[1, max_len, d_model]``
    because the published weights contain it.
    """

    def __init__(self, d_model: int, max_len: int) -> None:
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
        frequency = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        table = torch.zeros(max_len, d_model)
        table[:, 0::2] = torch.sin(position * frequency)
        table[:, 1::2] = torch.cos(position * frequency[: d_model // 2])
        self.register_buffer("pos_emb", table.unsqueeze(0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the table rows for a sequence ``x`` of shape ``[B, L, ...]``, shape ``[1, L, d_model]``."""
        return self.pos_emb[:, : x.shape[1]]


class ValueEmbedding(nn.Module):
    """Circular Conv1d (kernel 3) from one glucose channel to ``d_model``."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, d_model, kernel_size=3, padding=1, padding_mode="circular")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``[B, L, 1]`` values to ``[B, L, d_model]`` tokens."""
        return self.conv(x.transpose(1, 2)).transpose(1, 2)


class TemporalEmbedding(nn.Module):
    """Linear map of the calendar covariates of each point."""

    def __init__(self, d_model: int, num_features: int) -> None:
        super().__init__()
        self.embed = nn.Linear(num_features, d_model)

    def forward(self, x_mark: torch.Tensor) -> torch.Tensor:
        return self.embed(x_mark)


class SubjectEmbedding(nn.Module):
    """Linear map of the static features to the subject token."""

    def __init__(self, d_model: int, num_features: int) -> None:
        super().__init__()
        self.id_embedding = nn.Linear(num_features, d_model)

    def forward(self, x_id: torch.Tensor) -> torch.Tensor:
        return self.id_embedding(x_id)


class DataEmbedding(nn.Module):
    """Subject token followed by value + position + calendar tokens, then dropout.

    Input shapes: ``x_id [B, num_static]``, ``x [B, L, 1]``, ``x_mark [B, L, num_dynamic]``.
    Output shape: ``[B, L + 1, d_model]``; the subject token (position 0) gets no positional term.
    """

    def __init__(self, d_model: int, r_drop: float, num_dynamic: int, num_static: int, max_len: int) -> None:
        super().__init__()
        self.value_embedding = ValueEmbedding(d_model)
        self.time_embedding = TemporalEmbedding(d_model, num_dynamic)
        self.positional_embedding = PositionalEmbedding(d_model, max_len)
        self.subject_embedding = SubjectEmbedding(d_model, num_static)
        self.dropout = RowSeededDropout(r_drop)

    def forward(self, x_id: torch.Tensor, x: torch.Tensor, x_mark: torch.Tensor) -> torch.Tensor:
        tokens = self.value_embedding(x) + self.positional_embedding(x) + self.time_embedding(x_mark)
        subject = self.subject_embedding(x_id).unsqueeze(1)
        return self.dropout(torch.cat([subject, tokens], dim=1))
