"""Real STAC items (Earth Search v0/v1, Planetary Computer, USGS) normalise to the right band
names, CRS, grid and scale/offset, and load through stackstac from local COGs of their grid."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.windows import Window

from rsvlm_temporal.errors import AOIError, ItemError, RasterReadError, UnknownBandError
from rsvlm_temporal.io.cube import load_cube
from rsvlm_temporal.io.items import normalise_item

BANDS = ["red", "nir", "swir22"]

# file, item id, sensor, epsg, red asset file suffix, (scale, offset) of red, red grid transform + shape
EXPECTED = [
    ("earth-search-v1/search_2023-10-08_point_sentinel-2-l2a_landsat-c2-l2.json", "S2A_13TDE_20231008_0_L2A",
     "sentinel-2-l2a", 32613, "B04.tif", (1e-4, -0.1), (10, 0, 399960, 0, -10, 4500000), (10980, 10980)),
    ("earth-search-v1/search_2023-10-08_point_sentinel-2-l2a_landsat-c2-l2.json", "LC08_L2SP_033032_20231008_02_T1",
     "landsat-c2-l2", 32613, "SR_B4.TIF", (2.75e-5, -0.2), (30, 0, 449085, 0, -30, 4581915), (7831, 7711)),
    ("earth-search-v0/S2A_28QCH_20200714_0_L2A.json", "S2A_28QCH_20200714_0_L2A",
     "sentinel-2-l2a", 32628, "B04.tif", (1e-4, 0.0), (10, 0, 300000, 0, -10, 2300040), (10980, 10980)),
    ("planetary-computer/site2-2020_jun_jul-35MNM.geojson", "S2A_MSIL2A_20200731T080611_R078_T35MNM_20200818T062751",
     "sentinel-2-l2a", 32735, "B04_10m.tif", (1e-4, 0.0), (10, 0, 499980, 0, -10, 9200020), (10980, 10980)),
    ("planetary-computer/S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531.json",
     "S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531", "sentinel-2-l2a", 32606, "B04_10m.tif",
     (1e-4, 0.0), None, (10980, 10980)),
    ("planetary-computer/landsat-c2-l2-pc.json", "LC09_L2SP_089087_20240417_02_T2",
     "landsat-c2-l2", 32656, "SR_B4.TIF", (2.75e-5, -0.2), None, (7691, 7661)),
    ("planetary-computer/landsat-c2-l2_items_page_2025-07-22.json", "LC09_L2SR_084074_20250722_02_T1",
     "landsat-c2-l2", 32658, "SR_B4.TIF", (2.75e-5, -0.2), (30, 0, 149985, 0, -30, -2123385), (7691, 7591)),
    ("usgs-landsatlook/LC08_L2SP_028030_20200114_20200824_02_T1_SR.json", "LC08_L2SP_028030_20200114_20200824_02_T1_SR",
     "landsat-c2-l2", 32615, "SR_B4.TIF", (2.75e-5, -0.2), (30, 0, 173085, 0, -30, 4904715), (8041, 7931)),
    ("usgs-landsatlook/LE07_L2SP_044033_20210329_20210424_02_T1_SR.json", "LE07_L2SP_044033_20210329_20210424_02_T1_SR",
     "landsat-c2-l2", 32610, "SR_B3.TIF", (2.75e-5, -0.2), (30, 0, 478485, 0, -30, 4416615), (7131, 8151)),
]


def read_items(path: Path) -> list[dict]:
    d = json.loads(path.read_text())
    if isinstance(d, list):
        return d
    return d["features"] if d.get("type") == "FeatureCollection" else [d]


def find_item(shared_data: Path, file: str, item_id: str) -> dict:
    return next(i for i in read_items(shared_data / "stac" / file) if i["id"] == item_id)


@pytest.mark.parametrize("file,item_id,sensor,epsg,red_file,scale_offset,transform,shape", EXPECTED,
                         ids=[e[1][:24] for e in EXPECTED])
def test_real_items_normalise(shared_data, file, item_id, sensor, epsg, red_file, scale_offset, transform, shape):
    raw = find_item(shared_data, file, item_id)
    # both as a plain dict and as read by pystac 1.15 (which rewrites proj:epsg -> proj:code)
    for item in (raw, pystac.Item.from_dict(copy.deepcopy(raw))):
        n = normalise_item(item, BANDS)
        assert n.sensor.id == sensor
        assert n.epsg == epsg
        assert list(n.bands) == BANDS
        red = n.bands["red"]
        assert red.href.split("?")[0].endswith(red_file)
        assert red.scale == pytest.approx(scale_offset[0]) and red.offset == pytest.approx(scale_offset[1])
        got_epsg, got_t, got_shape = n.grid("red")
        assert got_epsg == epsg and got_shape == shape
        if transform is not None:
            assert tuple(got_t)[:6] == pytest.approx(transform)
        assert n.quality is not None, "SCL / QA_PIXEL asset must be found"
        if sensor.startswith("landsat"):
            assert n.bands["nir"].href.split("?")[0].upper().endswith(("SR_B5.TIF", "SR_B4.TIF"))


def test_sentinel1_item_is_refused_with_a_clear_error(shared_data):
    items = read_items(shared_data / "stac" / "earth-search-v1" / "search_cql2_cloud-cover-lte-40_page1.json")
    s1 = [i for i in items if i.get("collection") == "sentinel-1-grd"]
    assert s1
    with pytest.raises(ItemError, match="cannot tell the sensor"):
        normalise_item(s1[0], BANDS)


def test_s2_baseline_convention_without_raster_bands(shared_data):
    """PC items carry no raster:bands: the offset follows the processing baseline."""
    raw = read_items(shared_data / "stac" / "planetary-computer" / "site2-2020_jun_jul-35MNM.geojson")[0]
    assert normalise_item(raw, ["red"]).bands["red"].offset == 0.0  # baseline 02.12
    newer = copy.deepcopy(raw)
    newer["properties"]["s2:processing_baseline"] = "04.00"
    red = normalise_item(newer, ["red"]).bands["red"]
    assert (1000 * red.scale + red.offset, 11000 * red.scale + red.offset) == pytest.approx((0.0, 1.0))
    applied = copy.deepcopy(newer)
    applied["properties"]["earthsearch:boa_offset_applied"] = True
    assert normalise_item(applied, ["red"]).bands["red"].offset == 0.0
    undated = copy.deepcopy(raw)
    del undated["properties"]["s2:processing_baseline"]
    undated["properties"]["datetime"] = "2023-05-01T10:00:00Z"
    assert normalise_item(undated, ["red"]).bands["red"].offset == pytest.approx(-0.1)


def test_unknown_band_is_named(shared_data):
    raw = find_item(shared_data, *EXPECTED[1][:2])  # Landsat: no red-edge
    with pytest.raises(UnknownBandError, match="rededge1"):
        normalise_item(raw, ["red", "rededge1"])
    with pytest.raises(UnknownBandError, match="unknown band 'nirr'"):
        normalise_item(raw, ["nirr"])


def _sparse_cog(path: Path, shape, transform, epsg, window: Window, values: np.ndarray, nodata) -> None:
    """A COG of the item's full native grid where only ``window`` holds data (empty tiles omitted)."""
    tmp = path.with_suffix(".src.tif")
    prof = dict(driver="GTiff", height=shape[0], width=shape[1], count=1, dtype=values.dtype,
                crs=f"EPSG:{epsg}", transform=Affine(*transform[:6]), nodata=nodata, tiled=True,
                blockxsize=512, blockysize=512, compress="deflate", SPARSE_OK=True)
    with rasterio.open(tmp, "w", **prof) as dst:
        dst.write(values, 1, window=window)
    with rasterio.open(tmp) as src:
        rasterio.shutil.copy(src, path, driver="COG", compress="DEFLATE", blocksize=512,
                             overviews="NONE", sparse_ok=True)
    tmp.unlink()


