"""Exports: COG from dask (valid, georeferenced, atomic), GeoJSON patches across tiles, PNGs."""

from __future__ import annotations

import json
from pathlib import Path

import dask.array as dsa
import numpy as np
import pytest
import rasterio
import shapely
import xarray as xr
from affine import Affine
from PIL import Image
from pyproj import Transformer
from scipy import ndimage

from rsvlm_temporal.classes import CHANGE_CLASSES, class_color
from rsvlm_temporal.grid import GridError, coords_for
from rsvlm_temporal.outputs.cog import DATE_ENCODING, write_cog
from rsvlm_temporal.outputs.polygons import write_polygons
from rsvlm_temporal.outputs.quicklook import write_quicklook_png

# rasterio.features.shapes silences this warning with a thread-unsafe catch_warnings; export.py
# filters it at import, but pytest re-applies its own filters for each test.
pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")

EPSG = 32633
TRANSFORM = (10.0, 0.0, 500000.0, 0.0, -10.0, 4650000.0)  # 10 m pixels -> 0.01 ha
NAMES = {0: "no_change", 1: "burn", 2: "flood"}


def raster(values: np.ndarray, chunks: int | tuple[int, ...] = 16, **attrs: object) -> xr.DataArray:
    a = dict(crs=f"EPSG:{EPSG}", epsg=EPSG, transform=TRANSFORM, resolution=(10.0, 10.0))
    a.update(attrs)
    dims = ("y", "x") if values.ndim == 2 else ("band", "y", "x")
    coords = coords_for(Affine(*TRANSFORM), values.shape[-2:])
    return xr.DataArray(dsa.from_array(values, chunks=chunks), dims=dims, coords=coords, attrs=a)


