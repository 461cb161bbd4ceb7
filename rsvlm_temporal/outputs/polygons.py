"""GeoJSON polygons (EPSG:4326) of class patches, made per dask block; only the patches cut by
block borders are merged. Written atomically.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import dask
import numpy as np
import shapely
import xarray as xr
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning
from scipy import ndimage
from shapely.geometry import shape as to_shape

from rsvlm_temporal import grid
from rsvlm_temporal.atomic import atomic_path
from rsvlm_temporal.compute.blocks import (
    as_dask,
    block_offsets,
    block_valid,
    class_names_of,
    date_block_to_days,
    label_block,
    merge_edge_patches,
    nodata_of,
)
from rsvlm_temporal.errors import GridError
from rsvlm_temporal.timeutil import days_to_iso

# rasterio.features.shapes polygonises through an in-memory dataset and silences its
# NotGeoreferencedWarning with warnings.catch_warnings, which is not thread-safe: under the
# threaded dask scheduler the warning leaks. It is meaningless here (a transform is passed).
warnings.filterwarnings("ignore", category=NotGeoreferencedWarning, module=r"rasterio\.features")

#: code of the background class (``no_change`` / ``not_assessed`` in classes.py), not polygonised
BACKGROUND_CODE = 0
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


