"""A one-page report PNG: maps, legend, area table, caption and data-quality notes."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from rsvlm_temporal.atomic import atomic_path
from rsvlm_temporal.errors import ParameterError
from rsvlm_temporal.viewer.overlay import LegendEntry
from rsvlm_temporal.viewer.render import TEXT_RGB, font, resize_nearest

PAGE_WIDTH = 1400
MARGIN = 40
MUTED = (96, 104, 118)


def _wrap(d: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, size: int, width: int,
          fill: tuple[int, int, int] = TEXT_RGB) -> int:
    """Draw ``text`` wrapped to ``width`` px at ``xy``; return the y below it."""
    x, y = xy
    f = font(size)
    chars = max(20, int(width / (size * 0.52)))
    for para in text.split("\n"):
        for line in textwrap.wrap(para, chars) or [""]:
            d.text((x, y), line, fill=fill, font=f)
            y += size + 6
    return y


def report_png(path: str | os.PathLike[str], *, title: str, subtitle: str,
               maps: Sequence[tuple[str, np.ndarray]], legend: Sequence[LegendEntry],
               areas: Sequence[dict[str, object]], caption: str, notes: Sequence[str],
               footer: str = "rsvlm-temporal") -> Path:
    """Write a one-page report (PNG, ``PAGE_WIDTH`` px wide) atomically and return its path.

    ``maps``: (title, uint8 RGB) panels, laid out in rows of three; ``areas``: rows of
    :func:`rsvlm_temporal.viewer.layers.area_table`; ``caption``: the change caption or
    evidence summary; ``notes``: data-quality notes."""
    if not maps:
        raise ParameterError("a report needs at least one map")
    cols = min(3, len(maps))
    panel = (PAGE_WIDTH - 2 * MARGIN - (cols - 1) * 20) // cols
    rows = -(-len(maps) // cols)
    height = 160 + rows * (panel + 40) + 120 + 26 * (len(areas) + 2) + 40 * (len(notes) + 6) + 200
    page = Image.new("RGB", (PAGE_WIDTH, height), (255, 255, 255))
    d = ImageDraw.Draw(page)
    d.rectangle([(0, 0), (PAGE_WIDTH, 8)], fill=(178, 24, 43))
    d.text((MARGIN, 28), title, fill=TEXT_RGB, font=font(34))
    d.text((MARGIN, 74), subtitle, fill=MUTED, font=font(17))
    y = 120
    for k, (name, img) in enumerate(maps):
        r, c = divmod(k, cols)
        x0, y0 = MARGIN + c * (panel + 20), y + r * (panel + 40)
        h, w = img.shape[:2]
        scale = panel / max(h, w)
        small = resize_nearest(img[..., :3], (max(1, int(h * scale)), max(1, int(w * scale))))
        d.text((x0, y0), name, fill=TEXT_RGB, font=font(17))
        page.paste(Image.fromarray(np.ascontiguousarray(small)), (x0, y0 + 26))
        d.rectangle([(x0 - 1, y0 + 25), (x0 + small.shape[1], y0 + 26 + small.shape[0])], outline=(200, 200, 206))
    y += rows * (panel + 40) + 10
    # legend
    x = MARGIN
    for e in legend:
        rgb = tuple(int(e.color[i:i + 2], 16) for i in (1, 3, 5))
        d.rectangle([(x, y + 3), (x + 16, y + 19)], fill=rgb, outline=(120, 120, 120))
        d.text((x + 22, y), e.label, fill=TEXT_RGB, font=font(16))
        x += 40 + int(d.textlength(e.label, font=font(16)))
        if x > PAGE_WIDTH - 220:
            x, y = MARGIN, y + 26
    y += 46
    # area table
    d.text((MARGIN, y), "Area per class", fill=TEXT_RGB, font=font(20))
    y += 32
    cols_x = (MARGIN, MARGIN + 300, MARGIN + 460)
    for cx, head in zip(cols_x, ("class", "area (ha)", "% of valid area")):
        d.text((cx, y), head, fill=MUTED, font=font(15))
    y += 24
    for row in areas:
        for cx, val in zip(cols_x, (str(row["label"]), f"{float(row['area_ha']):,.2f}",  # type: ignore[arg-type]
                                     f"{float(row['percent']):.2f}")):  # type: ignore[arg-type]
            d.text((cx, y), val, fill=TEXT_RGB, font=font(16))
        y += 24
    y += 20
    d.text((MARGIN, y), "Summary", fill=TEXT_RGB, font=font(20))
    y = _wrap(d, (MARGIN, y + 32), caption, 16, PAGE_WIDTH - 2 * MARGIN) + 16
    d.text((MARGIN, y), "Data quality", fill=TEXT_RGB, font=font(20))
    y += 32
    for note in notes or ["no data-quality note"]:
        y = _wrap(d, (MARGIN, y), f"- {note}", 15, PAGE_WIDTH - 2 * MARGIN, MUTED)
    y += 20
    d.text((MARGIN, y), footer, fill=MUTED, font=font(13))
    page = page.crop((0, 0, PAGE_WIDTH, min(height, y + 40)))
    with atomic_path(path) as tmp:
        page.save(tmp, format="PNG")
    return Path(path)
