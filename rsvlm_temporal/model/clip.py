"""The temporal CLIP: a tower's per-date tokens + temporal encoder, aligned with the text
projection, and its heads (change mask, change date, pixel / scene change embeddings)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from rsvlm_temporal.model.temporal import TemporalEncoder
from rsvlm_temporal.model.towers import build_tower


class TemporalCLIP(nn.Module):
    """tower -> temporal encoder -> heads. ``forward(x, sensor, days)`` on one chip
    (time, MODEL_BANDS, y, x) returns per-pixel outputs on the chip's grid."""

    def __init__(self, cfg: dict[str, Any]):
        super().__init__()
        self.cfg = cfg
        d, e = int(cfg["dim"]), int(cfg["embed_dim"])
        self.tower = build_tower({**cfg["tower"], "dim": d})
        t = cfg.get("temporal", {})
        self.temporal = TemporalEncoder(d, depth=t.get("depth", 2), heads=t.get("heads", 4), mlp_ratio=t.get("mlp_ratio", 2.0))
        self.mask_head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, 1))
        self.date_head = nn.Sequential(nn.Linear(2 * d, d), nn.GELU(), nn.Linear(d, 1))
        self.pixel_proj = nn.Linear(d, e)
        self.text_proj = nn.Sequential(nn.Linear(int(cfg.get("text_dim", 384)), e), nn.GELU(), nn.Linear(e, e))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_text(self, minilm: torch.Tensor) -> torch.Tensor:
        """[N, 384] MiniLM embeddings -> [N, E] normalised joint-space embeddings."""
        return nn.functional.normalize(self.text_proj(minilm), dim=-1)

    def forward(self, x: torch.Tensor, sensor: torch.Tensor, days: torch.Tensor,
                reference: float | None = None) -> dict[str, torch.Tensor]:
        """x [T, C, H, W] reflectance (NaN masked), sensor [T], days [T] ->
        mask_logit [H, W], date_logit [T, H, W] (-inf at unusable dates), embedding [H, W, E]
        (normalised), valid [T, H, W]."""
        t, _, h, w = x.shape
        tok, tvalid = self.tower(x, sensor, days)  # [T, h', w', D], [T, h', w']
        gh, gw = tok.shape[1:3]
        seq = tok.permute(1, 2, 0, 3).reshape(gh * gw, t, -1)
        val = tvalid.permute(1, 2, 0).reshape(gh * gw, t)
        summary, per_date = self.temporal(seq, val, days, reference)
        mask = self.mask_head(summary)[:, 0]
        date = self.date_head(torch.cat([per_date, summary[:, None].expand_as(per_date)], -1))[..., 0]
        emb = self.pixel_proj(summary)
        mask, date, emb = mask.reshape(gh, gw), date.reshape(gh, gw, t), emb.reshape(gh, gw, -1)
        if (gh, gw) != (h, w):  # patch towers: back to the pixel grid
            up = lambda a: nn.functional.interpolate(a.permute(2, 0, 1)[None], size=(h, w), mode="bilinear",  # noqa: E731
                                                     align_corners=False)[0].permute(1, 2, 0)
            mask, date, emb = up(mask[..., None])[..., 0], up(date), up(emb)
        valid = torch.isfinite(x).any(1)
        date = date.permute(2, 0, 1).masked_fill(~valid, float("-inf"))
        return {"mask_logit": mask, "date_logit": date, "embedding": nn.functional.normalize(emb, dim=-1),
                "valid": valid}


def scene_embedding(mask_logit: torch.Tensor, embedding: torch.Tensor, floor: float = 0.02) -> torch.Tensor:
    """Change embedding of a chip: pixel embeddings weighted by change probability (+ ``floor``,
    so an unchanged scene is described by all its pixels), normalised [E]."""
    wgt = torch.sigmoid(mask_logit).reshape(-1) + floor
    return nn.functional.normalize((embedding.reshape(-1, embedding.shape[-1]) * wgt[:, None]).sum(0), dim=-1)
