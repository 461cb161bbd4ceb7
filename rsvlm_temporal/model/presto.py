"""Presto pixel time-series encoder (Tseng et al. 2023, arXiv 2304.14065), re-implemented so the
released checkpoint (MIT, nasaharvest/presto) loads strictly from safetensors.

Input ``x`` [B, T, 17] in :data:`PRESTO_BANDS` order, normalised as Presto expects (S2 reflectance
0-1); ``mask`` [B, T, 17] with 1 = missing (a band group with any missing band is dropped as a
token); ``dynamic_world`` [B, T] (9 = missing); ``latlons`` [B, 2] degrees; ``month`` start month
0-11 (or [B, T] months). Dropped tokens are masked out of attention rather than removed, which
gives the same result as the reference and allows a different mask per sample.
"""

from __future__ import annotations

import torch
from torch import nn

PRESTO_BANDS = ("VV", "VH", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12",
                "temperature_2m", "total_precipitation", "elevation", "slope", "NDVI")
GROUPS: dict[str, list[int]] = {"S1": [0, 1], "S2_RGB": [2, 3, 4], "S2_Red_Edge": [5, 6, 7], "S2_NIR_10m": [8],
                                "S2_NIR_20m": [9], "S2_SWIR": [10, 11], "ERA5": [12, 13], "SRTM": [14, 15],
                                "NDVI": [16]}
DW_MISSING = 9


class Block(nn.Module):
    """Pre-norm transformer block (timm layout: norm1, attn.qkv, attn.proj, norm2, mlp.fc1/fc2)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.Module()
        self.attn.qkv, self.attn.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Module()
        self.mlp.fc1, self.mlp.fc2 = nn.Linear(dim, int(dim * mlp_ratio)), nn.Linear(int(dim * mlp_ratio), dim)

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.attn.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        bias = None if pad is None else torch.zeros(b, 1, 1, n, dtype=x.dtype).masked_fill(pad[:, None, None], float("-inf"))
        a = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        x = x + self.attn.proj(a.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp.fc2(nn.functional.gelu(self.mlp.fc1(self.norm2(x))))


class PrestoEncoder(nn.Module):
    """The Presto encoder: width 128, 2 blocks, 8 heads; month 32 + channel 32 + position 64."""

    def __init__(self, dim: int = 128, depth: int = 2, heads: int = 8, mlp_ratio: float = 4.0, max_len: int = 24):
        super().__init__()
        self.eo_patch_embed = nn.ModuleDict({g: nn.Linear(len(i), dim) for g, i in GROUPS.items()})
        self.dw_embed = nn.Embedding(DW_MISSING + 1, dim)
        self.latlon_embed = nn.Linear(3, dim)
        self.blocks = nn.ModuleList([Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, max_len, dim // 2), requires_grad=False)
        self.month_embed = nn.Embedding(12, dim // 4)
        self.channel_embed = nn.Embedding(len(GROUPS) + 1, dim // 4)

    def tokens(self, x: torch.Tensor, dynamic_world: torch.Tensor, latlons: torch.Tensor,
               mask: torch.Tensor | None = None, month: int | torch.Tensor = 0
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encoded tokens [B, 1 + N, D], their padding mask [B, 1 + N] (True = dropped) and the
        time step of each token [1 + N] (-1 for the location and SRTM tokens)."""
        b, t, _ = x.shape
        mask = torch.zeros_like(x) if mask is None else mask.to(x.dtype)
        if not torch.is_tensor(month) or month.ndim == 0:
            month = (torch.as_tensor(month) + torch.arange(t))[None].expand(b, t)
        me, pe = self.month_embed(month.long() % 12), self.pos_embed[:, :t].expand(b, t, -1)
        toks, pads, steps = [], [], []
        for gi, (g, idx) in enumerate(list(GROUPS.items()) + [("dynamic_world", [])]):
            ce = self.channel_embed.weight[gi].expand(b, t, -1)
            if g == "dynamic_world":
                tok, pad = self.dw_embed(dynamic_world.long()), dynamic_world == DW_MISSING
            else:
                tok, pad = self.eo_patch_embed[g](x[:, :, idx]), mask[:, :, idx].amax(-1) > 0
            if g == "SRTM":  # one static token
                emb = torch.cat([torch.zeros_like(me[:, :1]), ce[:, :1], torch.zeros_like(pe[:, :1])], -1)
                tok, pad, st = tok[:, :1] + emb, pad[:, :1], [-1]
            else:
                tok, st = tok + torch.cat([me, ce, pe], -1), list(range(t))
            toks.append(tok), pads.append(pad), steps.extend(st)
        lat, lon = torch.deg2rad(latlons[:, 0]), torch.deg2rad(latlons[:, 1])
        xyz = torch.stack([lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()], -1)
        h = torch.cat([self.latlon_embed(xyz)[:, None]] + toks, 1)
        pad = torch.cat([torch.zeros(b, 1, dtype=torch.bool)] + pads, 1)
        for blk in self.blocks:
            h = blk(h, pad)
        return h, pad, torch.tensor([-1] + steps)

    def forward(self, x: torch.Tensor, dynamic_world: torch.Tensor, latlons: torch.Tensor,
                mask: torch.Tensor | None = None, month: int | torch.Tensor = 0) -> torch.Tensor:
        """Mean of the kept tokens, LayerNorm'd: [B, 128] (Presto's ``eval_task`` output)."""
        h, pad, _ = self.tokens(x, dynamic_world, latlons, mask, month)
        keep = (~pad).to(h.dtype)[..., None]
        return self.norm((h * keep).sum(1) / keep.sum(1))
