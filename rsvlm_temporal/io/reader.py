"""The raster reader stackstac uses for our cubes, and the per-block DN -> reflectance kernels.

:class:`DNReader` reads raw DNs (stackstac's default reader reads masked arrays and fills them
again; nodata is handled by the cube from the DN and the quality band); a missing or truncated
file ends in :class:`RasterReadError`. Where the target grid is the file's own pixel grid (a crop
of a tile, or a whole-factor finer grid: 20 m bands on 10 m) it reads the window directly
instead of through a GDAL WarpedVRT, and the threads share a small pool of open handles per file
(:class:`PooledRioDataset`) instead of opening every file once per thread.

:func:`read_chunk` is the cube's one task per chunk: it decodes every band of a date straight
into its float32 plane of the chunk (:meth:`DNReader.read_into`; no DN block, no copy), then
scales, offsets and masks each plane in place and derives the uint8 quality flags in the same
pass, under one GDAL read environment per chunk. :func:`reflectance_block` and
:func:`flags_block` do the same conversion on a block of raw DNs (time, band, y, x) and quality
values (time, y, x), one (date, band) plane at a time; ``read_chunk`` gives their values bit for
bit.

Measured with ``benchmarks/loader.py`` (24 dates x 6 bands x 1024 px, 2 cores; see its README).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import numpy as np
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window
from stackstac.rio_reader import (
    MULTITHREADED_DRIVER_ALLOWLIST,
    AutoParallelRioReader,
    SelfCleaningDatasetReader,
    SingleThreadedRioDataset,
    ThreadLocalRioDataset,
)

from rsvlm_temporal.errors import RasterReadError
from rsvlm_temporal.io import masks

_NAN = np.float32(np.nan)

#: GDAL options bounding every remote (COG over HTTP) read: seconds per request, connect
#: timeout, retries, and an abort when a transfer stays under 1 byte/s for the low-speed time.
#: :func:`set_http_limits` changes them (the CLI's --http-timeout / --http-retries).
HTTP_OPTIONS: dict[str, str] = {
    "GDAL_HTTP_TIMEOUT": "30",
    "GDAL_HTTP_CONNECTTIMEOUT": "30",
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "0.5",
    "GDAL_HTTP_LOW_SPEED_TIME": "30",
    "GDAL_HTTP_LOW_SPEED_LIMIT": "1",
}


def set_http_limits(timeout: float | None = None, retries: int | None = None) -> None:
    """Set the GDAL HTTP deadline (seconds per request) and retry count of COG reads."""
    if timeout is not None:
        t = str(max(1, int(np.ceil(timeout))))
        for key in ("GDAL_HTTP_TIMEOUT", "GDAL_HTTP_CONNECTTIMEOUT", "GDAL_HTTP_LOW_SPEED_TIME"):
            HTTP_OPTIONS[key] = t
    if retries is not None:
        HTTP_OPTIONS["GDAL_HTTP_MAX_RETRY"] = str(int(retries))


def gdal_env() -> Any:
    """stackstac's GDAL environment plus :data:`HTTP_OPTIONS` (travels with the read graph,
    so LocalCluster workers read under the same limits)."""
    import stackstac

    return stackstac.DEFAULT_GDAL_ENV.updated(always=dict(HTTP_OPTIONS))


def _check_local(url: str) -> None:
    """A local href must be a regular file: opening a FIFO or a device blocks or never ends."""
    import os
    import stat
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if parsed.scheme not in ("", "file") or url.startswith("/vsi"):
        return
    path = parsed.path if parsed.scheme == "file" else url
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # GDAL names a missing file itself
    if not stat.S_ISREG(mode):
        raise RuntimeError(f"{path!r} is not a regular file (a FIFO, device or folder)")


def _is_local(url: str) -> bool:
    return url.startswith("/") and not url.startswith("/vsi") or url.startswith("file:")


def _local_open_env(url: str) -> Any:
    """No VSI read cache for a local file (the OS page cache holds it; GDAL's VSI_CACHE, on in
    stackstac's open environment for remote files, only adds a copy: about 10% of the CPU time
    of reading a deflate COG); a no-op for any other URL."""
    import contextlib

    import rasterio

    return rasterio.Env(VSI_CACHE=False) if _is_local(url) else contextlib.nullcontext()


class PooledRioDataset:
    """The open handles of one file, shared by the threads that read it.

    A read takes a free handle, opening another only when every handle is busy, and gives it
    back afterwards, so a handle is used by one thread at a time (what GDAL requires) and a file
    is opened about once per concurrent reader rather than once per thread (stackstac's
    ``ThreadLocalRioDataset``): with chunks smaller than a file, every thread reads every file.
    """

    def __init__(self, env: Any, ds: Any) -> None:
        self._env = env
        self._url = ds.name
        self._driver = ds.driver
        self._options = ds.options
        self.scale_offset = (ds.scales[0], ds.offsets[0])
        self._lock = threading.Lock()
        self._free = [ds]
        self._all = [ds]

    def _take(self) -> Any:
        with self._lock:
            if self._free:
                return self._free.pop()
        with self._env.open, _local_open_env(self._url):
            ds = SelfCleaningDatasetReader(self._url, sharing=False, driver=self._driver, **self._options)
        with self._lock:
            self._all.append(ds)
        return ds

    def read(self, window: Window, **kwargs: Any) -> np.ndarray:
        with self._env.read:
            return self.read_in_env(window, **kwargs)

    def read_in_env(self, window: Window, **kwargs: Any) -> np.ndarray:
        """:meth:`read` for a caller that already holds the GDAL read environment (one
        ``rasterio.Env`` entry per chunk instead of per band: about 0.2 ms each)."""
        ds = self._take()
        try:
            return ds.read(window=window, **kwargs)
        finally:
            with self._lock:
                self._free.append(ds)

    def close(self) -> None:
        with self._lock:
            handles, self._all, self._free = self._all, [], []
        for ds in handles:
            ds.close()

    def __getstate__(self) -> Any:
        raise RuntimeError("open datasets are not picklable; pickle the DNReader instead")


class DNReader(AutoParallelRioReader):
    """stackstac ``Reader`` returning the raw DN window (uint16) of a single-band asset.

    Where the target grid is the file's own pixel grid, shifted by whole pixels and/or finer by
    a whole factor (a crop of a tile; a 20 m band on the 10 m grid), the window is read straight
    from the file and, for a factor k, each pixel repeated k x k times. That is exactly what
    GDAL's nearest-neighbour warp gives on such grids (target pixel centre (n + 0.5) / k falls
    in source pixel n // k), without a WarpedVRT, which costs about 3x the CPU per pixel
    (benchmarks/loader.py). Pixels outside the file get its nodata value (0 if it has none), as
    the warp gives. Any other grid, or another resampling, goes through stackstac's WarpedVRT.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: (row offset, col offset, ky, kx, rows, cols, fill): the direct path, set by _open
        self._direct: tuple[int, int, int, int, int, int, Any] | None = None

    def _open(self) -> Any:
        """Open the file; no WarpedVRT where the target grid is an aligned (sub)grid of it."""
        _check_local(self.url)
        with self.gdal_env.open, _local_open_env(self.url):
            try:
                ds = SelfCleaningDatasetReader(self.url, sharing=False)
            except Exception as exc:  # noqa: BLE001 - reported as RasterReadError by read()
                raise RuntimeError(f"Error opening {self.url!r}: {exc!r}") from exc
            if ds.count != 1:
                n = ds.count
                ds.close()
                raise RuntimeError(f"Assets must have exactly 1 band, but file {self.url!r} has {n}")
            far = self._misplaced(ds)
            if far:
                ds.close()
                raise RuntimeError(far)
            direct = self._direct_params(ds)
            if direct is not None:
                self._direct = direct
                vrt = None
            elif self.spec.vrt_params != {"crs": ds.crs.to_epsg(), "transform": ds.transform,
                                          "height": ds.height, "width": ds.width}:
                with self.gdal_env.open_vrt:
                    vrt = WarpedVRT(ds, sharing=False, resampling=self.resampling,
                                    add_alpha=ds.nodata is None, **self.spec.vrt_params)
            else:
                vrt = None
        if ds.driver in MULTITHREADED_DRIVER_ALLOWLIST:
            if vrt is None:
                return PooledRioDataset(self.gdal_env, ds)
            return ThreadLocalRioDataset(self.gdal_env, ds, vrt=vrt)
        return SingleThreadedRioDataset(self.gdal_env, ds, vrt=vrt)

    def _misplaced(self, ds: Any) -> str | None:
        """Why the file cannot be the asset its item declares: in the grid's CRS, its bounds do
        not touch the output grid (built from the items' proj:transform / proj:shape), so every
        pixel would silently read as nodata. None when it overlaps (or its CRS differs: warped)."""
        vp = self.spec.vrt_params
        if ds.crs is None or ds.crs.to_epsg() != vp["crs"]:
            return None
        t, h, w = vp["transform"], vp["height"], vp["width"]
        gx = sorted((t.c, t.c + t.a * w))
        gy = sorted((t.f, t.f + t.e * h))
        b = ds.bounds
        dx = max(gx[0] - b.right, b.left - gx[1], 0.0)
        dy = max(gy[0] - b.top, b.bottom - gy[1], 0.0)
        if dx <= 0 and dy <= 0:
            return None
        return (f"{self.url!r} lies {np.hypot(dx, dy) / 1000:.1f} km from the grid its item declares "
                f"(file bounds {tuple(round(v) for v in b)}, grid x {gx[0]:.0f}..{gx[1]:.0f}, y {gy[0]:.0f}..{gy[1]:.0f} "
                f"in EPSG:{vp['crs']}): the item's proj:transform / proj:shape do not describe this file; fix the "
                "item (or the file's georeferencing)")

    def _direct_params(self, ds: Any) -> tuple[int, int, int, int, int, int, Any] | None:
        if self.resampling != Resampling.nearest or ds.crs is None:
            return None
        if ds.crs.to_epsg() != self.spec.epsg:
            return None
        src, dst = ds.transform, self.spec.transform
        if src.b != 0 or src.d != 0 or dst.b != 0 or dst.d != 0:
            return None
        kx, ky = src.a / dst.a, src.e / dst.e
        col_off, row_off = (dst.c - src.c) / dst.a, (dst.f - src.f) / dst.e
        values = (kx, ky, col_off, row_off)
        if any(abs(v - round(v)) > 1e-6 for v in values) or round(kx) < 1 or round(ky) < 1:
            return None
        nodata = ds.nodata
        if nodata is None:
            fill: Any = self.dtype.type(0)
        else:
            if not np.isfinite(nodata):
                return None
            info = np.iinfo(self.dtype) if np.issubdtype(self.dtype, np.integer) else None
            if info is not None and (nodata != int(nodata) or not info.min <= nodata <= info.max):
                return None
            fill = self.dtype.type(nodata)
        return (int(round(row_off)), int(round(col_off)), int(round(ky)), int(round(kx)),
                ds.height, ds.width, fill)

    def _error(self, window: Window, exc: Exception) -> RasterReadError:
        return RasterReadError(
            f"cannot read {self.url!r} (window {window}): {exc}. The file is missing, "
            "truncated or not a GeoTIFF; re-download it or drop its item"
        )

    def read(self, window: Window, **kwargs: Any) -> np.ndarray:
        try:
            dataset = self.dataset  # opens on first use (sets self._direct)
            if self._direct is not None and not kwargs:
                return self._read_direct(dataset, window)
            result = dataset.read(window=window, out_dtype=self.dtype, masked=False, **kwargs)
        except Exception as exc:  # rasterio/GDAL raise many types; name the file either way
            raise self._error(window, exc) from exc
        if result.ndim == 3:
            result = result[0]
        return result

    def read_into(self, window: Window, out: np.ndarray, in_env: bool = False) -> None:
        """The DN window written into ``out`` ((h, w), C-contiguous, e.g. a float32 plane of
        the cube's chunk), converted exactly (every uint16 DN is a float32).

        On the direct path without upsampling, GDAL decodes straight into ``out`` (pixels
        outside the file get its nodata, as in :meth:`read`): no DN array, no copy. Otherwise the DNs of :meth:`read` are
        copied in. ``in_env``: the caller holds ``gdal_env.read`` already."""
        try:
            dataset = self.dataset  # opens on first use (sets self._direct)
            direct = self._direct
            h, w = int(window.height), int(window.width)
            if direct is not None and direct[2] == 1 and direct[3] == 1 and out.shape == (h, w):
                row_off, col_off, _, _, height, width, fill = direct
                r0, c0 = int(window.row_off) + row_off, int(window.col_off) + col_off
                vr0, vr1 = max(r0, 0), min(r0 + h, height)
                vc0, vc1 = max(c0, 0), min(c0 + w, width)
                if vr0 >= vr1 or vc0 >= vc1:
                    out.fill(fill)
                    return
                if (vr0, vr1, vc0, vc1) != (r0, r0 + h, c0, c0 + w):
                    out.fill(fill)  # pixels outside the file: its nodata, as the warp gives
                view = out[vr0 - r0: vr1 - r0, vc0 - c0: vc1 - c0]
                read = dataset.read_in_env if in_env and isinstance(dataset, PooledRioDataset) \
                    else dataset.read
                read(window=Window(vc0, vr0, vc1 - vc0, vr1 - vr0), indexes=1, out=view, masked=False)
                return
        except Exception as exc:  # rasterio/GDAL raise many types; name the file either way
            raise self._error(window, exc) from exc
        out[...] = self.read(window)

    def _read_direct(self, dataset: Any, window: Window) -> np.ndarray:
        """The target ``window`` read from the file's own pixels (see the class docstring)."""
        assert self._direct is not None
        row_off, col_off, ky, kx, height, width, fill = self._direct
        h, w = int(window.height), int(window.width)
        # target rows/cols in the frame whose origin is the file's corner
        r0, c0 = int(window.row_off) + row_off, int(window.col_off) + col_off
        vr0, vr1 = max(r0, 0), min(r0 + h, height * ky)
        vc0, vc1 = max(c0, 0), min(c0 + w, width * kx)
        if vr0 >= vr1 or vc0 >= vc1:
            return np.full((h, w), fill, self.dtype)
        sr0, sr1 = vr0 // ky, -(-vr1 // ky)
        sc0, sc1 = vc0 // kx, -(-vc1 // kx)
        data = dataset.read(window=Window(sc0, sr0, sc1 - sc0, sr1 - sr0), indexes=1,
                            out_dtype=self.dtype, masked=False)
        if ky > 1 or kx > 1:
            data = np.repeat(np.repeat(data, ky, axis=0), kx, axis=1)
            data = data[vr0 - sr0 * ky: vr1 - sr0 * ky, vc0 - sc0 * kx: vc1 - sc0 * kx]
        if (vr0, vr1, vc0, vc1) == (r0, r0 + h, c0, c0 + w):
            return data
        out = np.full((h, w), fill, self.dtype)
        out[vr0 - r0: vr1 - r0, vc0 - c0: vc1 - c0] = data
        return out


