"""PNG quicklooks of class and continuous rasters, from a strided / block-averaged view (the
raster is never loaded whole), coloured from the shared class table.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import dask.array as dsa
import numpy as np
import xarray as xr

from rsvlm_temporal.atomic import atomic_path
from rsvlm_temporal.classes import class_color
from rsvlm_temporal.compute.blocks import (
    class_names_of,
    date_block_to_days,
    nodata_of,
)
from rsvlm_temporal.errors import GridError, unknown_name

#: colour ramp of continuous quicklooks (viridis anchors, low -> high)
RAMP: tuple[tuple[int, int, int], ...] = (
    (68, 1, 84), (72, 40, 120), (62, 74, 137), (49, 104, 142), (38, 130, 142),
    (31, 158, 137), (53, 183, 121), (109, 205, 89), (180, 222, 44), (253, 231, 37),
)


# --------------------------------------------------------------------------------------------
# PNG quicklooks


def _nanmean(x: np.ndarray, axis: Any = None) -> np.ndarray:
    """Mean ignoring NaN; NaN where every value is NaN (no warning, thread-safe)."""
    ok = ~np.isnan(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, x, 0).sum(axis=axis) / ok.sum(axis=axis)


def _downsample_mean(arr: dsa.Array, step: int) -> np.ndarray:
    """Block means of ``step`` x ``step`` pixels over the last two axes (NaN ignored), computed
    block by block; the result is small."""
    arr = arr.astype("float32")
    if step == 1:
        return np.asarray(arr.compute())
    pad = [(0, 0)] * (arr.ndim - 2) + [(0, (-arr.shape[-2]) % step), (0, (-arr.shape[-1]) % step)]
    arr = dsa.pad(arr, pad, mode="constant", constant_values=np.nan)
    target = {ax: max(step, (max(arr.chunks[ax]) // step) * step) for ax in (arr.ndim - 2, arr.ndim - 1)}
    arr = arr.rechunk(target)
    axes = {arr.ndim - 2: step, arr.ndim - 1: step}
    return np.asarray(dsa.coarsen(_nanmean, arr, axes, trim_excess=True).compute())


def _ramp(values: np.ndarray) -> np.ndarray:
    """Values 0-1 (NaN allowed) -> RGB uint8 through :data:`RAMP`."""
    stops = np.asarray(RAMP, dtype="float64")
    pos = np.clip(np.nan_to_num(values, nan=0.0), 0, 1) * (len(stops) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(stops) - 2)
    frac = (pos - lo)[..., None]
    return (stops[lo] * (1 - frac) + stops[lo + 1] * frac).round().astype("uint8")


def write_quicklook_png(
    da: xr.DataArray,
    path: str | os.PathLike[str],
    kind: str = "class",
    max_size: int = 1024,
    class_names: Mapping[int, str] | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    bands: Sequence[Any] | None = None,
) -> Path:
    """Write an RGBA PNG quicklook, at most ``max_size`` pixels on its long side.

    - ``kind="class"``: ``(y, x)`` class codes, fixed colour per class (:func:`class_color`),
      nodata / unnamed codes transparent; downsampled by striding (nearest).
    - ``kind="rgb"``: ``(band, y, x)`` reflectance, 3 bands (or ``bands`` picked from the
      ``band`` coord, e.g. ``("red", "green", "blue")``), 2-98 % stretch per band.
    - ``kind="continuous"``: ``(y, x)`` values through a viridis-like ramp from ``vmin`` to
      ``vmax`` (default the 2nd and 98th percentiles); NaN transparent.

    Block means (rgb, continuous) or strides (class) are computed from the dask blocks, never
    the full raster. Written atomically; returns ``path``.
    """
    from PIL import Image

    if kind not in ("class", "rgb", "continuous"):
        raise unknown_name("quicklook kind", kind, ("class", "rgb", "continuous"))
    if kind == "rgb":
        if bands is not None:
            da = da.sel(band=list(bands))
        if da.ndim != 3 or da.shape[0] != 3 or tuple(da.dims[-2:]) != ("y", "x"):
            raise GridError(f"rgb quicklook got dims {da.dims} shape {da.shape}; expected "
                            "('band', 'y', 'x') with 3 bands (or bands=('red', 'green', 'blue'))")
    elif tuple(da.dims) != ("y", "x"):
        raise GridError(f"{kind} quicklook got dims {da.dims}; expected ('y', 'x')")
    h, w = da.shape[-2:]
    step = max(1, math.ceil(max(h, w) / max_size))
    if kind == "class":
        names = class_names_of(da, class_names) if (class_names or da.attrs.get("class_names")) else {}
        strided = da.data[::step, ::step]
        small = strided.compute() if isinstance(strided, dsa.Array) else np.asarray(strided)
        codes = np.unique(small[~np.isnan(small)] if small.dtype.kind == "f" else small)
        rgba = np.zeros(small.shape + (4,), dtype="uint8")
        nodata = nodata_of(da)
        for code in codes:
            if (names and int(code) not in names) or (not names and nodata is not None and code == nodata):
                continue
            rgba[small == code] = (*class_color(int(code), names.get(int(code))), 255)
    else:
        data = da.data
        if np.issubdtype(data.dtype, np.datetime64):
            data = (dsa.asarray(data) if not isinstance(data, dsa.Array) else data).map_blocks(
                date_block_to_days, dtype="float64")
        arr = data if isinstance(data, dsa.Array) else dsa.from_array(np.asarray(data), chunks=512)
        small = _downsample_mean(arr, step)
        if kind == "rgb":
            out = np.zeros(small.shape[1:] + (3,), dtype="uint8")
            ok = np.all(np.isfinite(small), axis=0)
            for i in range(3):
                band = small[i]
                lo, hi = (np.percentile(band[ok], [2, 98]) if ok.any() else (0.0, 1.0))
                out[..., i] = (np.clip((band - lo) / max(hi - lo, 1e-12), 0, 1) * 255).round().astype("uint8")
        else:
            ok = np.isfinite(small)
            lo, hi = (np.percentile(small[ok], [2, 98]) if ok.any() else (0.0, 1.0))
            lo = lo if vmin is None else vmin
            hi = hi if vmax is None else vmax
            out = _ramp((small - lo) / max(hi - lo, 1e-12))
        rgba = np.dstack([out, np.where(ok, 255, 0).astype("uint8")])
    with atomic_path(path) as tmp:
        Image.fromarray(rgba).save(tmp, format="PNG")
    return Path(path)
