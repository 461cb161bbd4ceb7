"""Lazy surface-reflectance cubes (time, band, y, x) from STAC items, through stackstac.

``load_cube`` reads metadata only: the result is a dask-backed ``xarray.DataArray`` and no
pixel is read until it is computed. Per sensor group, stackstac lays out the asset table on one
explicit target grid (EPSG code, resolution in metres, bounds in that CRS) and opens the files
(:class:`~rsvlm_temporal.io.reader.DNReader`); each chunk is one task that decodes the raw DNs
of every band straight into its float32 plane and turns them into reflectance 0-1 in place with
each item's own scale/offset; the quality band (Sentinel-2 SCL, Landsat QA_PIXEL) is decoded in
the same task into the ``mask`` coordinate (:func:`~rsvlm_temporal.io.reader.read_chunk`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Sequence

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from affine import Affine
from pyproj import Transformer

from rsvlm_temporal.compute.cluster import available_memory
from rsvlm_temporal.compute.nanstats import nanmedian
from rsvlm_temporal.errors import AOIError, ItemError, LimitError, ParameterError, UnknownBandError
from rsvlm_temporal.io import masks
from rsvlm_temporal.io.items import QUALITY_KEY, NormalisedItem, normalise_items, stackstac_dict
from rsvlm_temporal.io.reader import DNReader, gdal_env
from rsvlm_temporal.io.sensors import sensor_table

DEFAULT_BANDS: tuple[str, ...] = ("blue", "green", "red", "nir", "swir16", "swir22")
Composite = Literal["month", "season", "year"]
Bounds = tuple[float, float, float, float]

#: the largest grid (y x x pixels) a cube may have; raise it with ``set_grid_limit`` (the CLI's
#: --max-pixels). 1e8 px is 10 000 km2 at 10 m.
MAX_GRID_PIXELS = 100_000_000
#: memory a run holds per grid pixel at most (bytes): the exports hold a few whole float32 layers
BYTES_PER_PIXEL = 64
#: a grid narrower than this (pixels per side) cannot be analysed: the resolution is too coarse
MIN_GRID_SIDE = 4


def set_grid_limit(pixels: int | float) -> None:
    """Raise (or lower) :data:`MAX_GRID_PIXELS` for this process."""
    global MAX_GRID_PIXELS
    if not (isinstance(pixels, (int, float)) and math.isfinite(pixels) and pixels >= 1):
        raise ParameterError(f"the grid limit must be a positive number of pixels, got {pixels!r}")
    MAX_GRID_PIXELS = int(pixels)


@dataclass(frozen=True)
class GridEstimate:
    """The target grid a cube of these items would have: CRS, resolution (metres), bounds
    (target CRS), size in pixels, and dates x bands (before same-day mosaics)."""

    epsg: int
    resolution: tuple[float, float]
    bounds: Bounds
    height: int
    width: int
    dates: int
    bands: int

    @property
    def pixels(self) -> int:
        return self.height * self.width

    @property
    def memory_bytes(self) -> int:
        """Estimated peak memory of a run on this grid (bytes)."""
        return self.pixels * BYTES_PER_PIXEL

    def describe(self) -> str:
        km_x = (self.bounds[2] - self.bounds[0]) / 1000
        km_y = (self.bounds[3] - self.bounds[1]) / 1000
        return (f"{self.width} x {self.height} px ({km_x:,.1f} x {km_y:,.1f} km at "
                f"{self.resolution[0]:g} m, EPSG:{self.epsg})")


def check_projected(epsg: Any) -> int:
    """``epsg`` as an int naming a known projected CRS in metres; ParameterError otherwise."""
    import pyproj

    try:
        code = int(epsg)
        crs = pyproj.CRS.from_epsg(code)
    except (TypeError, ValueError, pyproj.exceptions.CRSError):
        raise ParameterError(f"EPSG:{epsg} is not a known CRS; expected a projected EPSG code in "
                             "metres, e.g. a UTM zone 32601-32660 (north) / 32701-32760 (south)") from None
    unit = crs.axis_info[0].unit_name if crs.axis_info else ""
    if not crs.is_projected or unit not in ("metre", "meter"):
        raise ParameterError(
            f"EPSG:{code} ({crs.name}) is {'geographic, in degrees' if crs.is_geographic else 'not in metres'}"
            f"; resolutions are metres, so the target CRS must be projected in metres, e.g. the "
            "AOI's UTM zone (326xx north, 327xx south)")
    return code


def check_grid(est: GridEstimate, max_pixels: int | None = None) -> None:
    """Refuse a grid over ``max_pixels`` (default :data:`MAX_GRID_PIXELS`), one whose estimated
    memory exceeds the machine's available memory, or one under :data:`MIN_GRID_SIDE` px a side."""
    limit = MAX_GRID_PIXELS if max_pixels is None else int(max_pixels)
    if est.pixels > limit:
        raise LimitError(
            f"the grid would be {est.describe()} = {est.pixels:,} px, over the limit of {limit:,} px: "
            "pass a smaller AOI (--bbox/--aoi) or a coarser --resolution, or raise the limit with "
            "--max-pixels")
    free = available_memory()
    if free and est.memory_bytes > free:
        raise LimitError(
            f"the grid {est.describe()} needs about {est.memory_bytes / 2**30:.1f} GiB of memory, "
            f"more than the {free / 2**30:.1f} GiB available: pass a smaller AOI or a coarser "
            "--resolution")
    if min(est.height, est.width) < MIN_GRID_SIDE:
        raise ParameterError(
            f"the grid would be only {est.describe()}: the resolution is too coarse for the AOI; "
            f"expected at least {MIN_GRID_SIDE} px a side (a finer --resolution or a larger AOI)")


