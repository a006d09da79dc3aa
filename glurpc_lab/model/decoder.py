"""Decoder: causal self-attention, cross-attention to the encoder, feed-forward."""

from __future__ import annotations

import torch
from torch import nn

from glurpc_lab.model.attention import MultiheadAttention
from glurpc_lab.model.dropout import RowSeededDropout
from glurpc_lab.model.encoder import activation


class DecoderLayer(nn.Module):
    """One decoder layer; the attention outputs get no dropout, only the attention weights and the feed-forward do."""

    def __init__(self, d_model: int, n_heads: int, d_fcn: int, r_drop: float, activ: str) -> None:
        super().__init__()
        self.self_att = MultiheadAttention(d_model, n_heads, r_drop)
        self.cross_att = MultiheadAttention(d_model, n_heads, r_drop)
        self.conv1 = nn.Conv1d(d_model, d_fcn, kernel_size=1)
        self.conv2 = nn.Conv1d(d_fcn, d_model, kernel_size=1)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout = RowSeededDropout(r_drop)
        self.activ = activation(activ)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.self_att(x, x, x, causal=True))
        x = self.norm2(x + self.cross_att(x, memory, memory))

        hidden = self.dropout(self.activ(self.conv1(x.transpose(1, 2))))
        hidden = self.dropout(self.conv2(hidden).transpose(1, 2))
        return self.norm3(x + hidden)


class Decoder(nn.Module):
    """Decoder layers followed by a LayerNorm."""

    def __init__(self, d_model: int, n_heads: int, d_fcn: int, r_drop: float, activ: str, num_layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([DecoderLayer(d_model, n_heads, d_fcn, r_drop, activ) for _ in range(num_layers)])
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, memory)
        return self.norm(x)
