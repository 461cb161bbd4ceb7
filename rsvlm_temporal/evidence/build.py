"""Evidence: one typed, JSON-serialisable summary of an analysis, computed chunk by chunk.

Per class: area (ha), percent of the valid AOI area, number of 8-connected patches, largest
patch, centroid (CRS metres and lon/lat), where in the AOI (3x3 partition), first/last date and
confidence. Per AOI: CRS, bounds, pixel size, valid area. Data quality: clear observations per
date and the reasons the result may rest on insufficient data.

Scale: the class raster is never loaded whole. Each dask block is reduced to small statistics
(counts, coordinate sums, date extremes) and to the patch labels found on its four edges; patches
that touch across block edges (diagonals across block corners included) are merged afterwards
by a union-find (graph connected components) over the edge pixel pairs, so ``n_patches`` and
``largest_patch_ha`` equal a global 8-connected ``scipy.ndimage.label``. The block functions are
top-level and picklable, so the same code runs on a ``dask.distributed`` cluster.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import dask
import dask.array as dsa
import numpy as np
import xarray as xr

from rsvlm_temporal import grid
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
from rsvlm_temporal.evidence.schema import (
    CELL_NAMES,
    SCATTER_MAX_CELL_SHARE,
    SCATTERED_PHRASE,
    AOIInfo,
    ClassEvidence,
    ClearObservation,
    DataQuality,
    Evidence,
    QualityNote,
    jsonable,
)
from rsvlm_temporal.timeutil import days_to_iso, iso_date

# --------------------------------------------------------------------------------------------
# per-block statistics (runs on dask workers: top-level, picklable, small outputs)


def _block_stats(
    cls_block: np.ndarray,
    valid_block: np.ndarray | None,
    date_block: np.ndarray | None,
    conf_block: np.ndarray | None,
    row0: int,
    col0: int,
    shape: tuple[int, int],
    codes: tuple[int, ...],
    nodata: Any,
    date_nodata: Any,
) -> dict[str, Any]:
    """Small statistics of one block: valid count; per class pixel count, row/col sums, counts per
    3x3 cell, date min/max (days), confidence sum/count; interior patch count/max; edge labels."""
    k_n = len(codes)
    h, w = cls_block.shape
    H, W = shape
    valid = block_valid(cls_block, valid_block, nodata)
    days = date_block_to_days(date_block, date_nodata) if date_block is not None else None
    rcell = (3 * np.arange(row0, row0 + h)) // H
    ccell = (3 * np.arange(col0, col0 + w)) // W
    out: dict[str, Any] = {
        "valid": int(valid.sum()),
        "count": np.zeros(k_n, np.int64),
        "sum_row": np.zeros(k_n, np.float64),
        "sum_col": np.zeros(k_n, np.float64),
        "cells": np.zeros((k_n, 9), np.int64),
        "date_min": np.full(k_n, np.inf),
        "date_max": np.full(k_n, -np.inf),
        "conf_sum": np.zeros(k_n, np.float64),
        "conf_n": np.zeros(k_n, np.int64),
        "interior_n": np.zeros(k_n, np.int64),
        "interior_max": np.zeros(k_n, np.int64),
    }
    per_class, strips, edge_class, edge_size = label_block(cls_block, valid, codes)
    for k, lab, sizes, edge_id in per_class:
        rr, cc = np.nonzero(lab)
        out["count"][k] = rr.size
        out["sum_row"][k] = float(rr.sum()) + row0 * rr.size
        out["sum_col"][k] = float(cc.sum()) + col0 * cc.size
        out["cells"][k] = np.bincount(rcell[rr] * 3 + ccell[cc], minlength=9)
        if days is not None:
            d = days[rr, cc]
            d = d[~np.isnan(d)]
            if d.size:
                out["date_min"][k], out["date_max"][k] = d.min(), d.max()
        if conf_block is not None:
            v = conf_block[rr, cc].astype("float64")
            v = v[np.isfinite(v)]
            out["conf_sum"][k], out["conf_n"][k] = v.sum(), v.size
        interior = sizes[1:][edge_id[1:] == 0]
        out["interior_n"][k] = interior.size
        out["interior_max"][k] = interior.max() if interior.size else 0
    out["strips"] = strips
    out["edge_class"] = edge_class
    out["edge_size"] = edge_size
    return out


# --------------------------------------------------------------------------------------------
# build_evidence


def build_evidence(
    class_raster: xr.DataArray,
    class_names: Mapping[int, str] | None = None,
    valid_mask: xr.DataArray | None = None,
    date_raster: xr.DataArray | None = None,
    confidence: float | Mapping[int, float] | xr.DataArray | None = None,
    clear_counts: Mapping[Any, int] | xr.DataArray | Sequence[int] | None = None,
    clear_dates: Sequence[Any] | None = None,
    notes: Iterable[QualityNote | str] = (),
    extra: Mapping[int, Mapping[str, Any]] | None = None,
    analysis: str = "",
    evidence_extra: Mapping[str, Any] | None = None,
) -> Evidence:
    """Summarise a class raster (dims ``(y, x)``, projected CRS in metres) as :class:`Evidence`.

    - ``class_names``: ``{code: name}`` of the classes to report (default: the raster's
      ``class_names`` attr). Pixels equal to the raster's ``nodata`` attr (255 for integer
      rasters without one), NaN, or False in ``valid_mask`` are not valid.
    - ``date_raster``: per-pixel date (datetime64 with NaT, or days since 1970-01-01 with NaN /
      ``nodata``); ``first_date``/``last_date`` are its min/max over the class pixels.
    - ``confidence``: one value 0-1 for all classes, ``{code: value}``, or a per-pixel raster
      (0-1, NaN ignored) averaged over each class's pixels.
    - ``clear_counts``: clear pixels per acquisition date, as ``{date: count}``, a 1-D
      DataArray with a ``time`` coord, or a sequence with ``clear_dates``; fractions are of
      the AOI's total pixels.
    - ``notes``: why the data may be insufficient (:class:`QualityNote`; a plain sentence becomes
      an ``unclassified`` note); any note, or no valid pixel at all, sets
      ``quality.status = "insufficient_data"``.
    - ``extra``: ``{code: {...}}`` copied into each class's ``extra`` (severity breakdown, peak date).

    Areas are in hectares from the pixel size in metres. Computed block by block with dask
    (the active scheduler, distributed included); the raster is never loaded whole. The phases:
    :func:`map_blocks`, :func:`reduce_blocks`, :func:`aoi_info`, :func:`per_class`.
    """
    grid.require_georef(class_raster, "class raster")
    names = class_names_of(class_raster, class_names)
    codes = tuple(sorted(names))
    results, n_cols = map_blocks(class_raster, codes, valid_mask, date_raster, confidence)
    totals = reduce_blocks(results, n_cols, len(codes))
    aoi = aoi_info(class_raster, totals["valid"])
    classes = per_class(class_raster, names, codes, totals, confidence, extra)
    reasons = [QualityNote.of(n) for n in notes]
    if totals["valid"] == 0:
        reasons.append(QualityNote("no_valid_pixel", "no valid pixel in the AOI (everything is nodata or masked)",
                                   fraction=1.0))
    H, W = class_raster.shape
    quality = DataQuality(
        clear_observations=_clear_observations(clear_counts, clear_dates, H * W),
        notes=reasons,
        status="insufficient_data" if reasons else "ok",
    )
    return Evidence(aoi=aoi, classes=classes, quality=quality, analysis=analysis,
                    extra=jsonable(dict(evidence_extra or {})))


def map_blocks(class_raster: xr.DataArray, codes: tuple[int, ...], valid_mask: xr.DataArray | None = None,
               date_raster: xr.DataArray | None = None, confidence: Any = None) -> tuple[list[dict[str, Any]], int]:
    """Phase 1, map: the small statistics of every block of the class raster (one dask compute;
    the auxiliary rasters must be on its grid). Returns them in row-major block order and the
    number of block columns."""
    cls_arr = as_dask(class_raster)
    chunks = cls_arr.chunks

    def aux(da: xr.DataArray | None, what: str) -> dsa.Array | None:
        if da is None:
            return None
        grid.require_same_grid(class_raster, da, what)
        return as_dask(da, chunks)

    valid_arr = aux(valid_mask, "valid mask")
    date_arr = aux(date_raster, "date raster")
    conf_arr = aux(confidence, "confidence raster") if isinstance(confidence, xr.DataArray) else None
    date_nodata = date_raster.attrs.get("nodata") if date_raster is not None else None
    nodata = nodata_of(class_raster)
    H, W = class_raster.shape

    rows0, cols0 = block_offsets(cls_arr)
    blocks = {name: (a.to_delayed() if a is not None else None)
              for name, a in (("cls", cls_arr), ("valid", valid_arr), ("date", date_arr), ("conf", conf_arr))}
    fn = dask.delayed(_block_stats, pure=True)
    tasks = []
    for r in range(len(rows0)):
        for c in range(len(cols0)):
            pick = {k: (v[r, c] if v is not None else None) for k, v in blocks.items()}
            tasks.append(fn(pick["cls"], pick["valid"], pick["date"], pick["conf"], int(rows0[r]),
                            int(cols0[c]), (H, W), codes, nodata, date_nodata))
    return list(dask.compute(*tasks)), len(cols0)


def reduce_blocks(results: list[dict[str, Any]], n_cols: int, n_codes: int) -> dict[str, Any]:
    """Phase 2, reduce: totals over the blocks, and the patches cut by block borders merged
    (union-find over the edge pixel pairs), so patch counts and sizes are global."""
    grid_res = [results[r:r + n_cols] for r in range(0, len(results), n_cols)]

    def total(key: str) -> np.ndarray:
        return np.sum([res[key] for res in results], axis=0)

    out: dict[str, Any] = {
        "valid": int(sum(res["valid"] for res in results)),
        "count": total("count"), "sum_row": total("sum_row"), "sum_col": total("sum_col"),
        "cells": total("cells"),
        "date_min": np.min([res["date_min"] for res in results], axis=0),
        "date_max": np.max([res["date_max"] for res in results], axis=0),
        "conf_sum": total("conf_sum"), "conf_n": total("conf_n"),
        "interior_n": total("interior_n"),
        "interior_max": np.max([res["interior_max"] for res in results], axis=0),
    }
    base, comp, n_comp = merge_edge_patches(
        [[res["strips"] for res in row] for row in grid_res],
        [[res["edge_class"] for res in row] for row in grid_res],
    )
    merged_n = np.zeros(n_codes, np.int64)
    merged_max = np.zeros(n_codes, np.int64)
    if n_comp:
        edge_cls = np.concatenate([res["edge_class"] for res in results])
        edge_size = np.concatenate([res["edge_size"] for res in results])
        comp_size = np.bincount(comp, weights=edge_size, minlength=n_comp).astype(np.int64)
        comp_cls = np.zeros(n_comp, np.int64)
        comp_cls[comp] = edge_cls
        merged_n = np.bincount(comp_cls, minlength=n_codes)
        np.maximum.at(merged_max, comp_cls, comp_size)
    out["n_patches"] = out["interior_n"] + merged_n
    out["largest_patch_px"] = np.maximum(out["interior_max"], merged_max)
    return out


def aoi_info(class_raster: xr.DataArray, valid_pixels: int) -> AOIInfo:
    """The analysed grid: CRS, bounds (CRS metres and lon/lat), pixel size, valid area (ha)."""
    t = grid.transform_of(class_raster)
    crs = grid.crs_of(class_raster)
    pix_ha = grid.pixel_area_m2(class_raster) / 1e4
    bounds = grid.bounds_of(class_raster)
    H, W = class_raster.shape
    return AOIInfo(
        crs=crs, bounds=list(bounds), bounds_lonlat=list(grid.lonlat_bounds(bounds, crs)),
        pixel_size_m=[float(math.hypot(t.a, t.d)), float(math.hypot(t.b, t.e))],
        width=int(W), height=int(H), total_pixels=int(H * W), valid_pixels=valid_pixels,
        valid_area_ha=valid_pixels * pix_ha,
    )


def per_class(class_raster: xr.DataArray, names: Mapping[int, str], codes: tuple[int, ...],
              totals: Mapping[str, Any], confidence: Any = None,
              extra: Mapping[int, Mapping[str, Any]] | None = None) -> list[ClassEvidence]:
    """Phase 3, per class: area (ha), share of the valid area, patches, centroid (CRS metres and
    lon/lat, one transform for all classes), 3x3 location or "scattered", dates, confidence."""
    t = grid.transform_of(class_raster)
    crs = grid.crs_of(class_raster)
    pix_ha = grid.pixel_area_m2(class_raster) / 1e4
    H, W = class_raster.shape
    valid_pixels = totals["valid"]
    count, sum_row, sum_col, cells = totals["count"], totals["sum_row"], totals["sum_col"], totals["cells"]
    date_min, date_max = totals["date_min"], totals["date_max"]
    cell_names = CELL_NAMES if t.e < 0 else CELL_NAMES[6:] + CELL_NAMES[3:6] + CELL_NAMES[:3]

    # centroids to lon/lat in one call
    present = count > 0
    cx = np.full(len(codes), np.nan)
    cy = np.full(len(codes), np.nan)
    if present.any():
        mr = sum_row[present] / count[present] + 0.5
        mc = sum_col[present] / count[present] + 0.5
        cx[present] = t.c + t.a * mc + t.b * mr
        cy[present] = t.f + t.d * mc + t.e * mr
    lon, lat = (grid.to_lonlat(cx[present], cy[present], crs) if present.any()
                else (np.zeros(0), np.zeros(0)))
    lon_all = np.full(len(codes), np.nan)
    lat_all = np.full(len(codes), np.nan)
    lon_all[present], lat_all[present] = lon, lat

    classes: list[ClassEvidence] = []
    for k, code in enumerate(codes):
        n_pix = int(count[k])
        ce = ClassEvidence(
            name=names[code], code=int(code), n_pixels=n_pix, area_ha=n_pix * pix_ha,
            percent_of_valid=(100.0 * n_pix / valid_pixels) if valid_pixels else 0.0,
            n_patches=int(totals["n_patches"][k]),
            largest_patch_ha=int(totals["largest_patch_px"][k]) * pix_ha,
            confidence=_class_confidence(confidence, code, totals["conf_sum"][k], totals["conf_n"][k]),
            extra=dict((extra or {}).get(code, {})),
        )
        if n_pix:
            shares = cells[k] / n_pix
            # the cell of the centroid (pixel position relative to the AOI's thirds)
            mr = sum_row[k] / n_pix + 0.5
            mc = sum_col[k] / n_pix + 0.5
            cell = min(int(3 * mr / H), 2) * 3 + min(int(3 * mc / W), 2)
            ce.centroid_x, ce.centroid_y = float(cx[k]), float(cy[k])
            ce.centroid_lon, ce.centroid_lat = float(lon_all[k]), float(lat_all[k])
            ce.location = cell_names[cell]
            ce.cell_shares = {cell_names[i]: float(shares[i]) for i in range(9)}
            ce.scattered = bool(ce.n_patches >= 2 and shares.max() < SCATTER_MAX_CELL_SHARE)
            ce.location_phrase = SCATTERED_PHRASE if ce.scattered else ce.location
            if np.isfinite(date_min[k]):
                ce.first_date, ce.last_date = days_to_iso(date_min[k]), days_to_iso(date_max[k])
        classes.append(ce)
    return classes


def _class_confidence(confidence: Any, code: int, conf_sum: float, conf_n: int) -> float | None:
    if confidence is None:
        return None
    if isinstance(confidence, xr.DataArray):
        value = conf_sum / conf_n if conf_n else None
    elif isinstance(confidence, Mapping):
        value = confidence.get(code)
    else:
        value = confidence
    if value is None:
        return None
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise GridError(f"confidence {value} of class code {code} is outside 0-1; expected 0-1")
    return value


def _clear_observations(
    counts: Mapping[Any, int] | xr.DataArray | Sequence[int] | None,
    dates: Sequence[Any] | None,
    total_pixels: int,
) -> list[ClearObservation]:
    if counts is None:
        return []
    if isinstance(counts, xr.DataArray):
        if counts.ndim != 1 or "time" not in counts.coords:
            raise GridError(f"clear_counts has dims {counts.dims}; expected 1-D with a 'time' coord")
        pairs = list(zip(counts["time"].values, np.asarray(counts.values)))
    elif isinstance(counts, Mapping):
        pairs = list(counts.items())
    else:
        values = list(np.asarray(counts).ravel())
        if dates is None or len(dates) != len(values):
            raise GridError(
                f"clear_counts is a sequence of {len(values)} counts; expected clear_dates with as "
                "many dates (or pass a {date: count} mapping)"
            )
        pairs = list(zip(dates, values))
    return [
        ClearObservation(date=iso_date(d), clear_count=int(n),
                         clear_fraction=float(n) / total_pixels if total_pixels else 0.0)
        for d, n in sorted(pairs, key=lambda p: np.datetime64(p[0], "s"))
    ]