@pytest.fixture(scope="module")
def local_s2_item(shared_data, tmp_path_factory):
    """The real Earth Search v1 S2 item (baseline 05.09) with red (10 m), swir22 (20 m) and scl
    (20 m) hrefs rewritten to local COGs of the same grids."""
    raw = copy.deepcopy(find_item(shared_data, *EXPECTED[0][:2]))
    out = tmp_path_factory.mktemp("s2local")
    rng = np.random.default_rng(0)
    red = rng.integers(1000, 11001, size=(512, 512), dtype=np.uint16)
    red[20, 0], red[20, 1] = 1000, 11000
    swir = rng.integers(1000, 11001, size=(256, 256), dtype=np.uint16)
    scl = np.full((256, 256), 4, np.uint8)
    scl[:8, :8] = 9  # cloud high probability -> 16x16 pixels at 10 m
    for key, arr, win in (("red", red, Window(1024, 2048, 512, 512)),
                          ("swir22", swir, Window(512, 1024, 256, 256)),
                          ("scl", scl, Window(512, 1024, 256, 256))):
        a = raw["assets"][key]
        path = out / f"{key}.tif"
        _sparse_cog(path, a["proj:shape"], a["proj:transform"], 32613, win, arr, 0)
        a["href"] = str(path)
    raw["assets"] = {k: raw["assets"][k] for k in ("red", "swir22", "scl")}
    return raw, red, swir


