"""Georeferencing helpers shared by the cube, the change products and the exports."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from affine import Affine

from rsvlm_temporal.errors import GridError, InsufficientDataError


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


# --- helpers for the evidence and export stages -------------------------------------------------



def bounds_of(da: xr.DataArray) -> tuple[float, float, float, float]:
    """``(left, bottom, right, top)`` of a 2-D raster in its CRS (metres), from transform + shape."""
    t = transform_of(da)
    h, w = int(da.sizes["y"]), int(da.sizes["x"])
    xs = [t.c, t.c + t.a * w + t.b * h, t.c + t.a * w, t.c + t.b * h]
    ys = [t.f, t.f + t.d * w + t.e * h, t.f + t.d * w, t.f + t.e * h]
    return (min(xs), min(ys), max(xs), max(ys))


def to_lonlat(x: Any, y: Any, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """Project CRS coordinates ``x``/``y`` to longitude/latitude (EPSG:4326, degrees)."""
    from pyproj import Transformer

    tr = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon, lat = tr.transform(np.asarray(x, dtype="float64"), np.asarray(y, dtype="float64"))
    return np.asarray(lon), np.asarray(lat)


def lonlat_bounds(
    bounds: tuple[float, float, float, float], crs: str
) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` in degrees (EPSG:4326) of CRS ``bounds``, edges densified."""
    from pyproj import Transformer

    tr = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    w, s, e, n = tr.transform_bounds(*bounds, densify_pts=21)
    return (float(w), float(s), float(e), float(n))


def require_georef(da: xr.DataArray, what: str = "raster") -> None:
    """Raise :class:`GridError` unless ``da`` is 2-D ``(y, x)`` with ``crs`` and ``transform`` attrs
    and a projected CRS in metres (areas in hectares need one)."""
    from pyproj import CRS

    if tuple(da.dims) != ("y", "x"):
        raise GridError(f"{what} has dims {tuple(da.dims)}; expected a 2-D raster with dims ('y', 'x')")
    missing = [k for k in ("crs", "transform") if k not in da.attrs]
    if missing:
        raise GridError(
            f"{what} lacks the georeferencing attrs {missing}; expected attrs 'crs' ('EPSG:32633') "
            "and 'transform' (6 affine floats) as in docs/CONTRACTS.md"
        )
    crs = CRS.from_user_input(da.attrs["crs"])
    if not crs.is_projected:
        raise GridError(
            f"{what} is in {da.attrs['crs']}, a geographic CRS; expected a projected CRS in metres "
            "(e.g. the UTM zone of the AOI) so that pixel areas are in square metres"
        )


def require_same_grid(ref: xr.DataArray, other: xr.DataArray, what: str) -> None:
    """Raise :class:`GridError` unless ``other`` has the shape and transform of ``ref``."""
    if tuple(other.dims) != ("y", "x") or other.shape != ref.shape:
        raise GridError(
            f"{what} has dims {tuple(other.dims)} and shape {other.shape}; expected ('y', 'x') with "
            f"shape {ref.shape} (the grid of the class raster)"
        )
    if "transform" in other.attrs and not np.allclose(
        np.asarray(other.attrs["transform"][:6], float), np.asarray(ref.attrs["transform"][:6], float)
    ):
        raise GridError(
            f"{what} has transform {tuple(other.attrs['transform'][:6])}; expected the class "
            f"raster's {tuple(ref.attrs['transform'][:6])}"
        )


def extent_of(da: xr.DataArray) -> tuple[float, float, float, float]:
    """``(left, bottom, right, top)`` in CRS metres of a raster or cube: from its ``x``/``y``
    pixel-centre coordinates (plus half a pixel) when it has them, else from ``transform``."""
    if "x" in da.coords and "y" in da.coords and da.sizes.get("x", 0) and da.sizes.get("y", 0):
        xs = np.asarray(da["x"].values, float)
        ys = np.asarray(da["y"].values, float)
        if "transform" in da.attrs:
            t = transform_of(da)
            hx, hy = abs(t.a) / 2, abs(t.e) / 2
        else:
            hx = abs(xs[1] - xs[0]) / 2 if xs.size > 1 else 0.0
            hy = abs(ys[1] - ys[0]) / 2 if ys.size > 1 else 0.0
        return (float(xs.min() - hx), float(ys.min() - hy), float(xs.max() + hx), float(ys.max() + hy))
    if "transform" not in da.attrs:
        raise GridError(
            f"raster with dims {tuple(da.dims)} has neither x/y coordinates nor a 'transform' attr; "
            "expected one of them to tell its extent"
        )
    return bounds_of(da)


def extent_of_pixels(
    da: xr.DataArray, rows: Any, cols: Any
) -> tuple[float, float, float, float] | None:
    """``(left, bottom, right, top)`` in CRS metres of the bounding box of the pixels of ``da``
    selected by ``rows`` (y,) and ``cols`` (x,) boolean masks (e.g. ``valid.any("x")`` and
    ``valid.any("y")``); None when no pixel is selected."""
    r = np.flatnonzero(np.asarray(rows, bool))
    c = np.flatnonzero(np.asarray(cols, bool))
    if r.size == 0 or c.size == 0:
        return None
    return extent_of(da.isel(y=slice(r[0], r[-1] + 1), x=slice(c[0], c[-1] + 1)))


def format_bounds(bounds: tuple[float, float, float, float] | None, crs: str | None = None) -> str:
    """Bounds as ``"(left, bottom, right, top) in CRS"`` (metres, rounded), or ``"nowhere"``."""
    if bounds is None:
        return "nowhere"
    text = "(" + ", ".join(f"{v:.1f}" for v in bounds) + ")"
    return f"{text} in {crs}" if crs else text


def require_overlap(a: xr.DataArray, b: xr.DataArray, what_a: str = "before",
                    what_b: str = "after") -> tuple[float, float, float, float]:
    """The intersection ``(left, bottom, right, top)`` (CRS metres) of two rasters' extents;
    raises :class:`GridError` when their CRS differ and :class:`InsufficientDataError`, naming
    both extents, when they do not overlap (touching edges are no overlap)."""
    ca, cb = a.attrs.get("crs"), b.attrs.get("crs")
    if ca is not None and cb is not None and str(ca) != str(cb):
        raise GridError(f"{what_a} is in {ca} and {what_b} in {cb}; expected one CRS (reproject first)")
    ea, eb = extent_of(a), extent_of(b)
    inter = (max(ea[0], eb[0]), max(ea[1], eb[1]), min(ea[2], eb[2]), min(ea[3], eb[3]))
    if not (inter[0] < inter[2] and inter[1] < inter[3]):
        crs = str(ca or cb or "their CRS")
        raise InsufficientDataError(
            f"{what_a} covers {format_bounds(ea, crs)} and {what_b} covers {format_bounds(eb, crs)}: "
            "they do not overlap, so there is nothing to compare; expected two rasters of the same area"
        )
    return inter
