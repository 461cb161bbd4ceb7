"""Area of interest: parse a bbox or GeoJSON into lon/lat (EPSG:4326) geometry.

`parse_aoi` accepts a bbox (4 numbers or "minx,miny,maxx,maxy"), a GeoJSON Polygon /
MultiPolygon, Feature or FeatureCollection dict (or its JSON text), or a path to a
.geojson/.json file. A GeoJSON "crs" member other than EPSG:4326 / CRS84 is reprojected.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import shapely
from shapely import ops
from shapely.geometry import box, mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from rsvlm_temporal.errors import AOIError

AOIInput = str | Path | Sequence[float] | dict[str, Any]

_POLYGON_TYPES = ("Polygon", "MultiPolygon")
_FILE_SUFFIXES = (".geojson", ".json")


@dataclass(frozen=True)
class AOI:
    """An area of interest in EPSG:4326 (degrees, x = longitude, y = latitude).

    bbox: (minx, miny, maxx, maxy) in degrees; geometry: GeoJSON Polygon/MultiPolygon dict.
    """

    bbox: tuple[float, float, float, float]
    geometry: dict[str, Any]

    def utm_epsg(self) -> int:
        """EPSG code of the WGS 84 UTM zone of the centroid: 326xx north, 327xx south."""
        centroid = shape(self.geometry).centroid
        zone = min(int((centroid.x + 180.0) // 6.0) + 1, 60)
        return (32600 if centroid.y >= 0 else 32700) + zone

    def bounds_in(self, epsg: int) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) of the bbox in EPSG:`epsg` (CRS units), densified edges."""
        transformer = pyproj.Transformer.from_crs(4326, epsg, always_xy=True)
        minx, miny, maxx, maxy = transformer.transform_bounds(*self.bbox, densify_pts=21)
        return (float(minx), float(miny), float(maxx), float(maxy))


def parse_aoi(value: AOI | AOIInput) -> AOI:
    """Parse a bbox, GeoJSON dict/text or .geojson/.json path into an :class:`AOI` (EPSG:4326).

    Raises AOIError naming the problem: wrong count, non-numeric, inverted or out-of-range
    bbox, zero area, unreadable file, unsupported or invalid geometry.
    """
    if isinstance(value, AOI):
        return value
    if isinstance(value, dict):
        return _from_geojson(value, "GeoJSON")
    if isinstance(value, Path) or (
        isinstance(value, str) and (value.strip().lower().endswith(_FILE_SUFFIXES)
                                    or (value.strip() != "" and Path(value.strip()).is_file()))
    ):  # a file is GeoJSON whatever its suffix (x.txt)
        return _from_geojson(_read_json_file(Path(value)), str(value))
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                return _from_geojson(json.loads(text), "GeoJSON text")
            except json.JSONDecodeError as exc:
                raise AOIError(f"AOI string is not valid GeoJSON: {exc}") from exc
        return _from_bbox(text.split(","))
    if isinstance(value, Sequence):
        return _from_bbox(value)
    raise AOIError(
        f"unsupported AOI {type(value).__name__}: expected a bbox (minx,miny,maxx,maxy), "
        "a GeoJSON dict or a path to a .geojson/.json file"
    )


def _from_bbox(values: Sequence[Any]) -> AOI:
    if len(values) != 4:
        raise AOIError(f"a bbox needs 4 numbers minx,miny,maxx,maxy; got {len(values)}: {values!r}")
    try:
        minx, miny, maxx, maxy = (float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise AOIError(f"bbox values must be numbers minx,miny,maxx,maxy; got {values!r}") from exc
    bbox = (minx, miny, maxx, maxy)
    _check_range(bbox)
    if minx > maxx:
        raise AOIError(f"bbox is inverted: minx {minx} > maxx {maxx} (expected minx <= maxx)")
    if miny > maxy:
        raise AOIError(f"bbox is inverted: miny {miny} > maxy {maxy} (expected miny <= maxy)")
    if minx == maxx or miny == maxy:
        raise AOIError(f"bbox {bbox} has zero area: expected minx < maxx and miny < maxy")
    return AOI(bbox=bbox, geometry=mapping(box(*bbox)))


def _check_range(bbox: tuple[float, float, float, float]) -> None:
    for name, v, limit in zip(("minx", "miny", "maxx", "maxy"), bbox, (180, 90, 180, 90)):
        kind = "longitude" if limit == 180 else "latitude"
        if not math.isfinite(v) or abs(v) > limit:
            raise AOIError(
                f"{name} = {v} is out of range: {kind} must lie in [-{limit}, {limit}] "
                "degrees (EPSG:4326)"
            )


def _read_json_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise AOIError(f"AOI file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AOIError(f"cannot parse AOI file {path} as GeoJSON: {exc}") from exc
    if not isinstance(data, dict):
        raise AOIError(f"AOI file {path} holds a JSON {type(data).__name__}, not a GeoJSON object")
    return data


def _from_geojson(data: dict[str, Any], where: str) -> AOI:
    geom = _to_shape(data, where)
    src_crs = _crs_of(data, where)
    if src_crs is not None:
        to_4326 = pyproj.Transformer.from_crs(src_crs, 4326, always_xy=True)
        geom = shapely.transform(
            geom, lambda xy: np.column_stack(to_4326.transform(xy[:, 0], xy[:, 1]))
        )
    if geom.is_empty or geom.area == 0:
        raise AOIError(f"{where}: the geometry has zero area (expected a polygon with an interior)")
    if not geom.is_valid:
        raise AOIError(f"{where}: invalid polygon ({explain_validity(geom)})")
    minx, miny, maxx, maxy = (float(v) for v in geom.bounds)
    _check_range((minx, miny, maxx, maxy))
    return AOI(bbox=(minx, miny, maxx, maxy), geometry=mapping(geom))


def _to_shape(data: dict[str, Any], where: str) -> BaseGeometry:
    kind = data.get("type")
    if kind == "Feature":
        if not isinstance(data.get("geometry"), dict):
            raise AOIError(f"{where}: Feature has no geometry")
        return _to_shape(data["geometry"], where)
    if kind == "FeatureCollection":
        features = data.get("features") or []
        if not features:
            raise AOIError(f"{where}: FeatureCollection has no feature")
        return ops.unary_union([_to_shape(f, where) for f in features])
    if kind not in _POLYGON_TYPES:
        raise AOIError(
            f"{where}: unsupported geometry type {kind!r}; expected Polygon, MultiPolygon, "
            "Feature or FeatureCollection"
        )
    try:
        return shape(data)
    except (ValueError, TypeError, IndexError, AttributeError) as exc:
        raise AOIError(f"{where}: malformed {kind} coordinates: {exc}") from exc


def _crs_of(data: dict[str, Any], where: str) -> pyproj.CRS | None:
    """The CRS named by a (2008-style) GeoJSON "crs" member, None when absent or EPSG:4326."""
    member = data.get("crs")
    if member is None:
        return None
    name = (member.get("properties") or {}).get("name") if isinstance(member, dict) else None
    try:
        crs = pyproj.CRS.from_user_input(name)
    except pyproj.exceptions.CRSError as exc:
        raise AOIError(f"{where}: unknown crs {member!r}: {exc}") from exc
    return None if crs.to_epsg() == 4326 or crs == pyproj.CRS("OGC:CRS84") else crs
