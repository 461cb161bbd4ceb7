"""Metrics on hand-computed cases; the real Taizhou (Landsat 7) and LEVIR-CD (RGB) evaluations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from rsvlm_temporal.evaluate.metrics import (
    ConfusionCounts,
    binary_metrics,
    confusion_counts,
    evaluate_labelled,
)

# ------------------------------------------------------------------------------------------
# metrics


def test_metrics_hand_case():
    # tp=3 fp=1 fn=2 tn=4: OA 0.7, pe = (4*5 + 6*5)/100 = 0.5, kappa = 0.2/0.5 = 0.4
    pred = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], bool)
    truth = np.array([1, 1, 1, 0, 1, 1, 0, 0, 0, 0], bool)
    m = binary_metrics(pred, truth)
    assert (m["tp"], m["fp"], m["fn"], m["tn"], m["n"]) == (3, 1, 2, 4, 10)
    assert m["overall_accuracy"] == pytest.approx(0.7)
    assert m["kappa"] == pytest.approx(0.4)
    assert m["precision"] == pytest.approx(0.75)
    assert m["recall"] == pytest.approx(0.6)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["iou"] == pytest.approx(0.5)


def test_metrics_second_hand_case_and_edges():
    # tp=45 fp=5 fn=15 tn=35 (n=100): OA .8, pe = (50*60 + 50*40)/1e4 = .5, kappa .6
    c = ConfusionCounts(tp=45, fp=5, fn=15, tn=35)
    assert c.kappa == pytest.approx(0.6)
    assert c.f1 == pytest.approx(90 / 110)
    perfect = confusion_counts(np.array([1, 0, 1, 0]), np.array([1, 0, 1, 0]))
    assert perfect.kappa == 1.0 and perfect.f1 == 1.0
    inverted = confusion_counts(np.array([0, 1, 0, 1]), np.array([1, 0, 1, 0]))
    assert inverted.kappa == pytest.approx(-1.0) and inverted.f1 == 0.0
    # nothing predicted, nothing true: ratios undefined (nan), counts still pooled
    empty = ConfusionCounts(0, 0, 0, 10)
    assert math.isnan(empty.precision) and math.isnan(empty.recall) and math.isnan(empty.f1)
    assert empty.overall_accuracy == 1.0
    assert (empty + c).tn == 45
    with pytest.raises(ValueError, match="shape"):
        confusion_counts(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        confusion_counts(np.array([np.nan, 1.0]), np.array([1, 0]))


def test_evaluate_labelled_ignores_unlabelled_pixels():
    pred = np.array([[1, 1, 0], [0, 1, 0]], bool)
    change = np.array([[1, 0, 0], [0, 0, 0]], bool)
    nochange = np.array([[0, 1, 1], [0, 0, 0]], bool)  # row 2 unlabelled
    m = evaluate_labelled(pred, change, nochange)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (1, 1, 0, 1)
    valid = np.array([[1, 0, 1], [1, 1, 1]], bool)
    m = evaluate_labelled(pred, change, nochange, pred_valid=valid)
    assert (m["tp"], m["fp"], m["fn"], m["tn"], m["n_labelled_invalid"]) == (1, 0, 0, 1, 1)
    with pytest.raises(ValueError, match="both changed and unchanged"):
        evaluate_labelled(pred, change, change)


# ------------------------------------------------------------------------------------------
# ENVI reader on a tiny synthetic file


def _write_envi(tmp: Path, arr: np.ndarray, interleave: str) -> Path:
    nb, nl, ns = arr.shape
    data = {"bsq": arr, "bil": arr.transpose(1, 0, 2), "bip": arr.transpose(1, 2, 0)}[interleave]
    path = tmp / f"img_{interleave}"
    path.write_bytes(np.ascontiguousarray(data).astype("<u2").tobytes())
    (tmp / f"img_{interleave}.hdr").write_text(
        "ENVI\ndescription = {\n  test, file}\n"
        f"samples = {ns}\nlines   = {nl}\nbands   = {nb}\nheader offset = 0\n"
        f"file type = ENVI Standard\ndata type = 12\ninterleave = {interleave}\nbyte order = 0\n"
        "map info = {UTM, 2.000, 3.000, 1000.000, 5000.000, 3.0000000000e+001, "
        "3.0000000000e+001, 33, South, WGS-84, units=Meters}\n"
        "wavelength = {\n 0.48, 0.56}\n"
    )
    return path


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
def test_read_envi_synthetic(tmp_path, interleave):
    from rsvlm_temporal.evaluate.taizhou import read_envi, read_envi_header

    arr = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4) * 100
    path = _write_envi(tmp_path, arr, interleave)
    hdr = read_envi_header(str(path) + ".hdr")
    assert hdr["samples"] == 4 and hdr["data type"] == 12 and hdr["interleave"] == interleave
    img = read_envi(path)
    np.testing.assert_array_equal(img.values, arr)
    assert img.dtype == np.uint16
    assert img.attrs["crs"] == "EPSG:32733" and img.attrs["epsg"] == 32733
    # pixel (2, 3) (1-based) has its upper-left corner at (1000, 5000)
    assert img.attrs["transform"] == (30.0, 0.0, 970.0, 0.0, -30.0, 5060.0)
    assert img.x.values[0] == 985.0 and img.y.values[0] == 5045.0
    assert list(img.band.values) == ["b1", "b2"]


# ------------------------------------------------------------------------------------------
# real data: Landsat 7 Taizhou


@pytest.fixture(scope="module")
def taizhou_dir(shared_data):
    d = shared_data / "landsat_taizhou_cd"
    if not d.is_dir():
        pytest.skip(f"{d} not found")
    return d


def test_taizhou_reads_georeferenced(taizhou_dir):
    from rsvlm_temporal.evaluate.taizhou import load_taizhou

    before, after, ch, nc = load_taizhou(taizhou_dir)
    assert before.shape == after.shape == (6, 400, 400)
    assert list(before.band.values) == ["blue", "green", "red", "nir", "swir16", "swir22"]
    assert before.attrs["crs"] == "EPSG:32651" and before.attrs["epsg"] == 32651
    assert before.attrs["transform"] == (30.0, 0.0, 203325.0, 0.0, -30.0, 3604935.0)
    assert before.attrs["resolution"] == (30.0, 30.0)
    assert str(before.time.values)[:10] == "2000-03-17" and str(after.time.values)[:10] == "2003-02-06"
    assert int(ch.sum()) == 4227 and int(nc.sum()) == 17163 and not bool((ch & nc).any())


def test_taizhou_default_method_kappa(taizhou_dir):
    """The default (IR-MAD + Otsu, nothing tuned to this pair) reaches Kappa >= 0.93."""
    from rsvlm_temporal.evaluate.taizhou import evaluate_taizhou

    r = evaluate_taizhou(taizhou_dir)
    assert r["method"] == "irmad" and r["threshold_method"] == "otsu" and r["converged"]
    assert r["tp"] + r["fn"] == 4227 and r["fp"] + r["tn"] == 17163
    assert r["kappa"] >= 0.93
    assert r["overall_accuracy"] > 0.97 and r["f1"] > 0.94


def test_taizhou_stac_export(taizhou_dir, tmp_path):
    import pystac
    import rasterio

    from rsvlm_temporal.evaluate.taizhou import read_envi, write_pair_as_stac

    cat_path = write_pair_as_stac(taizhou_dir, tmp_path / "stac")
    coll = pystac.Collection.from_file(str(cat_path))
    assert coll.id == "landsat-taizhou-etm"
    items = sorted(coll.get_items(recursive=True), key=lambda i: i.datetime)
    assert [i.datetime.date().isoformat() for i in items] == ["2000-03-17", "2003-02-06"]
    before = read_envi(taizhou_dir / "2000TM")
    for item in items:
        d = item.to_dict()
        props = d["properties"]
        assert props["platform"] == "landsat-7" and item.collection_id == "landsat-taizhou-etm"
        assert props["proj:code"] == "EPSG:32651" and props["proj:shape"] == [400, 400]
        assert props["proj:transform"][:6] == [30.0, 0.0, 203325.0, 0.0, -30.0, 3604935.0]
        lon0, lat0, lon1, lat1 = item.bbox
        assert 119.5 < lon0 < lon1 < 120.5 and 32.0 < lat0 < lat1 < 33.0  # Taizhou, Jiangsu
        for band in ("blue", "green", "red", "nir", "swir16", "swir22"):
            a = d["assets"][band]
            assert a["eo:bands"][0]["common_name"] == band
            assert a["raster:bands"][0]["scale"] == 1.0 and a["raster:bands"][0]["offset"] == 0.0
        assert len(d["assets"]["stack"]["eo:bands"]) == 6
    red = items[0].assets["red"].get_absolute_href()
    with rasterio.open(red) as src:
        assert src.crs.to_epsg() == 32651 and src.count == 1 and src.dtypes[0] == "uint8"
        assert tuple(src.transform)[:6] == (30.0, 0.0, 203325.0, 0.0, -30.0, 3604935.0)
        np.testing.assert_array_equal(src.read(1), before.sel(band="red").values)
    with rasterio.open(items[0].assets["stack"].get_absolute_href()) as src:
        assert src.count == 6
        np.testing.assert_array_equal(src.read(), before.values)
    # self-contained: relative links and asset hrefs
    raw = json.loads(Path(items[0].get_self_href()).read_text())
    assert not raw["assets"]["red"]["href"].startswith("/")
    assert not list((tmp_path / "stac").rglob("*.part"))


# ------------------------------------------------------------------------------------------
# real data: LEVIR-CD RGB samples


@pytest.fixture(scope="module")
def levir_dir(shared_data):
    d = shared_data / "levir-cd_samples"
    if not d.is_dir():
        pytest.skip(f"{d} not found")
    return d


def test_levir_f1_matches_the_produced_masks(levir_dir):
    from rsvlm_temporal.evaluate.levir import evaluate_levir, levir_tiles, load_levir_tile

    names = levir_tiles(levir_dir)
    assert len(names) == 11
    subset = ["test_77_0512_0256", "train_386_0512_0768"]  # one with change, one without
    r = evaluate_levir(levir_dir, method="cva", tiles=subset, return_masks=True)
    total = np.zeros(4, int)
    for name in subset:
        _, _, label = load_levir_tile(levir_dir, name)
        mask = r["masks"][name]
        assert mask.shape == (256, 256) and mask.dtype == bool
        tp, fp = int((mask & label).sum()), int((mask & ~label).sum())
        fn, tn = int((~mask & label).sum()), int((~mask & ~label).sum())
        total += [tp, fp, fn, tn]
        t = r["tiles"][name]
        assert (t["tp"], t["fp"], t["fn"], t["tn"]) == (tp, fp, fn, tn)
        if tp + fp + fn:
            assert t["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert math.isnan(r["tiles"]["train_386_0512_0768"]["recall"])  # no change in the label
    p = r["pooled"]
    assert (p["tp"], p["fp"], p["fn"], p["tn"]) == tuple(total)
    assert p["f1"] == pytest.approx(2 * total[0] / (2 * total[0] + total[1] + total[2]))
    assert 0.0 <= p["f1"] <= 1.0 and 0.0 <= p["iou"] <= 1.0
