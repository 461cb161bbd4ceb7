"""Test helpers: write small COGs and STAC item dicts that point at them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.io import MemoryFile


def write_cog(path: Path, array: np.ndarray, transform: Affine, epsg: int, nodata: float | None = 0,
              blocksize: int = 256) -> Path:
    """Write a single-band array as a Cloud-Optimized GeoTIFF (deflate, tiled)."""
    array = np.asarray(array)
    profile = dict(driver="GTiff", height=array.shape[0], width=array.shape[1], count=1,
                   dtype=array.dtype, crs=f"EPSG:{epsg}", transform=transform, nodata=nodata)
    with MemoryFile() as mem:
        with mem.open(**profile) as tmp:
            tmp.write(array, 1)
        with mem.open() as src:
            rasterio.shutil.copy(src, path, driver="COG", compress="DEFLATE", blocksize=blocksize)
    return path


def item_dict(item_id: str, when: str, collection: str, platform: str, epsg: int,
              assets: dict[str, dict[str, Any]], bbox: list[float] | None = None,
              properties: dict[str, Any] | None = None, proj_v2: bool = True) -> dict[str, Any]:
    """A minimal STAC item dict; projection written as v2 (proj:code) unless ``proj_v2=False``."""
    proj = {"proj:code": f"EPSG:{epsg}"} if proj_v2 else {"proj:epsg": epsg}
    props = {"datetime": when, "platform": platform, **proj, **(properties or {})}
    return {
        "type": "Feature", "stac_version": "1.1.0", "id": item_id, "collection": collection,
        "bbox": bbox, "geometry": None, "properties": props, "assets": assets, "links": [],
    }
