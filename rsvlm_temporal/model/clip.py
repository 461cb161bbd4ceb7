"""The temporal CLIP: a tower's per-date tokens + temporal encoder, aligned with the text
projection, and its heads (change mask, change date, pixel / scene change embeddings)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from rsvlm_temporal.model.temporal import TemporalEncoder
from rsvlm_temporal.model.towers import build_tower

#: pixels per group of the compact forward with one torch thread (small groups stay in cache;
#: bounds memory: group x dates x dim floats per tensor) and with several (each op then pays a
#: thread-team sync, so fewer, larger groups; benchmarks/model_speedup.py)
COMPACT_GROUP = 256
COMPACT_GROUP_THREADED = 4096


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
                reference: float | None = None, compact: bool | None = None) -> dict[str, torch.Tensor]:
        """x [T, C, H, W] reflectance (NaN masked), sensor [T], days [T] ->
        mask_logit [H, W], date_logit [T, H, W] (-inf at unusable dates), embedding [H, W, E]
        (normalised), valid [T, H, W].

        ``compact`` (None: wherever the tower allows, i.e. towers on the pixel grid): the temporal
        encoder reads each pixel's clear dates only, pixels grouped by their number of clear dates
        (:meth:`_forward_compact`); the same outputs as the padded path (``compact=False``, every
        pixel padded to all T dates with the gaps as masked keys) up to float rounding."""
        if compact is None:
            compact = getattr(self.tower, "stride", 1) == 1
        if compact and getattr(self.tower, "stride", 1) == 1:
            return self._forward_compact(x, sensor, days, reference)
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

    def _forward_compact(self, x: torch.Tensor, sensor: torch.Tensor, days: torch.Tensor,
                         reference: float | None) -> dict[str, torch.Tensor]:
        """:meth:`forward` for towers on the pixel grid (stride 1), reading clear dates only.

        A masked date is a masked key of the temporal transformer: it never reaches the summary
        nor another date's output, and its own date logit is -inf, so it need not be computed.
        Each pixel's clear dates are packed to the front (time order kept, each with its own
        temporal embedding), pixels sorted by their number of clear dates and run in groups of
        :data:`COMPACT_GROUP` (:data:`COMPACT_GROUP_THREADED` with several torch threads) padded
        to the group's longest, so that little padding remains.
        Pointwise towers (``tower.pointwise``) also encode only the clear pixel-dates."""
        t, _, h, w = x.shape
        n = h * w
        valid = torch.isfinite(x).any(1)  # [T, H, W]
        ref = float(days.min()) if reference is None else float(reference)
        temb = self.temporal.embed_time(days, ref)  # [T, D]
        vp = valid.permute(1, 2, 0).reshape(n, t)
        pix, step = vp.nonzero(as_tuple=True)  # clear pixel-dates, by pixel then time
        pointwise = getattr(self.tower, "pointwise", False)
        if not pointwise:
            tok_all, tvalid = self.tower(x, sensor, days)
            if not torch.equal(tvalid, valid):  # the tower masks otherwise: the padded path
                return self.forward(x, sensor, days, reference, compact=False)
            tok_all = tok_all.reshape(t, n, -1)
        count = vp.sum(1)
        first = torch.cumsum(count, 0) - count  # each pixel's first token
        pos = torch.arange(len(pix)) - first[pix]  # a token's place among its pixel's clear dates
        order = torch.sort(count, stable=True).indices  # pixels by number of clear dates
        rank = torch.empty_like(order)
        rank[order] = torch.arange(n)
        key = rank[pix] * max(t, 1) + pos
        by_rank = torch.sort(key).indices  # tokens in the order of their pixels' ranks
        group = COMPACT_GROUP if torch.get_num_threads() == 1 else COMPACT_GROUP_THREADED
        bounds = torch.searchsorted(key[by_rank], torch.arange(0, n + group, group) * max(t, 1))
        d = temb.shape[-1]
        summary = torch.empty(n, d, dtype=temb.dtype)
        date = torch.full((n, t), float("-inf"), dtype=temb.dtype)
        for g, s in enumerate(range(0, n, group)):
            px = order[s:s + group]
            length = int(count[px].max()) if len(px) else 0
            sel = by_rank[bounds[g]:bounds[g + 1]]
            tp, ts = pix[sel], step[sel]
            if pointwise:  # the tower on this group's clear pixel-dates only
                xv = x[ts, :, tp // w, tp % w]  # [K, C]
                tok = self.tower(xv[:, :, None, None], sensor[ts], days[ts])[0].reshape(len(sel), d)
            else:
                tok = tok_all[ts, tp]
            row, col = rank[tp] - s, pos[sel]
            seq = torch.zeros(len(px), length, d, dtype=temb.dtype)
            seq[row, col] = tok + temb[ts]
            ok = torch.zeros(len(px), length, dtype=torch.bool)
            ok[row, col] = True
            summ, per = self.temporal.encode(seq, ok)
            summary[px] = summ
            per = per[row, col]
            date[tp, ts] = self.date_head(torch.cat([per, summ[row]], -1))[:, 0]
        mask = self.mask_head(summary)[:, 0].reshape(h, w)
        emb = self.pixel_proj(summary).reshape(h, w, -1)
        return {"mask_logit": mask, "date_logit": date.reshape(h, w, t).permute(2, 0, 1),
                "embedding": nn.functional.normalize(emb, dim=-1), "valid": valid}


def scene_embedding(mask_logit: torch.Tensor, embedding: torch.Tensor, floor: float = 0.02) -> torch.Tensor:
    """Change embedding of a chip: pixel embeddings weighted by change probability (+ ``floor``,
    so an unchanged scene is described by all its pixels), normalised [E]."""
    wgt = torch.sigmoid(mask_logit).reshape(-1) + floor
    return nn.functional.normalize((embedding.reshape(-1, embedding.shape[-1]) * wgt[:, None]).sum(0), dim=-1)