def _common_bands(groups: dict[str, list[NormalisedItem]], bands: Sequence[str]) -> None:
    table = sensor_table()
    for sid in groups:
        missing = [b for b in bands if b not in table[sid].bands]
        if missing:
            raise UnknownBandError(
                f"bands {missing} are not available for {sid}; with several sensors request "
                f"bands they share, e.g. {list(DEFAULT_BANDS)}"
            )


def _target_epsg(items: list[NormalisedItem], epsg: int | None) -> int:
    if epsg is not None:
        return check_projected(epsg)
    codes = Counter(i.epsg for i in items if i.epsg is not None)
    if not codes:
        raise ItemError(
            f"none of the {len(items)} items carries projection info (proj:code / proj:epsg); "
            "pass a target CRS, e.g. load_cube(items, epsg=32633, resolution=10, bounds=...)"
        )
    return codes.most_common(1)[0][0]


def _target_resolution(
    items: list[NormalisedItem], epsg: int, bands: Sequence[str], resolution: Any
) -> tuple[float, float]:
    if resolution is not None:
        pair = (resolution, resolution) if isinstance(resolution, (int, float)) else tuple(resolution)
        try:
            xres, yres = (float(v) for v in pair)
        except (TypeError, ValueError):
            raise ParameterError(f"resolution must be a number of metres, got {resolution!r}") from None
        if not (math.isfinite(xres) and math.isfinite(yres) and xres > 0 and yres > 0):
            raise ParameterError(f"resolution must be a finite number > 0 metres, got {resolution!r}")
        return xres, yres
    # The finest native pixel among the requested bands, per sensor; the coarsest of those when
    # sensors are merged (e.g. 30 m for Landsat + Sentinel-2).
    per_sensor: dict[str, tuple[float, float]] = {}
    for it in items:
        best: tuple[float, float] | None = None
        for b in bands:
            g = it.grid(b)
            if g is not None and g[0] == epsg:
                res = (abs(g[1].a), abs(g[1].e))
            else:
                r = it.sensor.band(b).resolution
                res = (r, r)
            best = res if best is None or res[0] < best[0] else best
        assert best is not None
        cur = per_sensor.get(it.sensor.id)
        per_sensor[it.sensor.id] = best if cur is None or best[0] < cur[0] else cur
    return max(per_sensor.values(), key=lambda r: r[0])


def _item_bounds_in(item: NormalisedItem, epsg: int) -> Bounds | None:
    """The item's footprint (minx, miny, maxx, maxy) in EPSG:``epsg``: its native grid bounds
    (reprojected when the item lies in another CRS, e.g. the neighbouring UTM zone). Every
    normalised item has a grid on some band: declared (proj:*) or, where the item declares none,
    its first band's file header (:func:`rsvlm_temporal.io.items.normalise_item`), never the
    lon/lat ``bbox``, which reprojected is larger than the grid; None for an item without one."""
    for b in item.bands:
        g = item.grid(b)
        if g is not None and g[0] == epsg:
            return item.bounds(b)
    for b in item.bands:
        g, native = item.grid(b), item.bounds(b)
        if g is not None and native is not None:
            return transform_bounds(native, g[0], epsg)
    return None


