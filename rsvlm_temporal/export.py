"""Exports: Cloud-Optimized GeoTIFF, GeoJSON polygons (EPSG:4326) and PNG quicklooks.

Everything streams: rasters are written dask block by dask block (computed in batches of
bounded size, so the same code works with the threaded scheduler and a dask.distributed
Client), polygons are made per block and only the patches cut by block borders are merged,
quicklooks are computed from a strided / block-averaged view. Every write is atomic
(``rsvlm_temporal.atomic``): a failure leaves nothing under the final name.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import dask
import dask.array as dsa
import numpy as np
import rasterio
import rasterio.shutil
import shapely
import xarray as xr
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window
from scipy import ndimage
from shapely.geometry import shape as to_shape

from rsvlm_temporal import grid
from rsvlm_temporal.atomic import atomic_path
from rsvlm_temporal.classes import NODATA_CLASS
from rsvlm_temporal.evidence import (
    as_dask,
    block_offsets,
    block_valid,
    class_names_of,
    date_block_to_days,
    days_to_iso,
    label_block,
    merge_edge_patches,
    nodata_of,
)
from rsvlm_temporal.grid import GridError

# rasterio.features.shapes polygonises through an in-memory dataset and silences its
# NotGeoreferencedWarning with warnings.catch_warnings, which is not thread-safe: under the
# threaded dask scheduler the warning leaks. It is meaningless here (a transform is passed).
warnings.filterwarnings("ignore", category=NotGeoreferencedWarning, module=r"rasterio\.features")

#: code of the background class (``no_change`` / ``not_assessed`` in classes.py), not polygonised
BACKGROUND_CODE = 0
#: bytes of raster computed at once when writing a COG (a batch of dask blocks)
WRITE_BATCH_BYTES = 32 * 2**20
#: tag written on datetime rasters stored as int32 days
DATE_ENCODING = "int32 days since 1970-01-01; -1 = no date"
DATE_NODATA = -1

#: fixed colours of the named classes of rsvlm_temporal.classes (RGB 0-255)
NAME_COLORS: dict[str, tuple[int, int, int]] = {
    "no_change": (210, 210, 210),
    "burn": (178, 24, 43),
    "flood": (33, 102, 172),
    "vegetation_loss": (230, 145, 56),
    "vegetation_gain": (77, 175, 74),
    "built_up_gain": (152, 78, 163),
    "not_assessed": (210, 210, 210),
    "enhanced_regrowth": (26, 152, 80),
    "unburned": (166, 217, 106),
    "low": (255, 255, 115),
    "moderate_low": (255, 170, 0),
    "moderate_high": (230, 76, 0),
    "high": (168, 0, 132),
}
#: fallback colours by code (code modulo the length), for classes without a named colour
CODE_COLORS: tuple[tuple[int, int, int], ...] = (
    (210, 210, 210), (228, 26, 28), (55, 126, 184), (77, 175, 74), (152, 78, 163),
    (255, 127, 0), (255, 255, 51), (166, 86, 40), (247, 129, 191), (102, 194, 165),
    (141, 160, 203), (231, 138, 195), (166, 216, 84), (255, 217, 47), (229, 196, 148),
    (179, 179, 179),
)
#: colour ramp of continuous quicklooks (viridis anchors, low -> high)
RAMP: tuple[tuple[int, int, int], ...] = (
    (68, 1, 84), (72, 40, 120), (62, 74, 137), (49, 104, 142), (38, 130, 142),
    (31, 158, 137), (53, 183, 121), (109, 205, 89), (180, 222, 44), (253, 231, 37),
)


def class_color(code: int, name: str | None = None) -> tuple[int, int, int]:
    """The fixed RGB colour of a class: by name (:data:`NAME_COLORS`), else by code."""
    if name is not None and name in NAME_COLORS:
        return NAME_COLORS[name]
    return CODE_COLORS[int(code) % len(CODE_COLORS)]


# --------------------------------------------------------------------------------------------
# block plumbing (top-level functions: picklable for dask.distributed)


def _datetime_to_days(block: np.ndarray) -> np.ndarray:
    days = block.astype("datetime64[D]").astype("int64")
    days[np.isnat(block)] = DATE_NODATA
    return days.astype("int32")


def _to_uint8(block: np.ndarray) -> np.ndarray:
    return block.astype("uint8")


def _aligned(arr: dsa.Array, blocksize: int) -> dsa.Array:
    """Rechunk the last two axes to multiples of ``blocksize`` (whole tiles per write)."""
    def size(chunks: tuple[int, ...]) -> int:
        return max(1, round(max(chunks) / blocksize)) * blocksize

    spatial = {arr.ndim - 2: arr.chunks[-2], arr.ndim - 1: arr.chunks[-1]}
    if all(all(c % blocksize == 0 for c in ch[:-1]) for ch in spatial.values()) and \
            (arr.ndim == 2 or len(arr.chunks[0]) == 1):
        return arr
    new = {ax: size(ch) for ax, ch in spatial.items()}
    if arr.ndim == 3:
        new[0] = -1
    return arr.rechunk(new)


def _block_batches(arr: dsa.Array, max_bytes: int) -> Iterator[list[tuple[Window, Any]]]:
    """Batches of ``(window, delayed block)`` in row-major order, about ``max_bytes`` each."""
    rows0, cols0 = block_offsets(arr[0] if arr.ndim == 3 else arr)
    delayed = arr.to_delayed()
    if arr.ndim == 3:
        delayed = delayed[0]
    block_bytes = max(arr.chunks[-2]) * max(arr.chunks[-1]) * arr.dtype.itemsize * (
        arr.shape[0] if arr.ndim == 3 else 1)
    per_batch = max(1, max_bytes // max(1, block_bytes))
    batch: list[tuple[Window, Any]] = []
    for r, row0 in enumerate(rows0):
        for c, col0 in enumerate(cols0):
            window = Window(int(col0), int(row0), arr.chunks[-1][c], arr.chunks[-2][r])
            batch.append((window, delayed[r, c]))
            if len(batch) >= per_batch:
                yield batch
                batch = []
    if batch:
        yield batch


# --------------------------------------------------------------------------------------------
# COG


def write_cog(
    da: xr.DataArray,
    path: str | os.PathLike[str],
    nodata: float | int | None = None,
    class_names: Mapping[int, str] | None = None,
    description: str | None = None,
    blocksize: int = 512,
    resampling: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> Path:
    """Write a georeferenced raster (dims ``(y, x)`` or ``(band, y, x)``) as a Cloud-Optimized
    GeoTIFF: CRS and transform from the attrs, deflate, ``blocksize`` tiles, overviews.

    - ``nodata``: default the ``nodata`` attr; NaN for floats; 255 for uint8 class rasters.
    - bool -> uint8; datetime64 -> int32 days since 1970-01-01 with nodata -1 (tag
      ``VALUE_ENCODING``).
    - ``class_names`` (default the ``class_names`` attr): tag ``CLASS_NAMES`` (JSON
      ``{code: name}``) on the file and the band, plus a colour table for uint8 rasters.
    - ``resampling`` of the overviews: ``nearest`` for integer / bool / date rasters (classes,
      masks), ``average`` for floats, unless given.

    The dask array is computed in batches of blocks and written window by window into a tiled
    temporary GTiff, then GDAL's COG driver copies it (streaming); the result is renamed onto
    ``path`` only on success. Returns ``path``.
    """
    if da.ndim not in (2, 3) or tuple(da.dims[-2:]) != ("y", "x"):
        raise GridError(f"raster has dims {da.dims}; expected ('y', 'x') or ('band', 'y', 'x')")
    missing = [k for k in ("crs", "transform") if k not in da.attrs]
    if missing:
        raise GridError(f"raster lacks the attrs {missing}; expected 'crs' and 'transform'")
    if blocksize % 16:
        raise GridError(f"blocksize {blocksize} is not a multiple of 16, as GeoTIFF tiles must be")
    arr = as_dask(da) if da.ndim == 2 else (
        da.data if isinstance(da.data, dsa.Array) else dsa.from_array(np.asarray(da.data)))
    extra_tags: dict[str, str] = {}
    nodata = da.attrs.get("nodata") if nodata is None else nodata
    names = class_names if class_names is not None else da.attrs.get("class_names")
    names = {int(k): str(v) for k, v in dict(names).items()} if names else None
    kind = "categorical"
    if arr.dtype == bool:
        arr = arr.map_blocks(_to_uint8, dtype="uint8")
    elif np.issubdtype(arr.dtype, np.datetime64):
        arr = arr.map_blocks(_datetime_to_days, dtype="int32")
        nodata = DATE_NODATA
        extra_tags["VALUE_ENCODING"] = DATE_ENCODING
    elif np.issubdtype(arr.dtype, np.floating):
        kind = "continuous"
        nodata = float("nan") if nodata is None else nodata
    if nodata is None and names and arr.dtype == np.uint8:
        nodata = NODATA_CLASS
    resampling = resampling or ("average" if kind == "continuous" else "nearest")
    arr = _aligned(arr, blocksize)
    count = arr.shape[0] if arr.ndim == 3 else 1
    profile = dict(
        driver="GTiff", width=arr.shape[-1], height=arr.shape[-2], count=count,
        dtype=arr.dtype.name, crs=grid.crs_of(da), transform=grid.transform_of(da), nodata=nodata,
        tiled=True, blockxsize=blocksize, blockysize=blocksize, compress="deflate", zlevel=1,
        bigtiff="IF_SAFER",
    )
    final = Path(path)
    with atomic_path(final) as tmp:
        fd, src_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".src.tif", dir=final.parent)
        os.close(fd)
        src = Path(src_name)
        try:
            with rasterio.open(src, "w", **profile) as dst:
                all_tags = {**extra_tags, **{k: str(v) for k, v in (tags or {}).items()}}
                if names:
                    all_tags["CLASS_NAMES"] = json.dumps({str(k): v for k, v in sorted(names.items())})
                    dst.update_tags(1, CLASS_NAMES=all_tags["CLASS_NAMES"])
                    if arr.dtype == np.uint8 and count == 1:
                        cmap = {i: (0, 0, 0, 0) for i in range(256)}
                        cmap.update({c: (*class_color(c, n), 255) for c, n in names.items() if 0 <= c < 256})
                        dst.write_colormap(1, cmap)
                if "VALUE_ENCODING" in extra_tags:
                    dst.set_band_unit(1, "days since 1970-01-01")
                if description:
                    all_tags["DESCRIPTION"] = description
                    for b in range(1, count + 1):
                        dst.set_band_description(b, description if count == 1 else f"{description} {b}")
                if all_tags:
                    dst.update_tags(**all_tags)
                for batch in _block_batches(arr, WRITE_BATCH_BYTES):
                    values = dask.compute(*[blk for _, blk in batch])
                    for (window, _), block in zip(batch, values):
                        if count == 1:
                            dst.write(block, 1, window=window)
                        else:
                            dst.write(block, window=window)
            options = dict(compress="DEFLATE", blocksize=blocksize, bigtiff="IF_SAFER",
                           overview_resampling=resampling.upper())
            if kind == "continuous":
                options["predictor"] = "YES"
            rasterio.shutil.copy(src, tmp, driver="COG", **options)
        finally:
            for leftover in (src, Path(f"{src}.aux.xml"), Path(f"{src}.ovr"), Path(f"{tmp}.aux.xml")):
                leftover.unlink(missing_ok=True)
    return final


# --------------------------------------------------------------------------------------------
# GeoJSON polygons


def _geo_transform_fn(transform: tuple[float, ...], crs: str) -> Any:
    """Pixel frame ``(column, -row)`` -> lon/lat (EPSG:4326), rounded to 1e-7 degrees (~1 cm)."""
    from pyproj import Transformer

    a, b, c, d, e, f = transform[:6]
    tr = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)

    def fn(xy: np.ndarray) -> np.ndarray:
        col, row = xy[:, 0], -xy[:, 1]
        x = a * col + b * row + c
        y = d * col + e * row + f
        lon, lat = tr.transform(x, y)
        return np.round(np.column_stack([lon, lat]), 7)

    return fn


def _to_lonlat_geoms(geoms: Sequence[Any], transform: tuple[float, ...], crs: str) -> np.ndarray:
    """Geometries in the global pixel frame -> RFC 7946 lon/lat (exteriors counter-clockwise)."""
    arr = np.asarray(geoms, dtype=object)
    if arr.size == 0:
        return arr
    out = shapely.transform(arr, _geo_transform_fn(transform, crs))
    return shapely.orient_polygons(out, exterior_cw=False)


def _feature_json(geom: Any, props: Mapping[str, Any]) -> str:
    return ('{"type": "Feature", "properties": ' + json.dumps(dict(props))
            + ', "geometry": ' + shapely.to_geojson(geom) + "}")


def _patch_props(name: str, code: int, n_pixels: int, pix_ha: float, dmin: float, dmax: float,
                 with_dates: bool) -> dict[str, Any]:
    props: dict[str, Any] = {"class": name, "code": int(code), "area_ha": n_pixels * pix_ha,
                             "n_pixels": int(n_pixels)}
    if with_dates:
        finite = math.isfinite(dmin)
        props["first_date"] = days_to_iso(dmin) if finite else None
        props["last_date"] = days_to_iso(dmax) if finite else None
    return props


def _block_polygons(
    cls_block: np.ndarray,
    valid_block: np.ndarray | None,
    date_block: np.ndarray | None,
    row0: int,
    col0: int,
    codes: tuple[int, ...],
    names: tuple[str, ...],
    nodata: Any,
    date_nodata: Any,
    transform: tuple[float, ...],
    crs: str,
    pix_ha: float,
    min_pixels: float,
) -> dict[str, Any]:
    """Polygons of one block, in the global pixel frame ``(column, -row)``. Patches not touching the block
    border are finished GeoJSON features (lon/lat); those touching it are returned as WKB
    pieces with their edge ids, pixel counts and date extremes, for the cross-block merge."""
    from rasterio.features import shapes

    valid = block_valid(cls_block, valid_block, nodata)
    days = date_block_to_days(date_block, date_nodata) if date_block is not None else None
    per_class, strips, edge_class, edge_size = label_block(cls_block, valid, codes)
    n_edge = edge_class.size
    edge_wkb: list[bytes | None] = [None] * n_edge
    edge_dmin = np.full(n_edge, np.inf)
    edge_dmax = np.full(n_edge, -np.inf)
    feats_geoms: list[Any] = []
    feats_props: list[dict[str, Any]] = []
    # pixel frame (column, -row): exact integers, and never the identity (rasterio warns on it)
    offset = Affine(1, 0, col0, 0, -1, -row0)
    for k, lab, sizes, edge_id in per_class:
        n = sizes.size - 1
        keep = (edge_id > 0) | (sizes >= min_pixels)
        keep[0] = False
        if not keep.any():
            continue
        idx = np.arange(1, n + 1)
        if days is not None:
            dmin = np.asarray(ndimage.minimum(np.where(np.isnan(days), np.inf, days), lab, idx))
            dmax = np.asarray(ndimage.maximum(np.where(np.isnan(days), -np.inf, days), lab, idx))
        else:
            dmin = np.full(n, np.inf)
            dmax = np.full(n, -np.inf)
        parts: dict[int, list[Any]] = {}
        lab32 = lab.astype("int32")
        for geom, value in shapes(lab32, mask=keep[lab], connectivity=4, transform=offset):
            parts.setdefault(int(value), []).append(to_shape(geom))
        for label, pieces in parts.items():
            g = pieces[0] if len(pieces) == 1 else shapely.union_all(pieces)
            eid = edge_id[label]
            if eid:
                edge_wkb[eid - 1] = shapely.to_wkb(g)
                edge_dmin[eid - 1], edge_dmax[eid - 1] = dmin[label - 1], dmax[label - 1]
            else:
                feats_geoms.append(g)
                feats_props.append(_patch_props(names[k], codes[k], int(sizes[label]), pix_ha,
                                                dmin[label - 1], dmax[label - 1], days is not None))
    geoms = _to_lonlat_geoms(feats_geoms, transform, crs)
    return {
        "features": [_feature_json(g, p) for g, p in zip(geoms, feats_props)],
        "strips": strips, "edge_class": edge_class, "edge_size": edge_size,
        "edge_wkb": edge_wkb, "edge_dmin": edge_dmin, "edge_dmax": edge_dmax,
    }


def write_polygons(
    class_raster: xr.DataArray,
    path: str | os.PathLike[str],
    class_names: Mapping[int, str] | None = None,
    min_area_ha: float = 0.0,
    date_raster: xr.DataArray | None = None,
    valid_mask: xr.DataArray | None = None,
    codes: Sequence[int] | None = None,
    batch_blocks: int = 32,
) -> Path:
    """Write the 8-connected patches of a class raster (projected CRS in metres) as a GeoJSON
    FeatureCollection in EPSG:4326 (RFC 7946, lon/lat), one feature per patch.

    Properties: ``class``, ``code``, ``area_ha`` (pixel count x pixel area in the projected
    CRS, hectares), ``n_pixels``, and ``first_date``/``last_date`` (ISO, min/max of
    ``date_raster`` over the patch) when a date raster is given. A patch with a diagonal-only
    contact is one MultiPolygon feature. Patches under ``min_area_ha`` are dropped.
    ``codes``: the classes to write (default every code of ``class_names`` but the background,
    code 0). Pixels that are nodata or False in ``valid_mask`` belong to no patch.

    Polygonised block by block (``batch_blocks`` dask blocks computed at a time); only the
    patches touching block borders are merged (union in pixel units, so shared edges
    match exactly). Written atomically; returns ``path``.
    """
    grid.require_georef(class_raster, "class raster")
    names = class_names_of(class_raster, class_names)
    use = tuple(sorted(int(c) for c in codes)) if codes is not None else tuple(
        sorted(c for c in names if c != BACKGROUND_CODE))
    unknown = [c for c in use if c not in names]
    if unknown:
        raise GridError(f"codes {unknown} have no class name; expected codes among {sorted(names)}")
    cls_arr = as_dask(class_raster)
    chunks = cls_arr.chunks
    aux: dict[str, Any] = {}
    for key, da, what in (("valid", valid_mask, "valid mask"), ("date", date_raster, "date raster")):
        if da is not None:
            grid.require_same_grid(class_raster, da, what)
            aux[key] = as_dask(da, chunks).to_delayed()
    date_nodata = date_raster.attrs.get("nodata") if date_raster is not None else None
    transform = tuple(grid.transform_of(class_raster))[:6]
    crs = grid.crs_of(class_raster)
    pix_ha = grid.pixel_area_m2(class_raster) / 1e4
    min_pixels = min_area_ha / pix_ha - 1e-9 if min_area_ha > 0 else 0.0
    nodata = nodata_of(class_raster)
    rows0, cols0 = block_offsets(cls_arr)
    cls_blocks = cls_arr.to_delayed()
    fn = dask.delayed(_block_polygons, pure=True)
    cells = [(r, c) for r in range(len(rows0)) for c in range(len(cols0))]
    results: dict[tuple[int, int], dict[str, Any]] = {}
    n_written = 0
    final = Path(path)
    with atomic_path(final) as tmp, open(tmp, "w", encoding="utf-8") as out:
        out.write('{"type": "FeatureCollection", "features": [\n')

        def emit(feature: str) -> None:
            nonlocal n_written
            out.write((",\n" if n_written else "") + f'{{"id": {n_written}, ' + feature[1:])
            n_written += 1

        for i in range(0, len(cells), max(1, batch_blocks)):
            batch = cells[i:i + batch_blocks]
            tasks = [fn(cls_blocks[r, c], aux["valid"][r, c] if "valid" in aux else None,
                        aux["date"][r, c] if "date" in aux else None, int(rows0[r]), int(cols0[c]),
                        use, tuple(names[c] for c in use), nodata, date_nodata, transform, crs,
                        pix_ha, min_pixels)
                     for r, c in batch]
            for (r, c), res in zip(batch, dask.compute(*tasks)):
                for feature in res.pop("features"):
                    emit(feature)
                results[(r, c)] = res  # only the border pieces stay in memory
        # merge the patches cut by block borders
        grid_res = [[results[(r, c)] for c in range(len(cols0))] for r in range(len(rows0))]
        _, comp, n_comp = merge_edge_patches(
            [[x["strips"] for x in row] for row in grid_res],
            [[x["edge_class"] for x in row] for row in grid_res],
        )
        if n_comp:
            flat = [results[cell] for cell in cells]
            wkb = [w for x in flat for w in x["edge_wkb"]]
            cls_of = np.concatenate([x["edge_class"] for x in flat])
            size = np.concatenate([x["edge_size"] for x in flat])
            dmin = np.concatenate([x["edge_dmin"] for x in flat])
            dmax = np.concatenate([x["edge_dmax"] for x in flat])
            order = np.argsort(comp, kind="stable")
            bounds = np.searchsorted(comp[order], np.arange(n_comp + 1))
            for j in range(n_comp):
                members = order[bounds[j]:bounds[j + 1]]
                n_pix = int(size[members].sum())
                if n_pix < min_pixels:
                    continue
                pieces = [shapely.from_wkb(wkb[m]) for m in members]
                g = pieces[0] if len(pieces) == 1 else shapely.simplify(shapely.union_all(pieces), 0)
                k = int(cls_of[members[0]])
                geom = _to_lonlat_geoms([g], transform, crs)[0]
                props = _patch_props(names[use[k]], use[k], n_pix, pix_ha, float(dmin[members].min()),
                                     float(dmax[members].max()), date_raster is not None)
                emit(_feature_json(geom, props))
        out.write("\n]}\n")
    return final


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
        raise ValueError(f"kind {kind!r} is unknown; expected 'class', 'rgb' or 'continuous'")
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
