"""The raster reader stackstac uses for our cubes, and the per-block DN -> reflectance kernels.

stackstac's default reader reads every window as a masked array and then fills it again; we
read raw DNs (nodata handled by the cube from the DN and the quality band), which saves a pass
over every pixel, and a missing or truncated file ends in :class:`RasterReadError`.

:func:`reflectance_block` and :func:`flags_block` turn one dask block of raw DNs (time, band,
y, x) and quality values (time, y, x) into float32 reflectance (NaN where masked) and uint8
quality flags. They work one (date, band) plane at a time, in place, so every temporary stays
in the CPU cache (benchmarks/loader.py: 2.4x less CPU than whole-block numpy expressions).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window
from stackstac.rio_reader import (
    MULTITHREADED_DRIVER_ALLOWLIST, AutoParallelRioReader, SelfCleaningDatasetReader,
    SingleThreadedRioDataset, ThreadLocalRioDataset,
)

from . import masks
from .errors import RasterReadError

_NAN = np.float32(np.nan)


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
        with self.gdal_env.open:
            try:
                ds = SelfCleaningDatasetReader(self.url, sharing=False)
            except Exception as exc:  # noqa: BLE001 - reported as RasterReadError by read()
                raise RuntimeError(f"Error opening {self.url!r}: {exc!r}") from exc
            if ds.count != 1:
                n = ds.count
                ds.close()
                raise RuntimeError(f"Assets must have exactly 1 band, but file {self.url!r} has {n}")
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
            return ThreadLocalRioDataset(self.gdal_env, ds, vrt=vrt)
        return SingleThreadedRioDataset(self.gdal_env, ds, vrt=vrt)

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

    def read(self, window: Window, **kwargs: Any) -> np.ndarray:
        try:
            dataset = self.dataset  # opens on first use (sets self._direct)
            if self._direct is not None and not kwargs:
                return self._read_direct(dataset, window)
            result = dataset.read(window=window, out_dtype=self.dtype, masked=False, **kwargs)
        except Exception as exc:  # rasterio/GDAL raise many types; name the file either way
            raise RasterReadError(
                f"cannot read {self.url!r} (window {window}): {exc}. The file is missing, "
                "truncated or not a GeoTIFF; re-download it or drop its item"
            ) from exc
        if result.ndim == 3:
            result = result[0]
        return result

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


def _date_flags(dn0: np.ndarray, qa: np.ndarray, nodata0: Any, lut: np.ndarray | None) -> np.ndarray:
    """Flags (y, x) of one date: the quality band through ``lut``, NODATA where band 0 is nodata."""
    if lut is not None:
        flags = np.take(lut, qa.astype(np.uint16, copy=False))  # == masks.decode, faster
    else:
        flags = np.zeros(qa.shape, np.uint8)
    flags[dn0 == nodata0] |= masks.NODATA
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
        bad_q = (_date_flags(dn[i, 0], qa[i], nodata[0], lut) & mflags) != 0 if b else None
        any_q = bad_q is not None and bool(bad_q.any())
        for j in range(b):
            plane = out[i, j]
            np.multiply(dn[i, j], scale[i, j], out=plane)  # uint16 * float32 -> float32, exact cast
            plane += offset[i, j]
            bad = dn[i, j] == nodata[j]
            if any_q:
                bad |= bad_q
            np.copyto(plane, _NAN, where=bad)
    return out
