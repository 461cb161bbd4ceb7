"""Pixel rendering shared by the viewer: colour ramps, colour bars, text, resizing (uint8 RGB)."""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from rsvlm_temporal.errors import ParameterError, unknown_name

RGB = tuple[int, int, int]

#: colour ramps as anchor colours, low -> high (viridis, an NDVI brown-green, a water ramp,
#: and a time ramp for change dates)
RAMPS: dict[str, tuple[RGB, ...]] = {
    "viridis": ((68, 1, 84), (72, 40, 120), (62, 74, 137), (49, 104, 142), (38, 130, 142),
                (31, 158, 137), (53, 183, 121), (109, 205, 89), (180, 222, 44), (253, 231, 37)),
    "vegetation": ((140, 81, 10), (191, 129, 45), (223, 194, 125), (246, 232, 195), (199, 234, 229),
                   (161, 215, 106), (90, 174, 97), (27, 120, 55), (0, 68, 27)),
    "burn": ((103, 0, 13), (203, 24, 29), (251, 106, 74), (252, 187, 161), (255, 245, 240),
             (199, 233, 192), (116, 196, 118), (35, 139, 69), (0, 68, 27)),
    "water": ((140, 81, 10), (216, 179, 101), (246, 232, 195), (199, 234, 229), (90, 180, 172),
              (1, 102, 94), (8, 48, 107)),
    "time": ((13, 8, 135), (126, 3, 168), (204, 71, 120), (248, 149, 64), (240, 249, 33)),
}
#: colour of masked (cloud, shadow, nodata) pixels in a frame
MASKED_RGB: RGB = (236, 236, 240)
#: background of panels drawn by the viewer
PANEL_RGB: RGB = (255, 255, 255)
TEXT_RGB: RGB = (32, 36, 44)


@lru_cache(maxsize=16)
def font(size: int = 14) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """PIL's bundled scalable font at ``size`` px (no system font needed)."""
    return ImageFont.load_default(size=size)


def ramp(values: np.ndarray, name: str = "viridis") -> np.ndarray:
    """Values 0-1 (NaN allowed, shown as :data:`MASKED_RGB`) -> uint8 RGB through ramp ``name``."""
    if name not in RAMPS:
        raise unknown_name("colour ramp", name, RAMPS)
    stops = np.asarray(RAMPS[name], dtype=np.float32)
    v = np.asarray(values, dtype=np.float32)
    bad = ~np.isfinite(v)
    pos = np.clip(np.where(bad, 0, v), 0, 1) * (len(stops) - 1)
    lo = np.floor(pos).astype(np.int32).clip(0, len(stops) - 2)
    frac = (pos - lo)[..., None]
    out = (stops[lo] * (1 - frac) + stops[lo + 1] * frac + 0.5).astype(np.uint8)
    out[bad] = MASKED_RGB
    return out


def scale01(values: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """``(values - vmin) / (vmax - vmin)``, clipped to 0-1 (NaN kept)."""
    if not vmax > vmin:
        raise ParameterError(f"colour range needs vmax > vmin; got {vmin}..{vmax}")
    return np.clip((np.asarray(values, np.float32) - vmin) / (vmax - vmin), 0, 1)


def colorbar(ramp_name: str, vmin: float, vmax: float, label: str, width: int = 360,
             ticks: Sequence[tuple[float, str]] | None = None) -> np.ndarray:
    """A horizontal colour bar (uint8 RGB, ``width`` px wide) with tick labels and a title."""
    h_bar, pad = 14, 8
    img = Image.new("RGB", (width, 58), PANEL_RGB)
    bar = ramp(np.tile(np.linspace(0, 1, width - 2 * pad, dtype=np.float32), (h_bar, 1)), ramp_name)
    img.paste(Image.fromarray(bar), (pad, 20))
    d = ImageDraw.Draw(img)
    d.text((pad, 2), label, fill=TEXT_RGB, font=font(13))
    if ticks is None:
        ticks = [(v, f"{v:g}") for v in np.linspace(vmin, vmax, 5).round(2)]
    for v, text in ticks:
        x = pad + (width - 2 * pad - 1) * (v - vmin) / (vmax - vmin)
        d.line([(x, 20 + h_bar), (x, 20 + h_bar + 4)], fill=TEXT_RGB)
        tw = d.textlength(text, font=font(12))
        d.text((min(max(x - tw / 2, 0), width - tw), 20 + h_bar + 6), text, fill=TEXT_RGB, font=font(12))
    return np.asarray(img)


def resize_nearest(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``a`` (h, w[, c]) resampled to ``shape`` (rows, cols) by nearest neighbour."""
    h, w = a.shape[:2]
    if (h, w) == tuple(shape):
        return a
    rows = (np.arange(shape[0]) * h // shape[0]).clip(0, h - 1)
    cols = (np.arange(shape[1]) * w // shape[1]).clip(0, w - 1)
    return a[rows][:, cols]


def upscale_to(img: np.ndarray, min_side: int) -> np.ndarray:
    """``img`` enlarged by an integer factor (nearest) so that its short side is >= ``min_side``."""
    k = max(1, -(-min_side // max(1, min(img.shape[:2]))))
    return img if k == 1 else np.repeat(np.repeat(img, k, axis=0), k, axis=1)


def hex_color(rgb: Sequence[int]) -> str:
    """``#rrggbb`` of an RGB triple."""
    return "#{:02x}{:02x}{:02x}".format(*(int(v) for v in rgb[:3]))


def draw_caption(img: np.ndarray, lines: Sequence[str], size: int = 16) -> np.ndarray:
    """``img`` with ``lines`` burnt into a dark band at its top (uint8 RGB)."""
    pil = Image.fromarray(np.ascontiguousarray(img[..., :3]))
    f = font(size)
    band = (size + 6) * len(lines) + 6
    overlay = Image.new("RGBA", pil.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(overlay)
    d.rectangle([(0, 0), (pil.size[0], band)], fill=(16, 20, 28, 170))
    for i, line in enumerate(lines):
        d.text((8, 4 + i * (size + 6)), line, fill=(255, 255, 255, 255), font=f)
    return np.asarray(Image.alpha_composite(pil.convert("RGBA"), overlay).convert("RGB"))


def mark_pixel(img: np.ndarray, row: int, col: int, grid: tuple[int, int],
               color: RGB = (255, 255, 255)) -> np.ndarray:
    """``img`` (any enlargement of a ``grid`` (rows, cols) frame) with a ring around pixel
    (row, col) of the grid: where the pixel series comes from."""
    h, w = img.shape[:2]
    sy, sx = h / grid[0], w / grid[1]
    cy, cx = (row + 0.5) * sy, (col + 0.5) * sx
    r = max(5.0, 1.5 * max(sy, sx))
    pil = Image.fromarray(np.ascontiguousarray(img[..., :3]))
    d = ImageDraw.Draw(pil)
    d.ellipse([(cx - r - 1, cy - r - 1), (cx + r + 1, cy + r + 1)], outline=(0, 0, 0), width=1)
    d.ellipse([(cx - r, cy - r), (cx + r, cy + r)], outline=color, width=2)
    return np.asarray(pil)