def test_local_cogs_of_a_real_item_load_with_grid_and_values(local_s2_item):
    raw, red, swir = local_s2_item
    # the 512x512 window at column 1024, row 2048 of the 10 m grid
    x0, y1 = 399960 + 1024 * 10, 4500000 - 2048 * 10
    cube = load_cube([raw], bands=["red", "swir22"], bounds=(x0, y1 - 5120, x0 + 5120, y1))
    assert cube.shape == (1, 2, 512, 512)
    assert cube.attrs["transform"] == pytest.approx((10, 0, x0, 0, -10, y1))
    assert float(cube.x[0]) == x0 + 5 and float(cube.y[0]) == y1 - 5  # pixel centres
    values = cube.compute()
    clear = values.mask.values[0] == 0
    expected_red = red.astype(np.float64) * 1e-4 - 0.1
    np.testing.assert_allclose(values.sel(band="red").values[0][clear], expected_red[clear], atol=1e-6)
    assert values.sel(band="red").values[0, 20, 0] == pytest.approx(0.0, abs=1e-7)  # DN 1000
    assert values.sel(band="red").values[0, 20, 1] == pytest.approx(1.0, abs=1e-6)  # DN 11000
    # 20 m swir22 replicated 2x2 onto the 10 m grid (nearest)
    up = np.kron(swir, np.ones((2, 2), np.uint16)).astype(np.float64) * 1e-4 - 0.1
    np.testing.assert_allclose(values.sel(band="swir22").values[0][clear], up[clear], atol=1e-6)
    # SCL 9 (cloud) on the top-left 8x8 20 m pixels -> 16x16 masked to NaN with the CLOUD flag
    assert (values.mask.values[0, :16, :16] == 2).all() and clear[16:, 16:].all()
    assert np.isnan(values.values[0, :, :16, :16]).all()


def test_lazy_graph_reads_nothing(local_s2_item, monkeypatch):
    raw, _, _ = local_s2_item
    import rsvlm_temporal.io.reader as reader

    def boom(*a, **k):  # pragma: no cover - must not run
        raise AssertionError("a pixel was read while building the cube")

    monkeypatch.setattr(reader.DNReader, "read", boom)
    items = []
    for i in range(500):
        it = copy.deepcopy(raw)
        it["id"] = f"copy-{i}"
        it["properties"]["datetime"] = str(np.datetime64("2015-01-01") + np.timedelta64(i, "D")) + "T10:00:00Z"
        items.append(it)
    cube = load_cube(items, bands=["red"], bounds=(410200, 4474000, 412760, 4476560))
    assert cube.sizes["time"] == 500 and cube.chunks is not None


def test_bad_inputs_have_clear_errors(local_s2_item, tmp_path):
    raw, _, _ = local_s2_item
    with pytest.raises(AOIError, match="inverted"):
        load_cube([raw], bands=["red"], bounds=(420000, 4476560, 410200, 4474000))
    with pytest.raises(AOIError, match="do not overlap"):
        load_cube([raw], bands=["red"], bounds=(0, 0, 1000, 1000))
    noproj = copy.deepcopy(raw)
    del noproj["properties"]["proj:epsg"]
    for a in noproj["assets"].values():
        for k in ("proj:epsg", "proj:code", "proj:transform", "proj:shape"):
            a.pop(k, None)
    # no proj:* at all: the grid is the red file's header (tests/io/test_item_headers.py)
    assert normalise_item(noproj, ["red"]).grid("red") == normalise_item(raw, ["red"]).grid("red")
    missing = copy.deepcopy(raw)
    missing["assets"]["red"]["href"] = str(tmp_path / "gone.tif")
    with pytest.raises(ItemError, match="does not exist"):
        load_cube([missing], bands=["red"])
    truncated = copy.deepcopy(raw)
    src = Path(raw["assets"]["red"]["href"]).read_bytes()
    (tmp_path / "cut.tif").write_bytes(src[: len(src) // 3])
    truncated["assets"]["red"]["href"] = str(tmp_path / "cut.tif")
    cube = load_cube([truncated], bands=["red"], bounds=(410200, 4474000, 412760, 4476560))
    with pytest.raises(RasterReadError, match="cut.tif"):
        cube.compute()
