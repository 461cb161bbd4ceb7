"""A result stack on disk: every (y, x) layer of an analysis in one tiled GeoTIFF, written block
batch by block batch, then read back lazily.

Computing the analysis once into this stack (instead of once per exported file) keeps every
export and the evidence to one pass over the cube, and memory bounded by the batch size, with
the threaded scheduler or a dask.distributed client alike (blocks are computed where the
scheduler runs them and written here, by the process that called).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import rasterio
import xarray as xr
from affine import Affine
from rasterio.windows import Window

from .atomic import atomic_path
from .timeutil import days_to_datetime
from .grid import coords_for

EPOCH_DAYS_TAG = "days since 1970-01-01"


def _as_float(v: xr.DataArray) -> tuple[xr.DataArray, str]:
    if np.issubdtype(v.dtype, np.datetime64):
        days = v.astype("datetime64[D]").astype("int64").astype("float32")
        return days.where(~v.isnull()), EPOCH_DAYS_TAG
    return v.astype("float32"), str(v.dtype)


def write_stack(ds: xr.Dataset, path: str | Path, batch_bytes: int = 64 * 2**20, block: int = 512) -> Path:
    """Write every variable of ``ds`` (dims y, x; cube georef attrs) as one band of a float32
    tiled GeoTIFF, computing spatial blocks in batches of about ``batch_bytes``. Atomic."""
    names = list(ds.data_vars)
    converted = [_as_float(ds[n]) for n in names]
    stacked = da.stack([c[0].data if isinstance(c[0].data, da.Array) else da.from_array(c[0].data)
                        for c in converted])
    h, w = stacked.shape[1:]
    stacked = stacked.rechunk((len(names), min(block, h), min(block, w)))
    transform = Affine(*ds.attrs["transform"][:6])
    profile = dict(driver="GTiff", height=h, width=w, count=len(names), dtype="float32",
                   crs=ds.attrs["crs"], transform=transform, nodata=np.nan, tiled=True,
                   blockxsize=256, blockysize=256, compress="deflate", predictor=3, interleave="band",
                   BIGTIFF="IF_SAFER")
    per_block = len(names) * min(block, h) * min(block, w) * 4
    per_batch = max(1, batch_bytes // per_block)
    ys = np.cumsum((0,) + stacked.chunks[1])
    xs = np.cumsum((0,) + stacked.chunks[2])
    windows = [(i, j) for i in range(len(ys) - 1) for j in range(len(xs) - 1)]
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            for k, name in enumerate(names):
                dst.set_band_description(k + 1, name)
            dst.update_tags(layers=json.dumps(names), dtypes=json.dumps([c[1] for c in converted]),
                            attrs=json.dumps({n: _jsonable_attrs(ds[n].attrs) for n in names}))
            for b in range(0, len(windows), per_batch):
                batch = windows[b:b + per_batch]
                blocks = dask.compute(*[stacked.blocks[0, i, j] for i, j in batch])
                for (i, j), arr in zip(batch, blocks):
                    dst.write(arr, window=Window(xs[j], ys[i], xs[j + 1] - xs[j], ys[i + 1] - ys[i]))
    return Path(path)


def _jsonable_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in attrs.items():
        if k == "class_names" and v:
            out[k] = {str(c): n for c, n in v.items()}
    return out


def _read_window(path: str, band: int, block_info: Any = None) -> np.ndarray:
    loc = block_info[None]["array-location"]
    (y0, y1), (x0, x1) = loc
    with rasterio.open(path) as src:
        return src.read(band, window=Window(x0, y0, x1 - x0, y1 - y0))


def open_stack(path: str | Path, chunks: int = 512) -> xr.Dataset:
    """The layers written by :func:`write_stack`, lazily (dask; one windowed read per chunk).

    Date layers come back as datetime64[ns] (NaT none), class layers with their dtype and
    ``class_names``, all with the crs/epsg/transform/resolution attrs.
    """
    path = str(path)
    with rasterio.open(path) as src:
        tags = src.tags()
        h, w = src.height, src.width
        t = src.transform
        crs = src.crs.to_string()
        epsg = src.crs.to_epsg()
    names = json.loads(tags["layers"])
    dtypes = json.loads(tags["dtypes"])
    layer_attrs = json.loads(tags.get("attrs", "{}"))
    georef = {"crs": crs, "epsg": epsg, "transform": tuple(t)[:6], "resolution": (t.a, -t.e)}
    coords = coords_for(t, (h, w))
    out = {}
    for k, (name, dtype) in enumerate(zip(names, dtypes)):
        arr = da.map_blocks(_read_window, path, k + 1, dtype=np.float32,
                            chunks=da.core.normalize_chunks((chunks, chunks), (h, w)))
        v = xr.DataArray(arr, dims=("y", "x"), coords=coords, name=name)
        if dtype == EPOCH_DAYS_TAG:
            v = xr.apply_ufunc(days_to_datetime, v, dask="parallelized", output_dtypes=["datetime64[ns]"])
        elif dtype == "bool":
            v = v == 1
        elif dtype != "float32":
            v = v.astype(dtype)
        v.attrs.update(georef)
        if "class_names" in layer_attrs.get(name, {}):
            v.attrs["class_names"] = {int(c): n for c, n in layer_attrs[name]["class_names"].items()}
        out[name] = v
    ds = xr.Dataset(out)
    ds.attrs.update(georef)
    return ds
