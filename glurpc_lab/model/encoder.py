"""Encoder: self-attention layers with distilling convolutions between them."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from glurpc_lab.model.attention import MultiheadAttention
from glurpc_lab.model.dropout import RowSeededDropout


def activation(name: str):
    """Return the feed-forward activation function called ``name`` (``gelu`` or ``relu``)."""
    return F.gelu if name == "gelu" else F.relu


class EncoderLayer(nn.Module):
    """Self-attention and a kernel-1 convolutional feed-forward block, each with residual and LayerNorm."""

    def __init__(self, d_model: int, n_heads: int, d_fcn: int, r_drop: float, activ: str) -> None:
        super().__init__()
        self.att = MultiheadAttention(d_model, n_heads, r_drop)
        self.conv1 = nn.Conv1d(d_model, d_fcn, kernel_size=1)
        self.conv2 = nn.Conv1d(d_fcn, d_model, kernel_size=1)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = RowSeededDropout(r_drop)
        self.activ = activation(activ)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.dropout(self.att(x, x, x)))

        hidden = self.dropout(self.activ(self.conv1(x.transpose(1, 2))))
        hidden = self.dropout(self.conv2(hidden).transpose(1, 2))
        return self.norm2(x + hidden)


class ConvLayer(nn.Module):
    """Distilling layer: circular Conv1d, BatchNorm, ELU and a stride-2 max-pool (L -> floor((L - 1) / 2) + 1)."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.downConv = nn.Conv1d(d_model, d_model, kernel_size=3, padding=1, padding_mode="circular")
        self.norm = nn.BatchNorm1d(d_model)
        self.maxPool = nn.MaxPool1d(kernel_size=3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.elu(self.norm(self.downConv(x.transpose(1, 2))))
        return self.maxPool(y).transpose(1, 2)


class Encoder(nn.Module):
    """Encoder layers, a ConvLayer after each but the last when distilling, and a final LayerNorm."""

    def __init__(self, d_model: int, n_heads: int, d_fcn: int, r_drop: float, activ: str, num_layers: int, distil: bool) -> None:
        super().__init__()
        self.enc_layers = nn.ModuleList(
            [EncoderLayer(d_model, n_heads, d_fcn, r_drop, activ) for _ in range(num_layers)]
        )
        n_conv = num_layers - 1 if distil else 0
        self.conv_layers = nn.ModuleList([ConvLayer(d_model) for _ in range(n_conv)])
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode ``[B, L, d]`` tokens; with distilling the output has fewer tokens (97 -> 49 for 2 layers)."""
        for index, layer in enumerate(self.enc_layers):
            x = layer(x)
            if index < len(self.conv_layers):
                x = self.conv_layers[index](x)
        return self.norm(x)
