"""Georeferencing helpers shared by the cube, the change products and the exports."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from affine import Affine


def transform_of(da: xr.DataArray) -> Affine:
    """The rasterio ``Affine`` of a cube or 2-D raster (from its ``transform`` attr)."""
    return Affine(*da.attrs["transform"][:6])


def crs_of(da: xr.DataArray) -> str:
    """The CRS string (``"EPSG:32633"``) of a cube or 2-D raster."""
    return str(da.attrs["crs"])


def georef_attrs(da: xr.DataArray) -> dict[str, Any]:
    """The georeferencing attrs (crs, epsg, transform, resolution) to copy onto a derived raster."""
    return {k: da.attrs[k] for k in ("crs", "epsg", "transform", "resolution") if k in da.attrs}


def pixel_area_m2(da: xr.DataArray) -> float:
    """Area of one pixel in square metres (projected CRS in metres)."""
    t = transform_of(da)
    return float(abs(t.a * t.e - t.b * t.d))


def coords_for(transform: Affine, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Pixel-centre ``y``/``x`` coordinate arrays for a grid."""
    h, w = shape
    xs = transform.c + transform.a * (np.arange(w) + 0.5)
    ys = transform.f + transform.e * (np.arange(h) + 0.5)
    return {"y": ys, "x": xs}
