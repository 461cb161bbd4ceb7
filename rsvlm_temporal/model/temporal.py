"""Temporal embeddings of acquisition dates and the temporal transformer (cloud gaps and
irregular steps are key-padding masks)."""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoid_days(days: torch.Tensor, reference: float, dim: int) -> torch.Tensor:
    """[T] days since 1970 -> [T, dim]: half sinusoids of the days since ``reference`` (periods
    8 to 4096 days), half day-of-year harmonics (1, 2, ... cycles per year)."""
    d1 = dim // 2
    d2 = dim - d1
    rel = (days - reference).to(torch.float32)[:, None]
    periods = torch.logspace(math.log10(8.0), math.log10(4096.0), d1 // 2)
    a = 2 * math.pi * rel / periods
    doy = torch.remainder(days.to(torch.float64), 365.2425).to(torch.float32)[:, None]
    harm = torch.arange(1, d2 // 2 + 1, dtype=torch.float32)
    b = 2 * math.pi * doy * harm / 365.2425
    out = torch.cat([a.sin(), a.cos(), b.sin(), b.cos()], -1)
    return nn.functional.pad(out, (0, dim - out.shape[-1]))


def month_index(days: torch.Tensor) -> torch.Tensor:
    """[T] days since 1970 -> month 0-11 (UTC)."""
    import numpy as np

    d = np.datetime64("1970-01-01", "D") + days.detach().cpu().numpy().astype("int64").astype("timedelta64[D]")
    return torch.as_tensor(d.astype("datetime64[M]").astype(np.int64) % 12)


class TemporalEncoder(nn.Module):
    """Adds temporal embeddings (sinusoids of days since the reference and of the day of year,
    plus a learned month embedding as the RS encoders use) to per-date tokens and runs a small
    transformer over time per spatial token, with a summary (CLS) token."""

    def __init__(self, dim: int, depth: int = 2, heads: int = 4, mlp_ratio: float = 2.0):
        super().__init__()
        self.dim = dim
        self.month = nn.Embedding(12, dim)
        nn.init.normal_(self.month.weight, std=0.02)
        self.time_proj = nn.Linear(dim, dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, int(dim * mlp_ratio), dropout=0.0, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def embed_time(self, days: torch.Tensor, reference: float) -> torch.Tensor:
        """[T] days -> [T, dim] temporal embedding."""
        return self.time_proj(sinusoid_days(days, reference, self.dim)) + self.month(month_index(days))

    def forward(self, tokens: torch.Tensor, valid: torch.Tensor, days: torch.Tensor,
                reference: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens [N, T, D], valid [N, T] bool, days [T] -> (summary [N, D], per-date [N, T, D])."""
        ref = float(days.min()) if reference is None else float(reference)
        return self.encode(tokens + self.embed_time(days, ref)[None], valid)

    def encode(self, h: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens with their temporal embedding added [N, L, D], valid [N, L] bool -> (summary
        [N, D], per-token [N, L, D]); L may be any length (a pixel's clear dates only, padded)."""
        n = h.shape[0]
        h = torch.cat([self.cls.expand(n, 1, -1), h], 1)
        pad = torch.cat([torch.zeros(n, 1, dtype=torch.bool), ~valid], 1)
        if self.training or torch.is_grad_enabled():
            h = self.blocks(h, src_key_padding_mask=pad)
        else:
            h = self._infer_blocks(h, pad)
        h = self.norm(h)
        return h[:, 0], h[:, 1:]

    def _infer_blocks(self, h: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """``self.blocks`` (pre-norm layers, GELU, no dropout) without autograd, the same weights
        and arithmetic, with the attention in ``scaled_dot_product_attention`` (the CPU flash
        kernel): some 1.7x less CPU than the layers' own inference path (a masked softmax over
        every key; 4096 sequences of 74 dates, dim 48)."""
        f = nn.functional
        n, length, d = h.shape
        bias = torch.zeros(n, 1, 1, length, dtype=h.dtype).masked_fill(pad[:, None, None], float("-inf"))
        for layer in self.blocks.layers:
            sa = layer.self_attn
            heads = sa.num_heads
            y = f.layer_norm(h, (d,), layer.norm1.weight, layer.norm1.bias, layer.norm1.eps)
            q, k, v = f.linear(y, sa.in_proj_weight, sa.in_proj_bias).reshape(n, length, 3, heads, d // heads
                                                                               ).permute(2, 0, 3, 1, 4)
            a = f.scaled_dot_product_attention(q, k, v, attn_mask=bias)
            h = h + sa.out_proj(a.transpose(1, 2).reshape(n, length, d))
            y = f.layer_norm(h, (d,), layer.norm2.weight, layer.norm2.bias, layer.norm2.eps)
            h = h + layer.linear2(f.gelu(layer.linear1(y)))
        return h
