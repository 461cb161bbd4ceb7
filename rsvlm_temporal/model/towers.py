"""Image towers behind one interface: per-date patch / pixel tokens of a cube chunk.

``tower(x, sensor, days) -> (tokens [T, h, w, D], valid [T, h, w])`` where ``x`` is
(time, MODEL_BANDS, y, x) reflectance 0-1 with NaN where masked, ``sensor`` [T] codes of
:data:`~rsvlm_temporal.model.inputs.SENSOR_CODES` and ``days`` [T] days since 1970-01-01.
``stride`` is the token size in pixels (1 for pixel towers).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rsvlm_temporal.errors import ParameterError
from rsvlm_temporal.model.inputs import MODEL_BANDS

_B = {b: i for i, b in enumerate(MODEL_BANDS)}


def _nd(x: torch.Tensor, ok: torch.Tensor, a: int, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised difference of bands a, b along dim 1 and where it is defined."""
    va, vb = x[:, a], x[:, b]
    return (va - vb) / (va + vb).abs().clamp_min(1e-3), ok[:, a] & ok[:, b]


def spectral_features(x: torch.Tensor, sensor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, C, H, W) NaN-masked reflectance -> features (T, F, H, W) (bands, band mask, sensor
    one-hot, NDVI, NBR, MNDWI, NDBI; 0 where undefined) and validity (T, H, W)."""
    ok = torch.isfinite(x)
    x0 = torch.where(ok, x, torch.zeros_like(x))
    nir_ok = ok[:, _B["nir"]]
    nir = torch.where(nir_ok, x0[:, _B["nir"]], x0[:, _B["nir08"]])
    xx = torch.cat([x0, nir[:, None]], 1)
    okk = torch.cat([ok, (nir_ok | ok[:, _B["nir08"]])[:, None]], 1)
    n = len(MODEL_BANDS)
    idx = [_nd(xx, okk, n, _B["red"]), _nd(xx, okk, n, _B["swir22"]), _nd(xx, okk, _B["green"], _B["swir16"]),
           _nd(xx, okk, _B["swir16"], n)]
    ind = torch.stack([torch.where(o, v.clamp(-1, 1), torch.zeros_like(v)) for v, o in idx], 1)
    t, _, h, w = x.shape
    sens = nn.functional.one_hot(sensor.long().clamp(0, 1), 2).to(x0.dtype)[:, :, None, None].expand(t, 2, h, w)
    return torch.cat([x0, ok.to(x0.dtype), sens, ind], 1), ok.any(1)


class PixelTower(nn.Module):
    """Our tiny tower: a per-pixel MLP over reflectance, band mask, sensor and indices
    (``pointwise``: each pixel-date is encoded on its own)."""

    stride = 1
    pointwise = True

    def __init__(self, dim: int = 48, hidden: int = 96, **_: Any):
        super().__init__()
        f = 2 * len(MODEL_BANDS) + 2 + 4
        self.dim = dim
        self.net = nn.Sequential(nn.Linear(f, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, sensor: torch.Tensor, days: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats, valid = spectral_features(x, sensor)
        return self.net(feats.permute(0, 2, 3, 1)), valid


#: MODEL_BANDS -> Presto's 17 inputs (S2 B2..B12); NDVI from nir (B8) or nir08 for Landsat
_PRESTO_S2 = {"blue": 2, "green": 3, "red": 4, "rededge1": 5, "rededge2": 6, "rededge3": 7, "nir": 8,
              "nir08": 9, "swir16": 10, "swir22": 11}


class PrestoTower(nn.Module):
    """Presto (pretrained, frozen by default) per pixel, over windows of up to 24 dates; a date's
    token is the mean of its band-group tokens, projected to ``dim``. S1, ERA5, SRTM and Dynamic
    World are masked; Landsat fills the matching S2 bands, the rest masked (not validated)."""

    stride = 1

    def __init__(self, dim: int = 48, weights: str | None = "presto-encoder", freeze: bool = True,
                 latlon: tuple[float, float] = (0.0, 0.0), **_: Any):
        super().__init__()
        from rsvlm_temporal.model.presto import PrestoEncoder

        self.encoder = PrestoEncoder()
        if weights:
            from rsvlm_temporal.model.pretrained import load_safetensors, weights_path

            self.encoder.load_state_dict(load_safetensors(weights_path(weights)), strict=True)
        if freeze:
            self.encoder.requires_grad_(False)
        self.latlon = latlon
        self.dim = dim
        self.proj = nn.Linear(128, dim)

    def forward(self, x: torch.Tensor, sensor: torch.Tensor, days: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from rsvlm_temporal.model.temporal import month_index

        t, _, h, w = x.shape
        ok = torch.isfinite(x)
        v = torch.where(ok, x, torch.zeros_like(x)).permute(2, 3, 0, 1).reshape(h * w, t, -1)
        m = ok.permute(2, 3, 0, 1).reshape(h * w, t, -1)
        p = torch.zeros(h * w, t, 17)
        pm = torch.ones(h * w, t, 17)
        for b, j in _PRESTO_S2.items():
            p[..., j], pm[..., j] = v[..., _B[b]], (~m[..., _B[b]]).float()
        nir = torch.where(m[..., _B["nir"]], v[..., _B["nir"]], v[..., _B["nir08"]])
        nir_ok = m[..., _B["nir"]] | m[..., _B["nir08"]]
        red = v[..., _B["red"]]
        p[..., 16] = (nir - red) / (nir + red).abs().clamp_min(1e-3)
        pm[..., 16] = (~(nir_ok & m[..., _B["red"]])).float()
        months = month_index(days)
        dw = torch.full((h * w, t), 9)
        ll = torch.tensor(self.latlon, dtype=torch.float32)[None].expand(h * w, 2)
        out = torch.zeros(h * w, t, 128)
        for s in range(0, t, 24):
            e = min(t, s + 24)
            hid, pad, steps = self.encoder.tokens(p[:, s:e], dw[:, s:e], ll, pm[:, s:e], months[s:e][None].expand(h * w, -1))
            keep = (~pad).float()
            for k in range(e - s):
                sel = (steps == k)
                wgt = keep[:, sel][..., None]
                out[:, s + k] = (hid[:, sel] * wgt).sum(1) / wgt.sum(1).clamp_min(1.0)
        tok = self.proj(self.encoder.norm(out)).reshape(h, w, t, -1).permute(2, 0, 1, 3)
        return tok, ok.any(1)


#: MODEL_BANDS -> Galileo's 13 space-time inputs (S2 B2..B12); NDVI from nir (B8) or nir08 for Landsat
_GALILEO_S2 = {"blue": 2, "green": 3, "red": 4, "rededge1": 5, "rededge2": 6, "rededge3": 7, "nir": 8,
               "nir08": 9, "swir16": 10, "swir22": 11}


class GalileoTower(nn.Module):
    """Galileo nano (pretrained, frozen by default) per ``patch_size`` x ``patch_size`` px patch,
    over square tiles of ``tile`` x ``tile`` patches and windows of up to ``window`` dates (<= 24);
    a date's token is the mean of its kept band-group tokens, projected to ``dim``. S1 and the
    non-space-time modalities are masked. A band-group token is kept where at least ``min_valid``
    of the patch's pixels have all its bands; missing pixels of a kept token take the band's
    training mean. Landsat fills the matching S2 bands, the rest masked (not validated)."""

    def __init__(self, dim: int = 48, weights: str | None = "galileo-nano-encoder", freeze: bool = True,
                 patch_size: int = 4, tile: int = 4, window: int = 12, min_valid: float = 0.5,
                 resolution_m: float = 10.0, batch: int = 4, **_: Any):
        super().__init__()
        from rsvlm_temporal.model.galileo import GalileoEncoder

        if not 1 <= int(patch_size) <= 8 or not 1 <= int(window) <= 24 or int(tile) < 1:
            raise ParameterError(f"Galileo tower patch_size={patch_size}, window={window}, tile={tile}; expected "
                                 "patch_size 1-8, window 1-24 dates and tile >= 1 patches")
        self.encoder = GalileoEncoder()
        if weights:
            from rsvlm_temporal.model.pretrained import load_safetensors, weights_path

            self.encoder.load_state_dict(load_safetensors(weights_path(weights)), strict=True)
        if freeze:
            self.encoder.requires_grad_(False)
        self.stride, self.tile, self.window, self.batch = int(patch_size), int(tile), int(window), max(1, int(batch))
        self.min_valid, self.resolution_m = float(min_valid), float(resolution_m)
        self.dim = dim
        self.proj = nn.Linear(128, dim)

    def forward(self, x: torch.Tensor, sensor: torch.Tensor, days: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from rsvlm_temporal.model.galileo import NORM_MEAN, S_T_GROUPS, normalise
        from rsvlm_temporal.model.temporal import month_index

        t, _, h, w = x.shape
        p, n = self.stride, self.stride * self.tile
        hp, wp = -(-h // n) * n, -(-w // n) * n
        xp = nn.functional.pad(x, (0, wp - w, 0, hp - h), value=float("nan"))
        ok = torch.isfinite(xp)
        v = torch.where(ok, xp, torch.zeros_like(xp))
        s_t = torch.zeros(t, hp, wp, 13, dtype=x.dtype)
        okb = torch.zeros(t, hp, wp, 13, dtype=torch.bool)
        for b, j in _GALILEO_S2.items():
            s_t[..., j], okb[..., j] = v[:, _B[b]] * 1e4, ok[:, _B[b]]  # reflectance -> S2 DN
        nir_ok = ok[:, _B["nir"]]
        nir = torch.where(nir_ok, v[:, _B["nir"]], v[:, _B["nir08"]])
        red = v[:, _B["red"]]
        s_t[..., 12] = ((nir - red) / (nir + red).abs().clamp_min(1e-6)).clamp(-1, 1)
        okb[..., 12] = (nir_ok | ok[:, _B["nir08"]]) & ok[:, _B["red"]]
        fill = normalise(torch.tensor(NORM_MEAN, dtype=x.dtype))
        s_t = torch.where(okb, normalise(s_t), fill)
        gok = torch.stack([okb[..., i].all(-1) for i in S_T_GROUPS.values()], 1).to(x.dtype)  # t g H W
        frac = nn.functional.avg_pool2d(gok, p)  # t g H/p W/p
        tmask = (frac < self.min_valid).permute(0, 2, 3, 1)  # t H/p W/p g
        pmask = tmask.repeat_interleave(p, 1).repeat_interleave(p, 2)  # per pixel, as the encoder reads it
        months = month_index(days)
        gh, gw, k = hp // p, wp // p, self.tile
        nh, nw = hp // n, wp // n

        def tiles(a: torch.Tensor) -> torch.Tensor:  # [T', H, W, C] -> [nh * nw, n, n, T', C]
            tt, c = a.shape[0], a.shape[-1]
            return a.reshape(tt, nh, n, nw, n, c).permute(1, 3, 2, 4, 0, 5).reshape(nh * nw, n, n, tt, c)

        out = torch.zeros(t, gh, gw, 128, dtype=x.dtype)
        for s in range(0, t, self.window):
            e = min(t, s + self.window)
            xb, mb = tiles(s_t[s:e]), tiles(pmask[s:e])
            per = []
            for i in range(0, xb.shape[0], self.batch):
                xi, mi = xb[i:i + self.batch], mb[i:i + self.batch]
                tok, m = self.encoder(xi, mi, months[s:e][None].expand(xi.shape[0], -1), p, self.resolution_m)
                keep = (~m).to(tok.dtype)[..., None]
                per.append((tok * keep).sum(-2) / keep.sum(-2).clamp_min(1.0))  # b k k T' D
            per_t = torch.cat(per).reshape(nh, nw, k, k, e - s, -1).permute(4, 0, 2, 1, 3, 5)
            out[s:e] = per_t.reshape(e - s, gh, gw, -1)
        ch, cw = -(-h // p), -(-w // p)
        return self.proj(out[:, :ch, :cw]), (~tmask).any(-1)[:, :ch, :cw]


class OpenClipTower(nn.Module):
    """Any open_clip image tower per date: patch tokens of a false-colour / RGB image, or of all
    bands through a patch embedding widened from the RGB weights (``bands="all"``)."""

    def __init__(self, dim: int = 48, model: str = "ViT-B-32", pretrained: str | None = None,
                 bands: str = "rgb", cache_dir: str | None = None, **_: Any):
        super().__init__()
        from rsvlm_temporal.model.openclip import create_open_clip, widen_patch_embed

        clip = create_open_clip(model, pretrained, cache_dir=cache_dir)
        self.visual = clip.visual
        self.visual.output_tokens = True
        self.mode = bands
        if bands == "all":
            widen_patch_embed(self.visual, MODEL_BANDS, rgb=("red", "green", "blue"))
            self.channels = list(range(len(MODEL_BANDS)))
        elif bands in ("rgb", "false_colour"):
            names = ("red", "green", "blue") if bands == "rgb" else ("nir08", "red", "green")
            self.channels = [_B[b] for b in names]
        else:
            raise ParameterError(f"open_clip tower bands={bands!r}; expected 'rgb', 'false_colour' or 'all'")
        size = self.visual.image_size
        self.size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        patch = self.visual.patch_size
        self.stride = patch[0] if isinstance(patch, (tuple, list)) else patch
        width = self.visual.conv1.out_channels
        self.proj = nn.Linear(width, dim)
        self.dim = dim

    def forward(self, x: torch.Tensor, sensor: torch.Tensor, days: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ok = torch.isfinite(x)
        img = torch.where(ok, x, torch.zeros_like(x))[:, self.channels]
        img = (img.clamp(0, 1) * 3.0 - 0.5) / 0.25  # reflectance -> roughly CLIP-normalised range
        t, _, h, w = x.shape
        img = nn.functional.interpolate(img, size=self.size, mode="bilinear", align_corners=False)
        _, toks = self.visual(img)
        gh, gw = self.size[0] // self.stride, self.size[1] // self.stride
        toks = self.proj(toks[:, -gh * gw:].reshape(t, gh, gw, -1))
        valid = nn.functional.adaptive_max_pool2d(ok.any(1)[:, None].float(), (gh, gw))[:, 0] > 0
        return toks, valid


TOWERS: dict[str, type[nn.Module]] = {"pixel": PixelTower, "presto": PrestoTower, "galileo": GalileoTower,
                                      "open_clip": OpenClipTower}


def build_tower(cfg: dict[str, Any]) -> nn.Module:
    """A tower from its config (``{"type": "pixel" | "presto" | "galileo" | "open_clip", ...}``)."""
    kind = cfg.get("type")
    if kind not in TOWERS:
        from rsvlm_temporal.errors import unknown_name

        raise unknown_name("tower type", kind, TOWERS)
    return TOWERS[kind](**{k: v for k, v in cfg.items() if k != "type"})


__all__ = ["PixelTower", "PrestoTower", "GalileoTower", "OpenClipTower", "build_tower", "spectral_features"]
