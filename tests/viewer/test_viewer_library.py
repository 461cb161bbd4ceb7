"""rsvlm_temporal.viewer: frames, overlays, swipe, series, animations, report, uploads, questions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rsvlm_temporal import viewer
from rsvlm_temporal.classes import class_color, class_table
from rsvlm_temporal.errors import AOIError, GridError, InsufficientDataError, ParameterError, UnknownNameError

# --------------------------------------------------------------------------------------------
# frames


def test_player_cube_is_at_the_sentinel2_pixel(cube, items):
    assert viewer.player_resolution(items) == 10.0
    assert tuple(cube.attrs["resolution"]) == (10.0, 10.0) and cube.sizes["y"] == cube.sizes["x"] == 48
    assert set(cube.sensor.values.tolist()) == {"sentinel-2-l2a", "landsat-c2-l2"}


def test_store_holds_every_date_with_sensor_and_clear_share(store, cube):
    assert len(store) == cube.sizes["time"]
    assert [f.date for f in store.infos] == [str(t)[:10] for t in cube.time.values]
    assert [f.sensor for f in store.infos] == cube.sensor.values.tolist()
    clear = np.isfinite(cube.values).all(axis=1).reshape(len(store), -1).mean(axis=1)
    assert np.allclose([f.clear_fraction for f in store.infos], clear)
    assert any(f.clear_fraction < 0.9 for f in store.infos), "the scene should have cloudy dates"
    assert "% clear" in store.infos[0].caption()


@pytest.mark.parametrize("view", list(viewer.VIEWS))
def test_frames_are_uint8_rgb(store, view):
    img = store.frame(len(store) // 2, view)
    assert img.dtype == np.uint8 and img.shape == store.shape + (3,)
    bar = store.colorbar(view)
    assert (bar is None) == (viewer.VIEWS[view].kind == "rgb")
    if bar is not None:
        assert bar.dtype == np.uint8 and bar.shape[2] == 3


def test_masked_pixels_are_shown_grey(store):
    i = min(range(len(store)), key=lambda k: store.infos[k].clear_fraction)
    img = store.frame(i, "true_colour")
    masked = ~store.clear_mask(i)
    assert masked.any()
    assert (img[masked] == viewer.render.MASKED_RGB).all()


def test_index_values_match_the_cube(store, cube):
    i = max(range(len(store)), key=lambda k: store.infos[k].clear_fraction)
    nir, red = (cube.isel(time=i).sel(band=b).values for b in ("nir", "red"))
    expected = (nir - red) / (nir + red)
    got = store.index_values("ndvi")[i].astype(np.float32)
    ok = np.isfinite(expected)
    assert np.allclose(got[ok], expected[ok], atol=2e-3)


def test_clear_filter_and_bad_requests(store):
    assert store.visible(0.0) == list(range(len(store)))
    strict = store.visible(0.99)
    assert 0 < len(strict) < len(store)
    assert all(store.infos[i].clear_fraction >= 0.99 for i in strict)
    with pytest.raises(UnknownNameError, match="view"):
        store.frame(0, "thermal")
    with pytest.raises(ParameterError, match="out of range"):
        store.frame(len(store), "true_colour")


# --------------------------------------------------------------------------------------------
# overlays, legend, swipe, dates


def test_legend_and_overlay_use_the_shared_class_table():
    entries = viewer.legend("change")
    assert [e.name for e in entries] == list(class_table("change").legend_order)
    for e in entries:
        assert e.color == viewer.hex_color(class_color(e.code, e.name))
    codes = np.array([[0, 1], [2, 255]], np.uint8)
    rgba = viewer.class_rgba(codes)
    assert tuple(rgba[0, 1, :3]) == class_color(1, "burn") and rgba[0, 1, 3] == 255
    assert rgba[0, 0, 3] == 0 and rgba[1, 1, 3] == 0  # no change hidden, nodata transparent


def test_overlay_follows_the_current_date():
    codes = np.array([[1, 1]], np.uint8)
    day = int(np.datetime64("2022-06-01", "D").astype(int))
    dates = np.array([[day, -1]], np.int32)
    before = viewer.class_rgba(codes, dates=dates, until="2022-05-31")
    after = viewer.class_rgba(codes, dates=dates, until="2022-06-01")
    assert before[..., 3].sum() == 0 and after[0, 0, 3] == 255 and after[0, 1, 3] == 0


def test_blend_opacity_and_resampling():
    base = np.zeros((4, 4, 3), np.uint8)
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (200, 100, 0, 255)
    out = viewer.blend(base, rgba, 0.5)
    assert out.shape == (4, 4, 3) and tuple(out[1, 1]) == (100, 50, 0) and tuple(out[3, 3]) == (0, 0, 0)
    with pytest.raises(ParameterError):
        viewer.blend(base, rgba, 1.5)


def test_swipe_composes_before_left_after_right():
    a = np.zeros((10, 20, 3), np.uint8)
    b = np.full((10, 20, 3), 100, np.uint8)
    out = viewer.swipe(a, b, 0.5)
    assert (out[:, :9] == 0).all() and (out[:, 11:] == 100).all() and (out[:, 9:11] == 255).all()
    with pytest.raises(GridError):
        viewer.swipe(a, b[:, :5], 0.5)


def test_date_map_has_a_date_colour_bar():
    d = np.array([[-1, 18000], [18300, 18600]], np.int32)
    rgb, bar = viewer.date_map(d)
    assert rgb.shape == (2, 2, 3) and tuple(rgb[0, 0]) == viewer.render.MASKED_RGB
    assert bar.shape[2] == 3 and bar.shape[1] == 360


# --------------------------------------------------------------------------------------------
# series


def test_pixel_series_is_the_index_of_that_pixel(store):
    s = viewer.pixel_series(store, "nbr", 5, 40)
    assert len(s) == len(store) and s.clear.any()
    raw = store.index_values("nbr")[:, 5, 40].astype(np.float64)
    assert np.allclose(s.value[s.clear], raw[np.isfinite(raw)])
    with pytest.raises(ParameterError, match="outside"):
        viewer.pixel_series(store, "nbr", 48, 0)


def test_aoi_series_median(store):
    s = viewer.aoi_series(store, "ndvi")
    i = int(np.argmax([f.clear_fraction for f in store.infos]))
    v = store.index_values("ndvi")[i].astype(np.float32)
    assert s["median"][i] == pytest.approx(float(np.nanmedian(v)), abs=1e-3)


# --------------------------------------------------------------------------------------------
# analysis layers, areas, cached runs


def test_layers_and_area_table(run):
    outputs, out = run
    layers = viewer.read_layers(outputs.files)
    assert layers.table == "change" and layers.classes.dtype == np.uint8
    assert layers.change_date is not None and layers.burn_severity is not None
    rows = viewer.area_table(outputs.evidence)
    assert [r["class"] for r in rows] == [n for n in class_table("change").legend_order
                                          if n in {c.name for c in outputs.evidence.classes}]
    burn = next(r for r in rows if r["class"] == "burn")
    assert burn["area_ha"] > 0
    csv = viewer.area_csv(rows)
    assert csv.splitlines()[0] == "class,label,area_ha,percent_of_valid" and "burn,burned," in csv


def test_a_finished_run_is_reused(run, items):
    outputs, out = run
    again, fresh = viewer.analyse_cached(items, out)
    assert not fresh and again.evidence.to_dict() == outputs.evidence.to_dict()
    assert set(again.files) >= {"change_class", "burn_severity", "change_date", "polygons", "evidence"}
    assert viewer.load_run(out, "another request") is None


# --------------------------------------------------------------------------------------------
# GIF / MP4, report


def test_gif_has_every_clear_frame_with_its_date_burnt_in(store, tmp_path):
    import imageio.v3 as iio

    path = viewer.export_animation(store, tmp_path / "s.gif", "true_colour", fps=5, min_clear=0.9)
    frames = iio.imread(path, index=None)
    assert frames.shape[0] == len(store.visible(0.9))
    assert frames.shape[1] >= 240  # enlarged for reading
    top = frames[0, :10].astype(int).mean()
    assert top < 120  # the dark caption band
    with pytest.raises(InsufficientDataError):
        viewer.export_animation(store, tmp_path / "none.gif", min_clear=1.01)
    with pytest.raises(ParameterError, match="format"):
        viewer.export_animation(store, tmp_path / "s.avi")
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_mp4_is_h264(store, tmp_path):
    path = viewer.export_animation(store, tmp_path / "s.mp4", "ndvi", fps=4, min_clear=0.9)
    head = path.read_bytes()[:64]
    assert b"ftyp" in head and path.stat().st_size > 1000


def test_report_png(store, run, tmp_path):
    from PIL import Image

    outputs, _ = run
    layers = viewer.read_layers(outputs.files)
    path = viewer.report_png(tmp_path / "r.png", title="Wildfire", subtitle="test",
                             maps=[("before", store.frame(0)), ("classes", viewer.classes_image(layers.classes))],
                             legend=viewer.legend(), areas=viewer.area_table(outputs.evidence),
                             caption="; ".join(viewer.evidence_summary(outputs.evidence)),
                             notes=[n.text for n in outputs.evidence.quality.notes])
    img = Image.open(path)
    assert img.format == "PNG" and img.size[0] == 1400 and img.size[1] > 600
    with pytest.raises(ParameterError):
        viewer.report_png(tmp_path / "x.png", title="t", subtitle="s", maps=[], legend=[], areas=[],
                          caption="", notes=[])


# --------------------------------------------------------------------------------------------
# AOI uploads


POLY = {"type": "Polygon", "coordinates": [[[14.2, 45.9], [14.3, 45.9], [14.3, 46.0], [14.2, 46.0], [14.2, 45.9]]]}


def test_a_good_upload_is_parsed():
    aoi = viewer.validate_aoi_upload(json.dumps({"type": "Feature", "geometry": POLY, "properties": {}}).encode())
    assert aoi.bbox == pytest.approx((14.2, 45.9, 14.3, 46.0))
    assert 80 < viewer.aoi_area_km2(aoi) < 90


@pytest.mark.parametrize("data, message", [
    (b"", "is empty"),
    (b"{not json", "malformed JSON"),
    (b'"a string"', "not GeoJSON"),
    (json.dumps({"type": "Point", "coordinates": [1, 2]}).encode(), "Point, which has no area"),
    (json.dumps({"type": "LineString", "coordinates": [[1, 2], [3, 4]]}).encode(), "no area"),
    (json.dumps({"type": "FeatureCollection", "features": []}).encode(), "empty FeatureCollection"),
    (json.dumps({"type": "Polygon", "coordinates": [[[0, 0], [0.04, 0.04], [0.04, 0], [0, 0.02], [0, 0]]]}).encode(),
     "invalid polygon"),
    (json.dumps({"type": "Polygon", "coordinates": [[[0, 0], [9, 0], [9, 9], [0, 9], [0, 0]]]}).encode(), "at most"),
])
def test_bad_uploads_say_what_is_wrong(data, message):
    with pytest.raises(AOIError, match=message):
        viewer.validate_aoi_upload(data)


def test_upload_size_limit():
    with pytest.raises(AOIError, match="upload limit"):
        viewer.validate_aoi_upload(b" " * 2000, max_bytes=1000)


# --------------------------------------------------------------------------------------------
# questions and captions


def test_questions_fall_back_to_the_evidence_summary(run):
    outputs, _ = run
    ans = viewer.ask("How much burned?", outputs.evidence)
    if viewer.language_available():
        assert ans.source == "language" and ans.text
    else:
        assert ans.source == viewer.qa.EVIDENCE_SUMMARY
        assert any(line.startswith("burn ") and " ha " in line for line in ans.evidence)
    with pytest.raises(ParameterError, match="empty"):
        viewer.ask("  ", outputs.evidence)
    cap = viewer.caption(outputs.evidence)
    assert cap.text


# --------------------------------------------------------------------------------------------
# the import rule


def test_viewer_does_not_import_later_stages():
    code = ("import sys, rsvlm_temporal.viewer; "
            "bad = [m for m in sys.modules if m.split('.')[:2] in (['rsvlm_temporal', 'synth'], "
            "['rsvlm_temporal', 'evaluate'], ['rsvlm_temporal', 'pipeline'], ['rsvlm_temporal', 'train'])]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert r.returncode == 0, r.stdout + r.stderr
