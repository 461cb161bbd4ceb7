"""Deep change vector analysis (DCVA, Saha, Bovolo & Bruzzone 2019, IEEE TGRS 57:3677) from the
pretrained Presto pixel encoder (Tseng et al. 2023; ``model/weights/presto-encoder.safetensors``,
loaded strictly through :mod:`rsvlm_temporal.model.pretrained`).

Per pixel, each date is encoded as a one-step Presto series (``"single"``: the 128-d embedding of
that date alone) or the pair as a two-step series whose per-date tokens are read after the
encoder's attention has seen both dates (``"pair"``). The deep change vector is the difference of
the two dates' embeddings; each feature is standardised by its scene-wide spread of differences
(robust: 1.4826 x MAD), the features whose differences vary least are left out (DCVA's feature
selection: the upper half by spread), and the magnitude is the Euclidean norm of the rest divided
by the square root of their number (unitless; about 1 for a no-change pixel).

Inputs are reflectance 0-1 (``band, y, x`` numpy) with common band names; Sentinel-2 bands map
onto Presto's S2 inputs by name (blue->B2 ... swir22->B12), Landsat's onto the matching S2 bands
(``nir08`` of Landsat fills B8 when ``nir`` is absent); missing band groups, S1, ERA5, SRTM and
Dynamic World are dropped tokens (equivalent to Presto's masking). torch is imported inside the
functions that use it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

import numpy as np

from rsvlm_temporal.errors import ParameterError, UnknownBandError

__all__ = ["DCVA_MODES", "PRESTO_INPUT", "dcva_magnitude", "presto_embeddings"]

#: common band name -> index of Presto's 17 inputs (model.presto.PRESTO_BANDS)
PRESTO_INPUT: dict[str, int] = {"blue": 2, "green": 3, "red": 4, "rededge1": 5, "rededge2": 6,
                                "rededge3": 7, "nir": 8, "nir08": 9, "swir16": 10, "swir22": 11}
#: how the two dates are encoded
DCVA_MODES = ("single", "pair")
_NEEDED = ("blue", "green", "red", "swir16", "swir22")


def _check(img: np.ndarray, bands: Sequence[str]) -> dict[str, int]:
    names = [str(b) for b in bands]
    if img.ndim != 3 or img.shape[0] != len(names):
        raise ParameterError(f"expected an image (band, y, x) with {len(names)} bands {names}; got shape {img.shape}")
    missing = [b for b in _NEEDED if b not in names]
    if missing or not ({"nir", "nir08"} & set(names)):
        raise UnknownBandError(f"DCVA with Presto needs bands {list(_NEEDED)} and nir or nir08; the image "
                               f"has {names} (missing {missing or ['nir']})")
    return {b: i for i, b in enumerate(names)}


def _inputs(imgs: Sequence[np.ndarray], bi: dict[str, int]) -> tuple[Any, Any]:
    """Presto inputs [P, T, 17] and mask [P, T, 17] (1 = missing) of T images (band, y, x)."""
    import torch

    t = len(imgs)
    p = imgs[0].shape[1] * imgs[0].shape[2]
    x = torch.zeros(p, t, 17)
    m = torch.ones(p, t, 17)
    for k, img in enumerate(imgs):
        flat = torch.as_tensor(np.asarray(img, np.float32).reshape(img.shape[0], -1).T)  # (P, B)
        ok = torch.isfinite(flat)
        flat = torch.where(ok, flat, torch.zeros_like(flat))
        for b, j in PRESTO_INPUT.items():
            if b in bi:
                x[:, k, j], m[:, k, j] = flat[:, bi[b]], (~ok[:, bi[b]]).float()
        if "nir" not in bi:  # Landsat: its one NIR band fills S2's 10 m NIR (B8)
            x[:, k, 8], m[:, k, 8] = flat[:, bi["nir08"]], (~ok[:, bi["nir08"]]).float()
        nir = x[:, k, 8]
        red = x[:, k, 4]
        x[:, k, 16] = (nir - red) / (nir + red).abs().clamp_min(1e-3)
        m[:, k, 16] = torch.maximum(m[:, k, 8], m[:, k, 4])
    return x, m


def _encoder() -> Any:
    from rsvlm_temporal.model.presto import PrestoEncoder
    from rsvlm_temporal.model.pretrained import load_safetensors, weights_path

    enc = PrestoEncoder()
    enc.load_state_dict(load_safetensors(weights_path("presto-encoder")), strict=True)
    enc.eval()
    enc.requires_grad_(False)
    return enc


def _kept_tokens(enc: Any, x: Any, m: Any, latlon: Any, month: Any) -> tuple[Any, Any]:
    """Presto's encoded tokens [P, 1 + N, 128] and their time step [1 + N] (-1: location), built
    only for the band groups present in the batch (S1, ERA5, SRTM and Dynamic World are absent
    from optical reflectance): the same as Presto with those groups masked, since a masked token
    is no key of the attention and its own output is discarded, at about half the compute."""
    import torch

    from rsvlm_temporal.model.presto import GROUPS

    b, t, _ = x.shape
    me, pe = enc.month_embed(month.long() % 12), enc.pos_embed[:, :t].expand(b, t, -1)
    toks, steps = [], []
    for gi, (g, idx) in enumerate(GROUPS.items()):
        if g in ("S1", "ERA5", "SRTM") or bool(m[:, :, idx].amax(-1).gt(0).all()):
            continue
        ce = enc.channel_embed.weight[gi].expand(b, t, -1)
        toks.append(enc.eo_patch_embed[g](x[:, :, idx]) + torch.cat([me, ce, pe], -1))
        steps.extend(range(t))
    lat, lon = torch.deg2rad(latlon[:, 0]), torch.deg2rad(latlon[:, 1])
    xyz = torch.stack([lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()], -1)
    h = torch.cat([enc.latlon_embed(xyz)[:, None]] + toks, 1)
    for blk in enc.blocks:
        h = blk(h, None)
    return h, torch.tensor([-1] + steps)


def presto_embeddings(imgs: Sequence[np.ndarray], bands: Sequence[str], months: Sequence[int],
                      latlon: tuple[float, float] = (0.0, 0.0), mode: str = "single",
                      batch: int = 16384) -> list[np.ndarray]:
    """Per-date Presto embeddings (128, y, x) float32 of images ``imgs`` (each (band, y, x),
    reflectance 0-1, NaN invalid, one grid), ``months`` 0-11 of each date, ``latlon`` degrees
    (WGS 84) of the scene. ``mode="single"``: each date its own one-step series (the pooled,
    LayerNorm'd embedding); ``"pair"``: one series of all dates, each date's tokens averaged."""
    import torch

    if mode not in DCVA_MODES:
        raise ParameterError(f"DCVA mode {mode!r} unknown; expected one of {list(DCVA_MODES)}")
    bi = _check(imgs[0], bands)
    h, w = imgs[0].shape[1:]
    x, m = _inputs(imgs, bi)
    enc = _encoder()
    t = len(imgs)
    out = np.empty((t, 128, h * w), np.float32)
    ll_all = torch.tensor(latlon, dtype=torch.float32)[None]
    with torch.inference_mode():
        for s in range(0, h * w, batch):
            e = min(h * w, s + batch)
            n = e - s
            ll = ll_all.expand(n, 2)
            if mode == "single":  # Presto's pooled output: the mean of all kept tokens
                for k in range(t):
                    mon = torch.full((n, 1), int(months[k]) % 12)
                    hid, _ = _kept_tokens(enc, x[s:e, k:k + 1], m[s:e, k:k + 1], ll, mon)
                    out[k, :, s:e] = enc.norm(hid.mean(1)).T.numpy()
            else:
                mon = torch.as_tensor([int(v) % 12 for v in months])[None].expand(n, t)
                hid, steps = _kept_tokens(enc, x[s:e], m[s:e], ll, mon)
                for k in range(t):
                    out[k, :, s:e] = enc.norm(hid[:, steps == k].mean(1)).T.numpy()
    return [o.reshape(128, h, w) for o in out]


def dcva_magnitude(before: np.ndarray, after: np.ndarray, bands: Sequence[str],
                   dates: tuple[dt.date, dt.date], latlon: tuple[float, float] = (0.0, 0.0),
                   mode: str = "single", keep_share: float = 0.5) -> np.ndarray:
    """DCVA magnitude (y, x) float32 (unitless, ~1 for no change; NaN where either date is
    invalid) between ``before`` and ``after`` ((band, y, x) reflectance 0-1 on one grid, band
    names ``bands``), from Presto embeddings (see the module docstring). ``keep_share``: share of
    the 128 features kept, those whose standardised differences spread most (DCVA's selection)."""
    if not 0 < keep_share <= 1:
        raise ParameterError(f"keep_share must be in (0, 1]; got {keep_share}")
    valid = np.isfinite(before).all(0) & np.isfinite(after).all(0)
    if not valid.any():
        raise ParameterError("no pixel is valid in both dates; nothing to compare")
    fb, fa = presto_embeddings([before, after], bands, [dates[0].month - 1, dates[1].month - 1], latlon, mode)
    d = (fa - fb)[:, valid].astype(np.float64)  # (128, n)
    med = np.median(d, axis=1, keepdims=True)
    mad = 1.4826 * np.median(np.abs(d - med), axis=1, keepdims=True)
    spread = np.std(d, axis=1)
    k = max(1, int(round(keep_share * d.shape[0])))
    sel = np.argsort(spread)[::-1][:k]
    z = (d[sel] - med[sel]) / np.maximum(mad[sel], 1e-9)
    mag = np.full(before.shape[1:], np.nan, np.float32)
    mag[valid] = (np.sqrt((z ** 2).sum(0) / k)).astype(np.float32)
    return mag