def transform_bounds(bounds: Bounds, src_epsg: int, dst_epsg: int) -> Bounds:
    """Bounds reprojected from one EPSG code to another (edges densified, 21 points per side)."""
    if src_epsg == dst_epsg:
        return bounds
    tr = Transformer.from_crs(src_epsg, dst_epsg, always_xy=True)
    return tuple(tr.transform_bounds(*bounds, densify_pts=21))  # type: ignore[return-value]


def _snap(bounds: Bounds, res: tuple[float, float], origin: tuple[float, float]) -> Bounds:
    """Grow bounds outward to whole pixels of a grid whose corner is at ``origin``."""
    ox, oy = origin
    minx = ox + math.floor(round((bounds[0] - ox) / res[0], 6)) * res[0]
    maxx = ox + math.ceil(round((bounds[2] - ox) / res[0], 6)) * res[0]
    miny = oy + math.floor(round((bounds[1] - oy) / res[1], 6)) * res[1]
    maxy = oy + math.ceil(round((bounds[3] - oy) / res[1], 6)) * res[1]
    return (minx, miny, maxx, maxy)


def _target_bounds(
    items: list[NormalisedItem], epsg: int, res: tuple[float, float], bands: Sequence[str],
    bounds: Bounds | None, bounds_latlon: Bounds | None,
) -> Bounds:
    if bounds is not None and bounds_latlon is not None:
        raise AOIError("give either bounds (target CRS) or bounds_latlon (EPSG:4326), not both")
    if bounds_latlon is not None:
        bounds = transform_bounds(tuple(bounds_latlon), 4326, epsg)  # type: ignore[arg-type]
    per_item = [b for b in (_item_bounds_in(i, epsg) for i in items) if b is not None]
    if bounds is None:
        if not per_item:
            raise ItemError(
                "cannot tell the extent: no item carries a grid (proj:transform/proj:shape); "
                "pass bounds=(minx, miny, maxx, maxy) in the target CRS"
            )
        bounds = (
            min(b[0] for b in per_item), min(b[1] for b in per_item),
            max(b[2] for b in per_item), max(b[3] for b in per_item),
        )
    minx, miny, maxx, maxy = bounds
    if not all(math.isfinite(v) for v in bounds):
        raise AOIError(
            f"the AOI cannot be drawn on one EPSG:{epsg} grid (its bounds there are {bounds}): it is "
            "too wide (a whole hemisphere or the world); expected an AOI within a few degrees, "
            "split a larger one")
    if not (minx < maxx and miny < maxy):
        raise AOIError(f"bounds {bounds} are empty or inverted; expected minx < maxx and miny < maxy")
    if per_item and not any(
        b[0] < maxx and b[2] > minx and b[1] < maxy and b[3] > miny for b in per_item
    ):
        raise AOIError(f"bounds {bounds} (EPSG:{epsg}) do not overlap any item's footprint")
    # Snap to the native pixel grid of an item on the target CRS, so a native read needs no warp.
    origin = (0.0, 0.0)
    for it in items:
        for b in bands:
            g = it.grid(b)
            if g is not None and g[0] == epsg and math.isclose(abs(g[1].a), res[0]) \
                    and math.isclose(abs(g[1].e), res[1]):
                origin = (g[1].c, g[1].f)
                break
        else:
            continue
        break
    return _snap(tuple(bounds), res, origin)  # type: ignore[arg-type]


