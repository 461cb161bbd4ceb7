"""Cloud-Optimized GeoTIFF writers: :func:`write_cog` streams a georeferenced raster (dask or
numpy backed) block batch by block batch; :func:`write_array_cog` writes an in-memory array with
an explicit transform and CRS. Every write is atomic (``rsvlm_temporal.atomic``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import dask
import dask.array as dsa
import numpy as np
import rasterio
import rasterio.shutil
import xarray as xr
from affine import Affine
from rasterio.windows import Window

from rsvlm_temporal import grid
from rsvlm_temporal.atomic import atomic_path
from rsvlm_temporal.classes import NODATA_CLASS, class_color
from rsvlm_temporal.compute.blocks import (
    as_dask,
    block_offsets,
)
from rsvlm_temporal.errors import GridError

#: bytes of raster computed at once when writing a COG (a batch of dask blocks)
WRITE_BATCH_BYTES = 32 * 2**20
#: tag written on datetime rasters stored as int32 days
DATE_ENCODING = "int32 days since 1970-01-01; -1 = no date"
DATE_NODATA = -1

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
# in-memory arrays

#: tile side of :func:`write_array_cog` (px)
ARRAY_COG_BLOCKSIZE = 256
#: GDAL's COG driver takes names, not the GTiff codes (1 none, 2 horizontal, 3 floating point)
_PREDICTOR = {1: "NO", 2: "STANDARD", 3: "FLOATING_POINT"}



def write_array_cog(path: str | os.PathLike[str], data: np.ndarray, transform: Affine, crs: str,
              nodata: float | int | None, resampling: str = "nearest",
              descriptions: Sequence[str] | None = None, tags: Mapping[str, str] | None = None,
              predictor: int = 1, atomic: bool = True) -> Path:
    """Write an in-memory 2-D or (band, y, x) array with an explicit ``transform`` (rasterio
    Affine, CRS metres) and ``crs`` as a deflate Cloud-Optimized GeoTIFF (blocks of 256,
    overviews when larger than a block), atomically unless ``atomic=False`` (for files inside a
    private folder that is itself renamed into place)."""
    arr = data[None] if data.ndim == 2 else data
    if not atomic:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        _array_cog(Path(path), arr, transform, crs, nodata, resampling, descriptions, tags, predictor)
        return Path(path)
    with atomic_path(path) as tmp:
        _array_cog(tmp, arr, transform, crs, nodata, resampling, descriptions, tags, predictor)
    return Path(path)


def _array_cog(path: Path, arr: np.ndarray, transform: Affine, crs: str, nodata: float | int | None,
         resampling: str, descriptions: Sequence[str] | None, tags: Mapping[str, str] | None,
         predictor: int) -> None:
    with rasterio.open(
        path, "w", driver="COG", width=arr.shape[-1], height=arr.shape[-2], count=arr.shape[0],
        dtype=arr.dtype, crs=crs, transform=transform, nodata=nodata, compress="deflate",
        predictor=_PREDICTOR[predictor], blocksize=ARRAY_COG_BLOCKSIZE, overview_resampling=resampling,
    ) as dst:
        dst.write(arr)
        if descriptions:
            for i, d in enumerate(descriptions):
                dst.set_band_description(i + 1, d)
        if tags:
            dst.update_tags(**tags)

