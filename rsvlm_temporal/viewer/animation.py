"""Animated GIF / MP4 of the series with each frame's date, sensor and clear share burnt in."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from rsvlm_temporal.errors import InsufficientDataError, ParameterError
from rsvlm_temporal.viewer.frames import VIEWS, FrameStore
from rsvlm_temporal.viewer.render import draw_caption, upscale_to

log = logging.getLogger(__name__)

FORMATS = ("gif", "mp4")


def captioned_frames(store: FrameStore, view: str, frames: Sequence[int],
                     decorate: Callable[[np.ndarray], np.ndarray] | None = None,
                     min_side: int = 240) -> list[np.ndarray]:
    """Frames ``frames`` of ``view`` (optionally passed through ``decorate``, e.g. a class
    overlay), enlarged to at least ``min_side`` px and captioned with date, sensor, clear share."""
    out = []
    for i in frames:
        img = store.frame(i, view)
        if decorate is not None:
            img = decorate(img)
        img = upscale_to(img, min_side)
        out.append(draw_caption(img, [store.infos[i].caption(), VIEWS[view].label],
                                size=max(12, img.shape[0] // 28)))
    return out


def _even(img: np.ndarray, block: int = 16) -> np.ndarray:
    """Pad to a multiple of ``block`` px (the H.264 macroblock) with edge pixels."""
    h, w = img.shape[:2]
    return np.pad(img, ((0, (-h) % block), (0, (-w) % block), (0, 0)), mode="edge")


def export_animation(store: FrameStore, path: str | os.PathLike[str], view: str = "true_colour",
                     fmt: str | None = None, fps: float = 4.0, min_clear: float = 0.0,
                     decorate: Callable[[np.ndarray], np.ndarray] | None = None,
                     min_side: int = 240) -> Path:
    """Write the frames with clear share >= ``min_clear`` as an animated GIF or an H.264 MP4
    (``fmt``, default from the suffix) at ``fps`` frames per second, atomically."""
    import imageio.v2 as imageio

    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise ParameterError(f"animation format {fmt!r} is unknown; expected one of {list(FORMATS)}")
    if not fps > 0:
        raise ParameterError(f"fps must be > 0; got {fps}")
    frames = store.visible(min_clear)
    if not frames:
        raise InsufficientDataError(f"no frame has a clear share >= {min_clear:.0%}: lower the filter")
    images = captioned_frames(store, view, frames, decorate, min_side)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".{fmt}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)  # ends in .gif / .mp4: the writers pick the format from the suffix
    try:
        if fmt == "gif":
            from PIL import Image  # fast octree palettes: 20x faster than imageio's default GIF writer

            pal = [Image.fromarray(img).quantize(colors=192, method=Image.Quantize.FASTOCTREE) for img in images]
            pal[0].save(tmp, format="GIF", save_all=True, append_images=pal[1:],
                        duration=int(round(1000.0 / fps)), loop=0)
        else:
            writer = imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                        pixelformat="yuv420p", macro_block_size=1,
                                        ffmpeg_log_level="error")
            try:
                for img in images:
                    writer.append_data(_even(img))
            finally:
                writer.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("wrote %s: %d frames of %s", path, len(images), view)
    return path
