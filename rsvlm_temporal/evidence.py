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

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import dask
import dask.array as dsa
import numpy as np
import xarray as xr
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from rsvlm_temporal import grid
from rsvlm_temporal.atomic import write_json_atomic
from rsvlm_temporal.classes import NODATA_CLASS
from rsvlm_temporal.grid import GridError

SCHEMA_VERSION = 1
#: 8-connectivity structuring element (diagonal neighbours belong to the same patch)
STRUCTURE_8 = np.ones((3, 3), dtype=bool)
#: names of the 3x3 partition of the AOI, row by row from the north-west
CELL_NAMES: tuple[str, ...] = (
    "north-west", "north", "north-east",
    "west", "centre", "east",
    "south-west", "south", "south-east",
)
#: a class with >= 2 patches is "scattered across the AOI" when no 3x3 cell holds this share
#: (or more) of its area
SCATTER_MAX_CELL_SHARE = 0.5
SCATTERED_PHRASE = "scattered across the AOI"
ABSENT_PHRASE = "absent"
DEFAULT_CHUNK = 512


# --------------------------------------------------------------------------------------------
# typed evidence


@dataclass
class AOIInfo:
    """The analysed grid: CRS, bounds (CRS metres and lon/lat degrees), pixel size, valid area."""

    crs: str
    bounds: list[float]  # left, bottom, right, top (CRS metres)
    bounds_lonlat: list[float]  # west, south, east, north (EPSG:4326 degrees)
    pixel_size_m: list[float]  # x, y (metres, positive)
    width: int
    height: int
    total_pixels: int
    valid_pixels: int
    valid_area_ha: float


@dataclass
class ClassEvidence:
    """Evidence of one class. Areas in hectares; centroid in CRS metres and lon/lat degrees.

    ``location`` is the 3x3 cell of the AOI holding the class centroid; ``location_phrase`` is
    ``location``, or ``"scattered across the AOI"`` when the class has >= 2 patches and no cell
    holds >= ``SCATTER_MAX_CELL_SHARE`` of its area, or ``"absent"`` when it has no pixel.
    ``cell_shares`` gives the share (0-1) of the class area in each 3x3 cell.
    """

    name: str
    code: int
    n_pixels: int
    area_ha: float
    percent_of_valid: float
    n_patches: int
    largest_patch_ha: float
    centroid_x: float | None = None
    centroid_y: float | None = None
    centroid_lon: float | None = None
    centroid_lat: float | None = None
    location: str | None = None
    location_phrase: str = ABSENT_PHRASE
    scattered: bool = False
    cell_shares: dict[str, float] = field(default_factory=dict)
    first_date: str | None = None
    last_date: str | None = None
    confidence: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ClearObservation:
    """Clear (usable) pixels on one acquisition date; ``fraction`` of the AOI's pixels (0-1)."""

    date: str
    clear_count: int
    clear_fraction: float


@dataclass
class DataQuality:
    """Clear observations per date and why the data may be insufficient (``status``)."""

    clear_observations: list[ClearObservation] = field(default_factory=list)
    insufficient_data: list[str] = field(default_factory=list)
    status: str = "ok"  # "ok" | "insufficient_data"


