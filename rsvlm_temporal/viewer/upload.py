"""Validation of an uploaded AOI (GeoJSON): size, syntax, geometry type, emptiness, area."""

from __future__ import annotations

import json
from typing import Any

import pyproj
from shapely.geometry import shape

from rsvlm_temporal.errors import AOIError
from rsvlm_temporal.io.aoi import AOI, parse_aoi

#: largest accepted upload (bytes)
MAX_UPLOAD_BYTES = 1_000_000
#: largest accepted AOI (km2): larger areas are slow to analyse interactively
MAX_AOI_KM2 = 2_500.0

_POINTS = ("Point", "MultiPoint", "LineString", "MultiLineString")


def aoi_area_km2(aoi: AOI) -> float:
    """Geodesic area of the AOI (km2, WGS 84 ellipsoid)."""
    area, _ = pyproj.Geod(ellps="WGS84").geometry_area_perimeter(shape(aoi.geometry))
    return abs(area) / 1e6


def check_aoi_size(aoi: AOI, max_km2: float = MAX_AOI_KM2) -> AOI:
    """``aoi`` unchanged, or :class:`AOIError` when larger than ``max_km2``."""
    km2 = aoi_area_km2(aoi)
    if km2 > max_km2:
        raise AOIError(f"the AOI covers {km2:,.0f} km2; the dashboard accepts at most {max_km2:,.0f} km2: "
                       "draw a smaller area (or use the CLI, which has no limit)")
    return aoi


def _geometry_types(data: Any) -> list[str]:
    if not isinstance(data, dict):
        return []
    kind = data.get("type")
    if kind == "Feature":
        return _geometry_types(data.get("geometry"))
    if kind == "FeatureCollection":
        return [t for f in data.get("features") or [] for t in _geometry_types(f)]
    return [str(kind)]


def validate_aoi_upload(data: bytes, name: str = "upload", max_bytes: int = MAX_UPLOAD_BYTES,
                        max_km2: float = MAX_AOI_KM2) -> AOI:
    """Parse an uploaded GeoJSON file into an :class:`AOI` (EPSG:4326), or raise
    :class:`AOIError` with a message a user can act on: empty file, too large a file, not
    JSON, a point or line (no area), an empty collection, an invalid polygon, too large an AOI."""
    if not data:
        raise AOIError(f"{name} is empty: upload a GeoJSON Polygon, Feature or FeatureCollection")
    if len(data) > max_bytes:
        raise AOIError(f"{name} is {len(data) / 1e6:.1f} MB; the upload limit is {max_bytes / 1e6:.1f} MB "
                       "(simplify the polygon)")
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AOIError(f"{name} is not valid GeoJSON (malformed JSON: {exc})") from exc
    if not isinstance(obj, dict) or "type" not in obj:
        raise AOIError(f"{name} is JSON but not GeoJSON: expected an object with a \"type\" "
                       "(Polygon, MultiPolygon, Feature or FeatureCollection)")
    if obj.get("type") == "FeatureCollection" and not obj.get("features"):
        raise AOIError(f"{name} is an empty FeatureCollection: it holds no polygon")
    kinds = _geometry_types(obj)
    bad = sorted({k for k in kinds if k in _POINTS})
    if bad:
        raise AOIError(f"{name} holds a {' / '.join(bad)}, which has no area: upload a Polygon or "
                       "MultiPolygon (or type a bbox)")
    return check_aoi_size(parse_aoi(obj), max_km2)
