"""AOI parsing: bboxes, GeoJSON (dict, text, file, non-4326 crs), UTM zone, reprojected bounds."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from rsvlm_temporal.errors import AOIError
from rsvlm_temporal.io.aoi import parse_aoi

# Around the point of the real Earth Search 2023-10-08 search (Colorado, UTM 13N).
COLORADO = (-105.11, 40.16, -105.09, 40.17)


def _polygon(minx: float, miny: float, maxx: float, maxy: float) -> dict:
    ring = [[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]
    return {"type": "Polygon", "coordinates": [ring]}


def _crs(name: str) -> dict:
    return {"type": "name", "properties": {"name": name}}


@pytest.mark.parametrize(
    "value",
    [COLORADO, list(COLORADO), "-105.11,40.16,-105.09,40.17", " -105.11, 40.16 ,-105.09,40.17 "],
)
def test_bbox_forms(value: object) -> None:
    aoi = parse_aoi(value)  # type: ignore[arg-type]
    assert aoi.bbox == COLORADO
    assert aoi.geometry["type"] == "Polygon"
    assert parse_aoi(aoi) is aoi


def test_aoi_is_frozen() -> None:
    aoi = parse_aoi(COLORADO)
    with pytest.raises(dataclasses.FrozenInstanceError):
        aoi.bbox = (0.0, 0.0, 1.0, 1.0)  # type: ignore[misc]


def test_geojson_geometry_feature_collection_and_text() -> None:
    poly = _polygon(10, 45, 11, 46)
    assert parse_aoi(poly).bbox == (10, 45, 11, 46)
    feature = {"type": "Feature", "properties": {}, "geometry": poly}
    assert parse_aoi(feature).bbox == (10, 45, 11, 46)
    other = {"type": "Feature", "properties": {}, "geometry": _polygon(12, 44, 13, 45)}
    fc = {"type": "FeatureCollection", "features": [feature, other]}
    aoi = parse_aoi(fc)
    assert aoi.bbox == (10, 44, 13, 46)
    assert aoi.geometry["type"] == "MultiPolygon"
    assert parse_aoi(json.dumps(feature)).bbox == (10, 45, 11, 46)
    crs84 = {**poly, "crs": _crs("urn:ogc:def:crs:OGC:1.3:CRS84")}
    assert parse_aoi(crs84).bbox == (10, 45, 11, 46)


def test_geojson_file_in_utm_is_reprojected(shared_data: Path) -> None:
    """eo-learn's TestEOPatch bbox.geojson: a 1 km square in EPSG:32633 (Slovenia)."""
    path = shared_data / "eo-learn" / "TestEOPatch" / "bbox.geojson"
    utm = (465181.0522318204, 5079244.8912012065, 466180.53145382757, 5080254.63349641)
    for value in (path, str(path)):
        aoi = parse_aoi(value)
        minx, miny, maxx, maxy = aoi.bbox
        assert 14.5 < minx < maxx < 14.6 and 45.8 < miny < maxy < 45.9  # lon/lat degrees
        assert aoi.utm_epsg() == 32633
        back = aoi.bounds_in(32633)
        # the lon/lat bbox of the (slightly rotated) square covers it, within a few metres
        assert back[0] <= utm[0] and back[1] <= utm[1] and back[2] >= utm[2] and back[3] >= utm[3]
        assert max(abs(b - u) for b, u in zip(back, utm)) < 20


def test_utm_zone_matches_real_items(shared_data: Path) -> None:
    # Earth Search Landsat item LC08_L2SP_033032_20231008_02_T1: EPSG:32613, 30 m grid
    aoi = parse_aoi(COLORADO)
    assert aoi.utm_epsg() == 32613
    minx, miny, maxx, maxy = aoi.bounds_in(32613)
    assert 449085 < minx < maxx < 449085 + 7711 * 30
    assert 4581915 - 7831 * 30 < miny < maxy < 4581915
    assert 1600 < maxx - minx < 1800  # 0.02 degree of longitude at 40.2 N, metres
    # Planetary Computer tile 35MNM (site2 time series): EPSG:32735, southern hemisphere
    assert parse_aoi((27.3, -7.9, 27.5, -7.7)).utm_epsg() == 32735


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ((10, 0, 5, 1), ["inverted", "minx 10.0 > maxx 5.0"]),
        ("0,10,1,5", ["inverted", "miny 10.0 > maxy 5.0"]),
        ((0, 0, 200, 1), ["maxx = 200.0", "longitude", "[-180, 180]"]),
        ((0, -95, 1, 1), ["miny = -95.0", "latitude", "[-90, 90]"]),
        ((0, 0, 0, 1), ["zero area"]),
        ((0, 0, 1), ["4 numbers", "got 3"]),
        ("a,b,c,d", ["must be numbers"]),
        ("1,2,3,nan", ["maxy = nan", "out of range"]),
        ({"type": "Point", "coordinates": [1, 2]}, ["unsupported geometry type 'Point'"]),
        ({"type": "LineString", "coordinates": [[1, 2], [3, 4]]}, ["unsupported geometry type"]),
        ({"type": "FeatureCollection", "features": []}, ["no feature"]),
        (_polygon(0, 0, 0, 1), ["zero area"]),
        (_polygon(170, 0, 190, 1), ["maxx = 190.0", "out of range"]),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 1], [0, 0]]]},
            ["invalid polygon", "Self-intersection"],
        ),
        ({**_polygon(0, 0, 1, 1), "crs": _crs("EPSG:999999")}, ["unknown crs"]),
        ("{not json", ["not valid GeoJSON"]),
        (3.5, ["unsupported AOI float"]),
    ],
)
def test_bad_aoi_names_the_problem(value: object, words: list[str]) -> None:
    with pytest.raises(AOIError) as info:
        parse_aoi(value)  # type: ignore[arg-type]
    for word in words:
        assert word in str(info.value)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(AOIError, match="not found"):
        parse_aoi(tmp_path / "missing.geojson")
    broken = tmp_path / "broken.geojson"
    broken.write_text('{"type": "Polygon", "coordinates": [[', encoding="utf-8")
    with pytest.raises(AOIError, match=r"cannot parse AOI file .*broken\.geojson"):
        parse_aoi(str(broken))
    array = tmp_path / "array.json"
    array.write_text("[1, 2, 3, 4]", encoding="utf-8")
    with pytest.raises(AOIError, match="holds a JSON list"):
        parse_aoi(array)

