"""Phrase grounding: "the burned area in the north-east" -> the matching change regions as a
GeoJSON FeatureCollection (EPSG:4326) and a boolean mask on the class raster's grid.

Sources, best first: the class raster (``change_class.tif`` or a georeferenced DataArray) for the
mask, the polygons file (``change_polygons.geojson``) for the features; without files, the 3x3
cells of the evidence holding the class (coarse).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rsvlm_temporal.errors import LanguageError
from rsvlm_temporal.evidence.schema import CELL_NAMES, Evidence
from rsvlm_temporal.language.understand import find_classes, find_region


@dataclass
class Grounding:
    """Grounded regions: ``classes`` and ``cells`` matched, ``geojson`` (EPSG:4326), ``mask``
    (bool (y, x) on the class raster grid, or None without a raster), ``source``."""

    phrase: str
    classes: list[str]
    cells: list[str]
    geojson: dict[str, Any]
    mask: np.ndarray | None = None
    source: str = "cells"
    area_ha: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (the mask as its pixel count and shape)."""
        return {"phrase": self.phrase, "classes": self.classes, "cells": self.cells, "geojson": self.geojson,
                "source": self.source, "area_ha": self.area_ha,
                "mask": None if self.mask is None else {"shape": list(self.mask.shape), "pixels": int(self.mask.sum())}}


def cell_masks(shape: tuple[int, int], north_up: bool = True) -> dict[str, np.ndarray]:
    """Boolean masks of the nine 3x3 cells of a (rows, cols) grid (same thirds as the evidence)."""
    h, w = shape
    r = np.minimum((3 * (np.arange(h) + 0.5) / h).astype(int), 2)
    c = np.minimum((3 * (np.arange(w) + 0.5) / w).astype(int), 2)
    names = CELL_NAMES if north_up else CELL_NAMES[6:] + CELL_NAMES[3:6] + CELL_NAMES[:3]
    return {names[i * 3 + j]: (r[:, None] == i) & (c[None, :] == j) for i in range(3) for j in range(3)}


def _read_raster(src: Any) -> tuple[np.ndarray, Any, dict[int, str]]:
    """(array, affine transform, {code: name}) of a class raster path or DataArray."""
    from affine import Affine

    from rsvlm_temporal.classes import CHANGE_CLASSES

    if isinstance(src, (str, Path)):
        import rasterio

        with rasterio.open(src) as ds:
            return ds.read(1), ds.transform, dict(CHANGE_CLASSES)
    arr = np.asarray(src.values)
    t = src.attrs.get("transform")
    names = src.attrs.get("class_names") or dict(CHANGE_CLASSES)
    return arr, Affine(*t[:6]) if t is not None else None, {int(k): v for k, v in names.items()}


def _cell_of_lonlat(lon: float, lat: float, bounds_lonlat: list[float]) -> str:
    w, s, e, n = bounds_lonlat
    col = min(max(int(3 * (lon - w) / (e - w)), 0), 2)
    row = min(max(int(3 * (n - lat) / (n - s)), 0), 2)
    return CELL_NAMES[row * 3 + col]


def _centroid(geom: dict[str, Any]) -> tuple[float, float]:
    pts: list[list[float]] = []

    def walk(x: Any) -> None:
        if isinstance(x, (list, tuple)) and x and isinstance(x[0], (int, float)):
            pts.append(list(x))
        elif isinstance(x, (list, tuple)):
            for y in x:
                walk(y)

    walk(geom.get("coordinates", []))
    a = np.asarray(pts, float)
    return float(a[:, 0].mean()), float(a[:, 1].mean())


def _cell_polygon(cell: str, bounds_lonlat: list[float]) -> list[list[float]]:
    w, s, e, n = bounds_lonlat
    i = CELL_NAMES.index(cell)
    r, c = divmod(i, 3)
    x0, x1 = w + (e - w) * c / 3, w + (e - w) * (c + 1) / 3
    y1, y0 = n - (n - s) * r / 3, n - (n - s) * (r + 1) / 3
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]


def ground(phrase: str, ev: Evidence, class_raster: Any = None, polygons: Any = None) -> Grounding:
    """Ground ``phrase`` in the evidence: class (default every change class present) and region
    (default the whole AOI) -> features and mask."""
    classes = find_classes(phrase) or [c.name for c in ev.classes if c.n_pixels > 0 and c.name != "no_change"]
    known = {c.name: c for c in ev.classes}
    unknown = [c for c in classes if c not in known]
    if unknown:
        raise LanguageError(f"cannot ground {unknown}: not assessed by this analysis; classes: {sorted(known)}")
    region = find_region(phrase)
    cells = list(region["cells"]) if region else list(CELL_NAMES)
    mask = None
    area = 0.0
    source = "cells"
    features: list[dict[str, Any]] = []
    if class_raster is not None:
        arr, transform, names = _read_raster(class_raster)
        codes = [known[c].code for c in classes]
        north_up = transform is None or transform.e < 0
        cm = cell_masks(arr.shape, north_up)
        inside = np.zeros(arr.shape, bool)
        for k in cells:
            inside |= cm[k]
        mask = np.isin(arr, codes) & inside
        px_ha = abs(transform.a * transform.e) / 1e4 if transform is not None else 0.0
        area = float(mask.sum() * px_ha)
        source = "raster"
    if polygons is not None:
        fc = json.loads(Path(polygons).read_text()) if isinstance(polygons, (str, Path)) else polygons
        for f in fc.get("features", []):
            props = f.get("properties", {})
            if props.get("class") not in classes:
                continue
            lon, lat = _centroid(f["geometry"])
            if _cell_of_lonlat(lon, lat, ev.aoi.bounds_lonlat) in cells:
                features.append(f)
        source = "polygons" if source == "cells" else source + "+polygons"
        if class_raster is None:
            area = float(sum(f.get("properties", {}).get("area_ha", 0.0) for f in features))
    if polygons is None:
        for name in classes:
            c = known[name]
            for k in cells:
                share = c.cell_shares.get(k, 0.0)
                if share > 0:
                    features.append({"type": "Feature", "properties": {"class": name, "cell": k,
                                                                       "area_ha": round(c.area_ha * share, 4)},
                                     "geometry": {"type": "Polygon",
                                                  "coordinates": [_cell_polygon(k, ev.aoi.bounds_lonlat)]}})
        if class_raster is None:
            area = float(sum(f["properties"]["area_ha"] for f in features))
    return Grounding(phrase=phrase, classes=classes, cells=cells,
                     geojson={"type": "FeatureCollection", "features": features}, mask=mask, source=source,
                     area_ha=area)