@dataclass
class Evidence:
    """Everything the language head and the reports may state about one analysis."""

    aoi: AOIInfo
    classes: list[ClassEvidence]
    quality: DataQuality
    analysis: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of JSON types."""
        return _jsonable(dataclasses.asdict(self))

    def to_json(self, indent: int | None = 2) -> str:
        """The evidence as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    def write_json(self, path: Any) -> Any:
        """Write the evidence as JSON to ``path`` atomically; returns the path."""
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Evidence":
        """Rebuild an :class:`Evidence` from :meth:`to_dict` output."""
        q = dict(d["quality"])
        q["clear_observations"] = [ClearObservation(**o) for o in q.get("clear_observations", [])]
        return cls(
            aoi=AOIInfo(**d["aoi"]),
            classes=[ClassEvidence(**c) for c in d["classes"]],
            quality=DataQuality(**q),
            analysis=d.get("analysis", ""),
            extra=dict(d.get("extra", {})),
            schema_version=int(d.get("schema_version", SCHEMA_VERSION)),
        )

    @classmethod
    def from_json(cls, text: str) -> "Evidence":
        """Rebuild an :class:`Evidence` from :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))

    def class_by_name(self, name: str) -> ClassEvidence:
        """The :class:`ClassEvidence` named ``name`` (KeyError listing the names otherwise)."""
        for c in self.classes:
            if c.name == name:
                return c
        raise KeyError(f"no class {name!r} in the evidence; classes: {[c.name for c in self.classes]}")


def _jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.generic):
        return _jsonable(o.item())
    if isinstance(o, np.ndarray):
        return _jsonable(o.tolist())
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, (np.datetime64,)):
        return iso_date(o)
    return o


# --------------------------------------------------------------------------------------------
# shared raster plumbing (also used by rsvlm_temporal.export)


def iso_date(value: Any) -> str:
    """ISO string of a date-like value: ``YYYY-MM-DD``, or ``YYYY-MM-DDThh:mm:ss`` off midnight."""
    s = str(np.datetime_as_string(np.datetime64(value, "s")))
    return s[:10] if s.endswith("T00:00:00") else s


def days_to_iso(days: float) -> str:
    """ISO date of an integer number of days since 1970-01-01."""
    return str(np.datetime64(int(days), "D"))


def as_dask(da: xr.DataArray, chunks: Any = None) -> dsa.Array:
    """The dask array behind ``da`` (a numpy-backed one is wrapped, 512 x 512 chunks by default),
    rechunked to ``chunks`` when given. Never computes anything."""
    data = da.data
    if not isinstance(data, dsa.Array):
        data = dsa.from_array(np.asarray(data), chunks=DEFAULT_CHUNK if chunks is None else chunks)
    if chunks is not None and data.chunks != chunks:
        data = data.rechunk(chunks)
    return data


def class_names_of(da: xr.DataArray, class_names: Mapping[Any, str] | None) -> dict[int, str]:
    """``class_names`` (or the raster's ``class_names`` attr) as ``{int code: name}``."""
    names = class_names if class_names is not None else da.attrs.get("class_names")
    if not names:
        raise GridError(
            "no class names: pass class_names={code: name} or set the raster's 'class_names' attr "
            "(e.g. rsvlm_temporal.classes.CHANGE_CLASSES)"
        )
    return {int(k): str(v) for k, v in dict(names).items()}


def nodata_of(da: xr.DataArray) -> Any:
    """The class raster's nodata: its ``nodata`` attr, else ``classes.NODATA_CLASS`` (255) for
    integer rasters, else None."""
    if da.attrs.get("nodata") is not None:
        return da.attrs["nodata"]
    return NODATA_CLASS if np.issubdtype(da.dtype, np.integer) else None


def date_block_to_days(block: np.ndarray, nodata: Any = None) -> np.ndarray:
    """A block of a date raster as float64 days since 1970-01-01, NaN where there is no date.

    datetime64 rasters: NaT is missing. Numeric rasters are read as days since 1970-01-01,
    with NaN and ``nodata`` missing.
    """
    if np.issubdtype(block.dtype, np.datetime64):
        days = block.astype("datetime64[D]").astype("int64").astype("float64")
        days[np.isnat(block)] = np.nan
        return days
    days = block.astype("float64")
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        days[block == nodata] = np.nan
    return days


def block_valid(cls_block: np.ndarray, valid_block: np.ndarray | None, nodata: Any) -> np.ndarray:
    """Valid pixels of a block: not ``nodata`` (not NaN) and, if given, True in the valid mask."""
    if nodata is None or (isinstance(nodata, float) and math.isnan(nodata)):
        valid = ~np.isnan(cls_block) if np.issubdtype(cls_block.dtype, np.floating) else (
            np.ones(cls_block.shape, dtype=bool))
    else:
        valid = cls_block != nodata
    if valid_block is not None:
        valid &= valid_block.astype(bool)
    return valid


def label_block(
    cls_block: np.ndarray, valid: np.ndarray, codes: Sequence[int]
) -> tuple[list[tuple[int, np.ndarray, np.ndarray, np.ndarray]], dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """8-connected patches of each class in one block.

    Returns ``(per_class, strips, edge_class, edge_size)``: ``per_class`` lists
    ``(class index, label image, pixel count per label (index 0 unused), edge id per label)``
    for the classes present; an edge id (1..E, 0 = interior) numbers the labels touching the
    block's border across all classes; ``strips`` holds the edge ids along the ``top``,
    ``bottom``, ``left`` and ``right`` borders (0 = no edge patch); ``edge_class`` and
    ``edge_size`` give class index and pixel count of edge ids 1..E (index 0 = id 1).
    """
    h, w = cls_block.shape
    strips = {k: np.zeros(n, dtype=np.int64) for k, n in (("top", w), ("bottom", w), ("left", h), ("right", h))}
    per_class: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
    edge_class: list[np.ndarray] = []
    edge_size: list[np.ndarray] = []
    next_id = 1
    for k, code in enumerate(codes):
        m = (cls_block == code) & valid
        if not m.any():
            continue
        lab, n = ndimage.label(m, structure=STRUCTURE_8)
        sizes = np.bincount(lab.ravel(), minlength=n + 1)
        border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
        border = border[border > 0]
        edge_id = np.zeros(n + 1, dtype=np.int64)
        edge_id[border] = np.arange(next_id, next_id + border.size)
        next_id += border.size
        strips["top"] += edge_id[lab[0]]
        strips["bottom"] += edge_id[lab[-1]]
        strips["left"] += edge_id[lab[:, 0]]
        strips["right"] += edge_id[lab[:, -1]]
        edge_class.append(np.full(border.size, k, dtype=np.int64))
        edge_size.append(sizes[border].astype(np.int64))
        per_class.append((k, lab, sizes, edge_id))
    cat = (lambda parts: np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64))
    return per_class, strips, cat(edge_class), cat(edge_size)


def block_offsets(arr: dsa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Row and column offsets (pixels) of the blocks of a 2-D dask array."""
    return (np.concatenate([[0], np.cumsum(arr.chunks[0])[:-1]]).astype(int),
            np.concatenate([[0], np.cumsum(arr.chunks[1])[:-1]]).astype(int))


def merge_edge_patches(
    strips: Sequence[Sequence[Mapping[str, np.ndarray]]], edge_class: Sequence[Sequence[np.ndarray]]
) -> tuple[list[list[int]], np.ndarray, int]:
    """Merge block-edge patches that touch across block borders (8-connectivity).

    ``strips[r][c]`` / ``edge_class[r][c]`` come from :func:`label_block` for block row ``r``,
    column ``c``. Global edge ids are ``base[r][c] + local id - 1``. Pairs of touching pixels
    across every block border (diagonals included, and the single diagonal pairs across block
    corners) of the same class are joined; returns ``(base, component per global id, count)``.
    """
    nr, nc = len(strips), len(strips[0])
    base: list[list[int]] = [[0] * nc for _ in range(nr)]
    total = 0
    for r in range(nr):
        for c in range(nc):
            base[r][c] = total
            total += len(edge_class[r][c])
    if total == 0:
        return base, np.zeros(0, dtype=np.int64), 0
    cls_of = np.concatenate([np.asarray(edge_class[r][c]) for r in range(nr) for c in range(nc)])

    def gid(r: int, c: int, side: str) -> np.ndarray:
        s = np.asarray(strips[r][c][side])
        return np.where(s > 0, s + base[r][c] - 1, -1)

    a_parts: list[np.ndarray] = []
    b_parts: list[np.ndarray] = []

    def add(a: np.ndarray, b: np.ndarray) -> None:
        a_parts.append(a)
        b_parts.append(b)

    for r in range(nr):
        for c in range(nc):
            if c + 1 < nc:  # vertical border with the right neighbour
                a, b = gid(r, c, "right"), gid(r, c + 1, "left")
                add(a, b), add(a[:-1], b[1:]), add(a[1:], b[:-1])
            if r + 1 < nr:  # horizontal border with the neighbour below
                a, b = gid(r, c, "bottom"), gid(r + 1, c, "top")
                add(a, b), add(a[:-1], b[1:]), add(a[1:], b[:-1])
            if r + 1 < nr and c + 1 < nc:  # corner: bottom-right pixel / top-left pixel
                add(gid(r, c, "bottom")[-1:], gid(r + 1, c + 1, "top")[:1])
            if r + 1 < nr and c > 0:  # corner: bottom-left pixel / top-right pixel
                add(gid(r, c, "bottom")[:1], gid(r + 1, c - 1, "top")[-1:])
    a = np.concatenate(a_parts) if a_parts else np.zeros(0, dtype=np.int64)
    b = np.concatenate(b_parts) if b_parts else np.zeros(0, dtype=np.int64)
    keep = (a >= 0) & (b >= 0)
    a, b = a[keep], b[keep]
    keep = cls_of[a] == cls_of[b]
    a, b = a[keep], b[keep]
    graph = coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(total, total))
    n, comp = connected_components(graph, directed=False)
    return base, comp.astype(np.int64), int(n)


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
    insufficient_data: Iterable[str] = (),
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
    - ``insufficient_data``: reasons (sentences) the caller found; any reason, or no valid pixel
      at all, sets ``quality.status = "insufficient_data"``.
    - ``extra``: ``{code: {...}}`` copied into each class's ``extra`` (severity breakdown, peak date).

    Areas are in hectares from the pixel size in metres. Computed block by block with dask
    (the active scheduler, distributed included); the raster is never loaded whole.
    """
    grid.require_georef(class_raster, "class raster")
    names = class_names_of(class_raster, class_names)
    codes = tuple(sorted(names))
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
    results = list(dask.compute(*tasks))
    nc = len(cols0)
    grid_res = [results[r * nc:(r + 1) * nc] for r in range(len(rows0))]

    def total(key: str) -> np.ndarray:
        return np.sum([res[key] for res in results], axis=0)

    valid_pixels = int(sum(res["valid"] for res in results))
    count, sum_row, sum_col, cells = total("count"), total("sum_row"), total("sum_col"), total("cells")
    date_min = np.min([res["date_min"] for res in results], axis=0)
    date_max = np.max([res["date_max"] for res in results], axis=0)
    conf_sum, conf_n = total("conf_sum"), total("conf_n")
    interior_n = total("interior_n")
    interior_max = np.max([res["interior_max"] for res in results], axis=0)

    # merge the patches cut by block borders
    base, comp, n_comp = merge_edge_patches(
        [[res["strips"] for res in row] for row in grid_res],
        [[res["edge_class"] for res in row] for row in grid_res],
    )
    merged_n = np.zeros(len(codes), np.int64)
    merged_max = np.zeros(len(codes), np.int64)
    if n_comp:
        edge_cls = np.concatenate([res["edge_class"] for res in results])
        edge_size = np.concatenate([res["edge_size"] for res in results])
        comp_size = np.bincount(comp, weights=edge_size, minlength=n_comp).astype(np.int64)
        comp_cls = np.zeros(n_comp, np.int64)
        comp_cls[comp] = edge_cls
        merged_n = np.bincount(comp_cls, minlength=len(codes))
        np.maximum.at(merged_max, comp_cls, comp_size)

    t = grid.transform_of(class_raster)
    crs = grid.crs_of(class_raster)
    pix_m2 = grid.pixel_area_m2(class_raster)
    pix_ha = pix_m2 / 1e4
    bounds = grid.bounds_of(class_raster)
    aoi = AOIInfo(
        crs=crs, bounds=list(bounds), bounds_lonlat=list(grid.lonlat_bounds(bounds, crs)),
        pixel_size_m=[float(math.hypot(t.a, t.d)), float(math.hypot(t.b, t.e))],
        width=int(W), height=int(H), total_pixels=int(H * W), valid_pixels=valid_pixels,
        valid_area_ha=valid_pixels * pix_ha,
    )
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
            n_patches=int(interior_n[k] + merged_n[k]),
            largest_patch_ha=int(max(interior_max[k], merged_max[k])) * pix_ha,
            confidence=_class_confidence(confidence, code, conf_sum[k], conf_n[k]),
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

    reasons = [str(r) for r in insufficient_data]
    if valid_pixels == 0:
        reasons.append("no valid pixel in the AOI (everything is nodata or masked)")
    quality = DataQuality(
        clear_observations=_clear_observations(clear_counts, clear_dates, H * W),
        insufficient_data=reasons,
        status="insufficient_data" if reasons else "ok",
    )
    return Evidence(aoi=aoi, classes=classes, quality=quality, analysis=analysis,
                    extra=_jsonable(dict(evidence_extra or {})))


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