def classes_array(h: int = 200, w: int = 136, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.choice([0, 1, 2], p=[0.7, 0.2, 0.1], size=(h, w)).astype(np.uint8)
    a[:10, :10] = 255
    return a


def test_cog_from_dask_is_valid_and_exact(tmp_path: Path) -> None:
    a = classes_array(300, 260)
    out = write_cog(raster(a, chunks=128, nodata=255), tmp_path / "classes.tif",
                    class_names=NAMES, description="change classes", blocksize=128)
    assert out == tmp_path / "classes.tif"
    with rasterio.open(out) as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.tags(ns="IMAGE_STRUCTURE")["COMPRESSION"] == "DEFLATE"
        assert src.profile["tiled"] and src.block_shapes == [(128, 128)]
        assert src.overviews(1)[:1] == [2]
        assert src.crs.to_epsg() == EPSG
        assert tuple(src.transform)[:6] == TRANSFORM
        assert src.nodata == 255
        assert json.loads(src.tags()["CLASS_NAMES"]) == {"0": "no_change", "1": "burn", "2": "flood"}
        assert json.loads(src.tags(1)["CLASS_NAMES"])["1"] == "burn"
        assert src.descriptions == ("change classes",)
        assert src.colormap(1)[1][:3] == class_color(1, "burn")
        np.testing.assert_array_equal(src.read(1), a)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classes.tif"]  # no temp leftovers


def test_cog_unaligned_chunks_float_bool_dates(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    f = rng.random((300, 200)).astype(np.float32)
    f[3:7, 3:7] = np.nan
    p = write_cog(raster(f, chunks=(50, 90)), tmp_path / "f.tif", blocksize=128)
    with rasterio.open(p) as src:
        assert src.dtypes[0] == "float32" and np.isnan(src.nodata)
        np.testing.assert_array_equal(src.read(1), f)
        assert src.overviews(1)[:1] == [2]
    m = rng.random((40, 40)) > 0.5
    with rasterio.open(write_cog(raster(m), tmp_path / "m.tif", blocksize=128)) as src:
        assert src.dtypes[0] == "uint8"
        np.testing.assert_array_equal(src.read(1), m.astype(np.uint8))
    d = np.full((40, 40), np.datetime64("NaT"), "datetime64[ns]")
    d[5:9, 5:9] = np.datetime64("2023-07-02")
    with rasterio.open(write_cog(raster(d), tmp_path / "d.tif", blocksize=128)) as src:
        assert src.dtypes[0] == "int32" and src.nodata == -1
        assert src.tags()["VALUE_ENCODING"] == DATE_ENCODING
        v = src.read(1)
        assert v[5, 5] == (np.datetime64("2023-07-02") - np.datetime64("1970-01-01")).astype(int)
        assert v[0, 0] == -1
    rgb = rng.random((3, 48, 48)).astype(np.float32)
    with rasterio.open(write_cog(raster(rgb, chunks=(3, 16, 16)), tmp_path / "rgb.tif",
                                 blocksize=128)) as src:
        assert src.count == 3
        np.testing.assert_array_equal(src.read(), rgb)


def _boom(block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
    if block_info is not None and block_info[0]["chunk-location"] == (2, 1):
        raise RuntimeError("simulated failure in a dask block")
    return block


def test_cog_failure_leaves_nothing(tmp_path: Path) -> None:
    da = raster(classes_array(), chunks=32)
    bad = da.copy(data=da.data.map_blocks(_boom, dtype=da.dtype))
    with pytest.raises(RuntimeError, match="simulated"):
        write_cog(bad, tmp_path / "bad.tif", blocksize=128)
    assert list(tmp_path.iterdir()) == []
    # an existing file under the final name is left untouched
    (tmp_path / "bad.tif").write_bytes(b"previous")
    with pytest.raises(RuntimeError):
        write_cog(bad, tmp_path / "bad.tif", blocksize=128)
    assert [p.name for p in tmp_path.iterdir()] == ["bad.tif"]
    assert (tmp_path / "bad.tif").read_bytes() == b"previous"


def _patches(a: np.ndarray, code: int) -> list[int]:
    lab, n = ndimage.label(a == code, structure=np.ones((3, 3), bool))
    return sorted(np.bincount(lab.ravel())[1:].tolist())


def _projected_area(geometry: dict) -> float:
    tr = Transformer.from_crs("EPSG:4326", f"EPSG:{EPSG}", always_xy=True)
    g = shapely.geometry.shape(geometry)
    return shapely.transform(g, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))).area


def test_polygons_one_feature_per_patch_across_tiles(tmp_path: Path) -> None:
    a = np.zeros((48, 48), np.uint8)
    a[5:40, 8] = 1  # crosses two horizontal tile borders
    a[15, 15] = a[16, 16] = 1  # diagonal-only contact across a tile corner
    a[15, 32] = a[16, 31] = 1  # the other diagonal across a tile corner
    a[20, :] = 2  # crosses every vertical tile border
    a[30:46, 30:46] = 2  # a square over four tiles
    a[40:44, 2:6] = 1
    a[0:3, 0:3] = 255  # nodata
    days = np.full(a.shape, -1, np.int32)
    days[a == 1] = 19500
    days[10, 8] = 19490
    p = write_polygons(raster(a, chunks=16), tmp_path / "patches.geojson", NAMES,
                       date_raster=raster(days, nodata=-1))
    fc = json.loads(p.read_text())
    assert fc["type"] == "FeatureCollection"
    for code, name in ((1, "burn"), (2, "flood")):
        feats = [f for f in fc["features"] if f["properties"]["code"] == code]
        assert all(f["properties"]["class"] == name for f in feats)
        areas = sorted(round(f["properties"]["area_ha"] * 100) for f in feats)
        assert areas == _patches(a, code)  # one feature per patch, same sizes as a global label
        total = sum(f["properties"]["area_ha"] for f in feats)
        assert total == pytest.approx((a == code).sum() * 0.01)
        for f in feats:  # geometry area (back in UTM) equals the pixel area
            assert _projected_area(f["geometry"]) == pytest.approx(
                f["properties"]["area_ha"] * 1e4, rel=5e-3)  # 1e-7 degree rounding
            lon, lat = np.asarray(shapely.geometry.shape(f["geometry"]).exterior.coords
                                  if f["geometry"]["type"] == "Polygon" else
                                  shapely.geometry.shape(f["geometry"]).geoms[0].exterior.coords).T
            assert np.all((14 < lon) & (lon < 16) & (41 < lat) & (lat < 43))
    assert all(f["properties"]["code"] != 0 for f in fc["features"])
    diag = [f for f in fc["features"] if f["properties"]["code"] == 1 and f["properties"]["n_pixels"] == 2]
    assert len(diag) == 2 and {f["geometry"]["type"] for f in diag} == {"MultiPolygon"}
    # the burn line rows 5-19 (cut at row 20 by the flood), across a tile border, holds day 19490
    (line,) = [f for f in fc["features"] if f["properties"]["n_pixels"] == 15]
    assert line["properties"]["first_date"] == "2023-05-13"  # day 19490
    assert line["properties"]["last_date"] == "2023-05-23"  # day 19500
    # RFC 7946: exterior rings counter-clockwise
    sq = max((f for f in fc["features"] if f["properties"]["code"] == 2),
             key=lambda f: f["properties"]["n_pixels"])
    assert shapely.geometry.shape(sq["geometry"]).exterior.is_ccw


def test_polygons_match_whole_raster_random_and_min_area(tmp_path: Path) -> None:
    a = classes_array(96, 80, seed=3)
    p = write_polygons(raster(a, chunks=(16, 24)), tmp_path / "r.geojson", NAMES, batch_blocks=5)
    feats = json.loads(p.read_text())["features"]
    for code in (1, 2):
        got = sorted(f["properties"]["n_pixels"] for f in feats if f["properties"]["code"] == code)
        assert got == _patches(a, code)
    p = write_polygons(raster(a, chunks=(16, 24)), tmp_path / "big.geojson", NAMES,
                       min_area_ha=0.05, codes=[1])
    feats = json.loads(p.read_text())["features"]
    assert sorted(f["properties"]["n_pixels"] for f in feats) == [s for s in _patches(a, 1) if s >= 5]
    assert "first_date" not in feats[0]["properties"]
    with pytest.raises(GridError, match="codes"):
        write_polygons(raster(a), tmp_path / "x.geojson", NAMES, codes=[7])


def test_quicklooks(tmp_path: Path) -> None:
    a = classes_array(200, 136)
    p = write_quicklook_png(raster(a, chunks=64, nodata=255), tmp_path / "c.png", "class",
                            max_size=50, class_names=CHANGE_CLASSES)
    with Image.open(p) as im:
        assert im.size == (34, 50) and im.mode == "RGBA"
        px = np.asarray(im)
    assert px[0, 0, 3] == 0  # nodata transparent
    assert tuple(px[a[::4, ::4] == 1][0][:3]) == class_color(1, "burn")
    rng = np.random.default_rng(0)
    rgb = rng.random((3, 100, 60)).astype(np.float32)
    with Image.open(write_quicklook_png(raster(rgb, chunks=(3, 32, 32)), tmp_path / "rgb.png",
                                        "rgb", max_size=30)) as im:
        assert im.size == (15, 25)
    f = rng.random((100, 60)).astype(np.float32)
    f[:20] = np.nan
    with Image.open(write_quicklook_png(raster(f, chunks=25), tmp_path / "f.png", "continuous",
                                        max_size=100)) as im:
        assert im.size == (60, 100)
        assert np.asarray(im)[0, 0, 3] == 0 and np.asarray(im)[50, 30, 3] == 255
    with pytest.raises(ValueError):
        write_quicklook_png(raster(f), tmp_path / "x.png", "spectral")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["c.png", "f.png", "rgb.png"]


def test_exports_on_distributed_client(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    a = classes_array(64, 64)
    with distributed.Client(n_workers=1, threads_per_worker=1, processes=True,
                            dashboard_address=None) as _client:
        cog = write_cog(raster(a, chunks=32, nodata=255), tmp_path / "c.tif", blocksize=128)
        gj = write_polygons(raster(a, chunks=32), tmp_path / "c.geojson", NAMES)
    with rasterio.open(cog) as src:
        np.testing.assert_array_equal(src.read(1), a)
    feats = json.loads(gj.read_text())["features"]
    assert sorted(f["properties"]["n_pixels"] for f in feats if f["properties"]["code"] == 1) == \
        _patches(a, 1)
