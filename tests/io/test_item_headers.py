"""Items that declare no grid (issue 19): the grid comes from the first requested band's file
header, not from the lon/lat bbox (which, reprojected, grows the grid). Known truth: the
synthetic generator's own grid and arrays, and the same items with their proj:* fields."""

from __future__ import annotations

import copy
import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from affine import Affine
from rasters import item_dict

from rsvlm_temporal import cli
from rsvlm_temporal.errors import ItemError
from rsvlm_temporal.io import items as items_mod
from rsvlm_temporal.io import masks, reader
from rsvlm_temporal.io.catalog import load_items
from rsvlm_temporal.io.cube import load_cube
from rsvlm_temporal.io.items import as_dict, normalise_item
from rsvlm_temporal.synth import LANDSAT, S2, write_scene

PROJ = ("proj:epsg", "proj:code", "proj:transform", "proj:shape", "proj:bbox", "proj:geometry")
# 240 m x 240 m, one year, both sensors (S2 10 m with 20 m SWIR and SCL; Landsat 30 m)
SCENE = dict(size=24, start="2021-01-01", end="2021-12-31", sensors=("s2", "landsat"), s2_revisit_days=20,
             landsat_revisit_days=32, landsat_dual_revisit_days=32, seed=11, cloud_prob=0.5)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory):
    """The written scene and its items per collection, as dicts with absolute hrefs."""
    out = write_scene(tmp_path_factory.mktemp("headers"), "wildfire", keep_arrays=True, **SCENE)
    by_coll: dict[str, list[dict]] = {}
    for it in load_items(out.catalog_path):
        by_coll.setdefault(it.collection_id, []).append(as_dict(it))
    return out, by_coll


def _strip(item: dict, bbox: list[float] | None = None) -> dict:
    """The item without any proj:* field (item and assets); ``bbox`` replaces its bbox."""
    d = copy.deepcopy(item)
    for key in PROJ:
        d["properties"].pop(key, None)
    for asset in d["assets"].values():
        for key in PROJ:
            asset.pop(key, None)
    d["stac_extensions"] = [e for e in d.get("stac_extensions", []) if "projection" not in e]
    if bbox is not None:
        d["bbox"] = bbox
    return d


@pytest.mark.parametrize("coll", [S2, LANDSAT])
def test_an_item_without_proj_loads_the_grid_and_pixels_it_declared(synthetic, coll: str) -> None:
    out, by_coll = synthetic
    ser = out.series[coll]
    declared = by_coll[coll]
    stripped = [_strip(d) for d in declared]
    # every band takes the footprint of the first band's file at its own pixel size (S2 SWIR 20 m)
    for d, s in zip(declared, stripped):
        want, got = normalise_item(d, ser.bands), normalise_item(s, ser.bands)
        assert got.epsg == want.epsg == out.grid.epsg
        for band in ser.bands:
            assert got.grid(band) is not None
            g_epsg, g_t, g_shape = got.grid(band)
            w_epsg, w_t, w_shape = want.grid(band)
            assert (g_epsg, g_shape) == (w_epsg, w_shape), band
            assert tuple(g_t)[:6] == pytest.approx(tuple(w_t)[:6]), band
        assert got.quality is not None and got.quality.epsg == want.epsg
    cube = load_cube(stripped, bands=ser.bands)
    assert cube.attrs["epsg"] == out.grid.epsg
    assert cube.attrs["transform"] == pytest.approx(tuple(ser.transform)[:6])
    assert cube.shape == (len(ser.times), len(ser.bands), *ser.shape)
    got = cube.compute()
    # the generator's flags and decoded reflectance, and the declared items' cube, bit for bit
    np.testing.assert_array_equal(got.mask.values, ser.flags)
    masked = (ser.flags & masks.DEFAULT_MASKED) != 0
    assert masked.any() and (~masked).any()
    by_band, truth = got.values.transpose(1, 0, 2, 3), ser.reflectance.transpose(1, 0, 2, 3)
    assert np.isnan(by_band[:, masked]).all() and np.isfinite(by_band[:, ~masked]).all()
    np.testing.assert_allclose(by_band[:, ~masked], truth[:, ~masked], rtol=0, atol=1e-6)
    ref = load_cube(declared, bands=ser.bands).compute()
    assert got.values.tobytes() == ref.values.tobytes()
    np.testing.assert_array_equal(got.mask.values, ref.mask.values)


def test_merged_sensors_without_proj_keep_the_declared_grid(synthetic) -> None:
    out, by_coll = synthetic
    declared = by_coll[S2] + by_coll[LANDSAT]
    stripped = [_strip(d) for d in declared]
    ref, cube = load_cube(declared), load_cube(stripped)
    assert cube.attrs == ref.attrs and cube.shape == ref.shape
    assert cube.attrs["resolution"] == (30.0, 30.0)
    assert cube.isel(time=slice(0, 6)).values.tobytes() == ref.isel(time=slice(0, 6)).values.tobytes()


