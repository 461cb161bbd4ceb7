"""The cube loader against known truth: the synthetic generator's own arrays (round trip),
hand-built tiles (same-day mosaic, two UTM zones, Landsat + Sentinel-2 merge) and numpy
references (period composites, rasterio.warp.reproject).

(That building a cube of 500 items reads no pixel is tested in test_items_real.py.)
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from pyproj import Transformer
from rasterio.warp import Resampling, reproject
from rasters import item_dict, write_cog
from scipy import ndimage

from rsvlm_temporal.io import masks
from rsvlm_temporal.io.catalog import load_items
from rsvlm_temporal.io.cube import composite, load_cube
from rsvlm_temporal.io.sensors import sensor_table
from rsvlm_temporal.synth import LANDSAT, S2, write_scene
from rsvlm_temporal.synth.writer import _observe, block_any, upsample

S2_ID, LANDSAT_ID = "sentinel-2-l2a", "landsat-c2-l2"
DRAWN = np.uint8(masks.NODATA | masks.CLOUD | masks.SHADOW | masks.CIRRUS)
# one year across the Sentinel-2 baseline 04.00 change (2022-01-25); clouds, cirrus, shadows and
# swath edges (nodata) on many dates; 48 px = 480 m (S2 48 x 48 at 10 m, Landsat 16 x 16 at 30 m)
SCENE = dict(size=48, start="2021-07-01", end="2022-06-30", sensors=("s2", "landsat"), s2_revisit_days=20,
             landsat_revisit_days=32, landsat_dual_revisit_days=32, seed=5, cloud_prob=0.6, edge_prob=0.2)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory):
    """The written scene and its catalog's items per collection (read back with load_items)."""
    out = write_scene(tmp_path_factory.mktemp("synth"), "wildfire", keep_arrays=True, **SCENE)
    items: dict[str, list] = {}
    for it in load_items(out.catalog_path):
        items.setdefault(it.collection_id, []).append(it)
    return out, items


