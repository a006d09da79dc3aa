"""The Gluformer: an encoder-decoder transformer with a log-variance head."""

from __future__ import annotations

import math

import torch
from torch import nn

from glurpc_lab.model.config import GluformerConfig
from glurpc_lab.model.decoder import Decoder
from glurpc_lab.model.embedding import DataEmbedding
from glurpc_lab.model.encoder import Encoder
from glurpc_lab.model.variance import Variance


class Gluformer(nn.Module):
    """Gluformer built from a ``GluformerConfig``; module and state_dict names match the published weights."""

    def __init__(self, config: GluformerConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.enc_embedding = DataEmbedding(c.d_model, c.r_drop, c.num_dynamic_features, c.num_static_features, c.max_len)
        self.dec_embedding = DataEmbedding(c.d_model, c.r_drop, c.num_dynamic_features, c.num_static_features, c.max_len)
        self.encoder = Encoder(c.d_model, c.n_heads, c.d_fcn, c.r_drop, c.activ, c.num_enc_layers, c.distil)
        self.decoder = Decoder(c.d_model, c.n_heads, c.d_fcn, c.r_drop, c.activ, c.num_dec_layers)
        self.projection = nn.Linear(c.d_model, 1)
        self.var = Variance(c.d_model, c.r_drop, c.len_seq)

    def forward(
        self,
        x_id: torch.Tensor,
        x_enc: torch.Tensor,
        x_mark_enc: torch.Tensor,
        x_dec: torch.Tensor,
        x_mark_dec: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Forecast ``len_pred`` scaled glucose values and one log-variance per row.

        Parameters
        ----------
        x_id : torch.Tensor
            Static features, ``[B, num_static_features]``.
        x_enc : torch.Tensor
            Scaled glucose of the input window, ``[B, len_seq, 1]``.
        x_mark_enc : torch.Tensor
            Scaled calendar covariates of the input, ``[B, len_seq, num_dynamic_features]``.
        x_dec : torch.Tensor
            Last ``label_len`` scaled values followed by ``len_pred`` zeros, ``[B, label_len + len_pred, 1]``.
        x_mark_dec : torch.Tensor
            Covariates of those points, ``[B, label_len + len_pred, num_dynamic_features]``.

        Returns
        -------
        pred : torch.Tensor
            Scaled forecast, ``[B, len_pred, 1]``.
        logvar : torch.Tensor
            Log-variance in scaled units, ``[B, 1, 1]``, bounded to (-10, 10).
        """
        level = None
        if self.config.anchor == "last":
            # Forecast the change from the last input value; the future placeholders
            # of the decoder input stay 0, which now means "no change".
            level = x_enc[:, -1:, :]
            gain = self.config.anchor_gain
            x_enc = (x_enc - level) * gain
            label = x_dec.shape[1] - self.config.len_pred
            x_dec = torch.cat([(x_dec[:, :label] - level) * gain, x_dec[:, label:]], dim=1)

        enc_tokens = self.enc_embedding(x_id, x_enc, x_mark_enc)
        logvar = self.var(enc_tokens)
        memory = self.encoder(enc_tokens)

        dec_tokens = self.dec_embedding(x_id, x_dec, x_mark_dec)
        decoded = self.projection(self.decoder(dec_tokens, memory))
        pred = decoded[:, -self.config.len_pred :, :]

        if level is not None:
            pred = level + pred / self.config.anchor_gain
            logvar = logvar - 2.0 * math.log(self.config.anchor_gain)
        return pred, logvar