def aligned_chunks(n: int, offset: int, size: int) -> tuple[int, ...]:
    """Chunk sizes along an axis of ``n`` pixels whose first pixel is pixel ``offset`` of the
    native grid: edges on multiples of ``size`` native pixels, so that chunks do not straddle
    the files' internal tiles (tile sizes that divide ``size``). A first or last chunk shorter
    than ``size / 4`` joins its neighbour (chunks stay <= 1.25 x size)."""
    if n <= 0:
        return (0,)
    first = min(n, size - offset % size)
    rest = n - first
    chunks = [first] + [size] * (rest // size) + ([rest % size] if rest % size else [])
    if len(chunks) > 1 and chunks[0] < size // 4:
        sliver = chunks.pop(0)
        chunks[0] += sliver
    if len(chunks) > 1 and chunks[-1] < size // 4:
        sliver = chunks.pop()
        chunks[-1] += sliver
    return tuple(chunks)


def _date_flags(dn0: np.ndarray, qa: np.ndarray, nodata0: Any, lut: np.ndarray | None) -> np.ndarray:
    """Flags (y, x) of one date: the quality band through ``lut``, NODATA where band 0 is nodata."""
    if lut is not None:
        flags = np.take(lut, qa.astype(np.uint16, copy=False))  # == masks.decode, faster
    else:
        flags = np.zeros(qa.shape, np.uint8)
    np.bitwise_or(flags, masks.NODATA, out=flags, where=dn0 == nodata0)
    return flags


def flags_block(dn: np.ndarray, qa: np.ndarray, *, nodata: np.ndarray,
                lut: np.ndarray | None) -> np.ndarray:
    """One block: uint8 quality flags (t, y, x) from DNs (t, b, y, x) and quality values (t, y, x);
    NODATA also where the first band holds its nodata DN."""
    out = np.empty((dn.shape[0],) + dn.shape[2:], np.uint8)
    for i in range(dn.shape[0]):
        out[i] = _date_flags(dn[i, 0], qa[i], nodata[0], lut)
    return out


def reflectance_block(dn: np.ndarray, qa: np.ndarray, scale: np.ndarray, offset: np.ndarray, *,
                      nodata: np.ndarray, lut: np.ndarray | None, mask_flags: int) -> np.ndarray:
    """One block: DNs (t, b, y, x) + quality (t, y, x) -> float32 reflectance DN * scale + offset
    (scale/offset per date and band, (t, b)), NaN where a band holds its nodata DN or the date's
    flags hit ``mask_flags``."""
    t, b = dn.shape[:2]
    out = np.empty(dn.shape, np.float32)
    mflags = np.uint8(mask_flags)
    for i in range(t):
        bad_q = (_date_flags(dn[i, 0], qa[i], nodata[0], lut) & mflags) != 0
        any_q = bool(bad_q.any())
        for j in range(b):
            plane = out[i, j]
            np.multiply(dn[i, j], scale[i, j], out=plane)  # uint16 * float32 -> float32, exact cast
            plane += offset[i, j]
            bad = dn[i, j] == nodata[j]
            if any_q:
                bad |= bad_q
            np.copyto(plane, _NAN, where=bad)
    return out


def _plane_into(entry: Any, window: Window, out: np.ndarray, in_env: bool = False) -> None:
    """One asset's DN window (a reader-table entry: (reader, asset window) or None) into ``out``;
    0 (the cube's fill DN) where the asset is missing or does not overlap the window."""
    from rasterio import windows

    if entry is None or not windows.intersect(window, entry[1]):
        out.fill(0)
        return
    reader = entry[0]
    if isinstance(reader, DNReader):
        reader.read_into(window, out, in_env)
    else:  # any stackstac Reader
        out[...] = reader.read(window)


def read_chunk(entries: np.ndarray, slices: tuple[slice, slice], scale: np.ndarray,
               offset: np.ndarray, *, nbands: int, nodata: np.ndarray, lut: np.ndarray | None,
               mask_flags: int) -> tuple[np.ndarray, np.ndarray]:
    """One chunk of the cube, read and converted in one pass: (reflectance (t, b, y, x) float32,
    flags (t, 1, y, x) uint8) from a block of the reader table (t, bands [+ quality]) and the target
    window ``slices``; ``scale``/``offset`` (t, b) per date and band.

    Each band is decoded by GDAL straight into its float32 plane of the output (exact: every
    uint16 DN is a float32), then scaled, offset and masked in place, so the values equal
    :func:`reflectance_block` / :func:`flags_block` on the DN block bit for bit: DN * scale +
    offset in float32, NaN where the band holds its nodata DN or the date's flags (the quality
    band through ``lut``, NODATA where band 0 is nodata) hit ``mask_flags``.
    """
    window = Window.from_slices(*slices)
    h, w = int(window.height), int(window.width)
    t = entries.shape[0]
    out = np.empty((t, nbands, h, w), np.float32)
    flags = np.empty((t, 1, h, w), np.uint8)
    mflags = np.uint8(mask_flags)
    nod = nodata.astype(np.float32)
    qa = np.empty((h, w), np.uint16) if entries.shape[1] > nbands else None
    env = next((e[0].gdal_env for e in entries.flat if e is not None and isinstance(e[0], DNReader)
                and e[0].gdal_env is not None), None)
    with env.read if env is not None else contextlib.nullcontext():
        _convert_chunk(entries, window, scale, offset, nbands, nod, lut, mflags, out, flags, qa,
                       env is not None)
    return out, flags


def _convert_chunk(entries: np.ndarray, window: Window, scale: np.ndarray, offset: np.ndarray,
                   nbands: int, nod: np.ndarray, lut: np.ndarray | None, mflags: np.uint8,
                   out: np.ndarray, flags: np.ndarray, qa: np.ndarray | None, in_env: bool) -> None:
    """The loop of :func:`read_chunk`, under its GDAL read environment."""
    for i in range(entries.shape[0]):
        bad_q: np.ndarray | None = None
        for j in range(nbands):
            plane = out[i, j]
            _plane_into(entries[i, j], window, plane, in_env)
            bad = plane == nod[j]  # before scaling: the float32 DN is the DN exactly
            if j == 0:
                if qa is not None and lut is not None:
                    _plane_into(entries[i, nbands], window, qa, in_env)
                    f = flags[i, 0]
                    np.take(lut, qa, out=f)
                else:
                    f = flags[i, 0]
                    f.fill(0)
                np.bitwise_or(f, masks.NODATA, out=f, where=bad)
                q = (f & mflags) != 0
                bad_q = q if bool(q.any()) else None
            plane *= scale[i, j]  # float32 x float32, as uint16 * float32 in reflectance_block
            plane += offset[i, j]
            if bad_q is not None:
                bad |= bad_q
            np.copyto(plane, _NAN, where=bad)


def pick(pair: tuple[np.ndarray, ...], index: int) -> np.ndarray:
    """Element ``index`` of a block that is a tuple of arrays (a dask block function)."""
    return pair[index]
