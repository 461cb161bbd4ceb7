"""A result stack on disk: every (y, x) layer of an analysis in one tiled GeoTIFF, written block
by block as the blocks are computed, then read back lazily.

Computing the analysis once into this stack (instead of once per exported file) keeps every
export and the evidence to one pass over the cube. Memory stays bounded by the block size, not
the AOI: :func:`stream_blocks` hands every block to the writer as soon as it is computed (with
the threaded scheduler or a dask.distributed client alike; the process that called writes) and
drops it.

Only whole tiles are ever written (:class:`TileAssembler` keeps the pieces of a tile that
straddles blocks until it is complete). A partly written tile would sit dirty in GDAL's
process-wide block cache, and a thread reading the cube can flush it there while this thread
reacquires the tile and writes the rest of it onto the stale copy: the first piece is lost
(GDAL issue #2011, "still problems if the block cache size is too small regarding the number of
threads"). With GDAL's cache capped for bounded memory it lost a block in about one run of ten.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Sequence

import dask
import dask.array as da
import numpy as np
import rasterio
import xarray as xr
from affine import Affine
from rasterio.windows import Window

from rsvlm_temporal.atomic import atomic_path
from rsvlm_temporal.compute.cluster import release_memory
from rsvlm_temporal.grid import coords_for
from rsvlm_temporal.timeutil import days_to_datetime

EPOCH_DAYS_TAG = "days since 1970-01-01"
#: GeoTIFF tile side of the stack (px)
TILE = 256
#: blocks per computation on a distributed client (they share the cube's open files)
BLOCKS_PER_COMPUTE = 4


def _as_float(v: xr.DataArray) -> tuple[xr.DataArray, str]:
    if np.issubdtype(v.dtype, np.datetime64):
        days = v.astype("datetime64[D]").astype("int64").astype("float32")
        return days.where(~v.isnull()), EPOCH_DAYS_TAG
    return v.astype("float32"), str(v.dtype)


def current_client() -> Any:
    """The ``distributed.Client`` that ``dask.compute`` would use now, or None."""
    owner = getattr(dask.base.get_scheduler(), "__self__", None)
    if owner is not None and type(owner).__name__ == "Client" and hasattr(owner, "compute"):
        return owner
    return None


def scheduler_threads() -> int:
    """Threads (all workers of a distributed client) that dask computes with now."""
    client = current_client()
    if client is not None:
        return max(1, sum(client.nthreads().values()))
    if _local_scheduler() is dask.local.get_sync:
        return 1
    return int(dask.config.get("num_workers", None) or dask.system.CPU_COUNT or 1)


def _local_scheduler() -> Any:
    """The scheduler function ``dask.compute`` uses now (the threaded one for arrays by default)."""
    return dask.base.get_scheduler() or dask.threaded.get


def stream_blocks(blocks: Sequence[Any], consume: Callable[[int, Any], None],
                  batch: int | None = None, window: int | None = None) -> None:
    """Compute dask collections (e.g. the ``to_delayed()`` blocks of an array) and hand each value
    to ``consume(index, value)`` (in this thread) as soon as it is computed; only a few blocks
    are ever in memory, however many there are.

    - Threaded scheduler: a pool of its threads, each computing one block at a time with dask's
      synchronous scheduler. One computation over every block would let dask read ahead the
      inputs of all of them (the cube's reads of a date share one upstream task, so dask's
      ordering runs them together): memory would grow with the AOI. The price: each block
      opens the cube's files again (about 0.7 ms a file; sharing the readers between blocks
      instead keeps every file open, ~0.5 MB each, for the whole pass).
    - A dask.distributed client: ``batch`` blocks per computation (default
      :data:`BLOCKS_PER_COMPUTE`), at most ``window`` batches in flight (default: enough for two
      blocks per worker thread, at least two batches); a future per block, gathered here.
    - Any other scheduler, or no more than two blocks per thread: one computation per ``batch``
      blocks (default: all of them when they are that few, else one).

    A block's upstream tasks (e.g. opening the cube's files) run once per computation.
    """
    n = len(blocks)
    threads = scheduler_threads()
    client = current_client()
    if client is not None:
        from distributed import as_completed

        batch = max(1, batch or BLOCKS_PER_COMPUTE)
        window = max(1, window or max(2, -(-2 * threads // batch)))
        groups = [list(range(i, min(i + batch, n))) for i in range(0, n, batch)]
        left: dict[int, int] = {}  # batch number -> blocks not yet consumed
        where: dict[Any, tuple[int, int]] = {}

        def submit(g: int, group: list[int]) -> list[Any]:
            futures = client.compute([blocks[i] for i in group])
            left[g] = len(group)
            where.update({f: (g, i) for f, i in zip(futures, group)})
            return futures

        numbered = enumerate(groups)
        done = as_completed([f for g, group in islice(numbered, window) for f in submit(g, group)])
        for fut in done:
            g, i = where.pop(fut)
            value = fut.result()
            fut.release()
            consume(i, value)
            del value
            left[g] -= 1
            if left[g] == 0:  # a batch is done: start the next
                del left[g]
                nxt = next(numbered, None)
                if nxt is not None:
                    done.update(submit(*nxt))
        return
    if _local_scheduler() is dask.threaded.get and threads > 1 and n > 2 * threads:
        queue = iter(range(n))
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rsvlm-block") as pool:
            def start(i: int) -> Any:
                return pool.submit(dask.compute, blocks[i], scheduler="sync")

            running = {start(i): i for i in islice(queue, window or threads)}
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in sorted(finished, key=running.__getitem__):
                    i = running.pop(fut)
                    nxt = next(queue, None)
                    if nxt is not None:
                        running[start(nxt)] = nxt
                    (value,) = fut.result()
                    consume(i, value)
                    del value
                    release_memory()
        return
    # few blocks (no more than two per thread), or another scheduler: whole computations
    batch = max(1, batch or (n if n <= 2 * threads else 1))
    for start_ in range(0, n, batch):
        group = range(start_, min(start_ + batch, n))
        for i, value in zip(group, dask.compute(*[blocks[i] for i in group])):
            consume(i, value)


class TileAssembler:
    """Turns blocks of any extent into writes of whole tiles of a tiled raster.

    ``add(row, col, block)`` takes a (count, rows, cols) block at pixel (row, col); blocks must
    tile the raster without overlap, in any order. The tiles a block covers completely are
    written at once (one window, starting on a tile edge and ending on one or on the raster's
    edge); the pieces of a tile it covers partly are kept until that tile is complete, so
    ``write(window, array)`` only ever receives whole tiles, each once. Memory: the partly
    covered tiles, about one row of tiles (count x tile x raster width values) when blocks
    arrive row by row.
    """

    def __init__(self, write: Callable[[Window, np.ndarray], None], shape: tuple[int, int],
                 tile: int, count: int, dtype: Any = np.float32) -> None:
        self._write, self._tile, self._count, self._dtype = write, tile, count, np.dtype(dtype)
        self._h, self._w = shape
        self._pending: dict[tuple[int, int], list[Any]] = {}  # tile -> [buffer, pixels still missing]
        self._done: set[tuple[int, int]] = set()

    def _extent(self, ti: int, tj: int) -> tuple[int, int, int, int]:
        t = self._tile
        return ti * t, min((ti + 1) * t, self._h), tj * t, min((tj + 1) * t, self._w)

    def _overlap(self, ti: int, tj: int) -> ValueError:
        y0, y1, x0, x1 = self._extent(ti, tj)
        return ValueError(f"blocks overlap in the tile at rows {y0}:{y1}, cols {x0}:{x1}")

    def add(self, row: int, col: int, block: np.ndarray) -> None:
        if block.ndim == 2:
            block = block[None]
        if block.shape[0] != self._count:
            raise ValueError(f"block has {block.shape[0]} layers; the raster has {self._count}")
        t = self._tile
        r1, c1 = row + block.shape[1], col + block.shape[2]
        if row < 0 or col < 0 or r1 > self._h or c1 > self._w:
            raise ValueError(f"block rows {row}:{r1}, cols {col}:{c1} outside the {self._h} x {self._w} raster")
        tiles = [(ti, tj) for ti in range(row // t, -(-r1 // t)) for tj in range(col // t, -(-c1 // t))]
        for ti, tj in tiles:
            if (ti, tj) in self._done:
                raise self._overlap(ti, tj)
        # the whole tiles inside the block: one write
        fr0, fc0 = -(-row // t) * t, -(-col // t) * t
        fr1 = r1 if r1 == self._h else r1 // t * t
        fc1 = c1 if c1 == self._w else c1 // t * t
        whole = fr1 > fr0 and fc1 > fc0
        for ti, tj in tiles:
            y0, y1, x0, x1 = self._extent(ti, tj)
            if whole and fr0 <= y0 and y1 <= fr1 and fc0 <= x0 and x1 <= fc1:
                if (ti, tj) in self._pending:
                    raise self._overlap(ti, tj)
                self._done.add((ti, tj))
                continue
            entry = self._pending.get((ti, tj))
            if entry is None:
                entry = self._pending[(ti, tj)] = [
                    np.empty((self._count, y1 - y0, x1 - x0), self._dtype), (y1 - y0) * (x1 - x0)]
            a0, a1, b0, b1 = max(y0, row), min(y1, r1), max(x0, col), min(x1, c1)
            entry[0][:, a0 - y0:a1 - y0, b0 - x0:b1 - x0] = block[:, a0 - row:a1 - row, b0 - col:b1 - col]
            entry[1] -= (a1 - a0) * (b1 - b0)
            if entry[1] < 0:
                raise self._overlap(ti, tj)
            if entry[1] == 0:
                del self._pending[(ti, tj)]
                self._done.add((ti, tj))
                self._write(Window(x0, y0, x1 - x0, y1 - y0), entry[0])
        if whole:
            self._write(Window(fc0, fr0, fc1 - fc0, fr1 - fr0),
                        block[:, fr0 - row:fr1 - row, fc0 - col:fc1 - col])

    def close(self) -> None:
        """Check that every tile was written (raises ValueError naming one that was not)."""
        t = self._tile
        rows, cols = -(-self._h // t), -(-self._w // t)
        if len(self._done) == rows * cols:
            return
        missing = self._pending or {k: None for k in ((i, j) for i in range(rows) for j in range(cols))
                                    if k not in self._done}
        y0, y1, x0, x1 = self._extent(*next(iter(missing)))
        raise ValueError(f"{rows * cols - len(self._done)} of {rows * cols} tiles not complete, e.g. "
                         f"rows {y0}:{y1}, cols {x0}:{x1}: a block was not added")


def write_stack(ds: xr.Dataset, path: str | Path, block: int | None = None,
                window: int | None = None, compress: str | None = "deflate") -> Path:
    """Write every variable of ``ds`` (dims y, x; cube georef attrs) as one band of a float32
    tiled GeoTIFF (``TILE`` px tiles, ``compress``: "deflate" or None for a scratch file read
    many times); dates become float days since 1970-01-01. Atomic.

    The layers are computed in the chunks of the dask-backed layers (unified; ``block``: regular
    ``block`` px chunks instead) and each chunk is written as soon as it is computed (see
    :func:`stream_blocks`; ``window``: chunks computed at once with the threaded scheduler,
    batches in flight on a distributed client), in whole tiles (:class:`TileAssembler`): memory
    is bounded by the chunks and one row of tiles, not the AOI.
    """
    names = list(ds.data_vars)
    converted = [_as_float(ds[n]) for n in names]
    lazy = [c[0].data for c in converted if isinstance(c[0].data, da.Array)]
    h, w = ds[names[0]].shape
    chunks: Any = lazy[0].chunks if lazy else (min(512, h), min(512, w))
    stacked = da.stack([c[0].data if isinstance(c[0].data, da.Array) else da.from_array(c[0].data, chunks=chunks)
                        for c in converted])
    stacked = stacked.rechunk((len(names),) + ((min(block, h), min(block, w)) if block else stacked.chunks[1:]))
    transform = Affine(*ds.attrs["transform"][:6])
    profile = dict(driver="GTiff", height=h, width=w, count=len(names), dtype="float32",
                   crs=ds.attrs["crs"], transform=transform, nodata=np.nan, tiled=True,
                   blockxsize=TILE, blockysize=TILE, interleave="band", BIGTIFF="IF_SAFER",
                   **({"compress": compress, "predictor": 3} if compress else {}))
    ys = np.cumsum((0,) + stacked.chunks[1])
    xs = np.cumsum((0,) + stacked.chunks[2])
    delayed = stacked.to_delayed()[0]
    cells = [(i, j) for i in range(len(ys) - 1) for j in range(len(xs) - 1)]
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            for k, name in enumerate(names):
                dst.set_band_description(k + 1, name)
            dst.update_tags(layers=json.dumps(names), dtypes=json.dumps([c[1] for c in converted]),
                            attrs=json.dumps({n: _jsonable_attrs(ds[n].attrs) for n in names}))
            tiles = TileAssembler(lambda win, arr: dst.write(arr, window=win), (h, w), TILE, len(names))

            def write(k: int, arr: np.ndarray) -> None:
                i, j = cells[k]
                tiles.add(int(ys[i]), int(xs[j]), arr)

            stream_blocks([delayed[i, j] for i, j in cells], write, window=window)
            tiles.close()
    release_memory()
    return Path(path)


def _jsonable_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in attrs.items():
        if k == "class_names" and v:
            out[k] = {str(c): n for c, n in v.items()}
    return out


_HANDLES = threading.local()
#: open stack files kept per thread (opening costs ~25x a 256 px window read)
OPEN_PER_THREAD = 4


def _dataset(path: str) -> Any:
    """An open handle on ``path`` for this thread (GDAL handles are not thread-safe), reused
    while the file is the same (inode, size, mtime: a stack rewritten in place is reopened)."""
    st = os.stat(path)
    key = (path, st.st_ino, st.st_size, st.st_mtime_ns)
    cache: OrderedDict[Any, Any] | None = getattr(_HANDLES, "cache", None)
    if cache is None:
        cache = _HANDLES.cache = OrderedDict()
    ds = cache.get(key)
    if ds is None:
        ds = cache[key] = rasterio.open(path)
        while len(cache) > OPEN_PER_THREAD:
            cache.popitem(last=False)[1].close()
    cache.move_to_end(key)
    return ds


def _read_window(path: str, band: int, block_info: Any = None) -> np.ndarray:
    loc = block_info[None]["array-location"]
    (y0, y1), (x0, x1) = loc
    return _dataset(path).read(band, window=Window(x0, y0, x1 - x0, y1 - y0))


def _read_bands(path: str, indexes: list[int], block_info: Any = None) -> np.ndarray:
    loc = block_info[None]["array-location"]
    (y0, y1), (x0, x1) = loc[1:]
    return _dataset(path).read(indexes=indexes, window=Window(x0, y0, x1 - x0, y1 - y0))


def open_stack_array(path: str | Path,
                     chunks: int | tuple[tuple[int, ...], tuple[int, ...]] = 512,
                     layers: slice | None = None) -> xr.DataArray:
    """The layers written by :func:`write_stack` (every one, or the ``layers`` slice of them) as
    one lazy float32 (layer, y, x) DataArray (as stored: dates as days since 1970-01-01), with
    the georef attrs; one windowed read per chunk for those layers in an uncompressed stack, per
    chunk and layer otherwise. ``chunks``: a chunk side in px, or the (y, x) chunk sizes of
    another array of the same grid."""
    path = str(path)
    with rasterio.open(path) as src:
        tags = src.tags()
        h, w = src.height, src.width
        t = src.transform
        crs = src.crs.to_string()
        epsg = src.crs.to_epsg()
        joint = src.compression is None
    every = json.loads(tags["layers"])
    ks = list(range(len(every)))[layers or slice(None)]
    names = [every[k] for k in ks]
    yx = da.core.normalize_chunks((chunks, chunks) if isinstance(chunks, int) else chunks, (h, w))
    if joint:
        data = da.map_blocks(_read_bands, path, [k + 1 for k in ks], dtype=np.float32,
                             chunks=((len(names),),) + yx)
    else:
        data = da.stack([da.map_blocks(_read_window, path, k + 1, dtype=np.float32, chunks=yx)
                         for k in ks])
    georef = {"crs": crs, "epsg": epsg, "transform": tuple(t)[:6], "resolution": (t.a, -t.e)}
    return xr.DataArray(data, dims=("layer", "y", "x"), coords={"layer": names, **coords_for(t, (h, w))},
                        attrs={**georef, "layer_dtypes": [json.loads(tags["dtypes"])[k] for k in ks],
                               "layer_attrs": json.loads(tags.get("attrs", "{}"))})


def open_stack(path: str | Path, chunks: int | tuple[tuple[int, ...], tuple[int, ...]] = 512) -> xr.Dataset:
    """The layers written by :func:`write_stack`, lazily (see :func:`open_stack_array`).

    Date layers come back as datetime64[ns] (NaT none), class layers with their dtype and
    ``class_names``, all with the crs/epsg/transform/resolution attrs.
    """
    arr = open_stack_array(path, chunks)
    georef = {k: arr.attrs[k] for k in ("crs", "epsg", "transform", "resolution")}
    out = {}
    for k, (name, dtype) in enumerate(zip(arr.layer.values.tolist(), arr.attrs["layer_dtypes"])):
        v = arr.isel(layer=k, drop=True).rename(name)
        v.attrs = {}
        if dtype == EPOCH_DAYS_TAG:
            v = xr.apply_ufunc(days_to_datetime, v, dask="parallelized", output_dtypes=["datetime64[ns]"])
        elif dtype == "bool":
            v = v == 1
        elif dtype != "float32":
            v = v.astype(dtype)
        v.attrs.update(georef)
        names = arr.attrs["layer_attrs"].get(name, {}).get("class_names")
        if names:
            v.attrs["class_names"] = {int(c): n for c, n in names.items()}
        out[name] = v
    ds = xr.Dataset(out)
    ds.attrs.update(georef)
    return ds