def _scale_offset(items: list[NormalisedItem], bands: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    scale = np.array([[it.bands[b].scale for b in bands] for it in items], dtype=np.float32)
    offset = np.array([[it.bands[b].offset for b in bands] for it in items], dtype=np.float32)
    return scale, offset


def _read_graph(
    items: list[NormalisedItem], bands: Sequence[str], assets: list[str], epsg: int,
    res: tuple[float, float], bounds: Bounds, yx_chunks: tuple[Any, Any], mask_flags: int,
    resampling: Any,
) -> tuple[da.Array, da.Array, np.ndarray, np.ndarray]:
    """The read graph of one sensor's items: (reflectance (t, b, y, x) float32, flags (t, y, x)
    uint8, y and x pixel-centre coordinates).

    stackstac lays out the asset table and the target grid (metadata only) and opens each
    date's files lazily in one reader-table task (:class:`DNReader`), shared by that date's
    chunks; each chunk (1 date x all bands) is then one task, :func:`reader.read_chunk`, that
    decodes every band straight into its float32 plane and scales/masks it in place (no DN
    block, no second pass; the flags come out of the same task).
    """
    import dask
    from dask.blockwise import blockwise
    from dask.highlevelgraph import HighLevelGraph
    from dask.layers import ArraySliceDep
    from stackstac.prepare import prepare_items, to_coords
    from stackstac.to_dask import asset_table_to_reader_and_window

    from rsvlm_temporal.io.reader import pick, read_chunk

    plain = [stackstac_dict(i) for i in items]
    dtype = np.dtype("uint16")
    table, spec, asset_ids, kept = prepare_items(
        plain, assets=assets, epsg=epsg, resolution=res, bounds=bounds, snap_bounds=False,
        rescale=False, dtype=dtype)
    if len(kept) != len(plain) or list(asset_ids) != list(assets):
        # stackstac drops items / assets that lie wholly outside the grid: keep every date (it
        # reads as nodata) and every asset column in its place
        full = np.full((len(plain), len(assets)), None, dtype=table.dtype)
        full["bounds"] = np.nan
        rows = {it["id"]: k for k, it in enumerate(kept)}
        cols = [assets.index(a) for a in asset_ids]
        for r, it in enumerate(plain):
            if it["id"] in rows:
                full[r, cols] = table[rows[it["id"]]]
        table = full
    coords, _ = to_coords(plain, assets, spec, xy_coords="center", properties=False,
                          band_coords=False)
    ys, xs = np.asarray(coords["y"]), np.asarray(coords["x"])
    t, a = table.shape
    height, width = spec.shape
    chunks = da.core.normalize_chunks(((1,) * t, (len(bands),)) + tuple(yx_chunks),
                                      (t, len(bands), height, width))
    token = dask.base.tokenize(table, spec, chunks, tuple(bands), int(mask_flags), str(resampling))
    asset_table = da.from_array(table, chunks=((1,) * t, (a,)), inline_array=True,
                                name="rsvlm-assets-" + token)
    with dask.annotate(fuse=False):  # opened readers are shared by the date's chunks: no fusion
        readers = asset_table.map_blocks(
            asset_table_to_reader_and_window, spec, resampling, dtype, dtype.type(0), False,
            gdal_env(), (), DNReader, dtype=object, name="rsvlm-readers-" + token)
    scale, offset = _scale_offset(items, bands)
    first = items[0].bands
    nodata = np.array([first[b].nodata if first[b].nodata is not None else 0 for b in bands], np.uint16)
    lut = masks.lookup_table(items[0].sensor.quality) if len(assets) > len(bands) else None
    sc = da.from_array(scale, chunks=(1, len(bands)), name="rsvlm-scale-" + token)
    of = da.from_array(offset, chunks=(1, len(bands)), name="rsvlm-offset-" + token)
    name = "rsvlm-read-" + token
    layer = blockwise(
        read_chunk, name, "tbyx",
        readers.name, "tb", ArraySliceDep(chunks[2:]), "yx", sc.name, "tb", of.name, "tb",
        numblocks={readers.name: readers.numblocks, sc.name: sc.numblocks, of.name: of.numblocks},
        nbands=len(bands), nodata=nodata, lut=lut, mask_flags=int(mask_flags),
    )
    graph = HighLevelGraph.from_collections(name, layer, [readers, sc, of])
    pair = da.Array(graph, name, chunks, meta=np.empty((0, 0, 0, 0), np.float32))
    refl = da.map_blocks(pick, pair, 0, dtype=np.float32, meta=np.empty((0, 0, 0, 0), np.float32),
                         name="rsvlm-reflectance-" + token)
    flags = da.map_blocks(pick, pair, 1, chunks=(chunks[0], (1,)) + chunks[2:], dtype=np.uint8,
                          meta=np.empty((0, 0, 0, 0), np.uint8), name="rsvlm-flags-" + token)[:, 0]
    return refl, flags, ys, xs


def _load_group(
    items: list[NormalisedItem], bands: Sequence[str], epsg: int, res: tuple[float, float],
    bounds: Bounds, chunksize: int, mask_flags: int, resampling: Any,
) -> xr.DataArray:
    """One sensor's items on the target grid: lazy reflectance with mask/sensor/id coords."""
    from rsvlm_temporal.io.reader import aligned_chunks  # see reader.py

    sensor = items[0].sensor
    has_quality = all(it.quality is not None for it in items)
    assets = list(bands) + ([QUALITY_KEY] if has_quality else [])
    # Chunk edges on multiples of ``chunksize`` native pixels (the files' tile edges), not at the
    # AOI corner: a chunk straddling tiles makes each thread decode the tiles it shares again.
    height = int(round((bounds[3] - bounds[1]) / res[1]))
    width = int(round((bounds[2] - bounds[0]) / res[0]))
    ychunks: Any = chunksize
    xchunks: Any = chunksize
    native = (g for it in items for g in map(it.grid, bands) if g is not None and g[0] == epsg
              and math.isclose(abs(g[1].a), res[0]) and math.isclose(abs(g[1].e), res[1]))
    grid = next(native, None)  # the first item's grid at the target resolution, as for snapping
    if grid is not None:
        xchunks = aligned_chunks(width, int(round((bounds[0] - grid[1].c) / res[0])), chunksize)
        ychunks = aligned_chunks(height, int(round((grid[1].f - bounds[3]) / res[1])), chunksize)
    refl, flags, ys, xs = _read_graph(items, bands, assets, epsg, res, bounds, (ychunks, xchunks),
                                      mask_flags, resampling)
    times = pd.DatetimeIndex([it.datetime.astimezone(dt.timezone.utc).replace(tzinfo=None) for it in items])
    return xr.DataArray(
        refl,
        dims=("time", "band", "y", "x"),
        coords={
            "time": times.values.astype("datetime64[ns]"),
            "band": list(bands),
            "y": ys,
            "x": xs,
            "sensor": ("time", [sensor.id] * len(items)),
            "id": ("time", [it.id for it in items]),
            "platform": ("time", [it.platform for it in items]),
            "mask": (("time", "y", "x"), flags),
        },
        name="reflectance",
    )


def _mosaic_same_day(cube: xr.DataArray, mask_flags: int) -> xr.DataArray:
    """Merge acquisitions of one sensor on one UTC day (adjacent or overlapping tiles of one
    pass) into one time step: per pixel, the first clear observation in time order; its flags
    go to ``mask`` (see :func:`_first_clear_pick` where no member is clear). ``time`` is the
    first member's, ``id`` joins the members' ids with "+"."""
    day = cube.time.dt.floor("D").values
    keys = list(zip(day, cube.sensor.values))
    groups: dict[Any, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    if all(len(g) == 1 for g in groups.values()):
        return cube
    parts = []
    for idx in groups.values():
        part = cube.isel(time=idx)
        if len(idx) > 1:
            part = _first_clear(part, mask_flags)
        parts.append(part)
    return xr.concat(parts, dim="time", coords="different", compat="equals")


def _first_clear_pick(flags: np.ndarray, mask_flags: int) -> np.ndarray:
    """(k, 1, y, x) flags -> (y, x) index of the member a same-day mosaic takes per pixel: the
    first usable one (no flag in ``mask_flags``, and not NODATA, which is never usable); where
    none is usable, the first that observed the pixel (a pixel one tile sees cloudy and the
    other does not cover is cloud, not nodata); where none observed it, the first."""
    f = flags[:, 0]
    usable = (f & np.uint8(int(mask_flags) | int(masks.NODATA))) == 0
    seen = (f & masks.NODATA) == 0
    return np.where(usable.any(axis=0), np.argmax(usable, axis=0), np.argmax(seen, axis=0))


def _first_clear_refl(refl: np.ndarray, flags: np.ndarray, mask_flags: int) -> np.ndarray:
    """(k, b, y, x) reflectance + (k, 1, y, x) flags -> (b, y, x) of the member
    :func:`_first_clear_pick` takes (the first usable one)."""
    pick = _first_clear_pick(flags, mask_flags)
    return np.take_along_axis(refl, pick[None, None], axis=0)[0]


def _first_clear_flags(refl: np.ndarray, flags: np.ndarray, mask_flags: int) -> np.ndarray:
    """Flags (y, x) of the member :func:`_first_clear_pick` takes."""
    pick = _first_clear_pick(flags, mask_flags)
    return np.take_along_axis(flags[:, 0], pick[None], axis=0)[0]


def _first_clear(part: xr.DataArray, mask_flags: int) -> xr.DataArray:
    k = part.sizes["time"]
    refl = part.data.rechunk({0: k})
    flags = part.mask.data.rechunk({0: k})[:, None]
    r = da.map_blocks(_first_clear_refl, refl, flags, mask_flags, dtype=np.float32, drop_axis=0)
    f = da.map_blocks(_first_clear_flags, refl, flags, mask_flags, dtype=np.uint8, drop_axis=[0, 1])
    first = part.isel(time=[0])
    return first.copy(data=r[None]).assign_coords(
        mask=(("time", "y", "x"), f[None]),
        id=("time", ["+".join(str(v) for v in part.id.values)]),
    )


def period_starts(times: Iterable[np.datetime64], period: Composite) -> np.ndarray:
    """The start date of the period of each time: month, year, or meteorological season
    (DJF starts on 1 December of the previous year, then MAM, JJA, SON)."""
    t = pd.DatetimeIndex(list(times))
    if period == "month":
        return t.to_period("M").start_time.values
    if period == "year":
        return t.to_period("Y").start_time.values
    if period == "season":
        shifted = t + pd.DateOffset(months=1)  # Dec -> Jan: DJF becomes one calendar quarter
        return (shifted.to_period("Q").start_time - pd.DateOffset(months=1)).values
    raise ValueError(f"unknown composite period {period!r}; expected 'month', 'season' or 'year'")


def composite(cube: xr.DataArray, period: Composite) -> xr.DataArray:
    """Median of clear observations per period (month, season DJF/MAM/JJA/SON, year).

    The result keeps the cube's coordinates; ``time`` is each period's start, ``mask`` is
    NODATA where a period has no clear observation, and ``clear_count`` (time, y, x) counts the
    clear observations behind each median. Stays lazy.
    """
    starts = pd.DatetimeIndex(period_starts(cube.time.values, period))
    out = []
    for start in starts.unique().sort_values():
        idx = np.flatnonzero(starts == start)
        part = cube.isel(time=idx)
        data = part.data.rechunk({0: len(idx)})
        med = da.map_blocks(nanmedian_time, data, dtype=np.float32, drop_axis=0)[None]
        count = da.map_blocks(_count_block, data, dtype=np.uint16, drop_axis=[0, 1])[None]
        flags = da.where(count == 0, masks.NODATA, np.uint8(0)).astype(np.uint8)
        sensors = sorted(set(part.sensor.values.tolist()))
        out.append(xr.DataArray(
            med, dims=cube.dims,
            coords={
                "time": [start.to_datetime64()], "band": cube.band.values, "y": cube.y, "x": cube.x,
                "sensor": ("time", [sensors[0] if len(sensors) == 1 else "+".join(sensors)]),
                "id": ("time", [f"{period}:{start.date()}:{len(idx)}"]),
                "mask": (("time", "y", "x"), flags),
                "clear_count": (("time", "y", "x"), count),
            },
            name=cube.name, attrs=cube.attrs,
        ))
    return xr.concat(out, dim="time", coords="different", compat="equals")


def nanmedian_time(a: np.ndarray) -> np.ndarray:
    """Median over axis 0 ignoring NaN (all-NaN -> NaN, no warning), float32; a dask block function."""
    return nanmedian(a.astype(np.float32, copy=False), axis=0)


def _count_block(a: np.ndarray) -> np.ndarray:
    return np.isfinite(a).all(axis=1).sum(axis=0).astype(np.uint16)


def _estimate(norm: list[NormalisedItem], bands: Sequence[str], epsg: int | None, resolution: Any,
              bounds: Bounds | None, bounds_latlon: Bounds | None) -> GridEstimate:
    target = _target_epsg(norm, epsg)
    res = _target_resolution(norm, target, bands, resolution)
    try:
        grid_bounds = _target_bounds(norm, target, res, bands, bounds, bounds_latlon)
    except OverflowError:
        raise AOIError("the AOI or an item's footprint is too large to snap to a pixel grid") from None
    height = int(round((grid_bounds[3] - grid_bounds[1]) / res[1]))
    width = int(round((grid_bounds[2] - grid_bounds[0]) / res[0]))
    return GridEstimate(target, res, grid_bounds, height, width, len(norm), len(bands))


def grid_estimate(
    items: Iterable[Any],
    bands: Sequence[str] | None = None,
    *,
    epsg: int | None = None,
    resolution: float | tuple[float, float] | None = None,
    bounds: Bounds | None = None,
    bounds_latlon: Bounds | None = None,
) -> GridEstimate:
    """The grid :func:`load_cube` would build for these arguments, from metadata only (no
    stackstac graph, no pixel); check it with :func:`check_grid`."""
    bands = tuple(bands) if bands else DEFAULT_BANDS
    norm = normalise_items(items, bands)
    return _estimate(norm, bands, epsg, resolution, bounds, bounds_latlon)


def load_cube(
    items: Iterable[Any],
    bands: Sequence[str] | None = None,
    *,
    epsg: int | None = None,
    resolution: float | tuple[float, float] | None = None,
    bounds: Bounds | None = None,
    bounds_latlon: Bounds | None = None,
    chunksize: int = 1024,
    mosaic_same_day: bool = True,
    composite_period: Composite | None = None,
    mask_flags: int = int(masks.DEFAULT_MASKED),
    resampling: str = "nearest",
) -> xr.DataArray:
    """Lazy surface-reflectance cube (time, band, y, x) from STAC items (pystac or dicts).

    - ``bands``: harmonised common names (default blue, green, red, nir, swir16, swir22).
    - ``epsg``: target CRS (default: the most common item CRS); ``resolution`` in metres (default:
      the finest native pixel of the requested bands; 30 m when Landsat and Sentinel-2 merge);
      ``bounds`` in the target CRS or ``bounds_latlon`` in EPSG:4326 (default: the union of the
      item footprints from ``proj:transform`` + ``proj:shape``, reprojected for items in another
      CRS; an item that declares no grid takes its first band's file header, read once per
      href, never its lon/lat ``bbox``), snapped to the native grid. The chosen CRS, affine
      transform and resolution are in ``attrs`` (``crs``, ``epsg``, ``transform``, ``resolution``).
    - Reflectance is float32 0-1 (scale/offset from ``raster:bands`` or the product convention),
      NaN where the quality flags hit ``mask_flags`` (nodata, cloud, shadow, cirrus, saturated).
    - ``mask`` coordinate (time, y, x): uint8 flags (:mod:`rsvlm_temporal.io.masks`).
    - Same-day acquisitions of one sensor are mosaicked (first clear pixel); ``composite_period``
      ("month", "season", "year") reduces to the median of clear pixels per period.
    - ``chunksize``: dask chunk side in target pixels, default 1024 (chunk edges fall on
      multiples of it on the native grid, so file tiles whose size divides it, e.g. 512 px, are
      never split). At 1024 the loader reaches bare rasterio's windowed-read throughput in
      ``benchmarks/loader.py`` and ``benchmarks/loader_matrix.py``; smaller chunks cost more
      per-task overhead, and chunks smaller than the files' tiles decode a tile once per chunk
      thread that reads it; larger ones more memory (a chunk holds one date x all bands,
      float32: 1024 px x 6 bands = 24 MiB).

    Reads no pixel: the result is dask-backed.
    """
    from rasterio.enums import Resampling

    bands = tuple(bands) if bands else DEFAULT_BANDS
    norm = normalise_items(items, bands)
    groups: dict[str, list[NormalisedItem]] = {}
    for it in norm:
        groups.setdefault(it.sensor.id, []).append(it)
    _common_bands(groups, bands)
    est = _estimate(norm, bands, epsg, resolution, bounds, bounds_latlon)
    check_grid(est)  # before stackstac builds anything
    target, res, grid_bounds = est.epsg, est.resolution, est.bounds
    try:
        rs = Resampling[resampling]
    except KeyError:
        raise ValueError(f"unknown resampling {resampling!r}; expected e.g. 'nearest', 'bilinear'") from None

    parts = [
        _load_group(g, bands, target, res, grid_bounds, chunksize, mask_flags, rs)
        for g in groups.values()
    ]
    cube = parts[0] if len(parts) == 1 else xr.concat(parts, dim="time").sortby("time")
    transform = Affine(res[0], 0.0, grid_bounds[0], 0.0, -res[1], grid_bounds[3])
    cube.attrs = {
        "crs": f"EPSG:{target}",
        "epsg": target,
        "transform": tuple(transform)[:6],
        "resolution": res,
        "units": "surface reflectance (0-1)",
    }
    if mosaic_same_day:
        cube = _mosaic_same_day(cube, mask_flags)
    if composite_period:
        cube = composite(cube, composite_period)
    return cube
