"""Synthetic scene generator: COGs, DN encodings, quality bands, STAC items, truth, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio

from rsvlm_temporal.change import spectra
from rsvlm_temporal.classes import BURN_SEVERITY_BOUNDS, CHANGE_CODES
from rsvlm_temporal.io import masks
from rsvlm_temporal.io.sensors import detect_sensor, sensor_table
from rsvlm_temporal.synth import (
    LANDSAT,
    S2,
    SCENARIO_NAMES,
    SyntheticSceneError,
    demo_catalog,
    make_scene,
    write_scene,
)
from rsvlm_temporal.synth.writer import _observe, block_any, decode_dn, upsample

# small and quick: 48 x 48 px, two years across the 2022-01-25 baseline change and Landsat 9
SMALL = dict(size=48, start="2021-01-01", end="2022-12-31", s2_revisit_days=30,
             landsat_revisit_days=32, landsat_dual_revisit_days=32, seed=7, cloud_prob=0.5, edge_prob=0.15)


@pytest.fixture(scope="module")
def wildfire(tmp_path_factory: pytest.TempPathFactory):
    return write_scene(tmp_path_factory.mktemp("wildfire"), "wildfire", **SMALL)


@pytest.fixture(scope="module")
def flood(tmp_path_factory: pytest.TempPathFactory):
    return write_scene(tmp_path_factory.mktemp("flood"), "flood", **SMALL)


@pytest.fixture(scope="module")
def scenes():
    return {name: make_scene(name, **SMALL) for name in SCENARIO_NAMES}


def _items(out) -> dict[str, list[pystac.Item]]:
    cat = pystac.Catalog.from_file(str(out.catalog_path))
    got: dict[str, list[pystac.Item]] = {}
    for it in cat.get_items(recursive=True):
        got.setdefault(it.collection_id, []).append(it)
    for v in got.values():
        v.sort(key=lambda i: i.datetime)
    return got


def _read(item: pystac.Item, key: str) -> tuple[np.ndarray, dict]:
    with rasterio.open(item.assets[key].get_absolute_href()) as ds:
        return ds.read(1), {"profile": ds.profile, "transform": ds.transform, "crs": ds.crs,
                            "overviews": ds.overviews(1), "layout": ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT")}


# ------------------------------------------------------------------------------------------ spectra


def test_signatures_follow_published_levels():
    wl = spectra.band_wavelengths(S2, ("red", "nir", "swir16", "swir22"))
    red, nir, sw16, sw22 = (spectra.signature("forest", wl))
    assert 0.02 <= red <= 0.05 and 0.38 <= nir <= 0.50
    red, nir, sw16, sw22 = spectra.signature("crop", wl)
    assert 0.03 <= red <= 0.05 and 0.40 <= nir <= 0.50
    red, nir, sw16, sw22 = spectra.signature("burned", wl)
    assert 0.08 <= nir <= 0.12 and sw22 > nir
    for water in ("water_clear", "water_turbid"):
        assert spectra.signature(water, wl)[1] < 0.02
    red, nir, sw16, sw22 = spectra.signature("built_up", wl)
    assert 0.15 <= red <= 0.30 and sw16 > nir
    m = spectra.signature_matrix(LANDSAT, ("red", "nir08"))
    assert m.shape == (len(spectra.MATERIALS), 2) and np.all((m > 0) & (m < 1))


# ------------------------------------------------------------------------------------------ files


def test_cogs_are_valid_and_on_the_item_grid(wildfire):
    items = _items(wildfire)
    for coll, keys in ((S2, ("red", "swir22", "scl")), (LANDSAT, ("red", "qa_pixel"))):
        it = items[coll][len(items[coll]) // 2]
        for k in keys:
            _, info = _read(it, k)
            prof = info["profile"]
            assert info["layout"] == "COG" and prof["tiled"] and prof["blockxsize"] == 256
            assert prof["compress"] == "deflate"
            assert info["overviews"] or max(prof["width"], prof["height"]) <= 256
            assert list(info["transform"])[:6] == it.assets[k].extra_fields["proj:transform"]
            assert [prof["height"], prof["width"]] == it.assets[k].extra_fields["proj:shape"]
            assert info["crs"].to_epsg() == wildfire.grid.epsg
    assert items[S2][0].assets["red"].href.startswith("./")


def test_s2_dn_encoding_inverts_exactly(wildfire):
    ser = wildfire.series[S2]
    table = sensor_table()[S2]
    items = _items(wildfire)[S2]
    assert [i.id for i in items] == ser.item_ids
    baselines = set()
    for t, (it, acq) in enumerate(zip(items, wildfire.scene.acquisitions[S2])):
        b = it.properties["s2:processing_baseline"]
        baselines.add(b)
        after = acq.date >= np.datetime64("2022-01-25")
        assert (b >= "04.00") == after
        assert it.properties["earthsearch:boa_offset_applied"] is False
        refl_true, _ = _observe(wildfire.scene, acq, wildfire.scene.atmosphere(acq))
        for i, band in enumerate(ser.bands):
            rb = it.assets[band].extra_fields["raster:bands"][0]
            assert rb["scale"] == 0.0001 and rb["offset"] == (-0.1 if after else 0.0)
            dn, _ = _read(it, band)
            dec = decode_dn(dn, rb["scale"], rb["offset"])
            k = int(table.band(band).resolution // 10)
            np.testing.assert_array_equal(upsample(dec, k), ser.reflectance[t, i])
            ok = dn > 0
            # DN = reflectance * 10000 (+ 1000 from baseline 04.00), rounded
            expect = np.clip(np.rint(refl_true[band] * 10000 + (1000 if after else 0)), 1, 65535)
            np.testing.assert_array_equal(dn[ok], expect[ok])
            # exact to half a DN, except negative reflectance before 04.00 (clipped to DN 1, as ESA's)
            fits = ok & (np.rint(refl_true[band] * 10000 + (1000 if after else 0)) >= 1)
            assert np.abs(dec[fits] - refl_true[band][fits]).max() <= 0.5e-4 + 1e-7
    assert "02.14" in baselines and any(b >= "04.00" for b in baselines)


def test_landsat_dn_encoding_inverts_exactly(wildfire):
    ser = wildfire.series[LANDSAT]
    items = _items(wildfire)[LANDSAT]
    assert {i.properties["platform"] for i in items} == {"landsat-8", "landsat-9"}
    for t, (it, acq) in enumerate(zip(items, wildfire.scene.acquisitions[LANDSAT])):
        refl_true, _ = _observe(wildfire.scene, acq, wildfire.scene.atmosphere(acq))
        for i, band in enumerate(ser.bands):
            rb = it.assets[band].extra_fields["raster:bands"][0]
            assert (rb["scale"], rb["offset"], rb["nodata"]) == (2.75e-05, -0.2, 0)
            dn, _ = _read(it, band)
            np.testing.assert_array_equal(decode_dn(dn, rb["scale"], rb["offset"]), ser.reflectance[t, i])
            ok = dn > 0
            np.testing.assert_array_equal(dn[ok], np.rint((refl_true[band][ok] + 0.2) / 0.0000275))


def test_scl_matches_drawn_clouds_and_shadows(wildfire):
    ser = wildfire.series[S2]
    lut = masks.lookup_table(sensor_table()[S2].quality)
    items = _items(wildfire)[S2]
    saw_cloud = saw_shadow = saw_clear = saw_nodata = False
    for t, it in enumerate(items):
        scl, _ = _read(it, "scl")
        f = ser.truth_flags[t]
        nod = block_any(f & masks.NODATA > 0, 2)
        cld = block_any(f & masks.CLOUD > 0, 2) & ~nod
        cir = block_any(f & masks.CIRRUS > 0, 2) & ~cld & ~nod
        shd = block_any(f & masks.SHADOW > 0, 2) & ~cld & ~cir & ~nod
        np.testing.assert_array_equal(scl == 0, nod)
        np.testing.assert_array_equal(np.isin(scl, (8, 9)), cld)
        np.testing.assert_array_equal(scl == 10, cir)
        np.testing.assert_array_equal(scl == 3, shd)
        assert set(np.unique(scl[~(nod | cld | cir | shd)])) <= {4, 5, 6}
        np.testing.assert_array_equal(upsample(masks.decode(scl, lut), 2), ser.flags[t])
        valid = ~nod
        cc = 100.0 * float(((cld | cir) & valid).sum()) / valid.sum()
        assert it.properties["eo:cloud_cover"] == pytest.approx(cc, abs=1e-5)
        saw_cloud |= bool(cld.any())
        saw_shadow |= bool(shd.any())
        saw_nodata |= bool(nod.any())
        saw_clear |= it.properties["eo:cloud_cover"] == 0
    assert saw_cloud and saw_shadow and saw_clear and saw_nodata


def test_qa_pixel_matches_drawn_clouds(flood):
    ser = flood.series[LANDSAT]
    lut = masks.lookup_table(sensor_table()[LANDSAT].quality)
    items = _items(flood)[LANDSAT]
    values: set[int] = set()
    for t, it in enumerate(items):
        qa, info = _read(it, "qa_pixel")
        assert info["profile"]["nodata"] == 1 and qa.dtype == np.uint16
        f = ser.truth_flags[t]
        fill = block_any(f & masks.NODATA > 0, 3)
        cld = block_any(f & masks.CLOUD > 0, 3) & ~fill
        shd = block_any(f & masks.SHADOW > 0, 3) & ~cld & ~fill
        np.testing.assert_array_equal(qa == 1, fill)
        bit = lambda b: (qa >> b) & 1 == 1  # noqa: E731
        np.testing.assert_array_equal(bit(3) & ~fill, cld)
        np.testing.assert_array_equal(bit(4) & ~fill, shd)
        np.testing.assert_array_equal(bit(6) & ~fill, ~(cld | bit(1)) & ~fill)
        np.testing.assert_array_equal(masks.decode(qa, lut), ser.flags[t])
        values |= set(np.unique(qa).tolist())
    assert {21824, 21952} <= values  # clear land, clear water (Landsat 8/9)
    assert any(v & (1 << 3) for v in values) and any(v & (1 << 4) for v in values)


def test_shadows_are_clouds_displaced_by_a_fixed_offset(wildfire):
    dy, dx = wildfire.scene.shadow_offset_px
    assert (dy, dx) != (0, 0)
    n = wildfire.grid.shape[0]
    for acq in wildfire.scene.acquisitions[S2]:
        atm = wildfire.scene.atmosphere(acq)
        rr, cc = np.nonzero(atm.shadow)
        src_r, src_c = rr - dy, cc - dx
        inside = (src_r >= 0) & (src_r < n) & (src_c >= 0) & (src_c < n)
        assert atm.cloud[src_r[inside], src_c[inside]].all()
        assert not (atm.shadow & atm.cloud).any()


def test_stac_items_look_like_earth_search(wildfire):
    items = _items(wildfire)
    assert set(items) == {S2, LANDSAT}
    for coll, its in items.items():
        ser = wildfire.series[coll]
        assert [i.id for i in its] == ser.item_ids
        np.testing.assert_allclose([i.properties["eo:cloud_cover"] for i in its], ser.cloud_cover)
        for it in its:
            d = it.to_dict()
            assert detect_sensor(d).id == coll
            assert it.properties["proj:code"] == wildfire.grid.crs
            assert "https://stac-extensions.github.io/projection/v2.0.0/schema.json" in it.stac_extensions
            lon, lat = wildfire.scene.config["center_lonlat"]
            w, s, e, n = it.bbox
            assert w < lon < e and s < lat < n
            for key in ser.bands:
                a = it.assets[key].extra_fields
                assert a["proj:code"] == wildfire.grid.crs and len(a["proj:transform"]) == 6
                assert a["raster:bands"][0]["data_type"] == "uint16"
                assert a["eo:bands"][0]["common_name"] in (key, "rededge")
                assert "data" in it.assets[key].roles
                assert Path(it.assets[key].get_absolute_href()).is_file()
        if coll == S2:
            assert {i.properties["platform"] for i in its} == {"sentinel-2a", "sentinel-2b"}
            assert all(i.properties["constellation"] == "sentinel-2" for i in its)
            assert its[0].id.startswith("S2") and its[0].id.endswith("_0_L2A")


# ------------------------------------------------------------------------------------------ truth


def test_truth_is_consistent(scenes):
    for name, sc in scenes.items():
        t = sc.truth
        changed = t.change_class > 0
        np.testing.assert_array_equal(changed, ~np.isnat(t.change_date), err_msg=name)
        s, e = np.datetime64(sc.options.start), np.datetime64(sc.options.end)
        if changed.any():
            assert t.change_date[changed].min() >= s + np.timedelta64(180, "D"), name
            assert t.change_date[changed].max() <= e - np.timedelta64(180, "D"), name
        assert len(t.captions) >= 3 and len(t.qa) >= 5, name
        for coll, acqs in sc.acquisitions.items():  # cloudy and fully clear dates in every scenario
            assert any(a.cloud_cover_target == 0 for a in acqs) and any(a.cloud_cover_target > 0 for a in acqs)
    assert not scenes["seasonal_crops"].truth.change_class.any()
    assert len(np.unique(scenes["deforestation"].truth.change_date[scenes["deforestation"].truth.change_class > 0])) >= 2
    assert len(np.unique(scenes["urban_growth"].truth.change_date[scenes["urban_growth"].truth.change_class > 0])) >= 2
    assert set(np.unique(scenes["deforestation"].truth.change_class)) == {0, CHANGE_CODES["vegetation_loss"]}
    assert set(np.unique(scenes["urban_growth"].truth.change_class)) == {0, CHANGE_CODES["built_up_gain"]}


def test_burn_severity_from_noise_free_dnbr(scenes):
    sc = scenes["wildfire"]
    t = sc.truth
    t0 = sc.params["fire_day"]
    bands = ("nir08", "swir22")
    pre = sc.surface(t0, S2, bands, events=False)
    post = sc.surface(t0, S2, bands)
    dnbr = spectra.normalized_difference(*pre) - spectra.normalized_difference(*post)
    expect = np.zeros(dnbr.shape, np.uint8)
    for code, bound in sorted(BURN_SEVERITY_BOUNDS.items()):
        expect[dnbr >= bound] = code
    expect[sc.index(t0, "ndvi", events=False) < 0.2] = 0
    np.testing.assert_array_equal(t.burn_severity, expect)
    burnt = t.burn_severity >= 3
    np.testing.assert_array_equal(t.change_class == CHANGE_CODES["burn"], burnt)
    assert (t.change_date[burnt] == np.datetime64(t.events["fire_date"])).all()
    shares = np.bincount(t.burn_severity[burnt], minlength=7)[3:] / burnt.sum()
    assert (shares > 0.08).all(), shares  # low .. high all well represented
    # regrowth does not bring NDVI back to the pre-fire level within a year
    ndvi_pre = sc.index(t0 - 1, "ndvi")
    ndvi_1y = sc.index(t0 + 365, "ndvi")
    for code in (3, 4, 5, 6):
        sel = t.burn_severity == code
        assert ndvi_1y[sel].mean() < ndvi_pre[sel].mean() - 0.03, code
    assert ndvi_1y[t.burn_severity >= 5].mean() < ndvi_pre[t.burn_severity >= 5].mean() - 0.2


def test_flood_truth(flood):
    t = flood.truth
    fl = t.change_class == CHANGE_CODES["flood"]
    assert fl.any() and not (fl & t.permanent_water).any()
    assert (t.flood_peak_date[fl] >= t.change_date[fl]).all()
    assert (t.flood_recession_date[fl] > t.flood_peak_date[fl]).all()
    assert np.isnat(t.flood_recession_date[~fl]).all()
    ev = t.events
    assert ev["flood_onset_date"] < ev["flood_peak_date"] < ev["flood_recession_date"]
    # the first acquisition after the peak is clear and shows the flood as water
    acq = next(a for a in flood.scene.acquisitions[S2] if str(a.date) >= ev["flood_peak_date"])
    assert acq.forced_clear and acq.cloud_cover_target == 0
    mndwi = flood.scene.index(acq.day, "mndwi")
    wet = (flood.scene.params["t_in"] <= acq.day) & (acq.day < flood.scene.params["t_out"])
    np.testing.assert_array_equal(wet, fl)  # the peak extent is observed
    assert (mndwi[wet] > 0.3).all()


def test_truth_files_match_memory(wildfire):
    truth_dir = wildfire.truth_path.parent
    doc = json.loads(wildfire.truth_path.read_text())
    assert doc["scenario"] == "wildfire" and doc["grid"]["epsg"] == wildfire.grid.epsg
    assert doc["events"]["fire_date"] == str(wildfire.truth.change_date[wildfire.truth.change_class > 0][0])
    assert any(q["answer"] == doc["events"]["fire_date"] for q in doc["qa"])
    assert len(doc["acquisitions"][S2]) == len(wildfire.series[S2].item_ids)
    with rasterio.open(truth_dir / doc["rasters"]["change_class"]) as ds:
        np.testing.assert_array_equal(ds.read(1), wildfire.truth.change_class)
        assert list(ds.transform)[:6] == doc["grid"]["transform"]
    with rasterio.open(truth_dir / doc["rasters"]["change_date"]) as ds:
        days = ds.read(1)
        assert ds.nodata == -1
    dates = np.where(days >= 0, days, 0).astype("datetime64[D]")
    np.testing.assert_array_equal(np.where(days >= 0, dates, np.datetime64("NaT")), wildfire.truth.change_date)
    with rasterio.open(truth_dir / doc["rasters"]["burn_severity"]) as ds:
        np.testing.assert_array_equal(ds.read(1), wildfire.truth.burn_severity)
    with rasterio.open(truth_dir / doc["rasters"][f"quality_{S2}"]) as ds:
        np.testing.assert_array_equal(ds.read(), wildfire.series[S2].truth_flags)
        assert list(ds.descriptions) == wildfire.series[S2].item_ids


# ------------------------------------------------------------------------------------------ determinism


def test_same_seed_same_truth_bytes():
    a = make_scene("wildfire", **SMALL)
    b = make_scene("wildfire", **SMALL)
    c = make_scene("wildfire", **{**SMALL, "seed": 8})
    for name in ("change_class", "change_date", "burn_severity", "dnbr"):
        assert getattr(a.truth, name).tobytes() == getattr(b.truth, name).tobytes()
    assert a.truth.captions == b.truth.captions and a.truth.qa == b.truth.qa
    acq_a, acq_b = a.acquisitions[S2][5], b.acquisitions[S2][5]
    assert acq_a == acq_b
    assert a.atmosphere(acq_a).opacity.tobytes() == b.atmosphere(acq_b).opacity.tobytes()
    assert a.truth.change_class.tobytes() != c.truth.change_class.tobytes()


def test_same_seed_same_files(tmp_path: Path):
    opts = dict(size=24, start="2021-01-01", end="2021-12-31", sensors="s2", s2_revisit_days=90, seed=3)
    x = write_scene(tmp_path / "a", "urban_growth", **opts)
    y = write_scene(tmp_path / "b", "urban_growth", **opts)
    for rel in ("truth/change_class.tif", "truth/change_date.tif",
                f"{S2}/{x.series[S2].item_ids[1]}/B04.tif", f"{S2}/{x.series[S2].item_ids[1]}/SCL.tif"):
        assert (x.out_dir / rel).read_bytes() == (y.out_dir / rel).read_bytes(), rel
    assert LANDSAT not in x.series
    v1 = write_scene(tmp_path / "v1", "urban_growth", proj_extension="v1", **opts)
    item = json.loads(v1.series[S2].item_paths[0].read_text())
    assert item["properties"]["proj:epsg"] == v1.grid.epsg and "proj:code" not in item["properties"]
    assert "proj:code" not in item["assets"]["red"] and len(item["assets"]["red"]["proj:transform"]) == 6


def test_landsat7_slc_off_and_qa_values(tmp_path: Path):
    out = write_scene(tmp_path, "seasonal_crops", size=24, start="2012-06-01", end="2013-12-31",
                      sensors="landsat", landsat_revisit_days=48, seed=2, cloud_prob=0.0)
    ser = out.series[LANDSAT]
    assert {"landsat-7", "landsat-8"} == set(ser.platforms)
    l7 = [t for t, p in enumerate(ser.platforms) if p == "landsat-7"]
    qa = ser.quality[l7]
    assert 5440 in qa and 21824 not in qa and (qa == 1).any()  # L7 clear land, SLC-off gaps as fill
    assert np.isnan(ser.reflectance[l7][:, 0][qa == 1]).all()
    item = json.loads(ser.item_paths[l7[0]].read_text())
    assert item["id"].startswith("LE07_") and item["assets"]["red"]["eo:bands"][0]["name"] == "ETM_B3"


def test_options_are_validated():
    with pytest.raises(SyntheticSceneError, match="multiple of 6"):
        make_scene("flood", size=50)
    with pytest.raises(SyntheticSceneError, match="unknown scenario"):
        make_scene("volcano")
    with pytest.raises(SyntheticSceneError, match="unknown sensor"):
        make_scene("flood", size=24, sensors="modis")
    with pytest.raises(SyntheticSceneError, match="at least 300 days"):
        make_scene("flood", size=24, start="2021-01-01", end="2021-03-01")


def test_demo_cache_is_reused_and_rebuilt_when_incomplete(tmp_path: Path):
    tiny = dict(size=24, start="2021-01-01", end="2021-12-31", s2_revisit_days=73, landsat_revisit_days=96,
                landsat_dual_revisit_days=96)
    root = demo_catalog(tmp_path, workers=1, **tiny)
    marker = root.parent / ".complete.json"
    stamp = marker.stat().st_mtime_ns
    assert demo_catalog(tmp_path, workers=1, **tiny) == root and marker.stat().st_mtime_ns == stamp
    cat = pystac.Catalog.from_file(str(root))
    assert sorted(c.id for c in cat.get_children()) == sorted(SCENARIO_NAMES)
    assert (root.parent / "flood" / "truth" / "truth.json").is_file()
    marker.unlink()  # a half-written cache is never reused
    assert demo_catalog(tmp_path, workers=1, **tiny) == root and marker.is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # shapely deprecations inside odc-geo
def test_items_load_with_a_third_party_stac_loader(wildfire):
    """odc-stac (optional 'bench' extra) reads the proj:code items onto the 10 m grid exactly."""
    odc_stac = pytest.importorskip("odc.stac")
    items = _items(wildfire)[S2]
    ser = wildfire.series[S2]
    ds = odc_stac.load(items, bands=["red", "swir22", "scl"], resolution=10, groupby="id",
                       crs=wildfire.grid.crs)
    so = np.array(ser.scale_offset)
    for name, i in (("red", 2), ("swir22", 9)):
        dn = ds[name].values.astype(np.float64)
        dec = (dn * so[:, 0, None, None] + so[:, 1, None, None]).astype(np.float32)
        dec[dn == 0] = np.nan
        np.testing.assert_array_equal(dec, ser.reflectance[:, i])
    np.testing.assert_array_equal(ds["scl"].values, ser.quality)