def test_a_wrong_bbox_gives_way_to_the_files_extent(synthetic) -> None:
    out, by_coll = synthetic
    ser = out.series[S2]
    lon0, lat0, lon1, lat1 = by_coll[S2][0]["bbox"]
    # 0.2 degrees east and ten times as large: reprojected it would be a grid of some 2000 x 2000 px
    wrong = [lon0 + 0.2, lat0 - 0.1, lon1 + 0.4, lat1 + 0.1]
    stripped = [_strip(d, bbox=wrong) for d in by_coll[S2]]
    # all items without proj:*, or one among items that declare their grid (the CRS then comes
    # from those, and the bare item's bbox, even the right one, used to widen the union of
    # footprints: 26 x 26 px, and 3457 x 2266 px with the wrong one)
    for items in (stripped, [stripped[0]] + by_coll[S2][1:], [_strip(by_coll[S2][0])] + by_coll[S2][1:]):
        cube = load_cube(items, bands=ser.bands)
        assert cube.shape[2:] == ser.shape
        assert cube.attrs["transform"] == pytest.approx(tuple(ser.transform)[:6])
    n = normalise_item(stripped[0], ser.bands)
    assert n.bbox == pytest.approx((lon0, lat0, lon1, lat1), abs=1e-4)  # the file's footprint
    assert np.isfinite(cube.isel(time=slice(0, 3)).values).any()
    # an item that declares its grid still has its file checked against it (the reader refuses
    # a COG 100 km away from it: tests/io/test_cube_synth.py); its bbox is left as declared
    assert normalise_item(copy.deepcopy(by_coll[S2][0]) | {"bbox": wrong}, ser.bands).bbox == tuple(wrong)


def test_the_header_is_read_once_per_file(synthetic, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import rasterio

    out, by_coll = synthetic
    monkeypatch.setattr(items_mod, "_HEADER_GRIDS", {})
    opened: list[str] = []
    real_open = rasterio.open

    def counting_open(path: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(rasterio, "open", counting_open)
    item = _strip(by_coll[LANDSAT][0])
    for _ in range(3):
        normalise_item(item, ["red", "nir"])
    assert opened == [item["assets"]["red"]["href"]]  # the first requested band only, once
    # a file rewritten in place (new mtime / size) is read again
    copy_path = tmp_path / "red.tif"
    copy_path.write_bytes(Path(item["assets"]["red"]["href"]).read_bytes())
    item["assets"]["red"]["href"] = str(copy_path)
    normalise_item(item, ["red"])
    os.utime(copy_path, ns=(1, 1))
    normalise_item(item, ["red"])
    assert opened.count(str(copy_path)) == 2


def _bare_item(tmp_path: Path, blue: Path) -> dict:
    assets = {b: {"href": str(blue), "raster:bands": [{"scale": 1e-4, "offset": 0.0, "nodata": 0}]}
              for b in ("blue", "green", "red", "nir", "swir16", "swir22")}
    d = item_dict("S2A_bare", "2021-06-01T10:00:00Z", "sentinel-2-l2a", "sentinel-2a", 32633, assets,
                  bbox=[15.0, 45.1, 15.01, 45.11])
    d["properties"].pop("proj:code")
    return d


def test_an_unreadable_header_names_the_item_asset_and_fix(tmp_path: Path) -> None:
    garbage = tmp_path / "B02.tif"
    garbage.write_bytes(b"not a tiff at all" * 100)
    with pytest.raises(ItemError, match=r"'S2A_bare'.*asset 'blue'.*B02\.tif.*cannot be read.*"
                                        r"proj:code .*\+ proj:transform \+ proj:shape"):
        load_cube([_bare_item(tmp_path, garbage)], bands=["blue", "red"])
    # a GeoTIFF without a CRS: nothing to take the grid from either
    nocrs = tmp_path / "nocrs.tif"
    import rasterio

    with rasterio.open(nocrs, "w", driver="GTiff", height=8, width=8, count=1, dtype="uint16",
                       transform=Affine(10, 0, 500000, 0, -10, 5000000)) as dst:
        dst.write(np.ones((1, 8, 8), np.uint16))
    with pytest.raises(ItemError, match=r"asset 'blue'.*has no CRS.*proj:code"):
        load_cube([_bare_item(tmp_path, nocrs)], bands=["blue"])


def test_a_header_on_a_server_that_never_answers_ends_at_the_gdal_deadline(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A remote href of an item without proj:*: the header read is bounded by the reader's GDAL
    HTTP timeout (2 s here), and ends in the same ItemError."""
    for key, value in reader.HTTP_OPTIONS.items():
        monkeypatch.setitem(reader.HTTP_OPTIONS, key, value)  # restored after the test
    reader.set_http_limits(timeout=2, retries=0)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections are accepted by the kernel and never answered
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/B02.tif"
        item = _bare_item(tmp_path, tmp_path / "unused.tif")
        for asset in item["assets"].values():
            asset["href"] = url
        result: dict[str, BaseException] = {}

        def read() -> None:
            try:
                normalise_item(item, ["blue"])
            except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
                result["error"] = exc

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        thread.join(60)  # a bound for a 2 s deadline on a busy machine, not a speed check
        assert not thread.is_alive(), "the header read did not end"
    finally:
        silent.close()
    assert isinstance(result.get("error"), ItemError), result
    assert url in str(result["error"]) and "proj:transform" in str(result["error"])


def test_an_unreadable_header_through_the_cli_exits_2(synthetic, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out, by_coll = synthetic
    stripped = [_strip(d) for d in by_coll[S2]]
    garbage = tmp_path / "B02.tif"
    garbage.write_bytes(b"\0" * 4096)
    bad = stripped[2]
    bad["assets"]["blue"]["href"] = str(garbage)
    catalog = tmp_path / "items.json"
    catalog.write_text(json.dumps({"type": "FeatureCollection", "features": stripped}))
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["analyze", "--catalog", str(catalog), "--out", "result", "--no-model"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    assert bad["id"] in err and "asset 'blue'" in err and "proj:code" in err and "proj:shape" in err
    assert not (tmp_path / "result").exists()