def _drawn_flags(ser, coll: str, platforms: list[str]) -> np.ndarray:
    """NODATA / CLOUD / SHADOW / CIRRUS on the sensor's finest grid, from the clouds the generator
    drew on its 10 m grid (``truth_flags``), aggregated to the quality band's pixel as the
    products define it: any drawn pixel flags the quality pixel; SCL holds one class (cloud >
    cirrus > shadow); QA_PIXEL adds the 3x3 dilated-cloud ring (bit 1 -> CLOUD), has no cirrus
    on Landsat 7."""
    k = 2 if coll == S2 else 3  # SCL 20 m, QA_PIXEL 30 m
    f = ser.truth_flags
    nod = block_any((f & masks.NODATA) > 0, k)
    cld = block_any((f & masks.CLOUD) > 0, k) & ~nod
    cir = block_any((f & masks.CIRRUS) > 0, k) & ~cld & ~nod
    shd = block_any((f & masks.SHADOW) > 0, k) & ~cld & ~nod
    if coll == S2:
        shd &= ~cir
    else:
        ring = np.stack([ndimage.binary_dilation(c, np.ones((3, 3), bool)) for c in cld]) & ~nod
        cir[[p == "landsat-7" for p in platforms]] = False
        cld = cld | ring
    out = (nod * masks.NODATA) | (cld * masks.CLOUD) | (cir * masks.CIRRUS) | (shd * masks.SHADOW)
    return upsample(out.astype(np.uint8), k // round(ser.resolution / 10))


# ------------------------------------------------------------------------------------ round trip


@pytest.mark.parametrize("coll", [S2, LANDSAT])
def test_synthetic_round_trip_on_the_native_grid(synthetic, coll: str) -> None:
    out, items = synthetic
    ser = out.series[coll]
    cube = load_cube(items[coll], bands=ser.bands)
    assert cube.attrs["epsg"] == out.grid.epsg and cube.attrs["crs"] == f"EPSG:{out.grid.epsg}"
    assert cube.attrs["transform"] == pytest.approx(tuple(ser.transform)[:6])
    assert cube.shape == (len(ser.times), len(ser.bands), *ser.shape)
    assert list(cube.band.values) == list(ser.bands)
    np.testing.assert_array_equal(cube.time.values, ser.times)
    assert list(cube.id.values) == ser.item_ids and list(cube.platform.values) == ser.platforms
    assert set(cube.sensor.values.tolist()) == {coll}

    got = cube.compute()
    mask, values = got.mask.values, got.values
    # the mask is the generator's flags exactly, and its cloud/shadow/cirrus/nodata bits are the drawn ones
    np.testing.assert_array_equal(mask, ser.flags)
    drawn = _drawn_flags(ser, coll, ser.platforms)
    np.testing.assert_array_equal(mask & DRAWN, drawn)
    for flag in (masks.NODATA, masks.CLOUD, masks.SHADOW, masks.CIRRUS):  # the scene exercises each
        assert (drawn & flag).any(), flag
    # NaN exactly where a masked flag is set; elsewhere the generator's decoded reflectance
    bad = (mask & masks.DEFAULT_MASKED) != 0
    by_band = values.transpose(1, 0, 2, 3)
    assert np.isnan(by_band[:, bad]).all()
    assert np.isfinite(by_band[:, ~bad]).all()
    np.testing.assert_allclose(by_band[:, ~bad], ser.reflectance.transpose(1, 0, 2, 3)[:, ~bad], rtol=0, atol=1e-6)
    # ... and the generator's reflectance before DN quantisation, to half a DN step
    table = sensor_table()[coll]
    scene = out.scene
    checked = 0
    for t, acq in enumerate(scene.acquisitions[coll]):
        truth, _ = _observe(scene, acq, scene.atmosphere(acq))
        scale, offset = ser.scale_offset[t]
        for i, band in enumerate(ser.bands):
            k = round(table.band(band).resolution / ser.resolution)
            x = upsample(truth[band], k)
            dn = (x - offset) / scale
            fits = ~bad[t] & (dn >= 0.5) & (dn < 65535.5)  # not clipped to DN 1..65535
            err = np.abs(values[t, i][fits] - x[fits])
            assert (err <= 0.5 * scale + 1e-6).all(), (t, band, err.max())
            checked += int(fits.sum())
    assert checked > 0.5 * (~bad).sum() * len(ser.bands)


# ------------------------------------------------------------------------------- same-day mosaic

X0, Y0 = 500000.0, 5000000.0
LUT_S2 = masks.lookup_table(sensor_table()[S2_ID].quality)


def _s2_item(out: Path, item_id: str, when: str, col0: int, shape: tuple[int, int], scl: np.ndarray,
             seed: int, epsg: int = 32633, x0: float = X0, y0: float = Y0,
             baseline: str = "04.00") -> tuple[dict, dict[str, np.ndarray]]:
    """A Sentinel-2 L2A item (Planetary Computer asset keys, no raster:bands) whose 10 m B04/B08
    start ``col0`` pixels east of ``x0``; random DNs; ``scl`` on the 20 m grid."""
    rng = np.random.default_rng(seed)
    t10 = Affine(10, 0, x0 + 10 * col0, 0, -10, y0)
    t20 = Affine(20, 0, x0 + 10 * col0, 0, -20, y0)
    assets, dns = {}, {}
    for band, key in (("red", "B04"), ("nir", "B08")):
        dn = rng.integers(1001, 9001, shape).astype(np.uint16)
        dns[band] = dn
        path = write_cog(out / f"{item_id}_{key}.tif", dn, t10, epsg)
        assets[key] = {"href": str(path), "proj:shape": list(shape), "proj:transform": list(t10)[:6]}
    path = write_cog(out / f"{item_id}_SCL.tif", scl, t20, epsg)
    assets["SCL"] = {"href": str(path), "proj:shape": list(scl.shape), "proj:transform": list(t20)[:6]}
    item = item_dict(item_id, when, S2_ID, "sentinel-2a", epsg, assets,
                     properties={"s2:processing_baseline": baseline})
    return item, dns


def test_same_day_tiles_mosaic_to_the_first_clear_pixel(tmp_path: Path) -> None:
    # A (cols 0..39) and B (cols 20..59) of one pass, 4 s apart; C the whole area another day.
    scl_a = np.full((16, 20), 4, np.uint8)
    scl_a[0:8, 10:20] = 9  # cloud: 10 m rows 0..15, cols 20..39 (all of the overlap's top half)
    scl_b = np.full((16, 20), 4, np.uint8)
    scl_b[4:12, 0:5] = 9  # cloud: rows 8..23, cols 20..29
    scl_b[12:16, 10:15] = 3  # cloud shadow: rows 24..31, cols 40..49 (outside A)
    a, dn_a = _s2_item(tmp_path, "A", "2022-06-01T10:00:00Z", 0, (32, 40), scl_a, 1)
    b, dn_b = _s2_item(tmp_path, "B", "2022-06-01T10:00:04Z", 20, (32, 40), scl_b, 2)
    c, dn_c = _s2_item(tmp_path, "C", "2022-06-11T10:00:00Z", 0, (32, 60), np.full((16, 30), 4, np.uint8), 3)

    separate = load_cube([c, b, a], bands=["red", "nir"], mosaic_same_day=False)
    assert separate.sizes["time"] == 3
    cube = load_cube([c, b, a], bands=["red", "nir"])
    assert cube.shape == (2, 2, 32, 60)
    assert list(cube.id.values) == ["A+B", "C"]
    assert cube.time.values[0] == np.datetime64("2022-06-01T10:00:00")  # the first member's time
    got = cube.compute()

    def refl(dn: np.ndarray) -> np.ndarray:
        return dn.astype(np.float64) * 1e-4 - 0.1  # baseline 04.00: (DN - 1000) / 10000

    for j, band in enumerate(["red", "nir"]):
        expect = np.full((32, 60), np.nan)
        expect[:, 0:40] = refl(dn_a[band])  # A first ...
        expect[:, 40:60] = refl(dn_b[band][:, 20:40])  # ... B where A does not reach
        expect[0:16, 20:40] = refl(dn_b[band][0:16, 0:20])  # A cloudy, B clear -> B
        expect[8:16, 20:30] = np.nan  # cloudy in both
        expect[24:32, 40:50] = np.nan  # B's shadow, A absent
        np.testing.assert_allclose(got.values[0, j], expect, rtol=0, atol=1e-6, equal_nan=True)
        np.testing.assert_allclose(got.values[1, j], refl(dn_c[band]), rtol=0, atol=1e-6)
    flags = np.zeros((32, 60), np.uint8)
    flags[8:16, 20:30] = masks.CLOUD
    flags[24:32, 40:50] = masks.SHADOW  # what B saw there, not NODATA from A
    np.testing.assert_array_equal(got.mask.values[0], flags)
    np.testing.assert_array_equal(got.mask.values[1], 0)


# ------------------------------------------------------------------------------------ composites


def _period_starts(times: np.ndarray, period: str) -> np.ndarray:
    months = times.astype("datetime64[M]")
    if period == "month":
        starts = months
    elif period == "year":
        starts = times.astype("datetime64[Y]").astype("datetime64[M]")
    else:  # meteorological seasons DJF, MAM, JJA, SON; month index 0 = January 1970
        m = months.astype(np.int64)
        starts = (((m + 1) // 3) * 3 - 1).astype("datetime64[M]")
    return starts.astype("datetime64[ns]")


@pytest.mark.parametrize("period", ["month", "season", "year"])
def test_composite_is_the_median_of_clear_observations(synthetic, period: str) -> None:
    out, items = synthetic
    ser = out.series[S2]
    bands = ("red", "nir", "swir22")
    idx = [ser.bands.index(b) for b in bands]
    cube = load_cube(items[S2], bands=bands)
    comp = composite(cube, period)
    assert comp.chunks is not None  # still lazy
    got = comp.compute()

    clear = ((ser.flags & masks.DEFAULT_MASKED) == 0) & np.isfinite(ser.reflectance[:, idx]).all(axis=1)
    values = np.where(clear[:, None], ser.reflectance[:, idx], np.nan)
    starts = _period_starts(ser.times, period)
    periods = np.unique(starts)
    np.testing.assert_array_equal(got.time.values, periods)
    assert list(got.band.values) == list(bands) and got.dims == cube.dims
    if period == "season":
        assert np.datetime64("2021-12-01", "ns") in got.time.values  # DJF starts the December before
    masked_out = 0
    for k, start in enumerate(periods):
        sel = starts == start
        count = clear[sel].sum(axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expect = np.nanmedian(values[sel], axis=0)
            everything = np.nanmedian(ser.reflectance[sel][:, idx], axis=0)
        np.testing.assert_array_equal(got.clear_count.values[k], count)
        np.testing.assert_allclose(got.values[k], expect, rtol=0, atol=1e-6, equal_nan=True)
        np.testing.assert_array_equal(got.mask.values[k], np.where(count == 0, masks.NODATA, 0))
        masked_out += int((np.abs(everything - expect) > 1e-3).sum())
    assert masked_out > 0  # clouds changed some medians: the test tells clear from all pixels
    if period == "month":
        assert (got.clear_count.values == 0).any() and np.isnan(got.values).any()
        direct = load_cube(items[S2], bands=bands, composite_period="month").compute()
        np.testing.assert_array_equal(direct.values, got.values)
        np.testing.assert_array_equal(direct.clear_count.values, got.clear_count.values)


# ------------------------------------------------------------------------------ two UTM zones


def _utm_items(tmp_path: Path, zones: list[int]) -> list[tuple[dict, np.ndarray, Affine, int]]:
    """One 40 x 40 px 10 m item per zone, each around (18.0 E, 50.0 N), the zone 33/34 border,
    offset 100 m west/east so that their footprints overlap in part; one date each."""
    out = []
    for k, epsg in enumerate(zones):
        x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(18.0, 50.0)
        x0 = round(x / 20) * 20 - 200 + (100 if epsg == 32634 else -100)
        y0 = round(y / 20) * 20 + 200
        item, dns = _s2_item(tmp_path, f"utm{k}_{epsg}", f"2022-06-{k + 1:02d}T10:00:00Z", 0, (40, 40),
                             np.full((20, 20), 4, np.uint8), 10 + k, epsg=epsg, x0=x0, y0=y0)
        out.append((item, dns["red"], Affine(10, 0, x0, 0, -10, y0), epsg))
    return out


def test_two_utm_zones_come_out_on_one_grid(tmp_path: Path) -> None:
    built = _utm_items(tmp_path, [32633, 32634])
    cube = load_cube([b[0] for b in built], bands=["red", "nir"], epsg=32633)
    assert cube.attrs["crs"] == "EPSG:32633" and cube.attrs["resolution"] == (10.0, 10.0)
    transform = Affine(*cube.attrs["transform"])
    got = cube.compute()
    # the default extent is the union of both footprints: the 32634 item reprojected is
    # rotated by about 4.6 degrees and lies 200 m east, so the grid is wider than one item
    assert got.sizes["x"] > 55 and got.sizes["y"] > 40
    for t, (_, dn, src_transform, epsg) in enumerate(built):
        # Reference: the same GDAL warp (nearest) through rasterio.warp.reproject. Both use GDAL's
        # approximate transformer (<= 0.125 px error), so a target pixel whose centre lies within
        # that of a source pixel edge may take the neighbour; the DNs are random, so any real
        # misplacement (shift, flipped axis, wrong zone) matches on ~0.01% of pixels, not 99%.
        ref = np.zeros(got.shape[2:], np.uint16)
        reproject(dn, ref, src_transform=src_transform, src_crs=f"EPSG:{epsg}", dst_transform=transform,
                  dst_crs="EPSG:32633", resampling=Resampling.nearest, src_nodata=0, dst_nodata=0)
        expect = np.where(ref == 0, np.nan, ref * 1e-4 - 0.1)
        value = got.values[t, 0]
        inside = ref > 0
        assert inside.sum() > 1500  # nearly all of the 1600 source pixels land on the grid
        same_footprint = (inside == np.isfinite(value)).mean()
        same_value = (np.abs(value[inside] - expect[inside]) <= 1e-6).mean()
        assert same_footprint >= 0.99 and same_value >= 0.99, (epsg, same_footprint, same_value)
        assert ((got.mask.values[t] & masks.NODATA) > 0).mean() == pytest.approx((~inside).mean(), abs=0.01)


def test_default_crs_is_the_most_common_and_named_in_attrs(tmp_path: Path) -> None:
    built = _utm_items(tmp_path, [32633, 32634, 32634])
    cube = load_cube([b[0] for b in built], bands=["red"])
    assert cube.attrs["epsg"] == 32634 and cube.attrs["crs"] == "EPSG:32634"
    counts = np.isfinite(cube.values[:, 0]).sum(axis=(1, 2))
    assert (counts > 1500).all()  # every item, the 32633 one warped too, lands on that grid


# ----------------------------------------------------------------------- Landsat + Sentinel-2


def test_landsat_and_sentinel2_merge_at_30m(tmp_path: Path) -> None:
    x0, y0 = 600000.0, 5100000.0
    # Sentinel-2 60 x 60 px at 10 m (SCL 30 x 30 at 20 m): before and after baseline 04.00
    scl = np.full((30, 30), 4, np.uint8)
    scl[0:6, 0:6] = 9
    s2_old, dn_old = _s2_item(tmp_path, "S2-old", "2021-12-20T10:00:00Z", 0, (60, 60), scl, 21,
                              x0=x0, y0=y0, baseline="03.01")
    s2_new, dn_new = _s2_item(tmp_path, "S2-new", "2022-02-01T10:00:00Z", 0, (60, 60), scl, 22,
                              x0=x0, y0=y0, baseline="04.00")
    # Landsat 20 x 20 px at 30 m (Earth Search asset keys, no raster:bands); one the same day as S2
    t30 = Affine(30, 0, x0, 0, -30, y0)
    qa = np.full((20, 20), 21824, np.uint16)  # clear land (Landsat 8/9)
    qa[10:15, 10:15] = 22280  # high-confidence cloud
    qa[0, 0] = 1  # fill
    landsat, dn_landsat = [], []
    for k, (when, platform) in enumerate((("2022-01-10T10:30:00Z", "landsat-8"),
                                          ("2022-02-01T10:30:00Z", "landsat-9"))):
        rng = np.random.default_rng(30 + k)
        assets, dns = {}, {}
        for band, key in (("red", "red"), ("nir", "nir08")):
            dn = rng.integers(7300, 25000, (20, 20)).astype(np.uint16)
            dn[0, 0] = 0
            dns[band] = dn
            path = write_cog(tmp_path / f"L{k}_{key}.tif", dn, t30, 32633)
            assets[key] = {"href": str(path), "proj:shape": [20, 20], "proj:transform": list(t30)[:6]}
        path = write_cog(tmp_path / f"L{k}_qa.tif", qa, t30, 32633, nodata=1)
        assets["qa_pixel"] = {"href": str(path), "proj:shape": [20, 20], "proj:transform": list(t30)[:6]}
        landsat.append(item_dict(f"L{k}", when, LANDSAT_ID, platform, 32633, assets))
        dn_landsat.append(dns)

    cube = load_cube([landsat[1], s2_new, landsat[0], s2_old], bands=["red", "nir"])
    assert cube.attrs["resolution"] == (30.0, 30.0)  # the coarser sensor's pixel when they merge
    assert cube.shape == (4, 2, 20, 20)
    assert list(cube.band.values) == ["red", "nir"]
    assert list(cube.sensor.values) == [S2_ID, LANDSAT_ID, S2_ID, LANDSAT_ID]  # same-day S2 + L9 kept apart
    assert list(cube.id.values) == ["S2-old", "L0", "S2-new", "L1"]
    assert (np.diff(cube.time.values) > np.timedelta64(0)).all()
    explicit = load_cube([landsat[1], s2_new, landsat[0], s2_old], bands=["red", "nir"], resolution=30)
    assert explicit.shape == cube.shape and explicit.attrs["transform"] == cube.attrs["transform"]
    got = cube.compute()

    # Sentinel-2 10 m -> 30 m, nearest: the 10 m pixel under each 30 m centre (3i + 1); SCL 20 m
    # pixel under it ((30 i + 15) // 20)
    centre10 = np.arange(20) * 3 + 1
    centre20 = (np.arange(20) * 30 + 15) // 20
    s2_cloud = np.ix_(centre20, centre20)
    s2_bad = scl[s2_cloud] == 9
    landsat_bad = (qa == 1) | (qa == 22280)
    for t, (dns, bad, convert) in enumerate((
        (dn_old, s2_bad, lambda d: d * 1e-4),  # baseline 03.01: DN / 10000
        (dn_landsat[0], landsat_bad, lambda d: d * 2.75e-5 - 0.2),  # USGS C2 L2
        (dn_new, s2_bad, lambda d: (d - 1000.0) * 1e-4),  # baseline 04.00: (DN - 1000) / 10000
        (dn_landsat[1], landsat_bad, lambda d: d * 2.75e-5 - 0.2),
    )):
        for j, band in enumerate(["red", "nir"]):
            dn = dns[band].astype(np.float64)
            if dn.shape == (60, 60):
                dn = dn[np.ix_(centre10, centre10)]
            expect = np.where(bad, np.nan, convert(dn))
            np.testing.assert_allclose(got.values[t, j], expect, rtol=0, atol=1e-6, equal_nan=True,
                                       err_msg=f"time {t} band {band}")
    expect_mask = np.where(s2_bad, masks.CLOUD, 0)
    np.testing.assert_array_equal(got.mask.values[0], expect_mask)
    expect_mask = np.where(qa == 22280, masks.CLOUD, np.where(qa == 1, masks.NODATA, 0))
    np.testing.assert_array_equal(got.mask.values[1], expect_mask)


# ------------------------------------------------------------------ fused read: bit for bit

def _fused_items(out: Path, raster_bands: bool, quality: bool) -> tuple[list[dict], dict]:
    """3 dates of Sentinel-2 L2A (Earth Search keys blue/red/nir + scl), 72 x 88 px at 10 m in
    32 px tiles, DN 0 (nodata) sprinkled into every band, SCL on the 20 m grid; per-item
    raster:bands scale/offset (different per date) or none (the product convention)."""
    rng = np.random.default_rng(7)
    t10 = Affine(10, 0, X0, 0, -10, Y0)
    t20 = Affine(20, 0, X0, 0, -20, Y0)
    items, truth = [], {}
    for d in range(3):
        item_id = f"F{d}"
        assets: dict = {}
        for j, band in enumerate(("blue", "red", "nir")):
            dn = rng.integers(1, 12000, (72, 88)).astype(np.uint16)
            dn[rng.random((72, 88)) < 0.03] = 0
            truth[item_id, band] = dn
            path = write_cog(out / f"{item_id}_{band}.tif", dn, t10, 32633, blocksize=32)
            a = {"href": str(path), "proj:shape": [72, 88], "proj:transform": list(t10)[:6]}
            if raster_bands:
                a["raster:bands"] = [{"nodata": 0, "scale": [1e-4, 2.75e-5, 2e-4][d],
                                      "offset": [-0.1, -0.2, 0.0][d] + 0.01 * j}]
            assets[band] = a
        if quality:
            scl = rng.choice(np.array([0, 3, 4, 5, 6, 8, 9, 10, 11], np.uint8), (36, 44),
                             p=[0.02, 0.05, 0.5, 0.2, 0.08, 0.05, 0.05, 0.03, 0.02])
            truth[item_id, "scl"] = scl
            path = write_cog(out / f"{item_id}_scl.tif", scl, t20, 32633, blocksize=32)
            assets["scl"] = {"href": str(path), "proj:shape": [36, 44], "proj:transform": list(t20)[:6]}
        items.append(item_dict(item_id, f"2023-0{d + 4}-01T10:00:00Z", S2_ID, "sentinel-2a", 32633,
                               assets, properties={"s2:processing_baseline": "05.09"}))
    return items, truth


@pytest.mark.parametrize("raster_bands", [True, False], ids=["raster-bands", "no-raster-bands"])
@pytest.mark.parametrize("quality", [True, False], ids=["scl", "no-quality"])
def test_fused_read_equals_plain_rasterio_bit_for_bit(tmp_path: Path, raster_bands: bool,
                                                     quality: bool) -> None:
    # The reference: each COG read whole with plain rasterio, DN * scale + offset in float32,
    # NaN where the band's DN is 0 or the date's flags (SCL through the S2 table, NODATA where
    # the first band is 0) hit the default mask. Chunks of 24 px straddle the 32 px tiles; the
    # AOI crops 5 px off the left and 3 px off the top (chunk edges off the tile grid).
    import rasterio

    from rsvlm_temporal.io.items import normalise_items

    items, _ = _fused_items(tmp_path, raster_bands, quality)
    bands = ["blue", "red", "nir"]
    bounds = (X0 + 50, Y0 - 720, X0 + 880, Y0 - 30)
    norm = normalise_items(items, bands)
    for chunk in (24, 64):
        cube = load_cube(items, bands=bands, bounds=bounds, chunksize=chunk)
        assert cube.data.chunks[1] == (3,)  # one chunk holds all bands of a date
        got, flags = cube.values, cube.mask.values
        assert got.dtype == np.float32 and got.shape == (3, 3, 69, 83)
        for t, it in enumerate(norm):
            with rasterio.open(it.bands["blue"].href) as ds:
                dn0 = ds.read(1)[3:, 5:]
            expect_flags = np.where(dn0 == 0, masks.NODATA, np.uint8(0)).astype(np.uint8)
            if quality:
                with rasterio.open(it.quality.href) as ds:
                    scl = np.repeat(np.repeat(ds.read(1), 2, axis=0), 2, axis=1)[3:, 5:]
                expect_flags |= masks.decode(scl, LUT_S2)
            np.testing.assert_array_equal(flags[t], expect_flags)
            bad_q = (expect_flags & masks.DEFAULT_MASKED) != 0
            for j, band in enumerate(bands):
                asset = it.bands[band]
                if raster_bands:
                    assert asset.scale == [1e-4, 2.75e-5, 2e-4][t]
                else:
                    assert (asset.scale, round(asset.offset, 9)) == (1e-4, -0.1)
                with rasterio.open(asset.href) as ds:
                    dn = ds.read(1)[3:, 5:]
                expect = dn.astype(np.float32) * np.float32(asset.scale) + np.float32(asset.offset)
                expect[(dn == 0) | bad_q] = np.nan
                assert got[t, j].tobytes() == expect.tobytes(), (chunk, t, band)
        assert np.isnan(got).any() and np.isfinite(got).mean() > 0.5


def test_fused_read_fills_pixels_outside_the_files_as_nodata(tmp_path: Path) -> None:
    # An AOI reaching 40 m past the files' left and top edges: the chunks there are partly (or
    # wholly, at 4 px chunks) outside every file; those pixels read as the files' nodata DN, so
    # they are NaN with the NODATA flag, and the inside equals the same cube on the files' grid.
    items, _ = _fused_items(tmp_path, raster_bands=True, quality=True)
    bands = ["blue", "red", "nir"]
    inside = load_cube(items, bands=bands, chunksize=32)
    for chunk in (4, 24):
        cube = load_cube(items, bands=bands, bounds=(X0 - 40, Y0 - 720, X0 + 880, Y0 + 40),
                         chunksize=chunk)
        got, flags = cube.values, cube.mask.values
        assert got.shape == (3, 3, 76, 92)
        assert np.isnan(got[:, :, :4]).all() and np.isnan(got[:, :, :, :4]).all()
        assert ((flags[:, :4] & masks.NODATA) != 0).all() and ((flags[:, :, :4] & masks.NODATA) != 0).all()
        assert got[:, :, 4:, 4:].tobytes() == inside.values.tobytes()
        np.testing.assert_array_equal(flags[:, 4:, 4:], inside.mask.values)


def test_a_cog_georeferenced_far_from_its_item_is_refused(tmp_path: Path) -> None:
    """The item declares the grid at x0; the file is written 100 km east: reading it is an error
    naming the distance, not a cube of silent nodata."""
    import pystac

    from rsvlm_temporal.errors import RasterReadError

    x0, y0 = 500000.0, 5000000.0
    declared = Affine(10, 0, x0, 0, -10, y0)
    actual = Affine(10, 0, x0 + 100_000, 0, -10, y0)
    assets = {}
    for band in ("blue", "green", "red", "nir", "swir16", "swir22"):
        path = write_cog(tmp_path / f"{band}.tif", np.full((16, 16), 1000, np.uint16), actual, 32633)
        assets[band] = {"href": str(path), "proj:shape": [16, 16], "proj:transform": list(declared)[:6],
                        "raster:bands": [{"scale": 0.0001, "offset": 0.0, "nodata": 0}]}
    item = pystac.Item.from_dict(item_dict("S2A_far", "2021-06-01T10:00:00Z", "sentinel-2-l2a", "sentinel-2a",
                                           32633, assets, bbox=[15.0, 45.1, 15.01, 45.11]))
    cube = load_cube([item], bands=["red", "nir"])
    with pytest.raises(RasterReadError, match=r"lies 99\.8 km from the grid its item declares"):
        cube.compute()
