"""The raster reader stackstac uses for our cubes: raw DNs, no masked arrays, clear errors.

stackstac's default reader reads every window as a masked array and then fills it again; we
read raw DNs (nodata handled by the cube from the DN and the quality band), which saves a pass
over every pixel, and a missing or truncated file ends in :class:`RasterReadError`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rasterio.windows import Window
from stackstac.rio_reader import AutoParallelRioReader

from .errors import RasterReadError


class DNReader(AutoParallelRioReader):
    """stackstac ``Reader`` returning the raw DN window (uint16) of a single-band asset."""

    def read(self, window: Window, **kwargs: Any) -> np.ndarray:
        try:
            result = self.dataset.read(window=window, out_dtype=self.dtype, masked=False, **kwargs)
        except Exception as exc:  # rasterio/GDAL raise many types; name the file either way
            raise RasterReadError(
                f"cannot read {self.url!r} (window {window}): {exc}. The file is missing, "
                "truncated or not a GeoTIFF; re-download it or drop its item"
            ) from exc
        if result.ndim == 3:
            result = result[0]
        return result
